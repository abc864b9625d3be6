import { ChildProcess, execFile, execFileSync, spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { SshConnection } from "../../providers/ssh";
import { dockerCli, dockerSocket } from "../replay/dockerEnv";
import { repoRoot, tempDir } from "./env";
import type { SshHostOptions, SshTestHost } from "./sshHost";

const run = promisify(execFile);

/**
 * The netns test host, the fallback where no Docker engine starts: the same host as the container of
 * sshHost.ts, made with the kernel's namespaces directly (needs root). Per host:
 * - network: `ip netns add ms-netns-<id>` with its own loopback, and a veth pair with a /30 from
 *   10.213.0.0/16 (NAT'd out, for apt and pip) that the tests never address: they reach the host only
 *   on 127.0.0.1 ports of this machine, forwarded 1:1 into the namespace's own 127.0.0.1 by
 *   netns_forward.py (sshd and every `ports` entry, all from 18000-18999);
 * - filesystem: an overlay whose lower layer is the cached debootstrap rootfs the Docker image is
 *   imported from (`scripts/sshhost-image.sh rootfs`, below a provisioned layer when `layer` is
 *   set), one upper dir per host, removed on stop; the CA file, the keys (read-only) and, with
 *   `dockerEngine`, the private engine's socket and CLI are bind-mounted in;
 * - processes: `unshare --pid --mount --uts --ipc --fork`, own /proc, /dev, hostname `sshhost`, then
 *   chroot and a clean environment; sshd is pid 1 (it reaps orphans, as the container's init does),
 *   so process and port assertions see only this host's processes.
 * `inspect` is nsenter into those namespaces as root (real root: unlike the container's, it has every
 * capability, CAP_SYS_PTRACE included). A host whose test process died (killed run) is removed by the
 * next host's start, from its record in /run/model-serving-netns-hosts.
 */
export interface NetnsTestHost extends SshTestHost {
  kind: "netns";
  /** The host's root as this machine sees it (the overlay mount point), and its veth's name here. */
  rootDir: string;
  vethName: string;
  /** Stops the host and keeps its upper dir at `dest`: a layer for later hosts (`layer`). */
  commit(dest: string): Promise<void>;
}

const IMAGE_SCRIPT = path.join(repoRoot, "scripts", "sshhost-image.sh");
const FORWARDER = path.join(__dirname, "netns_forward.py");
const PATH_IN_HOST = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Why a netns host cannot be made here (undefined: it can). */
export function netnsProblem(): string | undefined {
  if (process.getuid?.() !== 0) {
    return "the netns test host needs root (ip netns, mount, unshare)";
  }
  for (const tool of ["ip", "unshare", "nsenter", "iptables", "mount"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "pipe" });
    } catch {
      return `the netns test host needs \`${tool}\`, which is not installed`;
    }
  }
  if (!fs.existsSync(pythonBin())) {
    return `the netns test host's port forwarder needs ${pythonBin()}`;
  }
  if (!fs.readFileSync("/proc/filesystems", "utf8").includes("overlay")) {
    return "the netns test host needs overlayfs (not in /proc/filesystems)";
  }
  if (!fs.existsSync(process.env.SSL_CERT_FILE ?? "/etc/ssl/certs/ca-certificates.crt")) {
    return "no CA file to hand to the test host (SSL_CERT_FILE)";
  }
  return undefined;
}

function pythonBin(): string {
  return fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

/** The cached debootstrap rootfs (scripts/sshhost-image.sh rootfs), made on first use. */
export function baseRootfs(): string {
  return execFileSync("bash", [IMAGE_SCRIPT, "rootfs"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  })
    .trim()
    .split("\n")
    .pop() as string;
}

async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { maxBuffer: 64 << 20 });
  return stdout;
}

/** The /30 of host `index` (0-999, the sshd port's offset in 18000-18999): outer .1, inner .2. */
function subnet(index: number): { outer: string; inner: string; net: string } {
  const base = index * 4;
  const prefix = `10.213.${base >> 8}`;
  const last = base & 255;
  return {
    net: `${prefix}.${last}/30`,
    outer: `${prefix}.${last + 1}`,
    inner: `${prefix}.${last + 2}`,
  };
}

/** Runs in the new namespaces before the chroot: the host's own /proc, /dev, hostname and mounts. */
function mountScript(root: string, keys: string, caFile: string, dockerEngine: boolean): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const r = (p: string) => q(path.join(root, p));
  const lines = [
    "set -e",
    `mount -t proc proc ${r("proc")}`,
    `mount -t tmpfs -o mode=0755,size=16m,nosuid dev ${r("dev")}`,
    ...[
      ["null", 1, 3],
      ["zero", 1, 5],
      ["full", 1, 7],
      ["random", 1, 8],
      ["urandom", 1, 9],
      ["tty", 5, 0],
    ].map(([n, major, minor]) => `mknod -m 0666 ${r(`dev/${n}`)} c ${major} ${minor}`),
    `mkdir -p ${r("dev/pts")} ${r("dev/shm")}`,
    `mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts ${r("dev/pts")}`,
    `ln -s pts/ptmx ${r("dev/ptmx")}`,
    `ln -s /proc/self/fd ${r("dev/fd")}`,
    `mount -t tmpfs -o mode=1777,nosuid,nodev shm ${r("dev/shm")}`,
    `mount --rbind /sys ${r("sys")}`,
    `mount --bind ${q(keys)} ${r("keys")} && mount -o remount,bind,ro ${r("keys")}`,
    `mount --bind ${q(caFile)} ${r("etc/ssl/certs/ca-certificates.crt")}`,
    `mount -o remount,bind,ro ${r("etc/ssl/certs/ca-certificates.crt")}`,
    ...(dockerEngine
      ? [
          `mount --bind ${q(dockerSocket())} ${r("run/docker.sock")}`,
          `mount --bind ${q(dockerCli())} ${r("usr/local/bin/docker")}`,
        ]
      : []),
    "hostname sshhost",
  ];
  return lines.join("\n");
}

export async function startNetnsHost(
  sshPort: number,
  ports: number[],
  keysDir: string,
  mounted: string,
  keys: { host: string; root: string; deploy: string },
  setup: string,
  options: SshHostOptions,
): Promise<NetnsTestHost> {
  const id = crypto.randomBytes(4).toString("hex");
  const name = `ms-netns-${id}`;
  const outerIf = `msn${id}`;
  const innerIf = `msp${id}`;
  const net = subnet(sshPort - 18000);
  const caFile = process.env.SSL_CERT_FILE ?? "/etc/ssl/certs/ca-certificates.crt";
  const dir = tempDir("netnshost");
  const [upper, work, root] = ["upper", "work", "root"].map((d) => path.join(dir, d));
  const logFile = path.join(dir, "host.log");
  const nat = ["-s", net.net, "!", "-o", outerIf, "-j", "MASQUERADE"];
  const fwdOut = ["-i", outerIf, "-j", "ACCEPT"];
  const fwdIn = [
    "-o",
    outerIf,
    "-m",
    "conntrack",
    "--ctstate",
    "RELATED,ESTABLISHED",
    "-j",
    "ACCEPT",
  ];
  let forwarder: ChildProcess | undefined;
  const record: HostRecord = {
    name,
    owner: process.pid,
    dir,
    keysDir,
    veth: outerIf,
    net: net.net,
  };
  const stopProcesses = () => stopHostProcesses(record);
  const removeRest = () => removeHostRest(record);
  const stop = async () => {
    await stopProcesses();
    await removeRest();
  };
  await reapStaleHosts();

  try {
    // Network: own loopback, a veth out (NAT) for the host's own downloads.
    saveRecord(record);
    await sh("ip", ["netns", "add", name]);
    await sh("ip", ["-n", name, "link", "set", "lo", "up"]);
    await sh("ip", ["link", "add", outerIf, "type", "veth", "peer", "name", innerIf]);
    await sh("ip", ["link", "set", innerIf, "netns", name]);
    await sh("ip", ["addr", "add", `${net.outer}/30`, "dev", outerIf]);
    await sh("ip", ["link", "set", outerIf, "up"]);
    await sh("ip", ["-n", name, "addr", "add", `${net.inner}/30`, "dev", innerIf]);
    await sh("ip", ["-n", name, "link", "set", innerIf, "up"]);
    await sh("ip", ["-n", name, "route", "add", "default", "via", net.outer]);
    if (fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim() !== "1") {
      fs.writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    }
    await sh("iptables", ["-t", "nat", "-A", "POSTROUTING", ...nat]);
    await sh("iptables", ["-I", "FORWARD", "1", ...fwdOut]);
    await sh("iptables", ["-I", "FORWARD", "1", ...fwdIn]);

    // Filesystem: the cached rootfs (and a provisioned layer) below this host's own upper dir.
    for (const d of [upper, work, root]) {
      fs.mkdirSync(d);
    }
    const lower = [options.layer, options.rootfs ?? baseRootfs()]
      .filter((l) => l !== undefined)
      .join(":");
    await sh("mount", [
      "-t",
      "overlay",
      "overlay",
      "-o",
      `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
      root,
    ]);
    record.mounted = root;
    saveRecord(record);
    fs.mkdirSync(path.join(root, "keys"), { recursive: true });
    fs.copyFileSync("/etc/resolv.conf", path.join(root, "etc/resolv.conf"));
    fs.writeFileSync(
      path.join(root, "etc/hosts"),
      "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tsshhost\n",
    );
    if (options.dockerEngine) {
      fs.writeFileSync(path.join(root, "run/docker.sock"), "");
      fs.mkdirSync(path.join(root, "usr/local/bin"), { recursive: true });
      fs.writeFileSync(path.join(root, "usr/local/bin/docker"), "");
    }

    // Processes: new pid/mount/uts/ipc namespaces in the network namespace, sshd as their pid 1.
    const log = fs.openSync(logFile, "a");
    const inner = [
      mountScript(root, mounted, caFile, options.dockerEngine ?? false),
      `exec chroot '${root}' /usr/bin/env -i PATH=${PATH_IN_HOST} HOME=/root /bin/sh -c "$0"`,
    ].join("\n");
    const launcher = spawn(
      "ip",
      [
        "netns",
        "exec",
        name,
        "unshare",
        "--pid",
        "--mount",
        "--uts",
        "--ipc",
        "--fork",
        "--propagation",
        "private",
        "sh",
        "-c",
        inner,
        setup,
      ],
      { detached: true, stdio: ["ignore", log, log], env: { PATH: process.env.PATH ?? "" } },
    );
    launcher.unref();
    forwarder = spawn(
      pythonBin(),
      [FORWARDER, `/run/netns/${name}`, ...[sshPort, ...ports].map(String)],
      {
        detached: true,
        stdio: ["ignore", "pipe", log],
      },
    );
    fs.closeSync(log);
    await forwarderReady(forwarder);
    forwarder.unref();
    (forwarder.stdout as NodeJS.ReadableStream & { unref?: () => void }).unref?.();
    record.forwarder = forwarder.pid;
    record.pid1 = await namespaceInit(launcher.pid as number);
    saveRecord(record);
  } catch (err) {
    const logs = readTail(logFile);
    await stop().catch(() => undefined);
    throw new Error(`netnsHost: ${name} did not start: ${String(err)}\n${logs}`);
  }

  const conn = (user: string, privateKey: string): SshConnection => ({
    host: "127.0.0.1",
    port: sshPort,
    user,
    privateKey,
    hostKey: keys.host,
  });
  return {
    kind: "netns",
    name,
    rootDir: root,
    vethName: outerIf,
    address: "127.0.0.1",
    sshPort,
    ports,
    hostKey: keys.host,
    root: conn("root", keys.root),
    sudoUser: conn("deploy", keys.deploy),
    async inspect(script) {
      const pid1 = record.pid1;
      if (pid1 === undefined) {
        return { code: 1, stdout: "", stderr: `${name} is stopped` };
      }
      const args = ["-t", String(pid1), "-m", "-u", "-i", "-n", "-p", "-r", "-w"];
      try {
        const { stdout, stderr } = await run(
          "nsenter",
          [...args, "/usr/bin/env", "-i", `PATH=${PATH_IN_HOST}`, "HOME=/root", "sh", "-c", script],
          { maxBuffer: 64 << 20 },
        );
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: e.code ?? 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
      }
    },
    logs: async () => readTail(logFile),
    stop,
    async commit(dest) {
      await stopProcesses();
      fs.rmSync(dest, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.renameSync(upper, dest);
      await removeRest();
    },
  };
}

/** What stop needs to remove a host, kept in RECORDS so a host whose test process died is removed
 * by the next host's start (jest gives no exit hook; a killed run would leave mounts and rules). */
interface HostRecord {
  name: string;
  /** The test process that made the host. */
  owner: number;
  dir: string;
  keysDir: string;
  veth: string;
  net: string;
  mounted?: string;
  forwarder?: number;
  pid1?: number;
}

const RECORDS = "/run/model-serving-netns-hosts";

function saveRecord(record: HostRecord): void {
  fs.mkdirSync(RECORDS, { recursive: true });
  fs.writeFileSync(path.join(RECORDS, `${record.name}.json`), JSON.stringify(record));
}

function rules(record: HostRecord): string[][] {
  return [
    [
      "-t",
      "nat",
      "-D",
      "POSTROUTING",
      "-s",
      record.net,
      "!",
      "-o",
      record.veth,
      "-j",
      "MASQUERADE",
    ],
    ["-D", "FORWARD", "-i", record.veth, "-j", "ACCEPT"],
    [
      "-D",
      "FORWARD",
      "-o",
      record.veth,
      "-m",
      "conntrack",
      "--ctstate",
      "RELATED,ESTABLISHED",
      "-j",
      "ACCEPT",
    ],
  ];
}

/** Whether `pid` is still the process the record names (not a reused pid). */
function isOurs(pid: number, record: HostRecord, what: "forwarder" | "init"): boolean {
  try {
    if (what === "forwarder") {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      return cmdline.includes("netns_forward.py") && cmdline.includes(record.name);
    }
    return fs.statSync(`/proc/${pid}/ns/net`).ino === fs.statSync(`/run/netns/${record.name}`).ino;
  } catch {
    return false;
  }
}

async function stopHostProcesses(record: HostRecord): Promise<void> {
  if (record.forwarder !== undefined && isOurs(record.forwarder, record, "forwarder")) {
    process.kill(record.forwarder, "SIGKILL");
  }
  const pid1 = record.pid1;
  if (pid1 !== undefined && isOurs(pid1, record, "init")) {
    // SIGKILL to a pid namespace's init ends every process of the namespace.
    try {
      process.kill(pid1, "SIGKILL");
    } catch {
      // gone already
    }
    for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid1}`); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  record.forwarder = undefined;
  record.pid1 = undefined;
  if (record.mounted !== undefined) {
    const root = record.mounted;
    await sh("umount", [root]).catch(() => sh("umount", ["--lazy", root]).catch(() => undefined));
    record.mounted = undefined;
  }
}

async function removeHostRest(record: HostRecord): Promise<void> {
  for (const rule of rules(record)) {
    await sh("iptables", rule).catch(() => undefined);
  }
  await sh("ip", ["link", "del", record.veth]).catch(() => undefined);
  await sh("ip", ["netns", "del", record.name]).catch(() => undefined);
  fs.rmSync(record.dir, { recursive: true, force: true });
  fs.rmSync(record.keysDir, { recursive: true, force: true });
  fs.rmSync(path.join(RECORDS, `${record.name}.json`), { force: true });
}

/** Removes the hosts whose test process is gone. */
async function reapStaleHosts(): Promise<void> {
  const files = fs.existsSync(RECORDS) ? fs.readdirSync(RECORDS) : [];
  for (const file of files.filter((f) => /^ms-netns-[0-9a-f]{8}\.json$/.test(f))) {
    let record: HostRecord;
    try {
      record = JSON.parse(fs.readFileSync(path.join(RECORDS, file), "utf8")) as HostRecord;
    } catch {
      continue;
    }
    if (fs.existsSync(`/proc/${record.owner}`)) {
      continue;
    }
    process.stderr.write(
      `ssh test host: removing ${record.name}, left by process ${record.owner}\n`,
    );
    await stopHostProcesses(record);
    await removeHostRest(record);
  }
}

function readTail(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-20).join("\n");
  } catch {
    return "";
  }
}

/** Resolves on the forwarder's "ready" line (its errors go to the host's log). */
function forwarderReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("port forwarder not ready in 15 s")), 15_000);
    child.stdout?.on("data", (d) => {
      out += d.toString();
      if (out.includes("ready\n")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`port forwarder exited (${code})`));
    });
  });
}

/** The host pid of the namespace's init: the child unshare forks. */
async function namespaceInit(unsharePid: number): Promise<number> {
  const file = `/proc/${unsharePid}/task/${unsharePid}/children`;
  for (let i = 0; i < 200; i++) {
    const children = fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : "";
    if (children !== "") {
      return Number(children.split(/\s+/)[0]);
    }
    if (!fs.existsSync(`/proc/${unsharePid}`)) {
      throw new Error("unshare exited before its child started");
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("unshare started no child within 10 s");
}
