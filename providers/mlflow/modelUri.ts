import * as crypto from "crypto";
import { MlflowClient } from "./client";
import * as registry from "./registry";

/**
 * What an MLflow model URI points to, resolved against one tracking server: the storage location MLflow
 * registers from, the run and logged model behind it, and a fingerprint of what it points to now. Used
 * for URI sources (a new fingerprint re-registers) and for registry references (a new version redeploys).
 */

export type ModelUri =
  | { kind: "version"; name: string; version: string }
  | { kind: "alias"; name: string; alias: string }
  | { kind: "logged"; modelId: string }
  | { kind: "run"; runId: string; path: string };

/** `models:/name/3`, `models:/name@champion`, `models:/m-<id>`, `runs:/<id>/<path>`; else undefined. */
export function parseModelUri(uri: string): ModelUri | undefined {
  const logged = /^models:\/(m-[A-Za-z0-9]+)\/?$/.exec(uri);
  if (logged) {
    return { kind: "logged", modelId: logged[1] };
  }
  const alias = /^models:\/([^/@]+)@([^/@]+)\/?$/.exec(uri);
  if (alias) {
    return { kind: "alias", name: alias[1], alias: alias[2] };
  }
  const version = /^models:\/([^/@]+)\/(\d+)\/?$/.exec(uri);
  if (version) {
    return { kind: "version", name: version[1], version: version[2] };
  }
  const run = /^runs:\/([^/]+)\/?(.*)$/.exec(uri);
  if (run) {
    return { kind: "run", runId: run[1], path: run[2].replace(/\/+$/, "") };
  }
  return undefined;
}

export interface ResolvedModel {
  /** What MLflow stores as the new version's source. */
  source: string;
  runId?: string;
  modelId?: string;
  /** The registered version, when the URI names one (by number or alias). */
  version?: registry.ModelVersionInfo;
  /** sha256 of what the URI points to now (version, run, files and sizes as MLflow lists them). */
  fingerprint: string;
}

const sha = (text: string) => `sha256:${crypto.createHash("sha256").update(text).digest("hex")}`;

/** Resolves a model URI; throws an error naming `field` and the URI when it points to nothing. */
export async function resolveModelUri(
  client: MlflowClient,
  uri: string,
  field = "source",
): Promise<ResolvedModel> {
  const ref = parseModelUri(uri);
  const missing = (what: string) =>
    new Error(`${field}: ${what} (${uri}) does not exist in ${client.baseUrl}`);
  if (ref === undefined) {
    return { source: uri, fingerprint: sha(`uri\0${uri}`) };
  }
  switch (ref.kind) {
    case "version":
    case "alias": {
      const v =
        ref.kind === "version"
          ? await registry.getModelVersion(client, ref.name, ref.version)
          : await registry.getModelVersionByAlias(client, ref.name, ref.alias);
      if (!v) {
        throw missing(
          ref.kind === "version"
            ? `version ${ref.version} of model "${ref.name}"`
            : `alias "${ref.alias}" of model "${ref.name}"`,
        );
      }
      return { ...fromVersion(v), version: v };
    }
    case "logged": {
      const m = await registry.getLoggedModel(client, ref.modelId);
      if (!m) {
        throw missing(`logged model ${ref.modelId}`);
      }
      return {
        source: `models:/${m.model_id}`,
        runId: m.source_run_id || undefined,
        modelId: m.model_id,
        fingerprint: sha(`logged\0${m.model_id}\0${m.artifact_uri}\0${m.source_run_id ?? ""}`),
      };
    }
    case "run":
      return resolveRunUri(client, uri, ref.runId, ref.path, missing);
  }
}

/** A registered version as a source: its storage location, run and logged model. */
export function fromVersion(v: registry.ModelVersionInfo): Omit<ResolvedModel, "version"> {
  // MLflow's REST answer leaves model_id out; a version registered from a logged model has its URI
  // as the source.
  const logged = parseModelUri(v.source);
  return {
    source: v.source,
    runId: v.run_id || undefined,
    modelId: v.model_id || (logged?.kind === "logged" ? logged.modelId : undefined),
    fingerprint: sha(
      `version\0${v.name}\0${v.version}\0${v.source}\0${v.run_id ?? ""}\0${v.model_id ?? ""}`,
    ),
  };
}

/** `runs:/<id>/<path>`: the run's artifacts at that path (MLflow 2 layout), else the run's logged
 * model of that name (MLflow 3 logs models outside the run's artifacts), as MLflow itself decides. */
async function resolveRunUri(
  client: MlflowClient,
  uri: string,
  runId: string,
  path: string,
  missing: (what: string) => Error,
): Promise<ResolvedModel> {
  type Run = {
    run: {
      info: { artifact_uri: string };
      outputs?: { model_outputs?: { model_id: string; step?: number }[] };
    };
  };
  let run: Run;
  try {
    run = await client.call<Run>("GET", "/api/2.0/mlflow/runs/get", {
      query: { run_id: runId },
      idempotent: true,
    });
  } catch (err) {
    if ((err as { status?: number }).status === 404 || /DOES_NOT_EXIST/.test(String(err))) {
      throw missing(`run ${runId}`);
    }
    throw err;
  }
  const files = await registry.listRunArtifacts(client, runId, path);
  if (files.some((f) => f.path === (path ? `${path}/MLmodel` : "MLmodel"))) {
    const listing = files.map((f) => `${f.path}:${f.file_size ?? "?"}`).join("\0");
    return {
      source: `${run.run.info.artifact_uri}/${path}`.replace(/\/+$/, ""),
      runId,
      fingerprint: sha(`run\0${runId}\0${path}\0${listing}`),
    };
  }
  for (const out of run.run.outputs?.model_outputs ?? []) {
    const m = await registry.getLoggedModel(client, out.model_id);
    if (m && m.name === path) {
      return {
        source: `models:/${m.model_id}`,
        runId,
        modelId: m.model_id,
        fingerprint: sha(`logged\0${m.model_id}\0${m.artifact_uri}\0${runId}`),
      };
    }
  }
  throw missing(`an MLflow model at "${path}" of run ${runId}`);
}
