import { execFile, execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { promisify } from "util";
import { SshConnection } from "../../providers/ssh";
import { dockerCli, dockerEnv, dockerSocket } from "../replay/dockerEnv";
import { repoRoot, skipReason, tempDir, tryReservePort } from "./env";
import { netnsProblem, startNetnsHost } from "./netnsHost";

const run = promisify(execFile);

/**
 * The SSH test host: a second host with its own filesystem, process table and address, made by the
 * test setup, of one of two kinds (MODEL_SERVING_TEST_HOST=docker|netns|auto, default auto: docker,
 * and netns when the Docker engine cannot start). `docker`: a container (`ms-sshhost-<id>`) from the debootstrap image of scripts/sshhost-image.sh in
 * the private engine of scripts/dockerd.sh, running sshd with a host key and user keys generated for
 * this run. Two users log in: `root`, and `deploy`, a sudo user (NOPASSWD, the admin guide's setup).
 * sshd and `ports` are published 1:1 on 127.0.0.1 (a port the host serves on is the port the test
 * reaches), all from 18000-18999.
 *
 * The host trusts the deploying machine's CA file ($SSL_CERT_FILE, mounted read-only, never copied
 * into the image) so pip and apt reach their registries. No pip cache is mounted: on this machine pip's
 * HTTP cache stayed empty after a full install (it logs "Updating cache" but stores nothing, so the
 * responses are evidently not cacheable here), so every new host downloads its packages.
 */
export interface SshTestHost {
  kind: TestHostKind;
  name: string;
  /** The address the deploying side uses: 127.0.0.1. */
  address: string;
  sshPort: number;
  /** Extra ports, published 1:1. */
  ports: number[];
  /** The host's ed25519 public key line (what a stack pins). */
  hostKey: string;
  root: SshConnection;
  /** `deploy`, in sudoers with NOPASSWD. */
  sudoUser: SshConnection;
  /** Out-of-band inspection (docker exec as root), for assertions only, never for the code under test. */
  inspect(script: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The last lines of sshd's log (the container's output), for a failure message. */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

/** `netns`: test/support/netnsHost.ts, the same host made with ip netns, overlayfs and unshare. */
export type TestHostKind = "docker" | "netns";

const IMAGE_SCRIPT = path.join(repoRoot, "scripts", "sshhost-image.sh");
const PORT_MIN = 18000;
const PORT_MAX = 18999;

/** MODEL_SERVING_TEST_HOST: `docker`, `netns` or `auto` (unset: auto). */
export function requestedTestHost(env: NodeJS.ProcessEnv = process.env): TestHostKind | "auto" {
  const value = env.MODEL_SERVING_TEST_HOST ?? "auto";
  if (value !== "docker" && value !== "netns" && value !== "auto") {
    throw new Error(
      `MODEL_SERVING_TEST_HOST must be docker, netns or auto, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** A kind (with, for the auto fallback, why Docker was not used), or why none can be made. */
type TestHostChoice = { kind?: TestHostKind; why?: string; noDocker?: string };

let chosen: TestHostChoice | undefined;

/** The kind of host this test file uses (decided once per file), or why none can be made. */
export function chooseTestHost(): TestHostChoice {
  if (chosen === undefined) {
    chosen = pickTestHost(requestedTestHost(), { docker: dockerProblem, netns: netnsProblem });
    if (chosen.noDocker !== undefined) {
      process.stderr.write(`ssh test host: no Docker engine (${chosen.noDocker}), so netns\n`);
    }
  }
  return chosen;
}

/** The kind for `requested`, given what keeps each kind from being made here (undefined: nothing). */
export function pickTestHost(
  requested: TestHostKind | "auto",
  problem: Record<TestHostKind, () => string | undefined>,
): TestHostChoice {
  if (requested !== "auto") {
    const why = problem[requested]();
    return why === undefined ? { kind: requested } : { why };
  }
  const noDocker = problem.docker();
  if (noDocker === undefined) {
    return { kind: "docker" };
  }
  const noNetns = problem.netns();
  if (noNetns === undefined) {
    return { kind: "netns", noDocker };
  }
  return { why: `${noDocker}; and no netns fallback: ${noNetns}` };
}

/** Why the SSH host cannot be made here (undefined: it can), through skipReason, so under CI=true a
 * missing engine fails the suite. Prints the kind of host used. */
export function missingSshHost(): string | undefined {
  const { kind, why } = chooseTestHost();
  if (kind === "docker") {
    process.stderr.write("ssh test host: a Docker container (scripts/dockerd.sh engine)\n");
  } else if (kind === "netns") {
    process.stderr.write(
      "ssh test host: a network namespace (ip netns, overlay rootfs, own pid namespace)\n",
    );
  }
  return skipReason(why);
}

export function dockerProblem(): string | undefined {
  const socket = dockerSocket();
  if (!fs.existsSync(socket)) {
    return `no Docker engine socket at ${socket}: run \`bash scripts/dockerd.sh start\``;
  }
  try {
    execFileSync(dockerCli(), ["version"], {
      env: { ...process.env, ...dockerEnv() },
      stdio: "pipe",
      timeout: 15_000,
    });
  } catch (err) {
    return `the Docker engine at ${socket} does not answer (${String(err).split("\n")[0]})`;
  }
  if (!fs.existsSync(process.env.SSL_CERT_FILE ?? "/etc/ssl/certs/ca-certificates.crt")) {
    return "no CA file to hand to the test host (SSL_CERT_FILE)";
  }
  return undefined;
}

async function docker(args: string[]): Promise<string> {
  const env = { ...process.env, ...dockerEnv() };
  const { stdout } = await run(dockerCli(), args, { env, maxBuffer: 64 << 20 });
  return stdout;
}

/** `count` consecutive free ports in 18000-18999, each reserved in the tests' port lock dir. */
async function portBlock(count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const start = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN + 1 - count));
    const block = Array.from({ length: count }, (_, i) => start + i);
    const taken: number[] = [];
    let ok = true;
    for (const port of block) {
      if (!tryReservePort(port) || !(await bindable(port))) {
        ok = false;
        break;
      }
      taken.push(port);
    }
    if (ok) {
      return block;
    }
  }
  throw new Error(`sshHost: no ${count} consecutive free ports in ${PORT_MIN}-${PORT_MAX}`);
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen({ port, host: "127.0.0.1", exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function keygen(dir: string, name: string): { privateKey: string; publicKey: string } {
  const file = path.join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file]);
  return {
    privateKey: fs.readFileSync(file, "utf8"),
    publicKey: fs.readFileSync(`${file}.pub`, "utf8").trim(),
  };
}

/** What runs as the container's command: users, keys, sshd in the foreground. */
function setupScript(sshPort: number): string {
  return [
    "set -e",
    // Idempotent: a provisioned snapshot of an earlier host already has the user.
    "id deploy >/dev/null 2>&1 || useradd --create-home --shell /bin/bash deploy",
    "echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy && chmod 0440 /etc/sudoers.d/deploy",
    "install -d -m 0700 /root/.ssh && install -m 0600 /keys/root.pub /root/.ssh/authorized_keys",
    "install -d -m 0700 -o deploy -g deploy /home/deploy/.ssh",
    "install -m 0600 -o deploy -g deploy /keys/deploy.pub /home/deploy/.ssh/authorized_keys",
    "install -m 0600 /keys/host /etc/ssh/ssh_host_ed25519_key",
    // pip inside the host trusts the same CA file as everything else there (the mounted one).
    "printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > /etc/pip.conf",
    "mkdir -p /run/sshd",
    `exec /usr/sbin/sshd -D -e -p ${sshPort} -o PasswordAuthentication=no -o HostKey=/etc/ssh/ssh_host_ed25519_key`,
  ].join("\n");
}

export interface SshHostOptions {
  /** Extra ports published 1:1. */
  ports?: number;
  /**
   * Make it a Docker host for `ssh://` (what the Docker client's connection helper needs there: the
   * `docker` CLI for `docker system dial-stdio`, and an engine socket): the private engine's socket and
   * CLI are mounted in. The transport is real; the engine behind it is the same private engine, so a
   * container it publishes on 127.0.0.1 is reached on this machine's loopback.
   */
  dockerEngine?: boolean;
  /** docker: run this image instead of the base one, a provisioned snapshot (provisionedHost.ts). */
  image?: string;
  /** netns: this layer above the base rootfs, a provisioned snapshot (provisionedHost.ts). */
  layer?: string;
  /** netns: this root instead of the base rootfs (a Docker snapshot's layer dirs, `:`-separated). */
  rootfs?: string;
}

export async function startSshHost(options: SshHostOptions = {}): Promise<SshTestHost> {
  const { kind, why } = chooseTestHost();
  if (kind === undefined) {
    throw new Error(`sshHost: no test host can be made here: ${why}`);
  }
  const started = Date.now();
  const [sshPort, ...ports] = await portBlock(1 + (options.ports ?? 0));
  const keys = tempDir("sshhost-keys");
  const host = keygen(keys, "host");
  const root = keygen(keys, "root");
  const deploy = keygen(keys, "deploy");
  // What the host sees: its own host key and the users' public keys, no user private key.
  const mounted = path.join(keys, "mount");
  fs.mkdirSync(mounted);
  fs.copyFileSync(path.join(keys, "host"), path.join(mounted, "host"));
  fs.writeFileSync(path.join(mounted, "root.pub"), `${root.publicKey}\n`);
  fs.writeFileSync(path.join(mounted, "deploy.pub"), `${deploy.publicKey}\n`);
  const made =
    kind === "netns"
      ? await startNetnsHost(
          sshPort,
          ports,
          keys,
          mounted,
          { host: host.publicKey, root: root.privateKey, deploy: deploy.privateKey },
          setupScript(sshPort),
          options,
        )
      : await startContainer(sshPort, ports, keys, mounted, options, {
          host: host.publicKey,
          root: root.privateKey,
          deploy: deploy.privateKey,
        });
  try {
    await waitForBanner(sshPort, 30_000);
  } catch (err) {
    const logs = await made.logs().catch(() => "");
    await made.stop();
    throw new Error(`sshHost: ${made.name} did not start sshd: ${String(err)}\n${logs}`);
  }
  process.stderr.write(
    `ssh test host ${made.name} (${kind}) on 127.0.0.1:${sshPort} in ${Date.now() - started} ms\n`,
  );
  return made;
}

async function startContainer(
  sshPort: number,
  ports: number[],
  keys: string,
  mounted: string,
  options: SshHostOptions,
  key: { host: string; root: string; deploy: string },
): Promise<SshTestHost> {
  const image = options.image ?? baseImage();
  const name = `ms-sshhost-${crypto.randomBytes(4).toString("hex")}`;
  const caFile = process.env.SSL_CERT_FILE ?? "/etc/ssl/certs/ca-certificates.crt";
  const publish = [sshPort, ...ports].flatMap((p) => ["-p", `127.0.0.1:${p}:${p}`]);
  const stop = async () => {
    await docker(["rm", "--force", "--volumes", name]).catch(() => undefined);
    fs.rmSync(keys, { recursive: true, force: true });
  };
  try {
    await docker([
      "run",
      "--detach",
      "--init",
      "--name",
      name,
      "--hostname",
      "sshhost",
      "--label",
      "model-serving.test=sshhost",
      ...publish,
      "-v",
      `${mounted}:/keys:ro`,
      "-v",
      `${caFile}:/etc/ssl/certs/ca-certificates.crt:ro`,
      ...(options.dockerEngine
        ? [
            "-v",
            `${dockerSocket()}:/var/run/docker.sock`,
            "-v",
            `${dockerCli()}:/usr/local/bin/docker:ro`,
          ]
        : []),
      image,
      "sh",
      "-c",
      setupScript(sshPort),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  const conn = (user: string, privateKey: string): SshConnection => ({
    host: "127.0.0.1",
    port: sshPort,
    user,
    privateKey,
    hostKey: key.host,
  });
  return {
    kind: "docker",
    name,
    address: "127.0.0.1",
    sshPort,
    ports,
    hostKey: key.host,
    root: conn("root", key.root),
    sudoUser: conn("deploy", key.deploy),
    async inspect(script) {
      try {
        const { stdout, stderr } = await run(dockerCli(), ["exec", name, "sh", "-c", script], {
          env: { ...process.env, ...dockerEnv() },
        });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: e.code ?? 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
      }
    },
    async logs() {
      const env = { ...process.env, ...dockerEnv() };
      const { stdout, stderr } = await run(dockerCli(), ["logs", "--tail", "20", name], { env });
      return `${stdout}${stderr}`;
    },
    stop,
  };
}

/** The base image (scripts/sshhost-image.sh): debootstrapped and imported on first use, then cached. */
export function baseImage(): string {
  return execFileSync("bash", [IMAGE_SCRIPT, "image"], {
    env: { ...process.env, ...dockerEnv() },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  })
    .trim()
    .split("\n")
    .pop() as string;
}

/** Resolves once something on the port speaks SSH (the `SSH-2.0-` banner). */
async function waitForBanner(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const banner = await new Promise<string>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      let data = "";
      s.setTimeout(2000, () => s.destroy());
      s.on("data", (d) => {
        data += d.toString();
        s.destroy();
      });
      s.on("close", () => resolve(data));
      s.on("error", () => resolve(""));
    });
    if (banner.startsWith("SSH-2.0-")) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`no SSH banner on 127.0.0.1:${port} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
