import { loadProfile } from "../../../config/provisioningProfile";
import { provisionHost, ProvisionResult } from "../../../providers/remote/provision";
import { DEFAULT_LAYOUT, renderProvisioning } from "../../../providers/remote/provisionScript";
import { SshError } from "../../../providers/ssh";
import { missingSshHost, SshTestHost, startSshHost } from "../../support/sshHost";

/**
 * Provisioning the test host from scratch over SSH with the default profile, as root and as a sudo user,
 * then again (the fast path: nothing changes), then with a changed profile (it re-runs). Timings are
 * printed: first = a new host (every package downloaded; the two hosts provision at the same time),
 * again = the fast path.
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

type Who = "root" | "a sudo user";
const connOf = (who: Who, h: SshTestHost) => (who === "root" ? h.root : h.sudoUser);

/** The two new hosts, provisioned from scratch at the same time (pip's downloads and installs overlap). */
const fresh = new Map<
  Who,
  { host: SshTestHost; first: Promise<ProvisionResult>; coldMs: Promise<number> }
>();

describeSsh("provisioning the test host", () => {
  beforeAll(async () => {
    for (const who of ["root", "a sudo user"] as const) {
      const host = await startSshHost();
      const t = Date.now();
      const first = provisionHost(connOf(who, host), { profile, layout: DEFAULT_LAYOUT });
      const coldMs = first.then(() => Date.now() - t);
      // Both are awaited by the host's own test; a failure is reported there, not as unhandled.
      first.catch(() => undefined);
      coldMs.catch(() => undefined);
      fresh.set(who, { host, first, coldMs });
    }
  }, 120_000);
  afterAll(async () => {
    await Promise.all(
      [...fresh.values()].map(({ host, first }) =>
        first.catch(() => undefined).then(() => host.stop()),
      ),
    );
  }, 20 * 60_000);

  describe.each(["root", "a sudo user"] as const)("as %s", (who) => {
    let host: SshTestHost;
    beforeAll(() => {
      host = (fresh.get(who) as { host: SshTestHost }).host;
    });

    test(
      "from scratch, then again: the second run changes nothing",
      async () => {
        const conn = connOf(who, host);
        const expected = renderProvisioning({ profile, layout: DEFAULT_LAYOUT }).hash;
        const { first: started, coldMs } = fresh.get(who) as {
          first: Promise<ProvisionResult>;
          coldMs: Promise<number>;
        };
        const first = await started;
        const cold = await coldMs;
        let t = Date.now();
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
        const conn = connOf(who, host);
        const args = {
          profile,
          layout: DEFAULT_LAYOUT,
          extraPip: ["six==1.17.0"],
          extraApt: ["jq"],
        };
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
      const conn = connOf(who, host);
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
      const conn = connOf(who, host);
      const args = { profile: { ...profile, os: ["ubuntu:18.04"] }, layout: DEFAULT_LAYOUT };
      await expect(provisionHost(conn, args)).rejects.toThrow(
        `ssh ${conn.user}@127.0.0.1:${host.sshPort}: provisioning (profile default) failed (exit 3):\nprovision: profile default supports ubuntu:18.04; this host is debian:12`,
      );
    });
  });
});

async function hostFp(host: SshTestHost): Promise<string> {
  const r = await host.inspect("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key | cut -d' ' -f2");
  return r.stdout.trim();
}
