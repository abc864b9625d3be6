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
import { shQuote } from "../../../providers/ssh/quote";
import { demoModel, IRIS_ROW, missingMlflow, postJson, tempDir } from "../../support/env";
import { startProvisionedSshHost, snapshotProvisioning } from "../../support/provisionedHost";
import { missingSshHost, SshTestHost } from "../../support/sshHost";

/**
 * Deploy mode `remote`: versions registered in the remote MLflow (from here, with the project's own
 * registration code) served by `mlflow models serve` on the test host over SSH, through the same
 * deployment core as mode `local`: ports from the range start, /ping, read, a new version on the same
 * URL, a broken version rolled back, delete leaving no process and no listener. Then, on the same
 * host and data, MLflow restarted with basic auth and a model server fetching its version with the
 * stack's credentials.
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

  test(
    "MLflow basic auth: the admin from the ini, 401 without credentials, a model server authenticating, no password on a command line or in MLflow's environment",
    async () => {
      const password = "Remote-Adm1n%pass'word";
      const auth = { username: "admin", password };
      // The same server, data and port, now with MLflow's basic-auth app (an update turns it on).
      await deleteRemoteMlflowServer(mlflow);
      const t = Date.now();
      mlflow = await createRemoteMlflowServer({
        ...mlflow,
        basicAuth: true,
        auth,
      });
      process.stderr.write(`remote MLflow restarted with basic auth in ${Date.now() - t} ms\n`);
      const api = `${mlflow.trackingUri}/api/2.0/mlflow/registered-models/get?name=iris`;
      expect((await fetch(api)).status).toBe(401);
      const basic = `Basic ${Buffer.from(`admin:${password}`).toString("base64")}`;
      expect((await fetch(api, { headers: { authorization: basic } })).status).toBe(200);
      const files = await host.inspect(
        "stat -c '%a %U %n' /opt/model-serving/basic_auth.ini /opt/model-serving/auth.env",
      );
      expect(files.stdout).toBe(
        "600 mlflow /opt/model-serving/basic_auth.ini\n600 mlflow /opt/model-serving/auth.env\n",
      );
      const ps = await host.inspect("ps -eo args | grep '[m]lflow server' | head -1");
      expect(ps.stdout).toContain("--app-name basic-auth");

      // Another password for the same admin is refused, naming the user store.
      await expect(
        createRemoteMlflowServer({
          ...mlflow,
          auth: { username: "admin", password: "Another-Pa55word" },
        }),
      ).rejects.toThrow(
        `MLflow on deploy@127.0.0.1:${host.sshPort} (port ${host.ports[0]}) refuses the stack's credentials for "admin": its user store (/var/lib/model-serving/mlflow/basic_auth.db) has this admin with another password; set mlflowPassword back, or change the password through MLflow's user API first`,
      );

      // A model server fetches models:/iris/1 through the protected server with the credentials.
      const args: DeploymentArgs = {
        mode: "remote",
        modelUri: "models:/iris/1",
        trackingUri: mlflow.trackingUri,
        auth,
        host: "0.0.0.0",
        portRangeStart: host.ports[1],
        mlflowBin: "/opt/model-serving/venv/bin/mlflow",
        runDir: "/opt/model-serving/run",
        startTimeoutSeconds: 240,
        owner: "organization/model-serving/test/iris-auth",
        remote: {
          connection: host.sudoUser,
          layout: DEFAULT_LAYOUT,
          publicHost: "127.0.0.1",
          hostTrackingUri: `http://127.0.0.1:${host.ports[0]}`,
        },
      };
      let state: DeploymentState | undefined;
      try {
        state = (await createDeployment(args)).outs;
        expect(await postJson(state.url, IRIS_ROW)).toEqual({
          status: 200,
          body: { predictions: [0] },
        });
        // The credentials went into MLflow's credentials file in a home of the server's own (HOME),
        // removed once it answered; the password is on no command line and in no environment.
        const lock = `/opt/model-serving/run/model-servers/${state.servedPort}`;
        const left = (await host.inspect(`ls -A ${lock}`)).stdout.split("\n");
        expect(left).toContain("log");
        expect(left).not.toContain("credentials.env");
        expect(left).not.toContain("home");
        const serverEnv = `tr '\\0' '\\n' < /proc/${state.pid}/environ`;
        expect(
          (await host.inspect(`runuser -u mlflow -- sh -c ${shQuote(serverEnv)}`)).stdout,
        ).toContain(`HOME=${lock}/home\n`);
        // Read as the service user: root in the container lacks CAP_SYS_PTRACE, so it cannot read
        // another user's /proc/<pid>/environ (and would find nothing there).
        const scan = `for p in /proc/[0-9]*; do if tr '\\0' '\\n' < $p/cmdline 2>/dev/null | grep -q '[A]dm1n%pass'; then echo "cmdline $(basename $p)"; fi; if tr '\\0' '\\n' < $p/environ 2>/dev/null | grep -q '[A]dm1n%pass'; then echo "environ $(basename $p)"; fi; done 2>/dev/null`;
        const holders = await host.inspect(`runuser -u mlflow -- sh -c ${shQuote(scan)}`);
        const serverPids = (await host.inspect(`pgrep -g ${state.pgid} | tr '\\n' ' '`)).stdout
          .trim()
          .split(" ");
        const lines = holders.stdout
          .trim()
          .split("\n")
          .filter((l) => l !== "");
        expect(serverPids.length).toBeGreaterThan(0);
        expect(lines).toEqual([]);
      } finally {
        if (state) {
          await deleteDeployment(state);
        }
      }
    },
    15 * 60_000,
  );
});
