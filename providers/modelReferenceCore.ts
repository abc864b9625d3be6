import { containsUnknown, diffByKeys } from "./diffKeys";
import type { MlflowAuth } from "./mlflow/connection";

export type { MlflowAuth };
import { createMlflowClient, MlflowClient } from "./mlflow/client";
import { MlflowError } from "./mlflow/errors";
import { fromVersion } from "./mlflow/modelUri";
import * as registry from "./mlflow/registry";
import { firstRow } from "./servingExample";

/**
 * Core of the ModelReference dynamic provider: a model version the registry already holds, served
 * without registering anything.
 *
 * Contract
 * - id: `<model name>@<alias>` or `<model name>/<version>`.
 * - create/update: resolve the reference to a READY version; a missing model, version or alias is an
 *   error naming it. Nothing in the registry is created, changed or deleted, ever.
 * - diff: an alias is resolved again on every diff, so a plain `pulumi up` follows an alias moved in
 *   MLflow (an update that re-resolves); values unknown in preview are "maybe update". Never replace.
 * - read (refresh): resolves again; the state then carries the version the alias points to now, so
 *   `pulumi preview --refresh` shows the change and `up --refresh` redeploys it. While the server is
 *   unreachable the state is kept; a reference that resolves to nothing any more is reported gone
 *   (the next `up` then fails with the reason, and the servers keep what they serve).
 * - delete: nothing (only the deployment that serves the version goes away).
 */

export interface ModelReferenceArgs {
  trackingUri: string;
  /** Which registry `trackingUri` reaches; informational (a reference has nothing to replace). */
  registryId?: string;
  /** Secret. Falls back to the MLFLOW_TRACKING_* environment of the provider process. */
  auth?: MlflowAuth;
  name: string;
  /** Exactly one of version and alias. */
  version?: number;
  alias?: string;
}

export interface ModelReferenceState extends ModelReferenceArgs {
  /** The version served, e.g. "3" (for an alias: the one it pointed to when last resolved). */
  resolvedVersion: string;
  /** `models:/<name>/<resolvedVersion>` */
  modelUri: string;
  storageSource: string;
  runId: string;
  /** One row of the version's serving_input_example.json, as JSON text; "" when it has none. */
  servingExample: string;
}

export function referenceId(args: Pick<ModelReferenceArgs, "name" | "version" | "alias">): string {
  return args.alias !== undefined ? `${args.name}@${args.alias}` : `${args.name}/${args.version}`;
}

function describe(args: ModelReferenceArgs): string {
  return args.alias !== undefined
    ? `alias "${args.alias}" of model "${args.name}"`
    : `version ${args.version} of model "${args.name}"`;
}

function clientFor(args: ModelReferenceArgs): MlflowClient {
  return createMlflowClient({ trackingUri: args.trackingUri, auth: args.auth });
}

/** The version the reference names now, or undefined when it names nothing. */
async function lookUp(
  client: MlflowClient,
  args: ModelReferenceArgs,
): Promise<registry.ModelVersionInfo | undefined> {
  return args.alias !== undefined
    ? registry.getModelVersionByAlias(client, args.name, args.alias)
    : registry.getModelVersion(client, args.name, String(args.version));
}

/** Resolves the reference to a READY version and reads its serving example. */
export async function resolveReference(
  args: ModelReferenceArgs,
  log: (msg: string) => void = () => undefined,
): Promise<ModelReferenceState> {
  if ((args.version === undefined) === (args.alias === undefined)) {
    throw new Error(`registered: needs exactly one of version or alias for model "${args.name}"`);
  }
  const client = clientFor(args);
  const v = await lookUp(client, args);
  if (!v) {
    throw new Error(`registered: ${describe(args)} does not exist in ${client.baseUrl}`);
  }
  if (v.status !== "READY") {
    throw new Error(
      `registered: ${describe(args)} is version ${v.version}, which is ${v.status}, not READY`,
    );
  }
  const { source, runId, modelId } = fromVersion(v);
  log(`${describe(args)} is version ${v.version}`);
  return {
    ...args,
    resolvedVersion: v.version,
    modelUri: `models:/${args.name}/${v.version}`,
    storageSource: source,
    runId: runId ?? "",
    servingExample: await servingExample(client, v, modelId, log),
  };
}

/** One row of the version's serving_input_example.json, read through the artifact proxy. */
async function servingExample(
  client: MlflowClient,
  v: registry.ModelVersionInfo,
  modelId: string | undefined,
  log: (msg: string) => void,
): Promise<string> {
  let location = v.source;
  if (modelId && /^models:\//.test(v.source)) {
    location = (await registry.getLoggedModel(client, modelId))?.artifact_uri ?? "";
  }
  try {
    const example = await registry.readProxiedJson(
      client,
      `${location}/serving_input_example.json`,
    );
    return example !== null && typeof example === "object"
      ? JSON.stringify(firstRow(example as Record<string, unknown>))
      : "";
  } catch (err) {
    log(`no serving example for ${v.name} version ${v.version}: ${(err as Error).message}`);
    return "";
  }
}

export async function createModelReference(
  args: ModelReferenceArgs,
  log?: (msg: string) => void,
): Promise<{ id: string; outs: ModelReferenceState }> {
  return { id: referenceId(args), outs: await resolveReference(args, log) };
}

const UPDATE_KEYS = ["trackingUri", "registryId", "auth", "name", "version", "alias"] as const;

/** Changed inputs, or an alias that points elsewhere now: an update, never a replace. */
export async function diffModelReference(
  olds: ModelReferenceState,
  news: ModelReferenceArgs,
): Promise<{
  changes: boolean;
  replaces: string[];
  deleteBeforeReplace: boolean;
  detailedDiff?: Record<string, { kind: "update" }>;
}> {
  const diff = diffByKeys<ModelReferenceArgs, keyof ModelReferenceArgs>(
    olds,
    news,
    [],
    UPDATE_KEYS,
    false,
  );
  if (diff.changes || news.alias === undefined || containsUnknown(news)) {
    return diff;
  }
  let now: registry.ModelVersionInfo | undefined;
  try {
    now = await lookUp(clientFor(news), news);
  } catch (err) {
    if (err instanceof MlflowError && err.errorCode === "UNREACHABLE") {
      return diff;
    }
    throw err;
  }
  // Gone: an update, whose resolve then fails naming the alias (the servers keep what they serve).
  return now?.version === olds.resolvedVersion
    ? diff
    : {
        changes: true,
        replaces: [],
        deleteBeforeReplace: false,
        detailedDiff: { resolvedVersion: { kind: "update" } },
      };
}

export async function updateModelReference(
  olds: ModelReferenceState,
  news: ModelReferenceArgs,
  log?: (msg: string) => void,
): Promise<ModelReferenceState> {
  const state = await resolveReference(news, log);
  if (state.resolvedVersion !== olds.resolvedVersion && log) {
    log(
      `${referenceId(news)} moved from version ${olds.resolvedVersion} to ${state.resolvedVersion}`,
    );
  }
  return state;
}

/** What the registry says now; undefined when the reference names nothing any more. */
export async function readModelReference(
  state: ModelReferenceState,
  log: (msg: string) => void = () => undefined,
): Promise<ModelReferenceState | undefined> {
  try {
    return await resolveReference(state, log);
  } catch (err) {
    if (err instanceof MlflowError && err.errorCode === "UNREACHABLE") {
      return state;
    }
    if (err instanceof MlflowError) {
      throw err;
    }
    log((err as Error).message);
    return undefined;
  }
}
