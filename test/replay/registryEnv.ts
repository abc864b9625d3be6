import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";

/** Debian's `docker-registry` (the CNCF distribution registry), installed by scripts/dockerd.sh. */
const REGISTRY_BIN = "/usr/bin/docker-registry";

export interface TestRegistry {
  /** `127.0.0.1:<port>`: Docker treats loopback registries as insecure (plain HTTP) by default. */
  address: string;
  stop: () => Promise<void>;
}

export function registryMissingReason(): string | undefined {
  return fs.existsSync(REGISTRY_BIN)
    ? undefined
    : `${REGISTRY_BIN} is missing: run \`bash scripts/dockerd.sh start\` (npm test does; it installs Debian's docker-registry)`;
}

/** A registry on 127.0.0.1:`port` storing under `dir`, without auth; resolves once /v2/ answers. */
export async function startRegistry(port: number, dir: string): Promise<TestRegistry> {
  const config = path.join(dir, "config.yml");
  fs.mkdirSync(path.join(dir, "storage"), { recursive: true });
  fs.writeFileSync(
    config,
    [
      "version: 0.1",
      "log: { level: warn }",
      `storage: { filesystem: { rootdirectory: ${path.join(dir, "storage")} }, delete: { enabled: true } }`,
      `http: { addr: "127.0.0.1:${port}" }`,
      "",
    ].join("\n"),
  );
  const log = fs.openSync(path.join(dir, "registry.log"), "a");
  const child: ChildProcess = spawn(REGISTRY_BIN, ["serve", config], {
    stdio: ["ignore", log, log],
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`);
      if (res.status === 200) {
        break;
      }
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      const tail = fs.readFileSync(path.join(dir, "registry.log"), "utf8").slice(-2000);
      throw new Error(`the test registry on 127.0.0.1:${port} did not start:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    address: `127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        child.kill("SIGKILL");
      }
      fs.closeSync(log);
    },
  };
}

/** The registry's own answer for a manifest: status and Docker-Content-Digest. */
export async function registryManifest(
  address: string,
  repository: string,
  reference: string,
): Promise<{ status: number; digest: string | null }> {
  const res = await fetch(`http://${address}/v2/${repository}/manifests/${reference}`, {
    method: "HEAD",
    headers: {
      Accept: [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
      ].join(", "),
    },
  });
  return { status: res.status, digest: res.headers.get("docker-content-digest") };
}
