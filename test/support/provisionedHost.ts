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
import { baseRootfs, NetnsTestHost } from "./netnsHost";
import {
  baseImage,
  chooseTestHost,
  dockerProblem,
  SshHostOptions,
  SshTestHost,
  startSshHost,
} from "./sshHost";

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
 *
 * On a netns host (netnsHost.ts) the snapshot is a directory under $MODEL_SERVING_CACHE/netns/ below
 * each new host's own upper dir: where the Docker engine answers, the Docker snapshot above, exported
 * once (`docker export`: the same base rootfs and provisioning, ~15 s instead of a second 2-3 min
 * provisioning); where it does not (or with MODEL_SERVING_NETNS_SNAPSHOT=provision), the overlay
 * upper dir of a netns host provisioned the same way, keyed by the base rootfs and the script's hash,
 * mounted as a layer above the base rootfs.
 */
export async function startProvisionedSshHost(
  options: SshHostOptions & { postgresql?: boolean } = {},
): Promise<SshTestHost> {
  const { postgresql = false, ...hostOptions } = options;
  if (chooseTestHost().kind === "netns") {
    const fromDocker =
      process.env.MODEL_SERVING_NETNS_SNAPSHOT !== "provision" && dockerProblem() === undefined;
    return startSshHost(
      fromDocker
        ? { ...hostOptions, rootfs: await imageRootfs(await provisionedImage(postgresql)) }
        : { ...hostOptions, layer: await provisionedLayer(postgresql) },
    );
  }
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

/** One maker of a snapshot at a time across processes (sibling suites, worktrees). */
async function lockSnapshots(what: string): Promise<() => Promise<void>> {
  const lockDir = path.join(cacheDir, "locks");
  fs.mkdirSync(lockDir, { recursive: true });
  const lockTarget = path.join(lockDir, what);
  fs.writeFileSync(lockTarget, "", { flag: "a" });
  return lockfile.lock(lockTarget, {
    stale: 60_000,
    retries: { retries: 1200, minTimeout: 500, maxTimeout: 1000 },
  });
}

/**
 * The Docker snapshot `tag` as the lower layers of a netns host: with the overlay2 storage driver the
 * image's own layer dirs in the engine's data root, read-only, as they are (no copy); else the image
 * exported once into a directory.
 */
async function imageRootfs(tag: string): Promise<string> {
  const data = JSON.parse(
    await docker(["image", "inspect", "--format", "{{json .GraphDriver}}", tag]),
  ) as { Name?: string; Data?: { UpperDir?: string; LowerDir?: string } };
  const layers = [data.Data?.UpperDir, ...(data.Data?.LowerDir ?? "").split(":")].filter(
    (d): d is string => d !== undefined && d !== "",
  );
  if (data.Name === "overlay2" && layers.length > 0 && layers.every((d) => fs.existsSync(d))) {
    return layers.join(":");
  }
  return exportedImage(tag);
}

/** The Docker snapshot `tag` as a root directory for netns hosts, exported once. */
async function exportedImage(tag: string): Promise<string> {
  const dir = path.join(cacheDir, "netns");
  const rootfs = path.join(dir, `exported-${tag.replace(/[/:]/g, "_")}`);
  const release = await lockSnapshots("netns-provisioned");
  try {
    if (fs.existsSync(rootfs)) {
      return rootfs;
    }
    const started = Date.now();
    fs.mkdirSync(dir, { recursive: true });
    const tmp = fs.mkdtempSync(`${rootfs}.tmp-`);
    const id = await docker(["create", tag, "true"]);
    try {
      const env = { ...process.env, ...dockerEnv() };
      await run(
        "sh",
        ["-c", `"$0" export "$1" | tar -x -C "$2" --numeric-owner`, dockerCli(), id, tmp],
        { env },
      );
    } finally {
      await docker(["rm", id]).catch(() => undefined);
    }
    fs.renameSync(tmp, rootfs);
    // Exports of an earlier snapshot of the same kind are dead weight.
    const pg = (n: string) => n.includes("_pg-");
    for (const other of fs.readdirSync(dir)) {
      const stale = other.startsWith("exported-") && !other.includes(".tmp-");
      if (stale && pg(other) === pg(path.basename(rootfs)) && path.join(dir, other) !== rootfs) {
        fs.rmSync(path.join(dir, other), { recursive: true, force: true });
      }
    }
    process.stderr.write(
      `ssh test host: exported the provisioned snapshot ${tag} to ${rootfs} in ${Date.now() - started} ms\n`,
    );
    return rootfs;
  } finally {
    await release();
  }
}

/** The netns snapshot: a provisioned host's upper dir, made once per rootfs and script. */
async function provisionedLayer(postgresql: boolean): Promise<string> {
  const rootfs = baseRootfs();
  const args = snapshotProvisioning(postgresql);
  const key = crypto
    .createHash("sha256")
    .update(`${path.basename(rootfs)}\n${renderProvisioning(args).hash}\n`)
    .digest("hex")
    .slice(0, 12);
  const dir = path.join(cacheDir, "netns");
  const prefix = `provisioned-${postgresql ? "pg-" : ""}`;
  const layer = path.join(dir, `${prefix}${key}`);
  const release = await lockSnapshots("netns-provisioned");
  try {
    if (fs.existsSync(layer)) {
      process.stderr.write(`ssh test host: provisioned snapshot ${layer}\n`);
      return layer;
    }
    const started = Date.now();
    const host = (await startSshHost({})) as NetnsTestHost;
    try {
      await provisionHost(host.sudoUser, args);
      await host.inspect(
        "rm -f /etc/ssh/ssh_host_* /root/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys",
      );
      await host.commit(layer);
    } finally {
      await host.stop();
    }
    // Layers of an earlier profile or rootfs are dead weight.
    for (const other of fs.readdirSync(dir)) {
      const pgOnly = other.startsWith("provisioned-pg-");
      if (other.startsWith(prefix) && pgOnly === postgresql && path.join(dir, other) !== layer) {
        fs.rmSync(path.join(dir, other), { recursive: true, force: true });
      }
    }
    process.stderr.write(
      `ssh test host: made the provisioned snapshot ${layer} in ${Date.now() - started} ms\n`,
    );
    return layer;
  } finally {
    await release();
  }
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
  const release = await lockSnapshots("sshhost-provisioned");
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
