import * as fs from "fs";
import * as path from "path";
import {
  MlflowServerState,
  startMlflowServer,
  stopMlflowServer,
} from "../../providers/mlflowServerCore";
import { freePort, mlflowBin, tempDir } from "./env";

/**
 * A real `mlflow server` on a free loopback port with its own temp data dir, for one test file.
 * `mlflow server` needs its port on the command line, so the port is reserved first (freePort); should
 * something that does not reserve ports still take it before the server binds, the start is retried on
 * a fresh port (up to 3 attempts).
 */
export async function startTestServer(auth?: {
  username: string;
  password: string;
}): Promise<MlflowServerState> {
  const dataDir = tempDir("mlflow-data");
  for (let attempt = 1; ; attempt++) {
    try {
      return await startMlflowServer({
        mlflowBin,
        host: "127.0.0.1",
        port: await freePort(),
        dataDir: path.join(dataDir, "store"),
        startTimeoutSeconds: 120,
        auth,
      });
    } catch (err) {
      if (attempt >= 3 || !portWasTaken(err)) {
        fs.rmSync(dataDir, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

/** The start failed because the port was taken (before our check, or between the check and the bind). */
function portWasTaken(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /already in use|address already in use|EADDRINUSE|Errno 98/i.test(message);
}

export async function stopTestServer(state: MlflowServerState | undefined): Promise<void> {
  if (state) {
    await stopMlflowServer(state);
    // The temp dir startTestServer made (never anything else).
    const tmp = path.dirname(state.dataDir);
    if (path.basename(tmp).startsWith("model-serving-mlflow-data-")) {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
}
