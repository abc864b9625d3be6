import { execFile } from "child_process";
import * as path from "path";
import { promisify } from "util";
import { repoRoot, venvPython } from "./env";

/** MLflow's own Python client (test/support/registry_client.py) against `trackingUri`. */
export async function mlflowPython<T = Record<string, unknown>>(
  trackingUri: string,
  ...args: string[]
): Promise<T> {
  const { stdout } = await promisify(execFile)(
    venvPython,
    [path.join(repoRoot, "test/support/registry_client.py"), ...args],
    {
      env: { ...process.env, MLFLOW_TRACKING_URI: trackingUri, GIT_PYTHON_REFRESH: "quiet" },
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  // MLflow prints lines of its own (run links); the result is the last line.
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as T;
}

export interface Registered {
  run_id: string;
  model_id: string;
  version: string;
}

export interface RegistrySnapshot {
  aliases: Record<string, string>;
  tags: Record<string, string>;
  versions: Record<string, unknown>[];
}

/** Every version, tag and alias of a registered model, as MLflow's client reports them. */
export const registrySnapshot = (trackingUri: string, name: string) =>
  mlflowPython<RegistrySnapshot>(trackingUri, "snapshot", name);
