import type { AxiosError } from "axios";
import * as http from "http";
import { shouldRetryAgent } from "../../providers/agent/client";
import {
  checkScoreWorkflow,
  deleteScoreWorkflow,
  diffScoreWorkflow,
  putWorkflow,
  readScoreWorkflow,
  runInputs,
  updateScoreWorkflow,
  type ScoreWorkflowArgs,
  type ScoreWorkflowState,
} from "../../providers/agent/workflowCore";
import { UNKNOWN } from "../../providers/diffKeys";
import { listenOnFreePort } from "../support/env";

// The ScoreWorkflow core (providers/agent/workflowCore.ts): diff rules, input checks, and create/
// update/read/delete against a scripted loopback server that answers as the agent's workflow routes
// do (agent/model_serving_agent/workflows/routes.py).
const TOKEN = "unit-agent-token-1234567890";

interface Hit {
  method: string;
  path: string;
  body: string;
}

async function scripted(answer: (hit: Hit, n: number) => { status: number; body: unknown }) {
  const hits: Hit[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const hit = { method: req.method!, path: req.url!, body };
      hits.push(hit);
      const a = answer(hit, hits.length);
      res.writeHead(a.status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(a.body));
    });
  });
  const port = await listenOnFreePort(server);
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const args = (extra: Partial<ScoreWorkflowArgs> = {}): ScoreWorkflowArgs => ({
  agentUrl: "http://127.0.0.1:1",
  token: TOKEN,
  workflowId: "iris-daily",
  modelUri: "models:/iris/2",
  input: "/data/in.csv",
  inputFormat: "csv",
  output: "/data/out.csv",
  outputFormat: "csv",
  batchSize: 32,
  maxConcurrentRuns: 1,
  timeoutSeconds: 60,
  executeOnUp: false,
  agentInstance: "4242:1",
  ...extra,
});
const state = (extra: Partial<ScoreWorkflowState> = {}): ScoreWorkflowState => ({
  ...args(),
  executedFor: "",
  lastExecutionId: "",
  lastExecutionStatus: "",
  lastExecutionError: "",
  ...extra,
});
const WORKFLOW = {
  id: "iris-daily",
  model_uri: "models:/iris/2",
  input: "/data/in.csv",
  input_format: "csv",
  output: "/data/out.csv",
  output_format: "csv",
  batch_size: 32,
  max_concurrent_runs: 1,
  timeout_seconds: 60.0,
};

describe("ScoreWorkflow diff: old outputs against new inputs", () => {
  it.each<[string, Partial<ScoreWorkflowArgs>, Partial<ScoreWorkflowState>, object]>([
    ["nothing changed", {}, {}, { changes: false, replaces: [] }],
    [
      "another token only (recorded)",
      { token: "another-token-0987654321" },
      {},
      { changes: true, replaces: [] },
    ],
    [
      "another agent URL (update, not replace)",
      { agentUrl: "http://mlflow:5100" },
      {},
      { changes: true, replaces: [] },
    ],
    ["another model version", { modelUri: "models:/iris/3" }, {}, { changes: true, replaces: [] }],
    [
      "another workflow id",
      { workflowId: "iris-weekly" },
      {},
      { changes: true, replaces: ["workflowId"] },
    ],
    [
      "an unknown workflow id in preview",
      { workflowId: UNKNOWN },
      {},
      { changes: true, replaces: [] },
    ],
    ["an unknown model URI in preview", { modelUri: UNKNOWN }, {}, { changes: true, replaces: [] }],
    [
      "executeOnUp whose last successful run had these inputs",
      { executeOnUp: true },
      { executeOnUp: true, executedFor: runInputs(args()) },
      { changes: false, replaces: [] },
    ],
    [
      "executeOnUp whose last run failed (still due)",
      { executeOnUp: true },
      { executeOnUp: true, executedFor: "", lastExecutionStatus: "failed" },
      { changes: true, replaces: [] },
    ],
    ["executeOnUp turned off", {}, { executeOnUp: true }, { changes: true, replaces: [] }],
  ])("%s", (_, news, olds, expected) => {
    expect(diffScoreWorkflow(state(olds), args(news))).toEqual({
      deleteBeforeReplace: false,
      ...expected,
    });
  });
});

describe("ScoreWorkflow check", () => {
  it("names the field and value, and skips unknowns", () => {
    expect(
      checkScoreWorkflow({
        workflowId: "-x",
        inputFormat: "xlsx" as never,
        batchSize: 0,
        modelUri: "runs:/abc/model",
      }),
    ).toEqual([
      {
        property: "workflowId",
        reason:
          'workflowId: must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit (got "-x")',
      },
      {
        property: "inputFormat",
        reason: 'inputFormat: must be one of "csv", "parquet", "jsonl" (got "xlsx")',
      },
      {
        property: "batchSize",
        reason: "batchSize: must be a whole number from 1 to 1000000 (got 0)",
      },
      {
        property: "modelUri",
        reason:
          'modelUri: must be models:/<name>/<version> or models:/<name>@<alias> (got "runs:/abc/model")',
      },
    ]);
    expect(checkScoreWorkflow({ ...args(), modelUri: UNKNOWN, workflowId: UNKNOWN })).toEqual([]);
    expect(checkScoreWorkflow(args({ modelUri: "models:/iris@champion" }))).toEqual([]);
  });
});

describe("ScoreWorkflow against a scripted agent", () => {
  let server: Awaited<ReturnType<typeof scripted>> | undefined;
  afterEach(async () => server?.close());

  it("create PUTs the spec and, without executeOnUp, runs nothing", async () => {
    server = await scripted(() => ({ status: 200, body: { ...WORKFLOW, changed: true } }));
    const out = await putWorkflow(args({ agentUrl: server.url }), undefined);
    expect(server.hits.map((h) => `${h.method} ${h.path}`)).toEqual([
      "PUT /api/v1/workflows/iris-daily",
    ]);
    expect(JSON.parse(server.hits[0].body)).toEqual({
      model_uri: "models:/iris/2",
      input: "/data/in.csv",
      input_format: "csv",
      output: "/data/out.csv",
      output_format: "csv",
      batch_size: 32,
      max_concurrent_runs: 1,
      timeout_seconds: 60,
    });
    expect(out).toMatchObject({ executedFor: "", lastExecutionId: "", lastExecutionStatus: "" });
  });

  it("executeOnUp runs the guide's body, polls to the end and records the run", async () => {
    server = await scripted((hit, n) =>
      hit.method === "PUT"
        ? { status: 200, body: WORKFLOW }
        : hit.method === "POST"
          ? { status: 202, body: { executionId: "e1", status: "queued", statusUrl: "/x" } }
          : n < 4
            ? { status: 200, body: { id: "e1", status: "running", error: null } }
            : {
                status: 200,
                body: { id: "e1", status: "succeeded", error: null, rows_out: 150, output: "/o" },
              },
    );
    const a = args({ agentUrl: server.url, executeOnUp: true });
    const out = await putWorkflow(a, undefined, undefined, 10);
    expect(server.hits.map((h) => `${h.method} ${h.path}`)).toEqual([
      "PUT /api/v1/workflows/iris-daily",
      "POST /api/v1/workflow/execute",
      "GET /api/v1/workflow/executions/e1",
      "GET /api/v1/workflow/executions/e1",
    ]);
    expect(JSON.parse(server.hits[1].body)).toEqual({
      workflowId: "iris-daily",
      programParameters: "",
      sparkConfig: {},
      libJars: [],
      emailOnSuccess: [],
      emailOnFailure: [],
    });
    expect(out).toMatchObject({
      executedFor: runInputs(a),
      lastExecutionId: "e1",
      lastExecutionStatus: "succeeded",
      lastExecutionError: "",
    });
    // The same inputs again, the agent restarted: PUT again, no second run.
    server.hits.length = 0;
    const again = await updateScoreWorkflow(out, { ...a, agentInstance: "999:2" });
    expect(server.hits.map((h) => h.method)).toEqual(["PUT"]);
    expect(again.lastExecutionId).toBe("e1");
    // Only the token changed: nothing is called.
    server.hits.length = 0;
    await updateScoreWorkflow(again, { ...a, agentInstance: "999:2", token: "t".repeat(20) });
    expect(server.hits).toEqual([]);
  });

  it("a failed run rejects with the execution's error and partial state that keeps the run due", async () => {
    const error = "ValueError: input /data/in.csv does not exist on the agent's host";
    server = await scripted((hit) =>
      hit.method === "PUT"
        ? { status: 200, body: WORKFLOW }
        : hit.method === "POST"
          ? { status: 202, body: { executionId: "e2", status: "queued", statusUrl: "/x" } }
          : { status: 200, body: { id: "e2", status: "failed", error } },
    );
    const a = args({ agentUrl: server.url, executeOnUp: true });
    const err = (await putWorkflow(a, undefined, undefined, 10).catch((e) => e)) as Error & {
      id: string;
      properties: ScoreWorkflowState;
      reasons: string[];
    };
    const message = `workflow iris-daily: execution e2 failed: ${error}`;
    expect(err.message).toBe(message);
    expect(err.reasons).toEqual([message]);
    expect(err.id).toBe("iris-daily");
    expect(err.properties).toMatchObject({
      workflowId: "iris-daily",
      executedFor: "",
      lastExecutionId: "e2",
      lastExecutionStatus: "failed",
      lastExecutionError: error,
    });
    expect(diffScoreWorkflow(err.properties, a).changes).toBe(true);
  });

  it("an execute the agent refuses names the agent's message", async () => {
    server = await scripted((hit) =>
      hit.method === "PUT"
        ? { status: 200, body: WORKFLOW }
        : { status: 400, body: { error: "programParameters: unrecognized arguments: --x" } },
    );
    const err = (await putWorkflow(
      args({ agentUrl: server.url, executeOnUp: true }),
      undefined,
      undefined,
      10,
    ).catch((e) => e)) as Error & { properties: ScoreWorkflowState };
    expect(err.message).toBe(
      "agent POST /api/v1/workflow/execute failed with 400: programParameters: unrecognized arguments: --x",
    );
    expect(err.properties.workflowId).toBe("iris-daily");
    expect(server.hits.filter((h) => h.method === "POST")).toHaveLength(1);
  });

  it("read: 404 is gone, the agent's spec replaces the state, an unreachable agent keeps it", async () => {
    server = await scripted((_, n) =>
      n === 1
        ? { status: 404, body: { error: "workflow iris-daily is not declared" } }
        : { status: 200, body: { ...WORKFLOW, batch_size: 64, input: "/data/other.csv" } },
    );
    const s = state({ agentUrl: server.url });
    await expect(readScoreWorkflow(s)).resolves.toBeUndefined();
    await expect(readScoreWorkflow(s)).resolves.toEqual({
      ...s,
      batchSize: 64,
      input: "/data/other.csv",
    });
    const logs: string[] = [];
    const down = state({ agentUrl: "http://127.0.0.1:9" });
    await expect(readScoreWorkflow(down, (m) => logs.push(m))).resolves.toEqual(down);
    expect(logs).toEqual([
      "warning: the agent at http://127.0.0.1:9 is unreachable (ECONNREFUSED) on GET /api/v1/workflows/iris-daily; keeping workflow iris-daily as it was recorded",
    ]);
  });

  it("delete: DELETE, 404 is already gone, 409 names the active runs", async () => {
    server = await scripted((_, n) =>
      n === 1
        ? { status: 200, body: { id: "iris-daily", deleted: true } }
        : n === 2
          ? { status: 404, body: { error: "workflow iris-daily is not declared" } }
          : {
              status: 409,
              body: { error: "workflow iris-daily has executions queued or running: e3" },
            },
    );
    const s = state({ agentUrl: server.url });
    await deleteScoreWorkflow(s);
    await deleteScoreWorkflow(s);
    await expect(deleteScoreWorkflow(s)).rejects.toThrow(
      "agent DELETE /api/v1/workflows/iris-daily failed with 409: workflow iris-daily has executions queued or running: e3",
    );
    expect(server.hits.map((h) => `${h.method} ${h.path}`)).toEqual([
      "DELETE /api/v1/workflows/iris-daily",
      "DELETE /api/v1/workflows/iris-daily",
      "DELETE /api/v1/workflows/iris-daily",
    ]);
  });
});

describe("the agent client's POST (a workflow execute is not idempotent)", () => {
  const failure = (code: string | undefined, status?: number) =>
    ({
      config: { method: "post" },
      code,
      response: status === undefined ? undefined : { status },
      isAxiosError: true,
    }) as unknown as AxiosError;
  it.each<[string, string | undefined, number | undefined, boolean]>([
    ["a refused connection (never reached the agent)", "ECONNREFUSED", undefined, true],
    ["a reset connection (may have reached it)", "ECONNRESET", undefined, false],
    ["a timeout", "ECONNABORTED", undefined, false],
    ["a 503", undefined, 503, false],
    ["a 502", undefined, 502, false],
  ])("%s", (_, code, status, retried) => {
    expect(shouldRetryAgent(failure(code, status))).toBe(retried);
  });
});
