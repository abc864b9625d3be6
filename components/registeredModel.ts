import * as pulumi from "@pulumi/pulumi";
import { AgentDeployment } from "../providers/agentDeployment";
import type { RemoteServingArgs as RemoteHost } from "../providers/deployment/types";
import { ModelDeployment } from "../providers/modelDeployment";
import { venvDir } from "../providers/remote/provisionScript";
import { sourceProblem } from "../config/modelSource";
import { hashSource } from "../providers/modelSource";
import type { MlflowAuth } from "../providers/mlflow/connection";
import { ModelReference } from "../providers/modelReference";
import { ModelVersion } from "../providers/modelVersion";
import { EndpointEntry } from "./endpoint";
import { sampleRequestBody } from "./sampleInput";
import { mlflowCurlCommand, mlflowPythonCommand } from "./snippets/mlflow";

/** Settings every deploy mode has. */
interface ServingCommon {
  /** Interface the model server binds to (default 127.0.0.1; mode remote: on the remote host). */
  readonly host?: pulumi.Input<string>;
  /** Fixed port; by default the first free port from `portRangeStart`. */
  readonly port?: pulumi.Input<number>;
  /** First port tried when no port is fixed (default 5001). */
  readonly portRangeStart?: pulumi.Input<number>;
  /** Deadline for the model server's /ping (default 300 s). */
  readonly startTimeoutSeconds?: pulumi.Input<number>;
}

/** Deploy mode `local`: `mlflow models serve` on this machine (the MLflow host of mode local). */
export interface LocalServingArgs extends ServingCommon {
  readonly mode: "local";
  /** The `mlflow` executable whose environment has the model's dependencies. */
  readonly mlflowBin: pulumi.Input<string>;
  /** Folder for logs and port locks. */
  readonly runDir: pulumi.Input<string>;
  /** Environment variable names the model server gets from the deploying environment (default []). */
  readonly passEnv?: pulumi.Input<pulumi.Input<string>[]>;
}

/** Deploy mode `agent`: the MLOps agent serves the version behind a stable front URL. */
export interface AgentServingArgs {
  readonly mode: "agent";
  /** The agent's API URL (MlflowAgent.url). */
  readonly agentUrl: pulumi.Input<string>;
  /** The agent's API token (secret). */
  readonly token: pulumi.Input<string>;
  /** The agent process (MlflowAgent.instance): a restarted agent is asked to serve again. */
  readonly agentInstance?: pulumi.Input<string>;
  /** Fixed front port inside the agent's front range; by default the agent picks one. */
  readonly frontPort?: pulumi.Input<number>;
  /** The agent's backend start deadline (default 180 s). */
  readonly startTimeoutSeconds?: pulumi.Input<number>;
  /** `shared`: the model joins the agent's multi-model worker (no challenger); default dedicated. */
  readonly backend?: "dedicated" | "shared";
  /** The host name of the front URLs, for an agent on a remote host (MlflowAgent.publicHost). */
  readonly publicHost?: pulumi.Input<string | undefined>;
  /** A second registered version behind the same front with `weight` of the requests. */
  readonly challenger?: {
    readonly registered: { readonly version: number } | { readonly alias: string };
    readonly weight: number;
  };
}

/** Deploy mode `remote`: `mlflow models serve` on the MLflow host over SSH (its provisioned venv). */
export interface RemoteServingArgs extends ServingCommon {
  readonly mode: "remote";
  /** The host (MlflowServer.remote; secret: the SSH key). */
  readonly remote: pulumi.Input<RemoteHost | undefined>;
}

export type MlflowServingArgs = LocalServingArgs | RemoteServingArgs;

/** Connection and serving settings every model has, however its version comes about. */
interface ModelArgsCommon {
  /** Tracking server URL. */
  readonly trackingUri: pulumi.Input<string>;
  /** Which registry `trackingUri` reaches (MlflowServer.registryId); another one registers anew. */
  readonly registryId?: pulumi.Input<string>;
  /** Tracking server credentials (secret). */
  readonly auth?: pulumi.Input<MlflowAuth | undefined>;
  /** Registered model name. */
  readonly modelName: string;
  /** Serve the version as a REST endpoint (here, on the MLflow host over SSH, or through the agent); omit to only register. */
  readonly serve?: MlflowServingArgs | AgentServingArgs;
  /** Request body for the generated commands (default: one row of the model's serving example). */
  readonly sampleInput?: Record<string, unknown>;
}

/** Register a new version from a source (the "register here" way). */
export interface RegisterFromSourceArgs extends ModelArgsCommon {
  /** A local MLflow model directory (content-hashed) or a runs:/, models:/ or artifact URI. */
  readonly source: string;
  readonly registered?: undefined;
  /** Aliases that point at this version, e.g. ["champion"]. */
  readonly aliases?: pulumi.Input<pulumi.Input<string>[]>;
  /** Tags on the model version. */
  readonly tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Description of the model version. */
  readonly description?: pulumi.Input<string>;
  /** Bump to register the same source again as a new version (default 1). */
  readonly registration?: pulumi.Input<number>;
  /** Keep the version in the registry on destroy and replacement (default false; the stack config
   * defaults it to true for an existing, shared registry). */
  readonly keepInRegistry?: boolean;
  /** Experiment that holds the upload runs of local sources (default "model-serving"). */
  readonly experimentName?: pulumi.Input<string>;
  /** Deadline for the version to become READY (default 120 s). */
  readonly readyTimeoutSeconds?: pulumi.Input<number>;
}

/** Serve a version the registry already holds (the "serve what is registered" way): nothing is
 * registered, changed or deleted in MLflow. An alias is followed: see providers/modelReferenceCore.ts. */
export interface ServeRegisteredArgs extends ModelArgsCommon {
  readonly registered: { readonly version: number } | { readonly alias: string };
  readonly source?: undefined;
}

export type RegisteredModelArgs = RegisterFromSourceArgs | ServeRegisteredArgs;

/** A model version in MLflow (registered from a source, or one the registry already holds), optionally
 * served as a REST endpoint on the MLflow host. */
export class RegisteredModel extends pulumi.ComponentResource {
  /** `models:/<name>/<version>` */
  public readonly modelUri: pulumi.Output<string>;
  public readonly version: pulumi.Output<string>;
  /** How to score the served version; undefined when it is only registered. */
  public readonly endpoint: pulumi.Output<EndpointEntry | undefined>;

  constructor(name: string, args: RegisteredModelArgs, opts?: pulumi.ComponentResourceOptions) {
    super("modelserving:mlflow:RegisteredModel", name, {}, opts);
    const version =
      args.registered === undefined
        ? registerVersion(name, args, this)
        : referenceVersion(name, args, this);
    this.modelUri = version.modelUri;
    this.version = version.version;

    if (args.serve) {
      const serve = args.serve;
      const deployment =
        serve.mode === "agent"
          ? agentDeployment(name, args, serve, version, this)
          : mlflowDeployment(name, args, serve, version, this);
      this.endpoint = pulumi
        .all([deployment.url, version.modelUri, version.version, version.sampleBody])
        .apply(([url, modelUri, v, body]): EndpointEntry | undefined =>
          // Known only once the deployment exists (undefined while previewing its creation).
          url === undefined
            ? undefined
            : {
                target: "mlflow",
                url,
                modelUri,
                version: v,
                curl: mlflowCurlCommand(url, body),
                python: mlflowPythonCommand(url, body),
              },
        );
    } else {
      this.endpoint = pulumi.output(undefined);
    }
    this.registerOutputs({
      modelUri: this.modelUri,
      version: this.version,
      endpoint: this.endpoint,
    });
  }
}

function agentDeployment(
  name: string,
  args: RegisteredModelArgs,
  serve: AgentServingArgs,
  version: VersionOutputs,
  parent: pulumi.Resource,
): AgentDeployment {
  if (serve.challenger && !(serve.challenger.weight > 0 && serve.challenger.weight < 1)) {
    throw new Error(
      `RegisteredModel ${args.modelName}: challenger.weight must be between 0 and 1, exclusive (got ${serve.challenger.weight})`,
    );
  }
  if (serve.challenger && serve.backend === "shared") {
    throw new Error(
      `RegisteredModel ${args.modelName}: a model on the agent's shared backend cannot have a challenger`,
    );
  }
  const challenger = serve.challenger
    ? new ModelReference(
        `${name}-challenger`,
        {
          trackingUri: args.trackingUri,
          registryId: args.registryId,
          auth: args.auth,
          name: args.modelName,
          ...("alias" in serve.challenger.registered
            ? { alias: serve.challenger.registered.alias }
            : { version: serve.challenger.registered.version }),
        },
        { parent },
      )
    : undefined;
  return new AgentDeployment(
    `${name}-server`,
    {
      agentUrl: serve.agentUrl,
      token: serve.token,
      modelName: args.modelName,
      modelUri: version.modelUri,
      challenger: challenger
        ? { modelUri: challenger.modelUri, weight: serve.challenger!.weight }
        : undefined,
      frontPort: serve.frontPort,
      sampleInput: args.sampleInput,
      backend: serve.backend,
      startTimeoutSeconds: serve.startTimeoutSeconds ?? 180,
      agentInstance: serve.agentInstance,
      ...(serve.publicHost === undefined ? {} : { publicHost: serve.publicHost }),
    },
    { parent },
  );
}

/** What serving needs of a version, however it came about. */
interface VersionOutputs {
  modelUri: pulumi.Output<string>;
  version: pulumi.Output<string>;
  /** The request body of the generated commands. */
  sampleBody: pulumi.Output<unknown>;
}

function registerVersion(
  name: string,
  args: RegisterFromSourceArgs,
  parent: pulumi.Resource,
): VersionOutputs {
  const problem = sourceProblem("source", args.source);
  if (problem) {
    throw new Error(`RegisteredModel ${args.modelName}: ${problem}`);
  }
  const version = new ModelVersion(
    `${name}-version`,
    {
      trackingUri: args.trackingUri,
      registryId: args.registryId,
      auth: args.auth,
      name: args.modelName,
      source: args.source,
      sourceHash: hashSource(args.source),
      aliases: args.aliases ?? [],
      tags: args.tags ?? {},
      description: args.description ?? "",
      registration: args.registration ?? 1,
      experimentName: args.experimentName ?? "model-serving",
      readyTimeoutSeconds: args.readyTimeoutSeconds ?? 120,
    },
    { parent, retainOnDelete: args.keepInRegistry ?? false },
  );
  return {
    modelUri: version.modelUri,
    version: version.version,
    sampleBody: pulumi.output(sampleRequestBody(args.source, args.sampleInput)),
  };
}

function referenceVersion(
  name: string,
  args: ServeRegisteredArgs,
  parent: pulumi.Resource,
): VersionOutputs {
  const ref = new ModelReference(
    `${name}-registered`,
    {
      trackingUri: args.trackingUri,
      registryId: args.registryId,
      auth: args.auth,
      name: args.modelName,
      ...("alias" in args.registered
        ? { alias: args.registered.alias }
        : { version: args.registered.version }),
    },
    { parent },
  );
  return {
    modelUri: ref.modelUri,
    version: ref.resolvedVersion,
    // The configured sample, else one row of the version's own serving example from MLflow.
    sampleBody: ref.servingExample.apply((example) =>
      args.sampleInput !== undefined || !example
        ? sampleRequestBody("", args.sampleInput)
        : JSON.parse(example),
    ),
  };
}

/** `mlflow models serve` of the version: here (mode local) or on the MLflow host over SSH (remote). */
function mlflowDeployment(
  name: string,
  args: RegisteredModelArgs,
  serve: MlflowServingArgs,
  version: VersionOutputs,
  parent: pulumi.Resource,
): ModelDeployment {
  const remote = serve.mode === "remote" ? pulumi.output(serve.remote) : undefined;
  return new ModelDeployment(
    `${name}-server`,
    {
      mode: serve.mode,
      modelUri: version.modelUri,
      trackingUri: args.trackingUri,
      auth: args.auth,
      host: serve.host ?? (serve.mode === "remote" ? "0.0.0.0" : "127.0.0.1"),
      port: serve.port,
      portRangeStart: serve.portRangeStart ?? 5001,
      // Mode remote: the host's provisioned venv, logs and locks under its base directory (paths,
      // not secret, though they come from the secret connection block).
      mlflowBin:
        serve.mode === "local"
          ? serve.mlflowBin
          : pulumi.unsecret(remote!.apply((r) => `${venvDir(r!.layout)}/bin/mlflow`)),
      runDir:
        serve.mode === "local"
          ? serve.runDir
          : pulumi.unsecret(remote!.apply((r) => `${r!.layout.baseDir}/run/model-servers`)),
      startTimeoutSeconds: serve.startTimeoutSeconds ?? 300,
      passEnv: serve.mode === "local" ? (serve.passEnv ?? []) : [],
      remote,
    },
    { parent },
  );
}
