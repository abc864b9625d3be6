import * as net from "net";
import * as path from "path";
import {
  createDeployment,
  deleteDeployment,
  readDeployment,
  updateDeployment,
} from "../../providers/deployment/core";
import { DeploymentArgs } from "../../providers/deployment/types";
import { MlflowServerState, startMlflowServer } from "../../providers/mlflowServerCore";
import { createModelVersion } from "../../providers/modelVersionCore";
import { hashSource } from "../../providers/modelSource";
import { isPortFree } from "../../providers/process";
import {
  demoModel,
  freePort,
  IRIS_ROW,
  missingMlflow,
  mlflowBin,
  postJson,
  tempDir,
} from "../support/env";
import { startTestServer, stopTestServer } from "../support/mlflowServer";

// Real `mlflow models serve` processes for versions registered in a real MLflow server.
const skip = missingMlflow();
if (skip) {
  console.warn(`skipping deployment integration tests: ${skip}`);
}
const describeReal = skip ? describe.skip : describe;

async function register(trackingUri: string, regularization: number, registration = 1) {
  const source = demoModel(regularization);
  const { outs } = await createModelVersion({
    trackingUri,
    name: "iris",
    source,
    sourceHash: hashSource(source),
    aliases: [],
    tags: {},
    description: "",
    registration,
    experimentName: "model-serving",
    readyTimeoutSeconds: 60,
  });
  return outs.modelUri;
}

describeReal("model deployment on the MLflow host (deploy mode local)", () => {
  let server: MlflowServerState | undefined;
  beforeAll(async () => {
    server = await startTestServer();
  }, 180_000);
  afterAll(() => stopTestServer(server), 60_000);

  it("serves, redeploys a new version on the same URL, heals via read, and undeploys", async () => {
    const runDir = tempDir("deploy-run");
    const args: DeploymentArgs = {
      mode: "local",
      modelUri: await register(server!.trackingUri, 1.0),
      trackingUri: server!.trackingUri,
      host: "127.0.0.1",
      portRangeStart: await freePort(),
      mlflowBin,
      runDir,
      startTimeoutSeconds: 240,
    };
    const { id, outs } = await createDeployment(args);
    try {
      expect(id).toBe(`127.0.0.1:${outs.servedPort}`);
      expect(outs.url).toBe(`http://127.0.0.1:${outs.servedPort}/invocations`);
      const scored = await postJson(outs.url, IRIS_ROW);
      expect(scored).toEqual({ status: 200, body: { predictions: [0] } });
      expect(await readDeployment(outs)).toEqual(outs);

      // A new version: same port, new process, serving models:/iris/2.
      const v2 = await register(server!.trackingUri, 0.01);
      const updated = await updateDeployment(outs, { ...args, modelUri: v2 });
      expect(updated.servedPort).toBe(outs.servedPort);
      expect(updated.pid).not.toBe(outs.pid);
      expect(updated.modelUri).toBe("models:/iris/2");
      expect((await postJson(updated.url, IRIS_ROW)).status).toBe(200);

      // Killed out of band: read reports it gone, so refresh + up starts it again.
      process.kill(-updated.pgid, "SIGKILL");
      await new Promise((r) => setTimeout(r, 500));
      expect(await readDeployment(updated)).toBeUndefined();

      const again = await createDeployment({ ...args, modelUri: v2, port: outs.servedPort });
      expect(again.outs.servedPort).toBe(outs.servedPort);
      await deleteDeployment(again.outs);
      expect(await isPortFree("127.0.0.1", outs.servedPort)).toBe(true);
      expect(() => process.kill(-again.outs.pgid, 0)).toThrow();
      // Deleting what is already gone is fine.
      await deleteDeployment(again.outs);
    } finally {
      await deleteDeployment(outs).catch(() => undefined);
    }
  }, 600_000);

  it("refuses a fixed port held by a process it does not own", async () => {
    const squatter = net.createServer();
    const port = await freePort();
    await new Promise<void>((r) => squatter.listen(port, "127.0.0.1", r));
    try {
      await expect(
        createDeployment({
          mode: "local",
          modelUri: "models:/iris/1",
          trackingUri: server!.trackingUri,
          host: "127.0.0.1",
          port,
          portRangeStart: 5001,
          mlflowBin,
          runDir: tempDir("deploy-squat"),
          startTimeoutSeconds: 60,
        }),
      ).rejects.toThrow(
        `port: ${port} on 127.0.0.1 is already in use by a process this stack does not own; choose another port or stop that process`,
      );
    } finally {
      squatter.close();
    }
  });

  it("fails with the server's own log when the model cannot be served", async () => {
    await expect(
      createDeployment({
        mode: "local",
        modelUri: "models:/no-such-model/1",
        trackingUri: server!.trackingUri,
        host: "127.0.0.1",
        portRangeStart: await freePort(),
        mlflowBin,
        runDir: tempDir("deploy-missing"),
        startTimeoutSeconds: 120,
      }),
    ).rejects.toThrow(/exited during start-up; last log lines:\n[\s\S]*no-such-model/);
  }, 180_000);
});

describeReal("local MLflow server", () => {
  it("refuses a port held by a process the stack does not own", async () => {
    const squatter = net.createServer();
    const port = await freePort();
    await new Promise<void>((r) => squatter.listen(port, "127.0.0.1", r));
    try {
      await expect(
        startMlflowServer({
          mlflowBin,
          host: "127.0.0.1",
          port,
          dataDir: path.join(tempDir("squat"), "data"),
          startTimeoutSeconds: 60,
        }),
      ).rejects.toThrow(
        `mlflow.port: ${port} on 127.0.0.1 is already in use by a process this stack does not own; stop it or choose another port`,
      );
    } finally {
      squatter.close();
    }
  });
});
