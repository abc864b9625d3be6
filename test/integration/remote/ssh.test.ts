import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import {
  buildCommand,
  connect,
  SshConnection,
  SshError,
  withSsh,
  writeRemoteFile,
} from "../../../providers/ssh";
import { tempDir } from "../../support/env";
import { missingSshHost, SshTestHost, startSshHost } from "../../support/sshHost";

const skip = missingSshHost();
const describeSsh = skip ? describe.skip : describe;

async function failure(conn: SshConnection): Promise<SshError> {
  try {
    const ssh = await connect(conn, { connectTimeoutMs: 10_000 });
    ssh.close();
  } catch (err) {
    return err as SshError;
  }
  throw new Error("connect succeeded");
}

describeSsh("the SSH layer against a real sshd on the test host", () => {
  let host: SshTestHost;
  beforeAll(async () => {
    host = await startSshHost();
  }, 120_000);
  afterAll(async () => host?.stop(), 60_000);

  test("root and the sudo user run commands; sudo -n makes the sudo user root", async () => {
    for (const conn of [host.root, host.sudoUser]) {
      await withSsh(conn, async (ssh) => {
        const who = await ssh.run(buildCommand(conn.user, { argv: ["id", "-un"] }));
        expect(who.stdout.trim()).toBe(conn.user);
        const asRoot = await ssh.run(buildCommand(conn.user, { argv: ["id", "-u"], asRoot: true }));
        expect(asRoot.stdout.trim()).toBe("0");
      });
    }
  });

  test("stdin reaches the command, exit codes and stderr come back", async () => {
    await withSsh(host.sudoUser, async (ssh) => {
      const echoed = await ssh.exec("cat; echo err >&2; exit 3", { stdin: "from stdin\n" });
      expect(echoed).toEqual({
        code: 3,
        signal: undefined,
        stdout: "from stdin\n",
        stderr: "err\n",
      });
      await expect(ssh.run("echo broken >&2; exit 4", { what: "a broken step" })).rejects.toThrow(
        `ssh deploy@127.0.0.1:${host.sshPort}: a broken step failed (exit 4):\nbroken`,
      );
    });
  });

  test("a command past its deadline is killed on the host and reported, through sudo too", async () => {
    for (const conn of [host.root, host.sudoUser]) {
      await withSsh(conn, async (ssh) => {
        const started = Date.now();
        const line = buildCommand(conn.user, { argv: ["sleep", "31"], asRoot: true });
        await expect(ssh.exec(line, { timeoutMs: 1000 })).rejects.toThrow(
          `ssh ${conn.user}@127.0.0.1:${host.sshPort}: the command did not finish within 1000 ms: ${line}`,
        );
        expect(Date.now() - started).toBeLessThan(5000);
      });
    }
    // The deadline reached the remote processes: no `sleep 31` is left on the host.
    await new Promise((r) => setTimeout(r, 500));
    const ps = await host.inspect("ps -eo args | grep -c '^sleep 31$' || true");
    expect(ps.stdout.trim()).toBe("0");
  });

  test("files are written through stdin with their mode and owner, as root via sudo", async () => {
    await withSsh(host.sudoUser, async (ssh) => {
      await writeRemoteFile(ssh, "deploy", {
        path: "/etc/ms-test/secret.ini",
        content: "password = s3cr'et\n",
        owner: "deploy:deploy",
        asRoot: true,
      });
    });
    const stat = await host.inspect(
      "stat -c '%a %U' /etc/ms-test/secret.ini && cat /etc/ms-test/secret.ini",
    );
    expect(stat.stdout).toBe("600 deploy\npassword = s3cr'et\n");
  });

  test("a host key that is not the pinned one is refused before authentication", async () => {
    const other = tempDir("other-hostkey");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(other, "k")]);
    const otherKey = fs.readFileSync(path.join(other, "k.pub"), "utf8").trim();
    const otherFp = execFileSync("ssh-keygen", ["-lf", path.join(other, "k.pub")], {
      encoding: "utf8",
    }).split(" ")[1];
    const realFp = execFileSync("ssh-keygen", ["-lf", "-"], {
      input: host.hostKey,
      encoding: "utf8",
    }).split(" ")[1];
    for (const pin of [otherKey, otherFp]) {
      const err = await failure({ ...host.root, hostKey: pin });
      expect(err.kind).toBe("host-key");
      expect(err.message).toBe(
        `ssh root@127.0.0.1:${host.sshPort}: host key mismatch: the server presented ${realFp}, the pinned key is ${otherFp}; refusing to connect (update hostKey only if you know why it changed)`,
      );
    }
    // The fingerprint form of the right key works.
    await withSsh({ ...host.root, hostKey: realFp }, (ssh) => ssh.run("true"));
    fs.rmSync(other, { recursive: true, force: true });
  });

  test("a key the server does not know, or a key that is not a key, is a clear error without the key", async () => {
    const other = tempDir("other-userkey");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(other, "k")]);
    const unknownKey = fs.readFileSync(path.join(other, "k"), "utf8");
    const refused = await failure({ ...host.sudoUser, privateKey: unknownKey });
    expect(refused.kind).toBe("auth");
    expect(refused.message).toBe(
      `ssh deploy@127.0.0.1:${host.sshPort}: authentication failed: the server did not accept the private key for user deploy`,
    );
    const garbage =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n-----END OPENSSH PRIVATE KEY-----\n";
    const unreadable = await failure({ ...host.sudoUser, privateKey: garbage });
    expect(unreadable.kind).toBe("key");
    expect(unreadable.message).toMatch(
      new RegExp(`^ssh deploy@127\\.0\\.0\\.1:${host.sshPort}: the private key cannot be used: `),
    );
    for (const err of [refused, unreadable]) {
      expect(err.message).not.toContain("not-a-key");
      expect(err.message).not.toContain(unknownKey.split("\n")[1]);
    }
    fs.rmSync(other, { recursive: true, force: true });
  });

  test("a passphrase-protected key works with its passphrase and is refused without it", async () => {
    const dir = tempDir("passphrase-key");
    const file = path.join(dir, "k");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "correct horse", "-f", file]);
    const pub = fs.readFileSync(`${file}.pub`, "utf8");
    await host.inspect(`echo '${pub.trim()}' >> /home/deploy/.ssh/authorized_keys`);
    const privateKey = fs.readFileSync(file, "utf8");
    await withSsh({ ...host.sudoUser, privateKey, passphrase: "correct horse" }, (ssh) =>
      ssh.run("true"),
    );
    const missing = await failure({ ...host.sudoUser, privateKey });
    expect(missing.kind).toBe("key");
    expect(missing.message).toContain("the private key cannot be used");
    const wrong = await failure({ ...host.sudoUser, privateKey, passphrase: "wrong" });
    expect(wrong.kind).toBe("key");
    expect(wrong.message).not.toContain("wrong");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("nothing listening is a connect error naming the target", async () => {
    const err = await failure({ ...host.root, port: host.sshPort + 1 });
    expect(err.kind).toBe("connect");
    expect(err.message).toMatch(
      new RegExp(`^ssh root@127\\.0\\.0\\.1:${host.sshPort + 1}: cannot connect: `),
    );
  });
});
