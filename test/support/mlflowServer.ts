import * as fs from "fs";
import * as path from "path";
import {
  MlflowServerState,
  startMlflowServer,
  stopMlflowServer,
} from "../../providers/mlflowServerCore";
import { freePort, mlflowBin, tempDir } from "./env";

/** A real `mlflow server` on a free loopback port with its own temp data dir, for one test file. */
export async function startTestServer(auth?: {
  username: string;
  password: string;
}): Promise<MlflowServerState> {
  const dataDir = tempDir("mlflow-data");
  return startMlflowServer({
    mlflowBin,
    host: "127.0.0.1",
    port: await freePort(),
    dataDir: path.join(dataDir, "store"),
    startTimeoutSeconds: 120,
    auth,
  });
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
