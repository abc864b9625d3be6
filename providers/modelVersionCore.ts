import * as crypto from "crypto";
import { diffByKeys } from "./diffKeys";
import { createMlflowClient, MlflowClient } from "./mlflow/client";
import { MlflowError } from "./mlflow/errors";
import * as registry from "./mlflow/registry";
import { hashSource, isSourceUri, sourceProblem } from "./modelSource";

/**
 * Core of the ModelVersion dynamic provider: plain functions, unit- and integration-tested directly.
 *
 * Contract
 * - id: `<model name>/<version>`.
 * - replace: a new `sourceHash` (the model changed), a new `registration` counter (re-register the same
 *   source), another `name` or `trackingUri`. The replacement registers a new version first, then the old
 *   version is deleted, unless the replacement adopted that very version (same source and counter in the
 *   same registry, e.g. reached through another tracking URI): each create claims its version with a
 *   tag, and delete leaves a version claimed by another resource alone.
 * - update in place: aliases, tags, description, credentials, timeouts.
 * - delete: deletes the version; when the registered model was created by this project (tag
 *   `model_serving.managed`) and has no versions left, deletes it too. Use `retainOnDelete` to keep it.
 * - read: reports the version as gone when MLflow no longer has it.
 */

export interface MlflowAuth {
  username?: string;
  password?: string;
  token?: string;
}

export interface ModelVersionArgs {
  trackingUri: string;
  /** Secret. Falls back to the MLFLOW_TRACKING_* environment of the provider process. */
  auth?: MlflowAuth;
  name: string;
  /** Local MLflow model directory, or a runs:/, models:/ or artifact URI. */
  source: string;
  /** hashSource(source), computed by the program so previews see source changes. */
  sourceHash: string;
  aliases: string[];
  tags: Record<string, string>;
  description: string;
  /** Bump to register the same source again as a new version. */
  registration: number;
  experimentName: string;
  readyTimeoutSeconds: number;
}

export interface ModelVersionState extends ModelVersionArgs {
  /** This resource's claim on the version (tag model_serving.claim). */
  claim?: string;
  version: string;
  modelUri: string;
  runId: string;
  storageSource: string;
}

export const TAG_SOURCE_HASH = "model_serving.source_hash";
export const TAG_REGISTRATION = "model_serving.registration";
export const TAG_MANAGED = "model_serving.managed";
/** Which resource instance owns a version (a random token per create, kept in its state). */
export const TAG_CLAIM = "model_serving.claim";

export function modelVersionId(name: string, version: string): string {
  return `${name}/${version}`;
}

/** A client for the resource's connection input, under the one credential policy
 * (providers/mlflow/connection.ts: `auth` wins, else MLFLOW_TRACKING_* of the provider process). */
export function clientFor(args: { trackingUri: string; auth?: MlflowAuth }): MlflowClient {
  return createMlflowClient({ trackingUri: args.trackingUri, auth: args.auth });
}

/** Registers a version (or adopts the one an interrupted earlier attempt registered) and applies
 * aliases; waits until MLflow reports it READY. */
export async function createModelVersion(
  args: ModelVersionArgs,
  log: (msg: string) => void = () => undefined,
): Promise<{ id: string; outs: ModelVersionState }> {
  const problem = sourceProblem("source", args.source);
  if (problem) {
    throw new Error(problem);
  }
  const client = clientFor(args);
  const registration = String(args.registration);

  const existing = (await registry.searchModelVersions(client, args.name)).find(
    (v) =>
      tagValue(v, TAG_SOURCE_HASH) === args.sourceHash &&
      tagValue(v, TAG_REGISTRATION) === registration &&
      v.status !== "FAILED_REGISTRATION",
  );
  let version: registry.ModelVersionInfo;
  if (existing) {
    log(
      `adopting ${args.name} version ${existing.version} registered earlier from the same source`,
    );
    version = existing;
  } else {
    const { source, runId } = await resolveStorageSource(client, args, log);
    await registry.ensureRegisteredModel(client, args.name, { [TAG_MANAGED]: "true" });
    version = await registry.createModelVersion(client, {
      name: args.name,
      source,
      runId,
      description: args.description || undefined,
      tags: { ...args.tags, [TAG_SOURCE_HASH]: args.sourceHash, [TAG_REGISTRATION]: registration },
    });
    log(`registered ${args.name} version ${version.version}`);
  }

  const outs: ModelVersionState = {
    ...args,
    claim: crypto.randomUUID(),
    version: version.version,
    modelUri: `models:/${args.name}/${version.version}`,
    runId: version.run_id ?? "",
    storageSource: version.source,
  };
  const id = modelVersionId(args.name, version.version);
  try {
    await registry.setModelVersionTag(client, args.name, version.version, TAG_CLAIM, outs.claim!);
    await waitUntilReady(client, args.name, version.version, args.readyTimeoutSeconds);
    for (const alias of args.aliases) {
      await registry.setAlias(client, args.name, alias, version.version);
    }
  } catch (err) {
    // The version exists: report it with the failure, so Pulumi keeps it in state instead of losing it.
    throw Object.assign(new Error((err as Error).message), {
      id,
      properties: outs,
      reasons: [(err as Error).message],
    });
  }
  return { id, outs };
}

function tagValue(v: registry.ModelVersionInfo, key: string): string | undefined {
  return v.tags?.find((t) => t.key === key)?.value;
}

/** Turns the configured source into what MLflow stores: uploads a local directory as run artifacts,
 * resolves runs:/ and models:/ URIs, passes other artifact URIs through. */
async function resolveStorageSource(
  client: MlflowClient,
  args: ModelVersionArgs,
  log: (msg: string) => void,
): Promise<{ source: string; runId?: string }> {
  if (!isSourceUri(args.source)) {
    const experimentId = await registry.ensureExperiment(client, args.experimentName);
    const run = await registry.createRun(client, experimentId, `register-${args.name}`, {
      [TAG_SOURCE_HASH]: args.sourceHash,
      "mlflow.source.name": "model-serving",
    });
    log(`uploading ${args.source} to run ${run.runId}`);
    try {
      await registry.uploadArtifacts(client, run.artifactUri, args.source, "model");
      await registry.finishRun(client, run.runId);
    } catch (err) {
      await registry.finishRun(client, run.runId, "FAILED").catch(() => undefined);
      throw err;
    }
    return { source: `${run.artifactUri}/model`, runId: run.runId };
  }
  const runs = /^runs:\/([^/]+)\/?(.*)$/.exec(args.source);
  if (runs) {
    const res = await client.call<{ run: { info: { artifact_uri: string } } }>(
      "GET",
      "/api/2.0/mlflow/runs/get",
      { query: { run_id: runs[1] }, idempotent: true },
    );
    return {
      source: `${res.run.info.artifact_uri}/${runs[2]}`.replace(/\/+$/, ""),
      runId: runs[1],
    };
  }
  const models = /^models:\/([^/]+)\/([^/]+)$/.exec(args.source);
  if (models) {
    const v = await registry.getModelVersion(client, models[1], models[2]);
    if (!v) {
      throw new Error(`source: model version ${args.source} does not exist in ${client.baseUrl}`);
    }
    return { source: v.source, runId: v.run_id || undefined };
  }
  return { source: args.source };
}

async function waitUntilReady(
  client: MlflowClient,
  name: string,
  version: string,
  timeoutSeconds: number,
): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const v = await registry.getModelVersion(client, name, version);
    if (v?.status === "READY") {
      return;
    }
    if (v?.status === "FAILED_REGISTRATION") {
      throw new Error(`MLflow failed to register ${name} version ${version}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutSeconds}s waiting for ${name} version ${version} to become READY ` +
          `(status ${v?.status ?? "missing"})`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

const REPLACE_KEYS = ["name", "trackingUri", "sourceHash", "registration"] as const;
const UPDATE_KEYS = [
  "source",
  "aliases",
  "tags",
  "description",
  "auth",
  "experimentName",
  "readyTimeoutSeconds",
] as const;

/** Which inputs changed, and which of them force a new version. Compares old outputs to new inputs. */
export function diffModelVersion(
  olds: ModelVersionState,
  news: ModelVersionArgs,
): { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean } {
  // Register first, delete the old version after: a bad new input (say an unreachable tracking URI)
  // then fails before anything the stack had is gone. See `claim` for the same-registry case.
  return diffByKeys<ModelVersionArgs, keyof ModelVersionArgs>(
    olds,
    news,
    REPLACE_KEYS,
    UPDATE_KEYS,
    false,
  );
}

/** Applies alias, tag and description changes to the existing version. */
export async function updateModelVersion(
  olds: ModelVersionState,
  news: ModelVersionArgs,
): Promise<ModelVersionState> {
  const client = clientFor(news);
  const { name, version } = olds;
  for (const alias of olds.aliases.filter((a) => !news.aliases.includes(a))) {
    await registry.deleteAliasIfOwned(client, name, alias, version);
  }
  for (const alias of news.aliases) {
    await registry.setAlias(client, name, alias, version);
  }
  for (const key of Object.keys(olds.tags).filter((k) => !(k in news.tags))) {
    await registry.deleteModelVersionTag(client, name, version, key);
  }
  for (const [key, value] of Object.entries(news.tags)) {
    if (olds.tags[key] !== value) {
      await registry.setModelVersionTag(client, name, version, key, value);
    }
  }
  if (olds.description !== news.description) {
    await registry.updateModelVersionDescription(client, name, version, news.description);
  }
  return { ...olds, ...news };
}

/** What MLflow really has: undefined when the version is gone. Aliases are re-read from MLflow so a
 * refresh shows an alias moved by hand. While the tracking server is unreachable (a local server
 * after a reboot, which the same refresh reports gone) the version is kept as it was: nothing can be
 * verified, and the server's data directory still holds it. */
export async function readModelVersion(
  state: ModelVersionState,
): Promise<ModelVersionState | undefined> {
  let v: registry.ModelVersionInfo | undefined;
  try {
    v = await registry.getModelVersion(clientFor(state), state.name, state.version);
  } catch (err) {
    if (err instanceof MlflowError && err.errorCode === "UNREACHABLE") {
      return state;
    }
    throw err;
  }
  if (!v) {
    return undefined;
  }
  const ownAliases = (v.aliases ?? []).filter((a) => state.aliases.includes(a));
  return { ...state, aliases: ownAliases, description: v.description ?? "" };
}

/** Deletes the version and, if this project created the registered model and it is now empty, the
 * model. A version already deleted out of band is fine. */
export async function deleteModelVersion(state: ModelVersionState): Promise<void> {
  const client = clientFor(state);
  const current = await registry.getModelVersion(client, state.name, state.version);
  const claim = current?.tags?.find((t) => t.key === TAG_CLAIM)?.value;
  if (claim !== undefined && state.claim !== undefined && claim !== state.claim) {
    return; // adopted by the resource that replaced this one: it is theirs now
  }
  await registry.deleteModelVersion(client, state.name, state.version);
  const model = await registry.getRegisteredModel(client, state.name);
  const managed = model?.tags?.some((t) => t.key === TAG_MANAGED && t.value === "true");
  if (model && managed && (await registry.searchModelVersions(client, state.name)).length === 0) {
    await registry.deleteRegisteredModel(client, state.name);
  }
}

export { hashSource };
