import { execFile } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { promisify } from "util";
import { isPortFree } from "../../providers/process";
import {
  EngineStack,
  filesContaining,
  groupsUsing,
  processGroupAlive,
  whyEngineCannotRun,
} from "../support/engineStack";
import { demoModel, IRIS_ROW, reservePortBlock, tempDir, venvPython } from "../support/env";
import { loadLoop, score, servedBy } from "../support/scoring";
import { mlflowPython, Registered } from "../support/registryClient";

// Deploy mode `agent` end to end on the real engine: the stack starts MLflow and the MLOps agent here,
// the agent serves the model behind its stable front URL. A registration bump switches versions under
// a constant load with zero failed requests; a challenger from config splits the front URL's
// requests by its weight (a version registered outside the stack, followed by its alias), and
// X-Model-Variant pins one side; a kill -9 of the agent is repaired by its supervisor,
// and a kill -9 of the supervisor by refresh + up, on the same URL with the same version (its backend
// adopted, not restarted); destroy leaves nothing running;
// the agent token is never in plaintext in the checkpoint, the outputs, the logs or the agent's
// environment. Score workflows on the same stack: the output's cookie-style curl triggers a run that
// writes the 150 scored iris rows with the served model's predictions, the bearer curl and the Python
// command work, an out-of-band delete is healed by refresh + up, executeOnUp fails `up` with the
// run's error for a missing input and succeeds once it is fixed, runs again for a new model version
// and not for a restarted agent, and destroy deletes the workflows on the agent.
const skip = whyEngineCannotRun();
if (skip) {
  console.warn(`skipping the agent engine suite: ${skip}`);
}
const describeEngine = skip ? describe.skip : describe;
const TOKEN = "e2e-agent-token-0f3c9a71b2d84e65";

interface Entry {
  url: string;
  version: string;
  modelUri: string;
  curl: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the agent's JSON, checked by the asserts
type Json = any;

function agentCall(
  method: string,
  apiUrl: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    http
      .request(
        `${apiUrl}${path}`,
        {
          method,
          headers: {
            Authorization: `Bearer ${TOKEN}`,
            ...(data ? { "Content-Type": "application/json" } : {}),
          },
        },
        (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        },
      )
      .on("error", reject)
      .end(data);
  });
}

const agentGet = (apiUrl: string, path: string) => agentCall("GET", apiUrl, path);

/** The agent process its supervisor runs (the LocalAgent's pid is the supervisor's). */
function agentChild(supervisor: number, required = true): number {
  let children: number[] = [];
  try {
    children = fs
      .readFileSync(`/proc/${supervisor}/task/${supervisor}/children`, "utf8")
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // the supervisor is gone
  }
  if (required && children.length !== 1) {
    throw new Error(`supervisor ${supervisor} runs ${children.length} agents, not 1`);
  }
  return children[0] ?? 0;
}

async function waitFor<T>(probe: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`not within ${timeoutMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface WorkflowOutput {
  workflowId: string;
  modelUri: string;
  curl: string;
  curlBearer: string;
  statusCurl: string;
  python: string;
  lastExecutionId: string;
  lastExecutionStatus: string;
}

/** Runs one of the output's commands in `cwd` with the token in TOKEN, as a user would. */
async function runCommand(command: string, cwd: string, env: Record<string, string> = {}) {
  return promisify(execFile)("bash", ["-c", command], {
    cwd,
    timeout: 300_000,
    env: { ...process.env, PATH: `${path.dirname(venvPython)}:${process.env.PATH}`, TOKEN, ...env },
  });
}

/** Polls with the output's statusCurl until the execution has ended. */
async function pollStatus(w: WorkflowOutput, cwd: string, executionId: string): Promise<Json> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const { stdout } = await runCommand(w.statusCurl, cwd, { EXECUTION_ID: executionId });
    const e = JSON.parse(stdout);
    if (e.status === "succeeded" || e.status === "failed" || Date.now() > deadline) {
      return e;
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** A CSV's header and rows (numbers only, as the scored iris files are). */
function readCsv(file: string): { header: string[]; rows: number[][] } {
  const [head, ...lines] = fs.readFileSync(file, "utf8").trim().split("\n");
  return { header: head.split(","), rows: lines.map((l) => l.split(",").map(Number)) };
}

describeEngine("deploy mode agent on the real engine", () => {
  let engine: EngineStack;
  let mlflowPort: number;
  let agentPort: number;
  let fronts: number[];
  let backends: number[];
  let work: string;
  let irisCsv: string;
  const workflow = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    model: "iris",
    input: irisCsv,
    output: path.join(work, "out", `${id}.csv`),
    batchSize: 32,
    ...extra,
  });
  const setWorkflows = (list: unknown[]) =>
    engine.stack.setConfig("model-serving:workflows", { value: JSON.stringify(list) });

  beforeAll(async () => {
    work = tempDir("agent-workflows");
    irisCsv = path.join(work, "iris.csv");
    await promisify(execFile)(venvPython, [
      "-c",
      "import sys, pandas as pd; from sklearn.datasets import load_iris; " +
        "pd.DataFrame(load_iris().data, columns=['sepal_length', 'sepal_width', 'petal_length', " +
        "'petal_width']).to_csv(sys.argv[1], index=False)",
      irisCsv,
    ]);
    [mlflowPort, agentPort] = reservePortBlock(2, []);
    fronts = reservePortBlock(3, [mlflowPort, agentPort]);
    backends = reservePortBlock(6, [mlflowPort, agentPort, ...fronts]);
    engine = await EngineStack.create({
      prefix: "agent",
      mlflow: {
        port: mlflowPort,
        deployMode: "agent",
        agent: {
          port: agentPort,
          frontPorts: { first: fronts[0], last: fronts.at(-1) },
          backendPorts: { first: backends[0], last: backends.at(-1) },
          backendWorkers: 1,
          startTimeoutSeconds: 300,
        },
      },
      models: [{ name: "iris", source: demoModel(1.0), sampleInput: IRIS_ROW }],
    });
    await engine.stack.setConfig("model-serving:agentToken", { value: TOKEN, secret: true });
    await setWorkflows([workflow("iris-batch")]);
  }, 300_000);
  afterAll(async () => {
    await engine?.cleanup();
    fs.rmSync(work, { recursive: true, force: true });
  }, 600_000);
  const workflowOutput = async (id: string): Promise<WorkflowOutput> =>
    ((await engine.stack.outputs()).workflows.value as Record<string, WorkflowOutput>)[id];

  const entry = async (): Promise<Entry> =>
    ((await engine.stack.outputs()).endpoints.value as Record<string, Entry>).iris;
  const agentState = () => engine.resource("LocalAgent")!.outputs as Record<string, Json>;

  it("serves, switches under load with zero failures, survives kill -9, and destroys to nothing", async () => {
    const apiUrl = `http://127.0.0.1:${agentPort}`;
    // 1. up, then score with the output's own curl command.
    const t0 = Date.now();
    await engine.stack.up(engine.opts());
    const first = await entry();
    console.log(`agent e2e: first up ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(first).toMatchObject({
      version: "1",
      modelUri: "models:/iris/1",
      url: `http://127.0.0.1:${fronts[0]}/invocations`,
    });
    const curl = await promisify(execFile)("bash", ["-c", first.curl], { timeout: 30_000 });
    expect(JSON.parse(curl.stdout)).toEqual({ predictions: [expect.any(Number)] });

    // 1b. The workflow's outputs: the cookie-style curl triggers a run, statusCurl polls it to the
    // end; the output file holds the 150 rows with the served model's predictions.
    const tw = Date.now();
    const wf = await workflowOutput("iris-batch");
    expect(wf.modelUri).toBe("models:/iris/1");
    const queued = JSON.parse((await runCommand(wf.curl, work)).stdout);
    expect(queued).toMatchObject({ workflowId: "iris-batch", status: "queued" });
    const done = await pollStatus(wf, work, queued.executionId);
    expect(done).toMatchObject({ status: "succeeded", rows_in: 150, rows_out: 150, batches: 5 });
    const scored = readCsv(path.join(work, "out", "iris-batch.csv"));
    expect(scored.header).toEqual([...IRIS_ROW.dataframe_split.columns, "prediction"]);
    expect(scored.rows).toHaveLength(150);
    const served = await fetch(first.url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        dataframe_split: {
          columns: IRIS_ROW.dataframe_split.columns,
          data: scored.rows.map((r) => r.slice(0, 4)),
        },
      }),
    });
    const predictions = ((await served.json()) as { predictions: number[] }).predictions;
    expect(scored.rows.map((r) => r[4])).toEqual(predictions);
    expect(new Set(predictions)).toEqual(new Set([0, 1, 2]));
    // The bearer curl queues a run; the Python command queues the next and polls it to the end.
    const bearer = JSON.parse((await runCommand(wf.curlBearer, work)).stdout);
    expect(bearer).toMatchObject({ workflowId: "iris-batch", status: "queued" });
    const py = JSON.parse((await runCommand(wf.python, work)).stdout);
    expect(py).toMatchObject({ workflow_id: "iris-batch", status: "succeeded", rows_out: 150 });
    expect(
      (await agentGet(apiUrl, `/api/v1/workflow/executions/${bearer.executionId}`)).body,
    ).toMatchObject({ status: "succeeded", rows_out: 150 });

    // 1c. Deleted out of band: refresh drops it and up declares it again. executeOnUp with a missing
    // input fails `up` with the run's error; fixed, the up succeeds and records the run.
    expect((await agentCall("DELETE", apiUrl, "/api/v1/workflows/iris-batch")).status).toBe(200);
    const missing = path.join(work, "missing.csv");
    await setWorkflows([
      workflow("iris-batch"),
      workflow("iris-on-up", { input: missing, executeOnUp: true }),
    ]);
    const failed = await engine.stack.up(engine.opts({ refresh: true })).then(
      () => undefined,
      (err: Error) => err.message,
    );
    expect(failed).toContain("workflow iris-on-up: execution ");
    expect(failed).toContain(
      `failed: ValueError: input ${missing} does not exist on the agent's host`,
    );
    await setWorkflows([workflow("iris-batch"), workflow("iris-on-up", { executeOnUp: true })]);
    await engine.stack.up(engine.opts());
    const onUp = await workflowOutput("iris-on-up");
    expect(onUp).toMatchObject({ lastExecutionStatus: "succeeded", modelUri: "models:/iris/1" });
    expect(readCsv(path.join(work, "out", "iris-on-up.csv")).rows).toHaveLength(150);
    expect((await agentGet(apiUrl, "/api/v1/workflows/iris-batch")).body).toMatchObject({
      model_uri: "models:/iris/1",
      input: irisCsv,
      batch_size: 32,
    });
    // No perpetual diff: with nothing changed, preview announces no step for either workflow.
    const pv = await engine.cli(["preview", "--json"]);
    expect(pv.code).toBe(0);
    const workflowOps = (JSON.parse(pv.stdout).steps as { op: string; urn: string }[])
      .filter(
        (step) =>
          step.urn.endsWith("dynamic/modelserving:ScoreWorkflow") ||
          step.urn.includes(":ScoreWorkflow::"),
      )
      .map((step) => step.op);
    expect(workflowOps.filter((op) => op !== "same")).toEqual([]);
    console.log(
      `agent e2e: workflows (4 runs, 2 ups, a preview) ${((Date.now() - tw) / 1000).toFixed(1)} s`,
    );

    // 2. A registration bump while a load loop scores the front URL: zero failed requests.
    await engine.setModels([
      { name: "iris", source: demoModel(1.0), sampleInput: IRIS_ROW, registration: 2 },
    ]);
    const load = loadLoop(first.url, 4);
    const t1 = Date.now();
    await engine.stack.up(engine.opts());
    const switchSeconds = (Date.now() - t1) / 1000;
    await new Promise((r) => setTimeout(r, 1_000));
    const results = await load.stop();
    console.log(
      `agent e2e: bump up ${switchSeconds.toFixed(1)} s, ${results.ok} requests ok, ` +
        `${results.failed} failed (${results.statuses.join(",")}), served ${[...results.uris].join(" then ")}`,
    );
    expect(results.failed).toBe(0);
    expect(results.ok).toBeGreaterThan(20);
    expect([...results.uris].sort()).toEqual(["models:/iris/1", "models:/iris/2"]);
    const second = await entry();
    expect(second).toMatchObject({ version: "2", modelUri: "models:/iris/2", url: first.url });
    const before = await agentGet(apiUrl, "/models/iris");
    expect(before.body).toMatchObject({ model_uri: "models:/iris/2", status: "serving" });
    // A new model version is a new run input: executeOnUp ran again, with version 2.
    const onUp2 = await workflowOutput("iris-on-up");
    expect(onUp2).toMatchObject({ lastExecutionStatus: "succeeded", modelUri: "models:/iris/2" });
    expect(onUp2.lastExecutionId).not.toBe(onUp.lastExecutionId);
    expect(
      (await agentGet(apiUrl, `/api/v1/workflow/executions/${onUp2.lastExecutionId}`)).body,
    ).toMatchObject({ model_uri: "models:/iris/2", status: "succeeded" });

    // 2b. Champion/challenger from config: a version registered outside the stack (as a training
    // pipeline would) carries the alias "challenger"; the config's challenger follows that alias with
    // weight 0.3 behind the same front URL; X-Model-Variant pins a request to either side. Removing
    // it again leaves the champion serving alone. (The bump above replaced version 1.)
    const trackingUri = `http://127.0.0.1:${mlflowPort}`;
    const outside = await mlflowPython<Registered>(
      trackingUri,
      "register",
      "iris",
      demoModel(0.01),
    );
    await mlflowPython(trackingUri, "alias", "iris", "challenger", outside.version);
    const challengerUri = `models:/iris/${outside.version}`;
    const iris2 = { name: "iris", source: demoModel(1.0), sampleInput: IRIS_ROW, registration: 2 };
    await engine.setModels([{ ...iris2, challenger: { alias: "challenger", weight: 0.3 } }]);
    const tc = Date.now();
    await engine.stack.up(engine.opts());
    const challengerUp = (Date.now() - tc) / 1000;
    expect(await entry()).toMatchObject({ version: "2", url: first.url });
    expect((await agentGet(apiUrl, "/models/iris")).body).toMatchObject({
      model_uri: "models:/iris/2",
      challenger: { model_uri: challengerUri, weight: 0.3 },
    });
    const split = await servedBy(first.url, 400);
    const challengerShare = (split[challengerUri] ?? 0) / 400;
    console.log(
      `agent e2e: challenger up ${challengerUp.toFixed(1)} s, split of 400 ${JSON.stringify(split)}`,
    );
    // Binomial(400, 0.3): a standard deviation of 0.023, so +-0.1 is over four of them.
    expect(split.failed).toBeUndefined();
    expect(challengerShare).toBeGreaterThan(0.2);
    expect(challengerShare).toBeLessThan(0.4);
    expect(await servedBy(first.url, 20, { "X-Model-Variant": "challenger" })).toEqual({
      [challengerUri]: 20,
    });
    expect(await servedBy(first.url, 20, { "X-Model-Variant": "champion" })).toEqual({
      "models:/iris/2": 20,
    });
    await engine.setModels([iris2]);
    await engine.stack.up(engine.opts());
    expect((await agentGet(apiUrl, "/models/iris")).body).toMatchObject({
      model_uri: "models:/iris/2",
      challenger: null,
      backend: { pid: before.body.backend.pid },
    });
    expect(await servedBy(first.url, 40)).toEqual({ "models:/iris/2": 40 });

    // 3a. kill -9 the agent: its supervisor starts it again, which adopts the backend, so the front
    // is back on the same URL with the same version and no `up`; refresh sees the same supervisor.
    const supervised = agentState();
    const firstAgent = agentChild(supervised.pid as number);
    process.kill(firstAgent, "SIGKILL");
    const backAt = Date.now();
    const back = await waitFor(async () => {
      const child = agentChild(supervised.pid as number, false);
      return child && child !== firstAgent && (await score(first.url)).status === 200 ? child : 0;
    }, 120_000);
    console.log(
      `agent e2e: kill -9 of the agent, serving again in ${(Date.now() - backAt) / 1000} s`,
    );
    expect(await score(first.url)).toEqual({ status: 200, uri: "models:/iris/2" });
    expect((await agentGet(apiUrl, "/models/iris")).body.backend.pid).toBe(before.body.backend.pid);
    await engine.stack.refresh(engine.opts());
    expect(agentState().pid).toBe(supervised.pid);

    // 3b. kill -9 the supervisor: its agent goes with it and the front goes down; refresh + up brings
    // it back on the same URL with the same version, the backend adopted (same pid), not restarted.
    const killed = agentState();
    process.kill(killed.pid as number, "SIGKILL");
    while (processGroupAlive(killed.pgid) || fs.existsSync(`/proc/${back}`)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await score(first.url)).status).toBe(0);
    await engine.stack.refresh(engine.opts());
    expect(engine.resource("LocalAgent")).toBeUndefined();
    await engine.stack.up(engine.opts());
    const revived = agentState();
    expect(revived.pid).not.toBe(killed.pid);
    const third = await entry();
    expect(third).toMatchObject({ version: "2", modelUri: "models:/iris/2", url: first.url });
    expect(await score(first.url)).toEqual({ status: 200, uri: "models:/iris/2" });
    const after = await agentGet(apiUrl, "/models/iris");
    // The backend outlived the agent and was adopted, not started again.
    expect(after.body.backend.pid).toBe(before.body.backend.pid);
    // The restarted agent is asked again (PUT), but the run inputs did not change: no new run.
    expect((await workflowOutput("iris-on-up")).lastExecutionId).toBe(onUp2.lastExecutionId);

    // 4. The token is nowhere in plaintext: checkpoint files, outputs, engine logs, the agent's argv
    // and environment, its backends' environment.
    expect(filesContaining(engine.backend, TOKEN)).toEqual([]);
    const outputs = await engine.cli(["stack", "output", "--json"]);
    expect(outputs.code).toBe(0);
    expect(outputs.stdout).not.toContain(TOKEN);
    expect(engine.logs.join("\n")).not.toContain(TOKEN);
    for (const pid of [revived.pid, agentChild(revived.pid as number), after.body.backend.pid]) {
      expect(fs.readFileSync(`/proc/${pid}/environ`, "utf8")).not.toContain(TOKEN);
      expect(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")).not.toContain(TOKEN);
    }
    const tokenFile = path.join(revived.dataDir, "token");
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);

    // 5. destroy: no agent, no backend, no listening port, no token file.
    await engine.stack.destroy(engine.opts());
    expect(groupsUsing(engine.cache)).toEqual([]);
    expect(processGroupAlive(revived.pgid)).toBe(false);
    expect(processGroupAlive(after.body.backend.pid)).toBe(false);
    for (const port of [mlflowPort, agentPort, ...fronts, ...backends]) {
      expect([port, await isPortFree("127.0.0.1", port)]).toEqual([port, true]);
    }
    expect(fs.existsSync(tokenFile)).toBe(false);
    // Each workflow was deleted on the agent before it stopped (its saved workflow store is empty).
    const store = JSON.parse(fs.readFileSync(path.join(revived.dataDir, "workflows.json"), "utf8"));
    expect(store.workflows).toEqual({});
  }, 1_500_000);
});
