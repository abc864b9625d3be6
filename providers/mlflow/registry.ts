import * as fs from "fs";
import * as path from "path";
import { MlflowClient } from "./client";
import { hasErrorCode, isNotFound } from "./errors";

/** Typed wrappers over the MLflow REST API calls the providers need. */

export interface ModelVersionInfo {
  name: string;
  version: string;
  status: string;
  source: string;
  run_id?: string;
  /** The MLflow 3 logged model the version was registered from, if any. */
  model_id?: string;
  description?: string;
  tags?: { key: string; value: string }[];
  aliases?: string[];
}

const API = "/api/2.0/mlflow";

/** Returns the experiment id for `name`, creating the experiment if needed (a race with another creator
 * resolves to the existing experiment). */
export async function ensureExperiment(client: MlflowClient, name: string): Promise<string> {
  try {
    const found = await client.call<{ experiment: { experiment_id: string } }>(
      "GET",
      `${API}/experiments/get-by-name`,
      { query: { experiment_name: name }, idempotent: true },
    );
    return found.experiment.experiment_id;
  } catch (err) {
    if (!isNotFound(err)) {
      throw err;
    }
  }
  try {
    const created = await client.call<{ experiment_id: string }>(
      "POST",
      `${API}/experiments/create`,
      {
        body: { name },
      },
    );
    return created.experiment_id;
  } catch (err) {
    if (!hasErrorCode(err, "RESOURCE_ALREADY_EXISTS")) {
      throw err;
    }
    return ensureExperiment(client, name);
  }
}

export async function createRun(
  client: MlflowClient,
  experimentId: string,
  runName: string,
  tags: Record<string, string>,
): Promise<{ runId: string; artifactUri: string }> {
  const res = await client.call<{ run: { info: { run_id: string; artifact_uri: string } } }>(
    "POST",
    `${API}/runs/create`,
    {
      body: {
        experiment_id: experimentId,
        run_name: runName,
        start_time: Date.now(),
        tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
      },
    },
  );
  return { runId: res.run.info.run_id, artifactUri: res.run.info.artifact_uri };
}

export async function finishRun(client: MlflowClient, runId: string, status = "FINISHED") {
  await client.call("POST", `${API}/runs/update`, {
    body: { run_id: runId, status, end_time: Date.now() },
    idempotent: true,
  });
}

/** Lists a directory's files as sorted relative paths with forward slashes. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        walk(child);
      } else if (entry.isFile()) {
        out.push(child);
      }
    }
  };
  walk("");
  return out.sort();
}

/**
 * Uploads every file of `localDir` under `<artifactUri>/<artifactPath>/` through the server's artifact
 * proxy (`mlflow server` with served artifacts, artifact URIs `mlflow-artifacts:/...`).
 */
export async function uploadArtifacts(
  client: MlflowClient,
  artifactUri: string,
  localDir: string,
  artifactPath: string,
): Promise<void> {
  const prefix = "mlflow-artifacts:";
  if (!artifactUri.startsWith(prefix)) {
    throw new Error(
      `MLflow run artifact URI ${artifactUri} is not served by the tracking server; ` +
        "start the server with artifact serving (mlflow server --serve-artifacts) to upload local models",
    );
  }
  const base = artifactUri.slice(prefix.length).replace(/^\/+/, "");
  for (const file of listFiles(localDir)) {
    const target = [base, artifactPath, file].map((p) => encodePath(p)).join("/");
    await client.call("PUT", `/api/2.0/mlflow-artifacts/artifacts/${target}`, {
      body: fs.readFileSync(path.join(localDir, file)),
      headers: { "Content-Type": "application/octet-stream" },
      idempotent: true,
      timeoutMs: 120_000,
    });
  }
}

function encodePath(p: string): string {
  return p
    .split("/")
    .map((s) => encodeURIComponent(s))
    .join("/");
}

/** Creates the registered model unless it exists; returns true when this call created it. */
export async function ensureRegisteredModel(
  client: MlflowClient,
  name: string,
  tags: Record<string, string>,
): Promise<boolean> {
  try {
    await client.call("POST", `${API}/registered-models/create`, {
      body: { name, tags: Object.entries(tags).map(([key, value]) => ({ key, value })) },
    });
    return true;
  } catch (err) {
    if (hasErrorCode(err, "RESOURCE_ALREADY_EXISTS")) {
      return false;
    }
    throw err;
  }
}

export async function getRegisteredModel(
  client: MlflowClient,
  name: string,
): Promise<{ name: string; tags?: { key: string; value: string }[] } | undefined> {
  try {
    const res = await client.call<{
      registered_model: { name: string; tags?: { key: string; value: string }[] };
    }>("GET", `${API}/registered-models/get`, { query: { name }, idempotent: true });
    return res.registered_model;
  } catch (err) {
    if (isNotFound(err)) {
      return undefined;
    }
    throw err;
  }
}

export async function deleteRegisteredModel(client: MlflowClient, name: string): Promise<void> {
  try {
    await client.call("DELETE", `${API}/registered-models/delete`, {
      body: { name },
      idempotent: true,
    });
  } catch (err) {
    if (!isNotFound(err)) {
      throw err;
    }
  }
}

export async function createModelVersion(
  client: MlflowClient,
  args: {
    name: string;
    source: string;
    runId?: string;
    modelId?: string;
    description?: string;
    tags: Record<string, string>;
  },
): Promise<ModelVersionInfo> {
  const res = await client.call<{ model_version: ModelVersionInfo }>(
    "POST",
    `${API}/model-versions/create`,
    {
      body: {
        name: args.name,
        source: args.source,
        run_id: args.runId,
        model_id: args.modelId,
        description: args.description,
        tags: Object.entries(args.tags).map(([key, value]) => ({ key, value })),
      },
    },
  );
  return res.model_version;
}

export async function getModelVersion(
  client: MlflowClient,
  name: string,
  version: string,
): Promise<ModelVersionInfo | undefined> {
  try {
    const res = await client.call<{ model_version: ModelVersionInfo }>(
      "GET",
      `${API}/model-versions/get`,
      { query: { name, version }, idempotent: true },
    );
    return res.model_version;
  } catch (err) {
    if (isNotFound(err)) {
      return undefined;
    }
    throw err;
  }
}

/** All versions of a registered model (empty when the model does not exist). */
export async function searchModelVersions(
  client: MlflowClient,
  name: string,
): Promise<ModelVersionInfo[]> {
  const versions: ModelVersionInfo[] = [];
  let pageToken: string | undefined;
  do {
    const res = await client.call<{
      model_versions?: ModelVersionInfo[];
      next_page_token?: string;
    }>("GET", `${API}/model-versions/search`, {
      query: {
        filter: `name='${name.replace(/'/g, "\\'")}'`,
        max_results: 200,
        page_token: pageToken,
      },
      idempotent: true,
    });
    versions.push(...(res.model_versions ?? []));
    pageToken = res.next_page_token || undefined;
  } while (pageToken);
  return versions;
}

export async function deleteModelVersion(client: MlflowClient, name: string, version: string) {
  try {
    await client.call("DELETE", `${API}/model-versions/delete`, {
      body: { name, version },
      idempotent: true,
    });
  } catch (err) {
    if (!isNotFound(err)) {
      throw err;
    }
  }
}

export async function setModelVersionTag(
  client: MlflowClient,
  name: string,
  version: string,
  key: string,
  value: string,
) {
  await client.call("POST", `${API}/model-versions/set-tag`, {
    body: { name, version, key, value },
    idempotent: true,
  });
}

export async function deleteModelVersionTag(
  client: MlflowClient,
  name: string,
  version: string,
  key: string,
) {
  try {
    await client.call("DELETE", `${API}/model-versions/delete-tag`, {
      body: { name, version, key },
      idempotent: true,
    });
  } catch (err) {
    if (!isNotFound(err)) {
      throw err;
    }
  }
}

export async function updateModelVersionDescription(
  client: MlflowClient,
  name: string,
  version: string,
  description: string,
) {
  await client.call("PATCH", `${API}/model-versions/update`, {
    body: { name, version, description },
    idempotent: true,
  });
}

export async function setAlias(client: MlflowClient, name: string, alias: string, version: string) {
  await client.call("POST", `${API}/registered-models/alias`, {
    body: { name, alias, version },
    idempotent: true,
  });
}

/** Removes an alias, but only while it still points at `version` (another version may own it now). */
export async function deleteAliasIfOwned(
  client: MlflowClient,
  name: string,
  alias: string,
  version: string,
) {
  try {
    const res = await client.call<{ model_version: ModelVersionInfo }>(
      "GET",
      `${API}/registered-models/alias`,
      { query: { name, alias }, idempotent: true },
    );
    if (res.model_version.version !== version) {
      return;
    }
    await client.call("DELETE", `${API}/registered-models/alias`, {
      body: { name, alias },
      idempotent: true,
    });
  } catch (err) {
    if (!isNotFound(err)) {
      throw err;
    }
  }
}

/** The version an alias points to, or undefined when the model or the alias does not exist. */
export async function getModelVersionByAlias(
  client: MlflowClient,
  name: string,
  alias: string,
): Promise<ModelVersionInfo | undefined> {
  try {
    const res = await client.call<{ model_version: ModelVersionInfo }>(
      "GET",
      `${API}/registered-models/alias`,
      { query: { name, alias }, idempotent: true },
    );
    return res.model_version;
  } catch (err) {
    if (isNotFound(err) || hasErrorCode(err, "INVALID_PARAMETER_VALUE")) {
      return undefined;
    }
    throw err;
  }
}

export interface LoggedModelInfo {
  model_id: string;
  name?: string;
  artifact_uri: string;
  source_run_id?: string;
  status?: string;
}

/** An MLflow 3 logged model (`models:/m-<id>`), or undefined when it does not exist. */
export async function getLoggedModel(
  client: MlflowClient,
  modelId: string,
): Promise<LoggedModelInfo | undefined> {
  try {
    const res = await client.call<{ model: { info: LoggedModelInfo } }>(
      "GET",
      `${API}/logged-models/${encodeURIComponent(modelId)}`,
      { idempotent: true },
    );
    return res.model.info;
  } catch (err) {
    if (isNotFound(err)) {
      return undefined;
    }
    throw err;
  }
}

export interface ArtifactFile {
  path: string;
  is_dir?: boolean;
  file_size?: number;
}

/** Every file under `path` of a run's artifacts (recursive), as MLflow lists them with their sizes. */
export async function listRunArtifacts(
  client: MlflowClient,
  runId: string,
  path = "",
): Promise<ArtifactFile[]> {
  const out: ArtifactFile[] = [];
  const res = await client.call<{ files?: ArtifactFile[] }>("GET", `${API}/artifacts/list`, {
    query: { run_id: runId, path: path || undefined },
    idempotent: true,
  });
  for (const f of res.files ?? []) {
    if (f.is_dir) {
      out.push(...(await listRunArtifacts(client, runId, f.path)));
    } else {
      out.push(f);
    }
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** A JSON file served by the tracking server's artifact proxy (`mlflow-artifacts:/...` URIs), or
 * undefined when the URI is not proxied or the file is missing. */
export async function readProxiedJson(
  client: MlflowClient,
  artifactUri: string,
): Promise<unknown | undefined> {
  const prefix = "mlflow-artifacts:";
  if (!artifactUri.startsWith(prefix)) {
    return undefined;
  }
  const rel = artifactUri.slice(prefix.length).replace(/^\/+/, "");
  try {
    return await client.call("GET", `/api/2.0/mlflow-artifacts/artifacts/${encodePath(rel)}`, {
      idempotent: true,
      timeoutMs: 30_000,
    });
  } catch (err) {
    if (isNotFound(err)) {
      return undefined;
    }
    throw err;
  }
}
