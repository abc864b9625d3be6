import * as fs from "fs";
import * as path from "path";
import {
  createDeployment,
  deleteDeployment,
  readDeployment,
  updateDeployment,
} from "../../../providers/deployment/core";
import { DeploymentArgs, DeploymentState } from "../../../providers/deployment/types";
import { hashSource } from "../../../providers/modelSource";
import { createModelVersion } from "../../../providers/modelVersionCore";
import {
  createRemoteMlflowServer,
  deleteRemoteMlflowServer,
  RemoteMlflowServerState,
} from "../../../providers/remote/mlflowServerCore";
import { provisionHost } from "../../../providers/remote/provision";
import { DEFAULT_LAYOUT } from "../../../providers/remote/provisionScript";
import { demoModel, IRIS_ROW, missingMlflow, postJson, tempDir } from "../../support/env";
import { startProvisionedSshHost, snapshotProvisioning } from "../../support/provisionedHost";
import { missingSshHost, SshTestHost } from "../../support/sshHost";

/**
 * Deploy mode `remote`: versions registered in the remote MLflow (from here, with the project's own
 * registration code) served by `mlflow models serve` on the test host over SSH, through the same
 * deployment core as mode `local`: ports from the range start, /ping, read, a new version on the same
 * URL, a broken version rolled back, delete leaving no process and no listener.
 */
const skip = missingSshHost() ?? missingMlflow();
const describeSsh = skip ? describe.skip : describe;

async function register(trackingUri: string, name: string, source: string): Promise<string> {
  const { outs } = await createModelVersion({
    trackingUri,
    name,
    source,
    sourceHash: hashSource(source),
    aliases: [],
    tags: {},
    description: "",
    registration: 1,
    experimentName: "model-serving",
    readyTimeoutSeconds: 60,
  });
  return outs.modelUri;
}

describeSsh("deploy mode remote on the test host", () => {
  let host: SshTestHost;
  let mlflow: RemoteMlflowServerState;
  beforeAll(async () => {
    // A provisioned snapshot: this suite tests the host's services, provision.test.ts the provisioning.
    host = await startProvisionedSshHost({ ports: 3, postgresql: true });
    const started = Date.now();
    const provisioned = await provisionHost(host.sudoUser, snapshotProvisioning(true));
    expect(provisioned.changed).toBe(false);
    process.stderr.write(`provisioning checked (up to date) in ${Date.now() - started} ms\n`);
    mlflow = await createRemoteMlflowServer({
      connection: host.sudoUser,
      layout: DEFAULT_LAYOUT,
      bindHost: "0.0.0.0",
      port: host.ports[0],
      publicHost: "127.0.0.1",
      backendStore: { kind: "sqlite" },
      startTimeoutSeconds: 180,
    });
  }, 20 * 60_000);
  afterAll(async () => {
    if (mlflow) {
      await deleteRemoteMlflowServer(mlflow).catch(() => undefined);
    }
    await host?.stop();
  }, 120_000);

  test(
    "serve, read, a new version on the same URL, a broken one rolled back, delete",
    async () => {
      const work = tempDir("remote-serving");
      const broken = path.join(work, "broken-model");
      fs.cpSync(demoModel(1.0), broken, { recursive: true });
      const mlmodel = path.join(broken, "MLmodel");
      fs.writeFileSync(
        mlmodel,
        fs
          .readFileSync(mlmodel, "utf8")
          .replace("loader_module: mlflow.sklearn", "loader_module: model_serving_missing_loader"),
      );
      const v1 = await register(mlflow.trackingUri, "iris", demoModel(1.0));
      const v2 = await register(mlflow.trackingUri, "iris", demoModel(0.01));
      const v3 = await register(mlflow.trackingUri, "iris", broken);
      expect([v1, v2, v3]).toEqual(["models:/iris/1", "models:/iris/2", "models:/iris/3"]);

      const args: DeploymentArgs = {
        mode: "remote",
        modelUri: v1,
        trackingUri: mlflow.trackingUri,
        host: "0.0.0.0",
        portRangeStart: host.ports[1],
        mlflowBin: "/opt/model-serving/venv/bin/mlflow",
        runDir: "/opt/model-serving/run",
        startTimeoutSeconds: 240,
        owner: "organization/model-serving/test/iris",
        remote: {
          connection: host.sudoUser,
          layout: DEFAULT_LAYOUT,
          publicHost: "127.0.0.1",
          hostTrackingUri: `http://127.0.0.1:${host.ports[0]}`,
        },
      };
      let state: DeploymentState | undefined;
      try {
        let t = Date.now();
        state = (await createDeployment(args)).outs;
        process.stderr.write(`remote model server up in ${Date.now() - t} ms\n`);
        expect(state.url).toBe(`http://127.0.0.1:${host.ports[1]}/invocations`);
        expect(await postJson(state.url, IRIS_ROW)).toEqual({
          status: 200,
          body: { predictions: [0] },
        });
        expect(await readDeployment(state)).toEqual(state);
        const ps = await host.inspect(`ps -o user=,args= -p ${state.pid}`);
        expect(ps.stdout).toMatch(
          /^mlflow\s+.*models serve -m models:\/iris\/1 --env-manager local -h 0\.0\.0\.0 -p \d+/,
        );

        // A second deployment gets the next port (the first one's lock and listener are taken).
        const other = (
          await createDeployment({ ...args, owner: "organization/model-serving/test/other" })
        ).outs;
        expect(other.servedPort).toBe(host.ports[2]);
        await deleteDeployment(other);

        // A new version: same port, same URL.
        t = Date.now();
        const v2State = await updateDeployment(state, { ...args, modelUri: v2 });
        process.stderr.write(`remote model server restarted with v2 in ${Date.now() - t} ms\n`);
        expect(v2State.url).toBe(state.url);
        expect(v2State.pid).not.toBe(state.pid);
        state = v2State;
        expect(await postJson(state.url, IRIS_ROW)).toEqual({
          status: 200,
          body: { predictions: [expect.any(Number)] },
        });

        // A version that cannot start: v2 serves there again, the error has the remote log's last lines.
        let failure: Error & { properties?: DeploymentState } = new Error("no failure");
        try {
          await updateDeployment(state, { ...args, modelUri: v3 });
        } catch (err) {
          failure = err as typeof failure;
        }
        expect(failure.message).toContain(
          `models:/iris/3 did not start on http://127.0.0.1:${host.ports[1]}, so models:/iris/2 serves there again`,
        );
        expect(failure.message).toContain("model_serving_missing_loader");
        state = failure.properties as DeploymentState;
        expect(state.modelUri).toBe(v2);
        expect(await readDeployment(state)).toEqual(state);

        // A killed server is gone for read (refresh), and a create brings it back on the same port.
        await host.inspect(`kill -KILL -${state.pgid}`);
        await new Promise((r) => setTimeout(r, 1000));
        expect(await readDeployment(state)).toBeUndefined();
        state = (await createDeployment({ ...args, modelUri: v2 })).outs;
        expect(state.servedPort).toBe(host.ports[1]);
      } finally {
        if (state) {
          await deleteDeployment(state);
        }
      }
      expect((await host.inspect("pgrep -f '[m]odels serve' || true")).stdout).toBe("");
      expect((await host.inspect(`ss -Hltn 'sport = :${host.ports[1]}'`)).stdout).toBe("");
      expect((await host.inspect("ls /opt/model-serving/run/model-servers")).stdout).toBe("");
      fs.rmSync(work, { recursive: true, force: true });
    },
    20 * 60_000,
  );
});
