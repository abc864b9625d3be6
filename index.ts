import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import type * as cloudServing from "./components/cloudServing";
import type * as standalone from "./components/standaloneScorer";
import type * as pushedImage from "./components/pushedScorerImage";
import type * as kubernetesScorer from "./components/standaloneScorerKubernetes";
import { EndpointEntry } from "./components/endpoint";
import { MlflowAgent } from "./components/mlflowAgent";
import { MlflowServer } from "./components/mlflowServer";
import { RegisteredModel } from "./components/registeredModel";
import { ScoreWorkflow, type WorkflowEntry } from "./components/scoreWorkflow";
import { sampleRequestBody } from "./components/sampleInput";
import { loadStackConfig } from "./config/load";

// config (validated before anything is declared) -> MLflow host -> one RegisteredModel per model
// -> one CloudServing per model with cloud targets.
const cfg = loadStackConfig();

const remote = cfg.mlflow.remote;
const mlflow = new MlflowServer(
  "mlflow",
  cfg.mlflow.mode === "existing"
    ? {
        mode: "existing",
        trackingUri: cfg.mlflow.trackingUri!,
        username: cfg.mlflow.username,
        password: cfg.mlflowPassword,
      }
    : cfg.mlflow.mode === "remote" && remote !== undefined && cfg.remoteKey !== undefined
      ? {
          mode: "remote",
          username: cfg.mlflow.username,
          password: cfg.mlflowPassword,
          port: cfg.mlflow.port,
          startTimeoutSeconds: cfg.mlflow.startTimeoutSeconds,
          remote: {
            host: remote.host,
            sshPort: remote.port,
            user: remote.user,
            hostKey: remote.hostKey,
            ...(remote.privateKeyAwsSecret !== undefined
              ? { awsSecretsManager: { secretId: remote.privateKeyAwsSecret } }
              : remote.privateKeyAzureSecret !== undefined
                ? { azureKeyVault: remote.privateKeyAzureSecret }
                : { privateKey: cfg.remoteKey.apply((k) => k.privateKey!) }),
            passphrase: cfg.remoteKey.apply((k) => k.passphrase),
            profile: remote.profile,
            extraApt: remote.extraApt,
            extraPip: remote.extraPip,
            backendStore:
              remote.backendStore === "postgresql"
                ? { kind: "postgresql", database: remote.database }
                : remote.backendStore === "dsn"
                  ? { kind: "dsn", dsn: cfg.remoteKey.apply((k) => k.dsn ?? "") }
                  : { kind: "sqlite" },
            bindHost: remote.bindHost,
            publicHost: remote.publicHost,
            layout: {
              serviceUser: remote.serviceUser,
              baseDir: remote.baseDir,
              dataDir: remote.dataDir,
            },
            provisionTimeoutSeconds: remote.provisionTimeoutSeconds,
            preflight: remote.preflight,
          },
        }
      : {
          mode: "local",
          host: cfg.mlflow.host,
          port: cfg.mlflow.port,
          dataDir: cfg.mlflow.dataDir,
          mlflowBin: cfg.mlflowBin,
          startTimeoutSeconds: cfg.mlflow.startTimeoutSeconds,
          username: cfg.mlflow.username,
          password: cfg.mlflowPassword,
          passEnv: cfg.mlflow.passEnv,
        },
);

// Deploy mode agent: the MLOps agent on the MLflow host (started here, or the one at its url).
const agentCfg = cfg.agent;
const agent =
  agentCfg === undefined
    ? undefined
    : new MlflowAgent("agent", {
        token: cfg.agentToken!,
        startTimeoutSeconds: agentCfg.startTimeoutSeconds,
        ...(agentCfg.mode === "existing"
          ? { mode: "existing", url: agentCfg.url }
          : agentCfg.mode === "remote"
            ? {
                // Installed on the remote MLflow host over SSH, binding its bindHost.
                mode: "remote",
                host: remote?.bindHost,
                publicHost: remote?.publicHost ?? remote?.host,
                port: agentCfg.port,
                frontPorts: agentCfg.frontPorts,
                backendPorts: agentCfg.backendPorts,
                backendWorkers: agentCfg.backendWorkers,
                remote: mlflow.remote,
                provisioned: mlflow.remoteProvisioned,
              }
            : {
                mode: "local",
                host: agentCfg.host,
                port: agentCfg.port,
                frontPorts: agentCfg.frontPorts,
                backendPorts: agentCfg.backendPorts,
                backendWorkers: agentCfg.backendWorkers,
                python: path.join(path.dirname(cfg.mlflowBin), "python"),
                dataDir: path.join(cfg.runDir, "agent"),
                trackingUri: mlflow.trackingUri,
                mlflowAuth: mlflow.auth,
              }),
      });

const models = cfg.models.map((m) => {
  const agentServe = (serve: Exclude<typeof m.serve, false>) => ({
    mode: "agent" as const,
    agentUrl: agent!.url,
    token: agent!.token,
    agentInstance: agent!.instance,
    ...(agentCfg!.mode === "remote" ? { publicHost: agent!.publicHost } : {}),
    frontPort: serve.port,
    startTimeoutSeconds: agent!.startTimeoutSeconds,
    // A model with a challenger keeps its own backends.
    backend: m.challenger === undefined ? agentCfg!.backend : ("dedicated" as const),
    challenger:
      m.challenger === undefined
        ? undefined
        : {
            registered:
              m.challenger.alias !== undefined
                ? { alias: m.challenger.alias }
                : { version: m.challenger.version! },
            weight: m.challenger.weight,
          },
  });
  const common = {
    trackingUri: mlflow.trackingUri,
    registryId: mlflow.registryId,
    auth: mlflow.auth,
    modelName: m.name,
    sampleInput: m.sampleInput,
    serve:
      m.serve === false
        ? undefined
        : agent !== undefined
          ? agentServe(m.serve)
          : cfg.mlflow.deployMode === "remote"
            ? {
                mode: "remote" as const,
                // On the remote host: the interface of mlflow.remote.bindHost (serve.host is this
                // machine's interface in deploy mode local).
                host: remote?.bindHost,
                port: m.serve.port,
                portRangeStart: remote?.portRangeStart,
                startTimeoutSeconds: m.serve.startTimeoutSeconds,
                remote: mlflow.remote,
              }
            : {
                mode: "local" as const,
                host: m.serve.host,
                port: m.serve.port,
                mlflowBin: cfg.mlflowBin,
                runDir: cfg.runDir,
                startTimeoutSeconds: m.serve.startTimeoutSeconds,
                passEnv: cfg.mlflow.passEnv,
              },
  };
  // Either register a version from `source` here, or serve what the registry already holds.
  return m.kind === "reference"
    ? new RegisteredModel(m.name, { ...common, registered: m.registered })
    : new RegisteredModel(m.name, {
        ...common,
        source: m.source,
        aliases: m.aliases,
        tags: m.tags,
        description: m.description,
        registration: m.registration,
        keepInRegistry: m.keepInRegistry,
      });
});

// Endpoint entries: `<model>` for the MLflow host, `<model>/<target>` for each other target.
const entries: Record<string, pulumi.Output<EndpointEntry | undefined>> = {};
cfg.models.forEach((m, i) => {
  entries[m.name] = models[i].endpoint;
  const { docker, kubernetes, ...cloudTargets } = m.targets ?? {};
  const sample = {
    sampleInput: m.sampleInput,
    source: m.kind === "register" ? m.source : undefined,
  };
  if (Object.keys(cloudTargets).length > 0) {
    // Only stacks with cloud targets load the AWS/Azure SDKs.
    const { CloudServing } = require("./components/cloudServing") as typeof cloudServing;
    const cloud = new CloudServing(`${m.name}-cloud`, {
      modelName: m.name,
      version: models[i].version,
      trackingUri: mlflow.trackingUri,
      auth: mlflow.auth,
      mlflowBin: cfg.mlflowBin,
      targets: cloudTargets,
      ...sample,
    });
    for (const target of Object.keys(cloudTargets)) {
      entries[`${m.name}/${target}`] = cloud.endpoints.apply((e) => e[target]);
    }
  }
  if (docker) {
    // Only stacks with a Docker target load the Docker SDK.
    const { StandaloneScorer } = require("./components/standaloneScorer") as typeof standalone;
    const scorer = new StandaloneScorer(`${m.name}-docker`, {
      modelName: m.name,
      modelVersion: models[i].version,
      trackingUri: mlflow.trackingUri,
      auth: mlflow.auth,
      mlflowBin: cfg.mlflowBin,
      docker,
      sampleBody: sampleRequestBody(sample.source ?? "", sample.sampleInput),
    });
    entries[`${m.name}/docker`] = scorer.endpoint;
  }
  if (kubernetes) {
    // Only stacks with a Kubernetes target load the Docker and Kubernetes SDKs.
    const { PushedScorerImage } = require("./components/pushedScorerImage") as typeof pushedImage;
    const { StandaloneScorerKubernetes } =
      require("./components/standaloneScorerKubernetes") as typeof kubernetesScorer;
    const { image, ...settings } = kubernetes;
    const pushed = new PushedScorerImage(`${m.name}-kubernetes-image`, {
      modelName: m.name,
      modelVersion: models[i].version,
      trackingUri: mlflow.trackingUri,
      auth: mlflow.auth,
      mlflowBin: cfg.mlflowBin,
      image,
    });
    const scorer = new StandaloneScorerKubernetes(`${m.name}-kubernetes`, {
      image: pushed.imageUri,
      modelUri: models[i].modelUri,
      modelVersion: models[i].version,
      kubernetes: settings,
      sampleBody: sampleRequestBody(sample.source ?? "", sample.sampleInput),
    });
    entries[`${m.name}/kubernetes`] = scorer.endpoint;
  }
});

// Score workflows on the agent (deploy mode agent; config/workflowConfig.ts).
const workflowEntries: Record<string, pulumi.Output<WorkflowEntry>> = {};
for (const w of cfg.workflows) {
  const m = w.model;
  const stackModel =
    m.kind === "uri" ? undefined : models[cfg.models.findIndex((c) => c.name === m.name)];
  const workflow = new ScoreWorkflow(
    `workflow-${w.id}`,
    {
      agentUrl: agent!.url,
      token: agent!.token,
      agentInstance: agent!.instance,
      workflowId: w.id,
      ...(m.kind === "uri"
        ? { modelUri: m.uri }
        : m.kind === "stack"
          ? { modelUri: stackModel!.modelUri }
          : {
              registered: {
                trackingUri: mlflow.trackingUri,
                registryId: mlflow.registryId,
                auth: mlflow.auth,
                name: m.name,
                ...(m.alias !== undefined ? { alias: m.alias } : { version: m.version }),
              },
            }),
      input: w.input,
      inputFormat: w.inputFormat,
      output: w.output,
      outputFormat: w.outputFormat,
      batchSize: w.batchSize,
      maxConcurrentRuns: w.maxConcurrentRuns,
      timeoutSeconds: w.timeoutSeconds,
      executeOnUp: w.executeOnUp,
    },
    // An alias of the registry is read after this stack's own registration set it.
    { dependsOn: stackModel === undefined ? [] : [stackModel] },
  );
  workflowEntries[w.id] = workflow.entry;
}

export const mlflowTrackingUri = mlflow.trackingUri;

/** `<model>` (MLflow host) or `<model>/<target>` (sagemaker, azureml, docker, kubernetes) -> how to score it. */
export const endpoints: pulumi.Output<Record<string, EndpointEntry>> = pulumi
  .all(entries)
  .apply(
    (all) =>
      Object.fromEntries(Object.entries(all).filter(([, e]) => e !== undefined)) as Record<
        string,
        EndpointEntry
      >,
  );

/** Model name -> `models:/<name>/<version>` of every model (registered here or referenced), served or not. */
export const modelUris = pulumi
  .all(models.map((m) => m.modelUri))
  .apply((uris) => Object.fromEntries(uris.map((u, i) => [cfg.models[i].name, u])));

/** Workflow id -> how to trigger and poll it on the agent (curl with the cookie login or the bearer
 * token, the status poll, Python); the token is read from $TOKEN, never part of the output. */
export const workflows = pulumi.all(workflowEntries);
