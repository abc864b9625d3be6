import { execFile } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as lockfile from "proper-lockfile";
import { promisify } from "util";
import { loadProfile } from "../../config/provisioningProfile";
import { provisionHost } from "../../providers/remote/provision";
import { DEFAULT_LAYOUT, renderProvisioning } from "../../providers/remote/provisionScript";
import { dockerCli, dockerEnv } from "../replay/dockerEnv";
import { cacheDir } from "./env";
import { baseImage, SshHostOptions, SshTestHost, startSshHost } from "./sshHost";

const run = promisify(execFile);
const REPO = "model-serving/sshhost-provisioned";

/**
 * A test host that is already provisioned with the default profile (and, with `postgresql`, its
 * PostgreSQL packages), for the suites that test what runs on a provisioned host (the remote MLflow
 * server, deploy mode remote) and not the provisioning itself. Provisioning a new host is ~2-3 min of
 * pip and apt work; those suites start from a snapshot instead: the first one provisions a base host
 * over SSH with the real provisioning code and `docker commit`s it, keyed by the base image and the
 * rendered provisioning script's hash, so a changed profile or script makes a new snapshot. The snapshot
 * holds no key: host and user keys are generated and mounted per run, and the first host's are removed
 * before the commit. test/integration/remote/provision.test.ts and the engine's remote stack still
 * provision fresh hosts from scratch.
 */
export async function startProvisionedSshHost(
  options: SshHostOptions & { postgresql?: boolean } = {},
): Promise<SshTestHost> {
  const { postgresql = false, ...hostOptions } = options;
  const image = await provisionedImage(postgresql);
  return startSshHost({ ...hostOptions, image });
}

/** What a suite passes to provisionHost on such a host: the arguments the snapshot was made with. */
export function snapshotProvisioning(postgresql: boolean) {
  return { profile: loadProfile("default"), layout: DEFAULT_LAYOUT, postgresql };
}

async function docker(args: string[]): Promise<string> {
  const { stdout } = await run(dockerCli(), args, {
    env: { ...process.env, ...dockerEnv() },
    maxBuffer: 64 << 20,
  });
  return stdout.trim();
}

async function provisionedImage(postgresql: boolean): Promise<string> {
  const base = baseImage();
  const baseId = await docker(["image", "inspect", "--format", "{{.Id}}", base]);
  const args = snapshotProvisioning(postgresql);
  const scriptHash = renderProvisioning(args).hash;
  const key = crypto
    .createHash("sha256")
    .update(`${baseId}\n${scriptHash}\n`)
    .digest("hex")
    .slice(0, 12);
  const tag = `${REPO}:${postgresql ? "pg-" : ""}${key}`;
  // One maker at a time across processes (sibling suites, worktrees); the others wait and reuse it.
  const lockDir = path.join(cacheDir, "locks");
  fs.mkdirSync(lockDir, { recursive: true });
  const lockTarget = path.join(lockDir, "sshhost-provisioned");
  fs.writeFileSync(lockTarget, "", { flag: "a" });
  const release = await lockfile.lock(lockTarget, {
    stale: 60_000,
    retries: { retries: 1200, minTimeout: 500, maxTimeout: 1000 },
  });
  try {
    if (await exists(tag)) {
      process.stderr.write(`ssh test host: provisioned snapshot ${tag}\n`);
      return tag;
    }
    const started = Date.now();
    const host = await startSshHost({ image: base });
    try {
      await provisionHost(host.sudoUser, args);
      // Nothing of this run's keys goes into the snapshot.
      await docker([
        "exec",
        host.name,
        "sh",
        "-c",
        "rm -f /etc/ssh/ssh_host_* /root/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys",
      ]);
      await docker(["commit", "--pause", host.name, tag]);
    } finally {
      await host.stop();
    }
    await pruneOthers(tag, postgresql);
    process.stderr.write(
      `ssh test host: made the provisioned snapshot ${tag} in ${Date.now() - started} ms\n`,
    );
    return tag;
  } finally {
    await release();
  }
}

async function exists(tag: string): Promise<boolean> {
  return docker(["image", "inspect", "--format", "{{.Id}}", tag]).then(
    () => true,
    () => false,
  );
}

/** Snapshots of an earlier profile or base are dead weight in the engine's data root. */
async function pruneOthers(keep: string, postgresql: boolean): Promise<void> {
  const prefix = `${REPO}:${postgresql ? "pg-" : ""}`;
  const tags = (await docker(["image", "ls", REPO, "--format", "{{.Repository}}:{{.Tag}}"]))
    .split("\n")
    .filter(
      (t) => t.startsWith(prefix) && t !== keep && (postgresql || !t.startsWith(`${REPO}:pg-`)),
    );
  for (const t of tags) {
    await docker(["image", "rm", t]).catch(() => undefined);
  }
}
