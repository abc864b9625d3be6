import * as crypto from "crypto";
import { containsUnknown, diffByKeys } from "./diffKeys";
import { createMlflowClient, MlflowClient } from "./mlflow/client";
import { MlflowError } from "./mlflow/errors";
import { parseModelUri, resolveModelUri } from "./mlflow/modelUri";
import * as registry from "./mlflow/registry";
import { hashSource, isSourceUri, sourceProblem } from "./modelSource";

/**
 * Core of the ModelVersion dynamic provider: plain functions, unit- and integration-tested directly.
 *
 * Contract
 * - id: `<model name>/<version>`.
 * - check: for a models:/ or runs:/ source, `sourceHash` also covers what the URI points to now (the
 *   version an alias names, the run's files and sizes, the logged model), so a moved alias or a
 *   re-logged run registers anew although the URI text is the same (providers/mlflow/modelUri.ts).
 * - replace: a new `sourceHash` (the model changed), a new `registration` counter (re-register the same
 *   source), another `name` or `registryId` (another registry: a local server's new data directory, or
 *   another existing server). The replacement registers a new version first, then the old version is
 *   deleted, unless the replacement adopted that very version (same source and counter in the same
 *   registry, an earlier attempt of the same `owner`).
 * - update in place: aliases, tags, description, credentials, timeouts, and `trackingUri` (the same
 *   registry reached at another URL, e.g. the local server moved to another port).
 * - Values unknown during preview are "maybe update", never replace (providers/diffKeys.ts).
 * - Claims: each create tags its version `model_serving.claim = <owner> <random>` and keeps the claim in
 *   state. A version carrying another claim belongs to someone else (another stack, or the resource that
 *   replaced this one): create does not adopt it when another owner claimed it, read reports this
 *   resource's version gone, delete leaves it alone.
 * - delete: deletes the version, unless it is absent (a no-op: a new, empty registry), claimed by
 *   someone else, or carries an alias this resource did not set; each skip is logged. When the
 *   registered model was created by this project (tag `model_serving.managed`) and has no versions left,
 *   deletes it too. Use `retainOnDelete` (config `keepInRegistry`) to keep versions.
 * - read: reports the version as gone when MLflow no longer has it or it is no longer ours.
 */

export interface MlflowAuth {
  username?: string;
  password?: string;
  token?: string;
}

export interface ModelVersionArgs {
  trackingUri: string;
  /** Identifies the registry behind `trackingUri` (a local server's data directory, an existing
   * server's URL): another one replaces. Missing in states written before it existed. */
  registryId?: string;
  /** Who registers: `<project>/<stack>/<resource name>`, the first part of the claim tag. */
  owner?: string;
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
/** Which resource instance owns a version (`<owner> <random token>` per create, kept in its state). */
export const TAG_CLAIM = "model_serving.claim";

/** Who claimed a version: the owner part of its claim tag (undefined for a bare token or no tag). */
export function claimOwner(claim: string | undefined): string | undefined {
  const space = claim?.lastIndexOf(" ") ?? -1;
  return space > 0 ? claim!.slice(0, space) : undefined;
}

/** Why `v` is not the version `state` registered (claimed by someone else, or another version with
 * the same number), or undefined when it is ours. A version without a claim tag (state written before
 * claims, or a create interrupted before it tagged) is ours when it carries our source and counter. */
export function notOursReason(
  v: registry.ModelVersionInfo,
  state: Pick<ModelVersionState, "claim" | "owner" | "sourceHash" | "registration">,
): string | undefined {
  const claim = tagValue(v, TAG_CLAIM);
  if (claim !== undefined) {
    if (claim === state.claim) {
      return undefined;
    }
    const owner = claimOwner(claim);
    return owner !== undefined && owner === state.owner
      ? `the resource that replaced this one claimed it (tag ${TAG_CLAIM})`
      : `it is claimed by ${owner ?? "another resource"} (tag ${TAG_CLAIM})`;
  }
  const ours =
    tagValue(v, TAG_SOURCE_HASH) === state.sourceHash &&
    tagValue(v, TAG_REGISTRATION) === String(state.registration);
  return ours ? undefined : "it is not the version this resource registered (another source)";
}

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

  // Adopt what an earlier attempt of this resource registered; never another owner's version.
  const existing = (await registry.searchModelVersions(client, args.name)).find((v) => {
    const owner = claimOwner(tagValue(v, TAG_CLAIM));
    return (
      tagValue(v, TAG_SOURCE_HASH) === args.sourceHash &&
      tagValue(v, TAG_REGISTRATION) === registration &&
      v.status !== "FAILED_REGISTRATION" &&
      (owner === undefined || owner === args.owner)
    );
  });
  let version: registry.ModelVersionInfo;
  if (existing) {
    log(
      `adopting ${args.name} version ${existing.version} registered earlier from the same source`,
    );
    version = existing;
  } else {
    const { source, runId, modelId } = await resolveStorageSource(client, args, log);
    await registry.ensureRegisteredModel(client, args.name, { [TAG_MANAGED]: "true" });
    version = await registry.createModelVersion(client, {
      name: args.name,
      source,
      runId,
      modelId,
      description: args.description || undefined,
      tags: { ...args.tags, [TAG_SOURCE_HASH]: args.sourceHash, [TAG_REGISTRATION]: registration },
    });
    log(`registered ${args.name} version ${version.version}`);
  }

  const outs: ModelVersionState = {
    ...args,
    claim: `${args.owner ?? "unknown"} ${crypto.randomUUID()}`,
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
): Promise<{ source: string; runId?: string; modelId?: string }> {
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
  const resolved = await resolveModelUri(client, args.source);
  return { source: resolved.source, runId: resolved.runId, modelId: resolved.modelId };
}

/**
 * check(): the inputs with `sourceHash` covering what a models:/ or runs:/ source points to now.
 * While that cannot be known (a value unknown in preview, the server unreachable) the old hash is kept
 * for an unchanged source, so nothing is replaced for want of an answer.
 */
export async function checkModelVersion(
  olds: Partial<ModelVersionState> | undefined,
  news: ModelVersionArgs,
): Promise<ModelVersionArgs> {
  if (!isSourceUri(news.source) || parseModelUri(news.source) === undefined) {
    return news;
  }
  const keepOld = () =>
    olds?.source === news.source && olds.sourceHash
      ? { ...news, sourceHash: olds.sourceHash }
      : news;
  if (containsUnknown([news.trackingUri, news.auth, news.source, news.sourceHash])) {
    return keepOld();
  }
  try {
    const resolved = await resolveModelUri(clientFor(news), news.source);
    return { ...news, sourceHash: sourceHashFor(news.sourceHash, resolved.fingerprint) };
  } catch (err) {
    if (err instanceof MlflowError && err.errorCode === "UNREACHABLE") {
      return keepOld();
    }
    throw err;
  }
}

/** The hash of a URI source's text, and of what it resolves to. */
export function sourceHashFor(textHash: string, fingerprint: string): string {
  return `sha256:${crypto.createHash("sha256").update(`${textHash}\0${fingerprint}`).digest("hex")}`;
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

const REPLACE_KEYS = ["name", "registryId", "sourceHash", "registration"] as const;
const UPDATE_KEYS = [
  "trackingUri",
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
  // A state written before `registryId` existed: the same URL is taken as the same registry (the
  // new id is recorded in place), another URL as another registry, as the URL alone decided before.
  const legacy = olds.registryId === undefined && news.registryId !== undefined;
  const sameUrl = olds.trackingUri === news.trackingUri || containsUnknown(news.trackingUri);
  const diff = diffByKeys<ModelVersionArgs, keyof ModelVersionArgs>(
    legacy ? { ...olds, registryId: sameUrl ? news.registryId : olds.trackingUri } : olds,
    news,
    REPLACE_KEYS,
    UPDATE_KEYS,
    false,
  );
  return legacy ? { ...diff, changes: true } : diff;
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

/** What MLflow really has: undefined when the version is gone (or the version of that number is not
 * ours: claimed by someone else, e.g. in a new registry after the data directory moved). Aliases are re-read from MLflow so a
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
  if (!v || notOursReason(v, state) !== undefined) {
    return undefined;
  }
  const ownAliases = (v.aliases ?? []).filter((a) => state.aliases.includes(a));
  return { ...state, aliases: ownAliases, description: v.description ?? "" };
}

/** Deletes the version and, if this project created the registered model and it is now empty, the
 * model. Leaves alone (and says so in `log`) a version that is absent (deleted out of band, or a new
 * registry), claimed by someone else (another stack, or the resource that replaced this one), or
 * that carries an alias this resource did not set (someone relies on it). */
export async function deleteModelVersion(
  state: ModelVersionState,
  log: (msg: string) => void = () => undefined,
): Promise<void> {
  const client = clientFor(state);
  const label = `${state.name} version ${state.version}`;
  const current = await registry.getModelVersion(client, state.name, state.version);
  if (!current) {
    log(`${label} is already gone from ${client.baseUrl}; nothing to delete`);
    await deleteModelIfEmpty(client, state.name);
    return;
  }
  const notOurs = notOursReason(current, state);
  if (notOurs !== undefined) {
    log(`keeping ${label} in the registry: ${notOurs}`);
    return;
  }
  const foreign = (current.aliases ?? []).filter((a) => !state.aliases.includes(a)).sort();
  if (foreign.length > 0) {
    const list = foreign.map((a) => `"${a}"`).join(", ");
    log(
      `keeping ${label} in the registry: it carries ${foreign.length === 1 ? "alias" : "aliases"} ` +
        `${list} that this stack did not set`,
    );
    return;
  }
  await registry.deleteModelVersion(client, state.name, state.version);
  await deleteModelIfEmpty(client, state.name);
}

/** Deletes the registered model when this project created it (tag model_serving.managed) and it has
 * no versions left. */
async function deleteModelIfEmpty(client: MlflowClient, name: string): Promise<void> {
  const model = await registry.getRegisteredModel(client, name);
  const managed = model?.tags?.some((t) => t.key === TAG_MANAGED && t.value === "true");
  if (model && managed && (await registry.searchModelVersions(client, name)).length === 0) {
    await registry.deleteRegisteredModel(client, name);
  }
}

export { hashSource };
