import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { cacheDir } from "../support/env";

/**
 * The private Docker engine of scripts/dockerd.sh, as the replay tests find it: DOCKER_HOST,
 * MODEL_SERVING_DOCKER_CLI and MODEL_SERVING_SCORER_BASE when `dockerd.sh env` was eval'd (npm test
 * does), else the same defaults dockerd.sh uses, so `bash scripts/dockerd.sh start && npx jest
 * test/replay` works too.
 */
export function dockerSocket(): string {
  const host = process.env.DOCKER_HOST ?? `unix://${path.join(cacheDir, "docker", "docker.sock")}`;
  if (!host.startsWith("unix://")) {
    throw new Error(`the replay tests need a unix:// DOCKER_HOST, got ${host}`);
  }
  return host.slice("unix://".length);
}

export function dockerCli(): string {
  return process.env.MODEL_SERVING_DOCKER_CLI ?? "/usr/bin/docker";
}

export function dockerEnv(): Record<string, string> {
  return { DOCKER_HOST: `unix://${dockerSocket()}` };
}

/** The locally imported base image (dockerd.sh prints its name; its tag is keyed by the package list). */
export function scorerBaseImage(): string | undefined {
  if (process.env.MODEL_SERVING_SCORER_BASE) {
    return process.env.MODEL_SERVING_SCORER_BASE;
  }
  try {
    const out = execFileSync("bash", [path.resolve(__dirname, "../../scripts/dockerd.sh"), "env"], {
      encoding: "utf8",
    });
    return out.match(/MODEL_SERVING_SCORER_BASE=(\S+)/)?.[1];
  } catch {
    return undefined;
  }
}

/** Why the Docker replay cannot run here, or undefined when it can (the caller gates it: skipReason). */
export function dockerMissingReason(): string | undefined {
  const start = "run `bash scripts/dockerd.sh start` (npm test does)";
  const socket = dockerSocket();
  if (!fs.existsSync(socket)) {
    return `no Docker engine socket at ${socket}: ${start}`;
  }
  const env = { ...process.env, ...dockerEnv() };
  try {
    execFileSync(dockerCli(), ["version"], { env, stdio: "pipe", timeout: 15_000 });
  } catch (err) {
    return `the Docker engine at ${socket} does not answer (${String(err).split("\n")[0]}): ${start}`;
  }
  const base = scorerBaseImage();
  try {
    execFileSync(dockerCli(), ["image", "inspect", base ?? "(none)"], { env, stdio: "pipe" });
  } catch {
    return `the scorer base image ${base ?? "(unknown)"} is not in the engine: ${start}`;
  }
  return undefined;
}
