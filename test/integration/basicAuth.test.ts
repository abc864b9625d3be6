import * as fs from "fs";
import * as path from "path";
import { createMlflowClient } from "../../providers/mlflow/client";
import * as registry from "../../providers/mlflow/registry";
import {
  MLFLOW_USER_ROUTES,
  MlflowServerArgs,
  MlflowServerState,
  rotateAdminPassword,
  startMlflowServer,
  stopMlflowServer,
  updateMlflowServer,
} from "../../providers/mlflowServerCore";
import { createModelVersion, deleteModelVersion } from "../../providers/modelVersionCore";
import { hashSource } from "../../providers/modelSource";
import { putDeployment, deleteAgentDeployment } from "../../providers/agent/deploymentCore";
import { mlflowHomeOf, startAgent, stopAgent } from "../../providers/agent/serverCore";
import {
  demoModel,
  IRIS_ROW,
  missingMlflow,
  postJson,
  repoRoot,
  reservePortBlock,
  tempDir,
  venvPython,
} from "../support/env";
import { errorText } from "../support/errorText";
import { versionArgs } from "../support/versionArgs";
import { startTestServer, stopTestServer } from "../support/mlflowServer";

// A real MLflow server running the basic-auth app (`mlflow server --app-name basic-auth`).
const skip = missingMlflow();
if (skip) {
  console.warn(`skipping basic-auth integration tests: ${skip}`);
}
const describeReal = skip ? describe.skip : describe;
const PASSWORD = "auth-test-Pa55word!";

describeReal("MLflow with basic auth", () => {
  let server: MlflowServerState | undefined;
  beforeAll(async () => {
    server = await startTestServer({ username: "admin", password: PASSWORD });
  }, 180_000);
  afterAll(() => stopTestServer(server), 60_000);

  it("accepts good credentials for a whole registration", async () => {
    const source = demoModel(1.0);
    const auth = { username: "admin", password: PASSWORD };
    const created = await createModelVersion({
      trackingUri: server!.trackingUri,
      auth,
      name: "iris-auth",
      source,
      sourceHash: hashSource(source),
      aliases: ["champion"],
      tags: {},
      description: "",
      registration: 1,
      experimentName: "model-serving",
      readyTimeoutSeconds: 60,
    });
    expect(created.id).toBe("iris-auth/1");
    await deleteModelVersion(created.outs);
  }, 120_000);

  it("serves through the agent started here, with the password in no process environment", async () => {
    const auth = { username: "admin", password: PASSWORD };
    const version = await createModelVersion(
      versionArgs(server!.trackingUri, "iris-agent-auth", demoModel(1.0), { auth }),
    );
    const [port, front, ...backends] = reservePortBlock(4);
    const dataDir = tempDir("agent-auth");
    const TOKEN = "agent-auth-token-5b1e9c0d7a2f";
    const agent = await startAgent({
      python: venvPython,
      agentDir: path.join(repoRoot, "agent"),
      host: "127.0.0.1",
      port,
      frontPorts: { first: front, last: front },
      backendPorts: { first: backends[0], last: backends.at(-1)! },
      dataDir,
      trackingUri: server!.trackingUri,
      token: TOKEN,
      mlflowAuth: auth,
      startTimeoutSeconds: 120,
      backendStartTimeoutSeconds: 240,
      backendWorkers: 1,
    });
    try {
      // The agent's backend fetched models:/iris-agent-auth/1 from the protected server and scores.
      const deployed = await putDeployment({
        agentUrl: agent.url,
        token: TOKEN,
        modelName: "iris-agent-auth",
        modelUri: "models:/iris-agent-auth/1",
        sampleInput: IRIS_ROW,
        startTimeoutSeconds: 240,
      });
      expect(await postJson(deployed.url, IRIS_ROW)).toMatchObject({ status: 200 });
      // MLflow's credentials file in the agent's HOME (0700, 0600); the agent and its backends carry
      // that HOME and not the password.
      const home = mlflowHomeOf(dataDir);
      expect(fs.statSync(home).mode & 0o777).toBe(0o700);
      expect(fs.statSync(path.join(home, ".mlflow", "credentials")).mode & 0o777).toBe(0o600);
      const marked = fs
        .readdirSync("/proc")
        .filter((p) => /^\d+$/.test(p))
        .map((p) => {
          try {
            return fs.readFileSync(`/proc/${p}/environ`, "utf8");
          } catch {
            return "";
          }
        })
        .filter((e) => e.includes(`MODEL_SERVING_AGENT_HOME=${path.resolve(dataDir)}\0`));
      expect(marked.length).toBeGreaterThanOrEqual(3); // supervisor, agent, a backend
      for (const e of marked) {
        expect(`\0${e}`).toContain(`\0HOME=${home}\0`);
        expect(e).not.toContain(PASSWORD);
      }
      await deleteAgentDeployment(deployed);
    } finally {
      await stopAgent(agent);
      await deleteModelVersion(version.outs);
    }
    expect(fs.existsSync(mlflowHomeOf(dataDir))).toBe(false);
  }, 600_000);

  it("rejects bad and missing credentials with a typed 401 that hides the password", async () => {
    for (const creds of [{ username: "admin", password: "wrong-password" }, {}]) {
      const client = createMlflowClient({ trackingUri: server!.trackingUri, auth: creds }, {});
      const err = await registry.getRegisteredModel(client, "iris").catch((e) => e);
      expect(err).toMatchObject({
        errorCode: "UNAUTHENTICATED",
        status: 401,
        method: "GET",
        path: "/api/2.0/mlflow/registered-models/get",
      });
      // Message, stack, hidden properties (the HTTP request) and cause, not only enumerable fields.
      expect(errorText(err)).toContain("UNAUTHENTICATED");
      expect(errorText(err)).not.toContain("wrong-password");
      expect(errorText(err)).not.toContain(Buffer.from("admin:wrong-password").toString("base64"));
    }
  }, 60_000);
});

describeReal("MLflow basic-auth password rotation", () => {
  // `%` exercises the ini's escaping: MLflow reads the first password through configparser.
  const FIRST = "first-Pa55%(word)s%";
  const SECOND = "second-Pa55word!";
  let server: MlflowServerState | undefined;
  beforeAll(async () => {
    server = await startTestServer({ username: "admin", password: FIRST });
  }, 180_000);
  afterAll(() => stopTestServer(server), 60_000);

  /** The status MLflow answers to the admin with this password on its user API. */
  async function statusWith(password: string): Promise<number> {
    const client = createMlflowClient(
      { trackingUri: server!.trackingUri, auth: { username: "admin", password }, retries: 0 },
      {},
    );
    return client.call("GET", MLFLOW_USER_ROUTES.current, { idempotent: true }).then(
      () => 200,
      (e) => e.status ?? 0,
    );
  }

  it("changes the password through MLflow's user API, without a restart, and it survives one", async () => {
    expect(await statusWith(FIRST)).toBe(200);
    const olds = server!;
    const news: MlflowServerArgs = {
      mlflowBin: olds.mlflowBin,
      host: olds.host,
      port: olds.port,
      dataDir: olds.dataDir,
      startTimeoutSeconds: olds.startTimeoutSeconds,
      auth: { username: "admin", password: SECOND },
    };
    const updated = await updateMlflowServer(olds, news);
    server = updated;
    expect(updated.pid).toBe(olds.pid);
    expect(await statusWith(FIRST)).toBe(401);
    expect(await statusWith(SECOND)).toBe(200);
    const ini = path.join(olds.dataDir, "basic_auth.ini");
    expect(fs.readFileSync(ini, "utf8")).toContain("admin_password = second-Pa55word!\n");
    expect(fs.statSync(ini).mode & 0o777).toBe(0o600);

    // Rotating again (an update retried after a later failure) changes nothing.
    await expect(rotateAdminPassword(olds.trackingUri, "admin", FIRST, SECOND)).resolves.toBe(
      "already",
    );
    // Neither password works: the error names the setting, never a password.
    const err = await rotateAdminPassword(
      olds.trackingUri,
      "admin",
      "not-the-previous-1",
      "not-the-next-1234",
    ).catch((e) => e);
    expect(err.message).toBe(
      `model-serving:mlflowPassword: cannot change the password of MLflow user "admin" at ${olds.trackingUri}: ` +
        "MLflow accepts neither the previous nor the new password (was it changed outside this stack?). " +
        "Set mlflowPassword to the password MLflow has now, run `pulumi up`, then change it",
    );

    // A restart (here: stop and start) keeps the new password in force.
    await stopMlflowServer(updated);
    server = await startMlflowServer(news);
    expect(await statusWith(SECOND)).toBe(200);
    expect(await statusWith(FIRST)).toBe(401);
  }, 300_000);
});
