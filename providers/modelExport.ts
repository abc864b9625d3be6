/**
 * ModelExport: turns a registered MLflow model version into a Docker build context on this machine.
 *
 * Contract
 * - id: "<modelName>/<modelVersion>" (natural, stable).
 * - create: `<mlflowBin> artifacts download --artifact-uri models:/<name>/<version> --dst-path <tmp>/model`
 *   with the connection `{ trackingUri, auth }` under the one credential policy
 *   (providers/mlflow/connection.ts: the secret `auth` input wins, else MLFLOW_TRACKING_USERNAME/
 *   PASSWORD or MLFLOW_TRACKING_TOKEN of the provider process); the CLI gets exactly the resolved
 *   MLFLOW_TRACKING_* variables. It copies the scorer files next to the model, hashes the tree and
 *   renames it to `<contextRoot>/<sha256>` (content-addressed: the same bytes give the same
 *   directory, which is reused).
 * - `auth` is never an output (only create/update need it), so no credential reaches the outputs.
 * - diff: modelName or modelVersion -> replace; trackingUri or scorerHash (the scorer files changed)
 *   -> update, which re-downloads. auth, mlflowBin, scorerDir and contextRoot alone never re-run it.
 * - read: reports the context as gone when its directory is missing or its hash no longer matches,
 *   so `pulumi refresh` + `up` rebuilds it on a machine that lacks it.
 * - delete: removes the context directory.
 * Provider methods run in another process: every module is required inside the functions below.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  MLFLOW_CREDENTIAL_VARIABLES,
  MlflowAuth,
  mlflowTrackingEnv,
  resolveConnection,
} from "./mlflow/connection";

export interface ModelExportInputs {
  modelName: string;
  modelVersion: string;
  trackingUri: string;
  /** Secret; see the credential policy in providers/mlflow/connection.ts. */
  auth?: MlflowAuth;
  mlflowBin: string;
  scorerDir: string;
  scorerHash: string;
  contextRoot: string;
}

export interface ModelExportOutputs extends Omit<ModelExportInputs, "auth"> {
  modelUri: string;
  contextDir: string;
  contextHash: string;
}

/** Files of scorer/ copied into every build context. */
export const SCORER_FILES = ["Dockerfile", ".dockerignore", "requirements.txt", "serve.py"];

export function modelExportId(modelName: string, modelVersion: string): string {
  return `${modelName}/${modelVersion}`;
}

/** The mlflow CLI call that downloads the model version: its MLFLOW_TRACKING_* variables, resolved from
 * the connection input and `env` (the provider process's environment). */
export function downloadCommand(
  inputs: Pick<
    ModelExportInputs,
    "modelName" | "modelVersion" | "trackingUri" | "auth" | "mlflowBin"
  >,
  dstPath: string,
  env: NodeJS.ProcessEnv = process.env,
): { file: string; args: string[]; env: Record<string, string> } {
  return {
    file: inputs.mlflowBin,
    args: [
      "artifacts",
      "download",
      "--artifact-uri",
      `models:/${inputs.modelName}/${inputs.modelVersion}`,
      "--dst-path",
      dstPath,
    ],
    env: mlflowTrackingEnv(
      resolveConnection({ trackingUri: inputs.trackingUri, auth: inputs.auth }, env),
    ),
  };
}

/** sha256 over the sorted relative paths and contents of every file under dir (symlinks refused). */
export function hashTree(dir: string): string {
  const fs: typeof import("fs") = require("fs");
  const path: typeof import("path") = require("path");
  const crypto: typeof import("crypto") = require("crypto");
  const files: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        walk(child);
      } else if (entry.isFile()) {
        files.push(child);
      } else {
        throw new Error(`ModelExport: ${path.join(dir, child)} is not a regular file or directory`);
      }
    }
  };
  walk("");
  files.sort();
  const hash = crypto.createHash("sha256");
  for (const file of files) {
    hash
      .update(file)
      .update("\0")
      .update(fs.readFileSync(path.join(dir, file)))
      .update("\0");
  }
  return hash.digest("hex");
}

/** sha256 of the scorer files, computed by the component so that a scorer change re-runs the export. */
export function hashScorerFiles(scorerDir: string): string {
  const fs: typeof import("fs") = require("fs");
  const path: typeof import("path") = require("path");
  const crypto: typeof import("crypto") = require("crypto");
  const hash = crypto.createHash("sha256");
  for (const file of ["Dockerfile", ".dockerignore", "requirements.txt", "serve.py"]) {
    hash
      .update(file)
      .update("\0")
      .update(fs.readFileSync(path.join(scorerDir, file)))
      .update("\0");
  }
  return hash.digest("hex");
}

/** Downloads the model and materializes the content-addressed build context. */
export async function materializeContext(
  inputs: ModelExportInputs,
  timeoutMs = 10 * 60 * 1000,
): Promise<ModelExportOutputs> {
  const fs: typeof import("fs") = require("fs");
  const path: typeof import("path") = require("path");
  const childProcess: typeof import("child_process") = require("child_process");
  fs.mkdirSync(inputs.contextRoot, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(inputs.contextRoot, ".tmp-"));
  try {
    const cmd = downloadCommand(inputs, path.join(tmp, "model"));
    // The provider's own MLflow variables never reach the CLI: only the resolved ones.
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    for (const key of MLFLOW_CREDENTIAL_VARIABLES) {
      delete childEnv[key];
    }
    await new Promise<void>((resolve, reject) => {
      childProcess.execFile(
        cmd.file,
        cmd.args,
        { env: { ...childEnv, ...cmd.env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
        (error, _stdout, stderr) => {
          if (!error) {
            resolve();
          } else if (error.killed) {
            reject(
              new Error(
                `ModelExport: downloading models:/${inputs.modelName}/${inputs.modelVersion} timed out after ${timeoutMs / 1000}s`,
              ),
            );
          } else {
            const tail = String(stderr).trim().split("\n").slice(-5).join("\n");
            reject(
              new Error(
                `ModelExport: downloading models:/${inputs.modelName}/${inputs.modelVersion} failed: ${tail || error.message}`,
              ),
            );
          }
        },
      );
    });
    if (!fs.existsSync(path.join(tmp, "model", "MLmodel"))) {
      throw new Error(
        `ModelExport: models:/${inputs.modelName}/${inputs.modelVersion} has no MLmodel file`,
      );
    }
    for (const file of ["Dockerfile", ".dockerignore", "requirements.txt", "serve.py"]) {
      fs.copyFileSync(path.join(inputs.scorerDir, file), path.join(tmp, file));
    }
    const contextHash = hashTree(tmp);
    const contextDir = path.join(inputs.contextRoot, contextHash);
    if (fs.existsSync(contextDir)) {
      fs.rmSync(tmp, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, contextDir);
    }
    const recorded: Omit<ModelExportInputs, "auth"> = { ...inputs };
    delete (recorded as ModelExportInputs).auth;
    return {
      ...recorded,
      modelUri: `models:/${inputs.modelName}/${inputs.modelVersion}`,
      contextDir,
      contextHash,
    };
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Compares old outputs with new inputs; unknown values during preview count as changes. */
export function diffModelExport(
  olds: ModelExportOutputs,
  news: ModelExportInputs,
): pulumi.dynamic.DiffResult {
  const replaces = (["modelName", "modelVersion"] as const).filter((k) => olds[k] !== news[k]);
  const updates = (["trackingUri", "scorerHash"] as const).filter((k) => olds[k] !== news[k]);
  return { changes: replaces.length + updates.length > 0, replaces, deleteBeforeReplace: false };
}

/** What really exists: the context directory with the recorded hash, or nothing. */
export function readContext(id: string, props: ModelExportOutputs): pulumi.dynamic.ReadResult {
  const fs: typeof import("fs") = require("fs");
  if (!props || !props.contextDir || !fs.existsSync(props.contextDir)) {
    return {};
  }
  return hashTree(props.contextDir) === props.contextHash ? { id, props } : {};
}

export const modelExportProvider: pulumi.dynamic.ResourceProvider<
  ModelExportInputs,
  ModelExportOutputs
> = {
  async create(inputs) {
    const outs = await materializeContext(inputs);
    return { id: modelExportId(inputs.modelName, inputs.modelVersion), outs };
  },
  async diff(_id, olds, news) {
    return diffModelExport(olds, news);
  },
  async update(_id, _olds, news) {
    return { outs: await materializeContext(news) };
  },
  async read(id, props) {
    return readContext(id, props as ModelExportOutputs);
  },
  async delete(_id, props) {
    const fs: typeof import("fs") = require("fs");
    if (props.contextDir) {
      fs.rmSync(props.contextDir, { recursive: true, force: true });
    }
  },
};

export interface ModelExportArgs {
  /** Registered model name in MLflow. */
  readonly modelName: pulumi.Input<string>;
  /** Registered model version (a number as a string). */
  readonly modelVersion: pulumi.Input<string>;
  /** MLflow tracking URI the CLI downloads from (no credentials in it). */
  readonly trackingUri: pulumi.Input<string>;
  /** MLflow credentials, secret; without them MLFLOW_TRACKING_* of the provider process apply. */
  readonly auth?: pulumi.Input<MlflowAuth | undefined>;
  /** Path of the `mlflow` executable (the project's venv). */
  readonly mlflowBin: pulumi.Input<string>;
  /** Folder holding the scorer build files (Dockerfile, serve.py, requirements.txt, .dockerignore). */
  readonly scorerDir: pulumi.Input<string>;
  /** Hash of the scorer files (hashScorerFiles) so that editing them re-runs the export. */
  readonly scorerHash: pulumi.Input<string>;
  /** Folder under which content-addressed build contexts are kept (outside the program tree). */
  readonly contextRoot: pulumi.Input<string>;
}

export class ModelExport extends pulumi.dynamic.Resource {
  declare public readonly contextDir: pulumi.Output<string>;
  declare public readonly contextHash: pulumi.Output<string>;
  declare public readonly modelUri: pulumi.Output<string>;

  constructor(name: string, args: ModelExportArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      modelExportProvider,
      name,
      { ...args, contextDir: undefined, contextHash: undefined, modelUri: undefined },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["auth"] }),
      "modelserving",
      "ModelExport",
    );
  }
}
