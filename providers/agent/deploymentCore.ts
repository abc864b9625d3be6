import { containsUnknown, diffByKeys } from "../diffKeys";
import { AgentError, createAgentClient } from "./client";

/**
 * Core of the AgentDeployment dynamic provider: one model served by the MLOps agent (agent/), which
 * does the zero-downtime switch and the champion/challenger split itself.
 *
 * Contract
 * - id: `<agentUrl>/models/<modelName>`.
 * - replace: another agent URL, model name, fixed front port or public host (the stable URL changes).
 * - update in place = `PUT /models/<name>` again: a new model URI (the agent starts and verifies the new
 *   version, switches the front, drains the old one; the front URL stays), another challenger or
 *   weight, another sample, or another agent instance (a restarted agent: the PUT is idempotent and
 *   re-asserts what should run). A token or timeout change alone is only recorded.
 * - create = the same PUT; the agent answers when the version serves (or 422 with the backend's last
 *   log lines, and the old version keeps serving). A PUT is never retried after a 4xx.
 * - read = `GET /models/<name>`: 404 (the agent no longer serves it) is gone; what the agent reports
 *   (its model URI, challenger, front URL) replaces the state, so refresh shows a drift. An agent that
 *   does not answer is a warning, not a deletion (its next start adopts what it served).
 * - delete = `DELETE /models/<name>` (404 = already gone).
 * - The token is a secret input; it is kept in the state only as that secret.
 */

export interface ChallengerArgs {
  /** `models:/<name>/<version>` of the challenger. */
  modelUri: string;
  /** Share of the unpinned requests sent to it, 0 < weight < 1. */
  weight: number;
}

export interface AgentDeploymentArgs {
  agentUrl: string;
  /** Secret. */
  token: string;
  modelName: string;
  modelUri: string;
  challenger?: ChallengerArgs;
  /** The model's own port in the agent's front range; by default the agent picks one. */
  frontPort?: number;
  sampleInput?: Record<string, unknown>;
  /** `shared`: the model joins the agent's one multi-model worker (no challenger); default dedicated. */
  backend?: "dedicated" | "shared";
  /** The agent's backend start timeout; a PUT waits that long plus 60 s. */
  startTimeoutSeconds: number;
  /** Which agent process serves (its pid and start identity), so a restarted agent is PUT again. */
  agentInstance?: string;
  /** The host name clients use for the agent's fronts (an agent on a remote host reports its bind
   * address); by default the agent's own front URLs are kept. */
  publicHost?: string;
}

export interface AgentDeploymentState extends AgentDeploymentArgs {
  /** The stable scoring URL, `http://<host>:<front port>/invocations`. */
  url: string;
  /** The same model on the agent's API port, `.../models/<name>/invocations`. */
  pathUrl: string;
  servedPort: number;
  /** How the agent accepted the version: "sample_input", "ping" or "adopted". */
  verifiedWith: string;
}

/** The agent's `GET /models/<name>` answer (openapi.py ModelStatus), the parts used here. */
interface ModelStatus {
  model_uri: string;
  status: string;
  front_port: number;
  front_url: string;
  path_url: string;
  verified_with: string | null;
  challenger: { model_uri: string; weight: number } | null;
}

export function deploymentId(args: Pick<AgentDeploymentArgs, "agentUrl" | "modelName">): string {
  return `${args.agentUrl.replace(/\/+$/, "")}/models/${args.modelName}`;
}

/** The input problems, before anything changes (also in preview, with unknowns skipped). */
export function checkAgentDeployment(news: Partial<AgentDeploymentArgs>): {
  property: string;
  reason: string;
}[] {
  const failures: { property: string; reason: string }[] = [];
  const c = news.challenger;
  if (c !== undefined && c !== null && !containsUnknown(c)) {
    if (typeof c.weight !== "number" || !(c.weight > 0 && c.weight < 1)) {
      failures.push({
        property: "challenger",
        reason: `challenger.weight: must be between 0 and 1, exclusive (got ${JSON.stringify(c.weight)})`,
      });
    }
    if (c.modelUri === news.modelUri && !containsUnknown(c.modelUri)) {
      failures.push({
        property: "challenger",
        reason: `challenger: ${c.modelUri} is the champion's version; point the challenger at another version`,
      });
    }
  }
  return failures;
}

function client(args: Pick<AgentDeploymentArgs, "agentUrl" | "token" | "startTimeoutSeconds">) {
  return createAgentClient({
    url: args.agentUrl,
    token: args.token,
    // A PUT waits for a version to start: the agent's own start timeout plus its verification.
    timeoutMs: (args.startTimeoutSeconds + 60) * 1000,
  });
}

/** The agent's URL with the host clients use (publicHost), or as the agent reported it. */
export function withHost(url: string, publicHost: string | undefined): string {
  if (publicHost === undefined || publicHost === null) {
    return url;
  }
  const u = new URL(url);
  u.hostname = publicHost.includes(":") ? `[${publicHost}]` : publicHost;
  return u.toString();
}

/** The state after the agent's answer. No key holds `undefined` (the engine cannot store it). */
export function stateOf(args: AgentDeploymentArgs, status: ModelStatus): AgentDeploymentState {
  const { challenger: _recorded, ...rest } = args;
  void _recorded;
  return {
    ...rest,
    modelUri: status.model_uri,
    ...(status.challenger
      ? {
          challenger: {
            modelUri: status.challenger.model_uri,
            weight: status.challenger.weight,
          },
        }
      : {}),
    url: withHost(status.front_url, args.publicHost),
    pathUrl: withHost(status.path_url, args.publicHost),
    servedPort: status.front_port,
    verifiedWith: status.verified_with ?? "",
  };
}

/** create and the update that changes what runs: one PUT; the agent answers once it serves. */
export async function putDeployment(
  args: AgentDeploymentArgs,
  log: (msg: string) => void = () => undefined,
): Promise<AgentDeploymentState> {
  const body: Record<string, unknown> = { model_uri: args.modelUri };
  if (args.sampleInput !== undefined) {
    body.sample_input = args.sampleInput;
  }
  if (args.frontPort !== undefined) {
    body.front_port = args.frontPort;
  }
  if (args.backend !== undefined) {
    body.backend = args.backend;
  }
  if (args.challenger) {
    body.challenger = {
      model_uri: args.challenger.modelUri,
      weight: args.challenger.weight,
      ...(args.sampleInput !== undefined ? { sample_input: args.sampleInput } : {}),
    };
  }
  log(
    `deploying ${args.modelUri}${args.challenger ? ` and challenger ${args.challenger.modelUri} at ${args.challenger.weight}` : ""} as ${args.modelName} through the agent at ${args.agentUrl}`,
  );
  const status = await client(args).call<ModelStatus & { changed: boolean }>(
    "PUT",
    `/models/${encodeURIComponent(args.modelName)}`,
    { body },
  );
  log(`${args.modelName} serves ${status.model_uri} on ${status.front_url}`);
  return stateOf(args, status);
}

const REPLACE_KEYS = ["agentUrl", "modelName", "frontPort", "publicHost"] as const;
const UPDATE_KEYS = [
  "modelUri",
  "challenger",
  "sampleInput",
  "backend",
  "agentInstance",
  "token",
  "startTimeoutSeconds",
] as const;
/** Changes that need a PUT; the others are only recorded. */
const PUT_KEYS = ["modelUri", "challenger", "sampleInput", "backend", "agentInstance"] as const;

export function diffAgentDeployment(olds: AgentDeploymentState, news: AgentDeploymentArgs) {
  return diffByKeys<AgentDeploymentArgs, keyof AgentDeploymentArgs>(
    olds,
    news,
    REPLACE_KEYS,
    UPDATE_KEYS,
    false,
  );
}

export async function updateAgentDeployment(
  olds: AgentDeploymentState,
  news: AgentDeploymentArgs,
  log: (msg: string) => void = () => undefined,
): Promise<AgentDeploymentState> {
  const same = PUT_KEYS.every(
    (k) => JSON.stringify(olds[k] ?? null) === JSON.stringify(news[k] ?? null),
  );
  if (same) {
    return { ...olds, ...news };
  }
  return putDeployment(news, log);
}

/** read: see the contract. */
export async function readAgentDeployment(
  state: AgentDeploymentState,
  log: (msg: string) => void = () => undefined,
): Promise<AgentDeploymentState | undefined> {
  try {
    const status = await createAgentClient({
      url: state.agentUrl,
      token: state.token,
      retries: 1,
      timeoutMs: 10_000,
    }).call<ModelStatus>("GET", `/models/${encodeURIComponent(state.modelName)}`);
    return stateOf(state, status);
  } catch (err) {
    if (err instanceof AgentError && err.status === 404) {
      return undefined;
    }
    if (err instanceof AgentError && err.status === undefined) {
      log(`warning: ${err.message}; keeping ${state.modelName} as it was recorded`);
      return state;
    }
    throw err;
  }
}

export async function deleteAgentDeployment(state: AgentDeploymentState): Promise<void> {
  try {
    await createAgentClient({ url: state.agentUrl, token: state.token, timeoutMs: 120_000 }).call(
      "DELETE",
      `/models/${encodeURIComponent(state.modelName)}`,
    );
  } catch (err) {
    if (err instanceof AgentError && err.status === 404) {
      return;
    }
    throw err;
  }
}
