import * as fs from "fs";
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
import { versionArgs } from "../support/versionArgs";
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
  return registerSource(trackingUri, "iris", demoModel(regularization), registration);
}

async function registerSource(trackingUri: string, name: string, source: string, registration = 1) {
  const { outs } = await createModelVersion(
    versionArgs(trackingUri, name, source, { registration }),
  );
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

  it("a new version that cannot start leaves the old one serving; auth changes do not restart", async () => {
    const runDir = tempDir("deploy-fallback");
    // Version 2 is a model whose python_function loader module does not exist: its server exits.
    const broken = path.join(runDir, "broken-model");
    fs.cpSync(demoModel(1.0), broken, { recursive: true });
    const mlmodel = path.join(broken, "MLmodel");
    fs.writeFileSync(
      mlmodel,
      fs
        .readFileSync(mlmodel, "utf8")
        .replace("loader_module: mlflow.sklearn", "loader_module: model_serving_missing_loader"),
    );
    const v1 = await registerSource(server!.trackingUri, "iris-fallback", demoModel(1.0));
    const v2 = await registerSource(server!.trackingUri, "iris-fallback", broken);
    expect([v1, v2]).toEqual(["models:/iris-fallback/1", "models:/iris-fallback/2"]);
    const args: DeploymentArgs = {
      mode: "local",
      modelUri: v1,
      trackingUri: server!.trackingUri,
      host: "127.0.0.1",
      portRangeStart: await freePort(),
      mlflowBin,
      runDir,
      startTimeoutSeconds: 240,
    };
    const { outs } = await createDeployment(args);
    let running = outs;
    try {
      const port = outs.servedPort;
      const err = await updateDeployment(outs, { ...args, modelUri: v2 }).catch((e) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toContain(
        `models:/iris-fallback/2 did not start on http://127.0.0.1:${port}, so ` +
          `models:/iris-fallback/1 serves there again (pid ${err.properties?.pid}); the next ` +
          "`pulumi up` tries models:/iris-fallback/2 again. " +
          `server for http://127.0.0.1:${port}/ping exited during start-up; last log lines:\n`,
      );
      // The new server's own last log lines: uvicorn's worker died loading the model.
      expect(err.message).toMatch(
        /uvicorn[^\n]*mlflow\.pyfunc\.scoring_server[\s\S]*Return code = 1/,
      );
      // Partial state (Pulumi's ErrorResourceInitFailed): the old version, its new process.
      expect(err.id).toBe(`127.0.0.1:${port}`);
      expect(err.reasons).toEqual([err.message]);
      expect(err.properties).toMatchObject({
        modelUri: v1,
        servedPort: port,
        url: outs.url,
        trackingUri: server!.trackingUri,
      });
      expect(err.properties.pid).not.toBe(outs.pid);
      running = err.properties;
      expect(await postJson(outs.url, IRIS_ROW)).toEqual({
        status: 200,
        body: { predictions: [0] },
      });
      expect(await readDeployment(running)).toEqual(running);

      // Only the connection changes (a rotated password, another URL of the same server): the model
      // is loaded, so the same process keeps serving and the new values are recorded.
      const reconnected = {
        ...args,
        trackingUri: server!.trackingUri.replace("127.0.0.1", "localhost"),
        auth: { username: "admin", password: "rotated-Pa55word" },
      };
      const updated = await updateDeployment(running, reconnected);
      expect(updated).toEqual({ ...running, ...reconnected });
      expect(updated.pid).toBe(running.pid);
      expect((await postJson(updated.url, IRIS_ROW)).status).toBe(200);
    } finally {
      await deleteDeployment(running).catch(() => undefined);
      await deleteDeployment(outs).catch(() => undefined);
      fs.rmSync(runDir, { recursive: true, force: true });
    }
  }, 900_000);

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
