import { loadProfile } from "../../../config/provisioningProfile";
import { provisionHost } from "../../../providers/remote/provision";
import { DEFAULT_LAYOUT, renderProvisioning } from "../../../providers/remote/provisionScript";
import { SshError } from "../../../providers/ssh";
import { missingSshHost, SshTestHost, startSshHost } from "../../support/sshHost";

/**
 * Provisioning the test host from scratch over SSH with the default profile, as root and as a sudo user,
 * then again (the fast path: nothing changes), then with a changed profile (it re-runs). Timings are
 * printed: first = a new host (every package downloaded), again = the fast path.
 */
const skip = missingSshHost();
const describeSsh = skip ? describe.skip : describe;
const profile = loadProfile("default");

/** A fingerprint of what provisioning made: venv packages, stamp, user, files' mtimes. */
async function snapshot(host: SshTestHost): Promise<string> {
  const r = await host.inspect(
    [
      "cd /opt/model-serving",
      "stat -c '%n %U %a %Y' . venv venv/bin/python requirements.txt provisioned.sha256 /var/lib/model-serving/mlflow",
      "id mlflow",
      "runuser -u mlflow -- venv/bin/python -m pip freeze | sha256sum",
      "ls -la --time-style=+%s venv/lib/python3.11/site-packages | sha256sum",
    ].join(" && "),
  );
  expect(r.stderr).toBe("");
  return r.stdout;
}

describeSsh.each([
  ["root", (h: SshTestHost) => h.root],
  ["a sudo user", (h: SshTestHost) => h.sudoUser],
])("provisioning the test host as %s", (_who, connOf) => {
  let host: SshTestHost;
  beforeAll(async () => {
    host = await startSshHost();
  }, 120_000);
  afterAll(async () => host?.stop(), 60_000);

  test(
    "from scratch, then again: the second run changes nothing",
    async () => {
      const conn = connOf(host);
      const expected = renderProvisioning({ profile, layout: DEFAULT_LAYOUT }).hash;
      let t = Date.now();
      const first = await provisionHost(conn, { profile, layout: DEFAULT_LAYOUT });
      const cold = Date.now() - t;
      expect(first).toEqual({ changed: true, hash: expected, log: expect.any(Array) });
      expect(first.log).toContain("provision: pip install (2 requirements)");
      const mlflow = await host.inspect(
        "runuser -u mlflow -- /opt/model-serving/venv/bin/mlflow --version",
      );
      expect(mlflow.stdout).toContain("3.17.2");
      const owner = await host.inspect(
        "stat -c '%U' /opt/model-serving/venv /opt/model-serving/venv/bin/python3 && cat /opt/model-serving/provisioned.sha256",
      );
      expect(owner.stdout).toBe(`mlflow\nmlflow\n${expected}\n`);
      const before = await snapshot(host);

      t = Date.now();
      const second = await provisionHost(conn, { profile, layout: DEFAULT_LAYOUT });
      const warm = Date.now() - t;
      expect(second).toEqual({
        changed: false,
        hash: expected,
        log: [`provision: up to date ${expected}`],
      });
      expect(await snapshot(host)).toBe(before);
      process.stderr.write(`provisioning as ${conn.user} : first ${cold} ms, again ${warm} ms\n`);
      expect(warm).toBeLessThan(5000);
    },
    20 * 60_000,
  );

  test(
    "a changed profile re-runs (an extra pip package), recorded with its new hash",
    async () => {
      const conn = connOf(host);
      const args = { profile, layout: DEFAULT_LAYOUT, extraPip: ["six==1.17.0"], extraApt: ["jq"] };
      const result = await provisionHost(conn, args);
      expect(result).toEqual({
        changed: true,
        hash: renderProvisioning(args).hash,
        log: expect.any(Array),
      });
      expect(result.log).toContain("provision: apt-get install jq");
      const r = await host.inspect(
        "runuser -u mlflow -- /opt/model-serving/venv/bin/python -c 'import six; print(six.__version__)' && command -v jq",
      );
      expect(r.stdout).toBe("1.17.0\n/usr/bin/jq\n");
      expect((await provisionHost(conn, args)).changed).toBe(false);
    },
    10 * 60_000,
  );

  test("a host key mismatch or a bad key is refused with a clear error", async () => {
    const conn = connOf(host);
    const other = "SHA256:" + "A".repeat(43);
    const presented = await hostFp(host);
    await expect(
      provisionHost({ ...conn, hostKey: other }, { profile, layout: DEFAULT_LAYOUT }),
    ).rejects.toThrow(
      new SshError(
        `ssh ${conn.user}@127.0.0.1:${host.sshPort}: host key mismatch: the server presented ${presented}, the pinned key is ${other}; refusing to connect (update hostKey only if you know why it changed)`,
        "host-key",
      ),
    );
    await expect(
      provisionHost({ ...conn, privateKey: "not a key" }, { profile, layout: DEFAULT_LAYOUT }),
    ).rejects.toThrow(
      `ssh ${conn.user}@127.0.0.1:${host.sshPort}: the private key cannot be used: `,
    );
  });

  test("an OS the profile does not list is refused with the host's ID", async () => {
    const conn = connOf(host);
    const args = { profile: { ...profile, os: ["ubuntu:18.04"] }, layout: DEFAULT_LAYOUT };
    await expect(provisionHost(conn, args)).rejects.toThrow(
      `ssh ${conn.user}@127.0.0.1:${host.sshPort}: provisioning (profile default) failed (exit 3):\nprovision: profile default supports ubuntu:18.04; this host is debian:12`,
    );
  });
});

async function hostFp(host: SshTestHost): Promise<string> {
  const r = await host.inspect("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key | cut -d' ' -f2");
  return r.stdout.trim();
}
