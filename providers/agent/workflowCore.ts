import { containsUnknown, diffByKeys } from "../diffKeys";
import { AgentError, createAgentClient } from "./client";

/**
 * Core of the ScoreWorkflow dynamic provider: one score workflow declared on the MLOps agent
 * (agent/model_serving_agent/workflows/, `/api/v1/workflows/<id>`).
 *
 * Contract
 * - id: the workflow id (the agent's own key for it).
 * - replace: another workflow id only.
 * - update in place = `PUT /api/v1/workflows/<id>` again (idempotent on the agent): another model URI,
 *   input, output, format, batch size, run limit or run timeout; another agent URL (the workflow is
 *   declared on the new URL; one at the old URL is left alone: it may be the same agent under
 *   another name); another agent instance (a restarted agent is asked again). A token change, or
 *   `executeOnUp` turned off, is only recorded.
 * - executeOnUp: after the PUT, when the run inputs (model URI, input, output, formats, batch size)
 *   differ from those of the last successful run, one execution with the user guide's body is
 *   queued and polled to its end (deadline: the workflow's timeoutSeconds + 120 s for the queue).
 *   A failed run fails create/update with the execution's error text and partial state (the
 *   workflow stays recorded, `executedFor` keeps the last successful inputs), so the next `up`
 *   runs it again. lastExecutionId/Status/Error record the latest run this provider started.
 * - read = `GET /api/v1/workflows/<id>`: 404 is gone (refresh drops it, the next up declares it
 *   again); what the agent reports replaces the spec in the state, so refresh shows a drift. An
 *   agent that does not answer is a warning, not a deletion.
 * - delete = `DELETE /api/v1/workflows/<id>` (404 = already gone; 409 while a run is active is an
 *   error naming the executions).
 * - The token is a secret input; it is kept in the state only as that secret.
 */

export type WorkflowFormat = "csv" | "parquet" | "jsonl";

export interface ScoreWorkflowArgs {
  agentUrl: string;
  /** Secret. */
  token: string;
  workflowId: string;
  /** `models:/<name>/<version>` (or `models:/<name>@<alias>`, resolved by the agent per run). */
  modelUri: string;
  input: string;
  inputFormat: WorkflowFormat;
  output: string;
  outputFormat: WorkflowFormat;
  batchSize: number;
  maxConcurrentRuns: number;
  timeoutSeconds: number;
  executeOnUp: boolean;
  /** Which agent process serves (LocalAgent.instance), so a restarted agent is PUT again. */
  agentInstance?: string;
}

export interface ScoreWorkflowState extends ScoreWorkflowArgs {
  /** The run inputs of the last successful executeOnUp run ("" when none). */
  executedFor: string;
  lastExecutionId: string;
  /** "" (none), "succeeded" or "failed". */
  lastExecutionStatus: string;
  lastExecutionError: string;
}

/** The agent's workflow (GET/PUT /api/v1/workflows/<id>, spec.py WorkflowSpec). */
interface AgentWorkflow {
  id: string;
  model_uri: string;
  input: string;
  input_format: WorkflowFormat;
  output: string;
  output_format: WorkflowFormat;
  batch_size: number;
  max_concurrent_runs: number;
  timeout_seconds: number;
}

/** The agent's execution record (GET /api/v1/workflow/executions/<id>), the parts used here. */
export interface AgentExecution {
  id: string;
  status: "queued" | "running" | "succeeded" | "failed";
  error: string | null;
  rows_in?: number;
  rows_out?: number;
  output?: string;
}

const WORKFLOW_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const FORMATS = ["csv", "parquet", "jsonl"];

export function workflowPath(workflowId: string): string {
  return `/api/v1/workflows/${encodeURIComponent(workflowId)}`;
}

/** The input problems, before anything changes (also in preview, with unknowns skipped). */
export function checkScoreWorkflow(news: Partial<ScoreWorkflowArgs>): {
  property: string;
  reason: string;
}[] {
  const failures: { property: string; reason: string }[] = [];
  const known = (k: keyof ScoreWorkflowArgs) => news[k] !== undefined && !containsUnknown(news[k]);
  if (known("workflowId") && !WORKFLOW_ID.test(String(news.workflowId))) {
    failures.push({
      property: "workflowId",
      reason: `workflowId: must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit (got ${JSON.stringify(news.workflowId)})`,
    });
  }
  for (const k of ["inputFormat", "outputFormat"] as const) {
    if (known(k) && !FORMATS.includes(String(news[k]))) {
      failures.push({
        property: k,
        reason: `${k}: must be one of "csv", "parquet", "jsonl" (got ${JSON.stringify(news[k])})`,
      });
    }
  }
  if (
    known("batchSize") &&
    !(Number.isInteger(news.batchSize) && news.batchSize! >= 1 && news.batchSize! <= 1_000_000)
  ) {
    failures.push({
      property: "batchSize",
      reason: `batchSize: must be a whole number from 1 to 1000000 (got ${JSON.stringify(news.batchSize)})`,
    });
  }
  if (known("modelUri") && !/^models:\/[^/@]+(@[A-Za-z0-9_-]+|\/[0-9]+)$/.test(news.modelUri!)) {
    failures.push({
      property: "modelUri",
      reason: `modelUri: must be models:/<name>/<version> or models:/<name>@<alias> (got ${JSON.stringify(news.modelUri)})`,
    });
  }
  return failures;
}

/** The inputs a run depends on: executeOnUp runs again when these change. */
export function runInputs(args: ScoreWorkflowArgs): string {
  return JSON.stringify([
    args.modelUri,
    args.input,
    args.inputFormat,
    args.output,
    args.outputFormat,
    args.batchSize,
  ]);
}

/** The PUT body (spec.py WorkflowSpec). */
export function workflowBody(args: ScoreWorkflowArgs): Record<string, unknown> {
  return {
    model_uri: args.modelUri,
    input: args.input,
    input_format: args.inputFormat,
    output: args.output,
    output_format: args.outputFormat,
    batch_size: args.batchSize,
    max_concurrent_runs: args.maxConcurrentRuns,
    timeout_seconds: args.timeoutSeconds,
  };
}

/** The user guide's execute body for `workflowId`, with no per-run override. */
export function executeBody(workflowId: string, programParameters = ""): Record<string, unknown> {
  return {
    workflowId,
    programParameters,
    sparkConfig: {},
    libJars: [],
    emailOnSuccess: [],
    emailOnFailure: [],
  };
}

function client(args: Pick<ScoreWorkflowArgs, "agentUrl" | "token">, timeoutMs = 30_000) {
  return createAgentClient({ url: args.agentUrl, token: args.token, timeoutMs });
}

const NO_RUN = {
  executedFor: "",
  lastExecutionId: "",
  lastExecutionStatus: "",
  lastExecutionError: "",
};

/** Runs the workflow once and waits for its end; resolves with the final execution record. */
export async function executeAndWait(
  args: ScoreWorkflowArgs,
  log: (msg: string) => void = () => undefined,
  pollMs = 1_000,
): Promise<AgentExecution> {
  const c = client(args);
  const queued = await c.call<{ executionId: string; statusUrl: string }>(
    "POST",
    "/api/v1/workflow/execute",
    { body: executeBody(args.workflowId) },
  );
  log(`workflow ${args.workflowId}: execution ${queued.executionId} queued`);
  const deadlineSeconds = args.timeoutSeconds + 120;
  const started = Date.now();
  let lastLog = started;
  for (;;) {
    const e = await c.call<AgentExecution>(
      "GET",
      `/api/v1/workflow/executions/${encodeURIComponent(queued.executionId)}`,
    );
    if (e.status === "succeeded" || e.status === "failed") {
      return { ...e, id: queued.executionId };
    }
    if (Date.now() - started > deadlineSeconds * 1000) {
      throw new Error(
        `workflow ${args.workflowId}: execution ${queued.executionId} still ${e.status} after ` +
          `${deadlineSeconds} s (timeoutSeconds + 120 s); see GET ${args.agentUrl}/api/v1/workflow/executions/${queued.executionId}`,
      );
    }
    if (Date.now() - lastLog >= 15_000) {
      lastLog = Date.now();
      log(
        `workflow ${args.workflowId}: execution ${queued.executionId} ${e.status}, ${e.rows_out ?? 0} rows scored`,
      );
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * create and the update that changes the spec: one PUT, then the executeOnUp run when it is due.
 * `previous` is the state before (update) or undefined (create).
 */
export async function putWorkflow(
  args: ScoreWorkflowArgs,
  previous: ScoreWorkflowState | undefined,
  log: (msg: string) => void = () => undefined,
  pollMs = 1_000,
): Promise<ScoreWorkflowState> {
  const put = previous === undefined || putNeeded(previous, args);
  if (put) {
    log(
      `declaring workflow ${args.workflowId} (${args.modelUri}) on the agent at ${args.agentUrl}`,
    );
    await client(args).call("PUT", workflowPath(args.workflowId), { body: workflowBody(args) });
  }
  const recorded = {
    ...NO_RUN,
    ...(previous === undefined
      ? {}
      : {
          executedFor: previous.executedFor ?? "",
          lastExecutionId: previous.lastExecutionId ?? "",
          lastExecutionStatus: previous.lastExecutionStatus ?? "",
          lastExecutionError: previous.lastExecutionError ?? "",
        }),
  };
  const state: ScoreWorkflowState = { ...args, ...recorded };
  if (!runDue(state, args)) {
    return state;
  }
  let e: AgentExecution;
  try {
    e = await executeAndWait(args, log, pollMs);
  } catch (err) {
    throw partial(state, (err as Error).message);
  }
  const ran: ScoreWorkflowState = {
    ...state,
    lastExecutionId: e.id,
    lastExecutionStatus: e.status,
    lastExecutionError: e.error ?? "",
  };
  if (e.status === "failed") {
    throw partial(
      ran,
      `workflow ${args.workflowId}: execution ${e.id} failed: ${e.error ?? "no error text"}`,
    );
  }
  log(
    `workflow ${args.workflowId}: execution ${e.id} succeeded, ${e.rows_out ?? 0} rows to ${e.output}`,
  );
  return { ...ran, executedFor: runInputs(args) };
}

/** Pulumi's ErrorResourceInitFailed: the workflow exists on the agent; the state says so. */
function partial(state: ScoreWorkflowState, message: string): Error {
  return Object.assign(new Error(message), {
    id: state.workflowId,
    properties: state,
    reasons: [message],
  });
}

const PUT_KEYS = [
  "agentUrl",
  "modelUri",
  "input",
  "inputFormat",
  "output",
  "outputFormat",
  "batchSize",
  "maxConcurrentRuns",
  "timeoutSeconds",
  "agentInstance",
] as const;

function putNeeded(olds: ScoreWorkflowState, news: ScoreWorkflowArgs): boolean {
  return PUT_KEYS.some((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null));
}

/** executeOnUp is on and the last successful run was not for these run inputs. */
export function runDue(olds: Partial<ScoreWorkflowState>, news: ScoreWorkflowArgs): boolean {
  return news.executeOnUp === true && olds.executedFor !== runInputs(news);
}

export function diffScoreWorkflow(olds: ScoreWorkflowState, news: ScoreWorkflowArgs) {
  const d = diffByKeys<ScoreWorkflowArgs, keyof ScoreWorkflowArgs>(
    olds,
    news,
    ["workflowId"],
    [...PUT_KEYS, "token", "executeOnUp"],
    false,
  );
  // A run that is due (never ran for these inputs, or failed last time) is an update of its own.
  return { ...d, changes: d.changes || runDue(olds, news) };
}

export async function updateScoreWorkflow(
  olds: ScoreWorkflowState,
  news: ScoreWorkflowArgs,
  log: (msg: string) => void = () => undefined,
  pollMs = 1_000,
): Promise<ScoreWorkflowState> {
  return putWorkflow(news, olds, log, pollMs);
}

/** read: see the contract. */
export async function readScoreWorkflow(
  state: ScoreWorkflowState,
  log: (msg: string) => void = () => undefined,
): Promise<ScoreWorkflowState | undefined> {
  let w: AgentWorkflow;
  try {
    w = await createAgentClient({
      url: state.agentUrl,
      token: state.token,
      retries: 1,
      timeoutMs: 10_000,
    }).call<AgentWorkflow>("GET", workflowPath(state.workflowId));
  } catch (err) {
    if (err instanceof AgentError && err.status === 404) {
      return undefined;
    }
    if (err instanceof AgentError && err.status === undefined) {
      log(`warning: ${err.message}; keeping workflow ${state.workflowId} as it was recorded`);
      return state;
    }
    throw err;
  }
  return {
    ...state,
    modelUri: w.model_uri,
    input: w.input,
    inputFormat: w.input_format,
    output: w.output,
    outputFormat: w.output_format,
    batchSize: w.batch_size,
    maxConcurrentRuns: w.max_concurrent_runs,
    timeoutSeconds: w.timeout_seconds,
  };
}

export async function deleteScoreWorkflow(state: ScoreWorkflowState): Promise<void> {
  try {
    await client(state).call("DELETE", workflowPath(state.workflowId));
  } catch (err) {
    if (err instanceof AgentError && err.status === 404) {
      return;
    }
    throw err;
  }
}
