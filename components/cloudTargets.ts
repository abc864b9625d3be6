/**
 * Maps a model's cloud `targets` config (schema and types: config/cloudTargets.ts) onto the cloud
 * components' args. Type-only imports of the components, so loading this costs no cloud SDK.
 */
import type { AzureMlTargetConfig, SageMakerTargetConfig } from "../config/cloudTargets";
import type { AzureMlEndpointArgs } from "./azureMlEndpoint";
import type { SageMakerEndpointArgs } from "./sagemakerEndpoint";

/** Maps a sagemaker target config onto SageMakerEndpoint args (the caller adds image and model). */
export function sageMakerArgsFromConfig(
  t: SageMakerTargetConfig,
  wiring: Pick<
    SageMakerEndpointArgs,
    "imageUri" | "ecrRepositoryArn" | "modelName" | "modelVersion"
  >,
): SageMakerEndpointArgs {
  return {
    ...wiring,
    region: t.region,
    endpointName: t.endpointName,
    roleArn: t.roleArn,
    instanceType: t.instanceType,
    instanceCount: t.instanceCount,
    serverless: t.serverless,
    dataCapture: t.dataCaptureS3Uri
      ? { s3Uri: t.dataCaptureS3Uri, samplingPercentage: t.dataCaptureSamplingPercentage }
      : undefined,
    autoscaling: t.autoscaling && {
      minInstances: t.autoscaling.min,
      maxInstances: t.autoscaling.max,
      targetInvocationsPerInstance: t.autoscaling.targetInvocationsPerInstance,
    },
    blueGreen: t.blueGreen,
    environment: t.environment,
    containerStartupHealthCheckTimeoutSeconds: t.containerStartupHealthCheckTimeoutSeconds,
    vpcConfig: t.vpc,
    enableNetworkIsolation: t.enableNetworkIsolation,
    kmsKeyArn: t.kmsKeyArn,
    tags: t.tags,
  };
}

/** The deployments of an azureml target: default one "blue" deployment of the model's version. */
export function azureMlDeploymentsFromConfig(t: AzureMlTargetConfig, modelVersion: string) {
  return (t.deployments ?? [{ name: "blue", traffic: 100 }]).map((d) => ({
    name: d.name,
    version: d.version ?? modelVersion,
    trafficPercent: d.traffic,
    instanceType: d.instanceType,
    instanceCount: d.instanceCount,
  }));
}

/** Maps an azureml target config onto AzureMlEndpoint args; images are per model version. */
export function azureMlArgsFromConfig(
  t: AzureMlTargetConfig,
  wiring: Pick<AzureMlEndpointArgs, "registryId" | "modelName"> & {
    modelVersion: string;
    imageFor: (version: string) => AzureMlEndpointArgs["deployments"][number]["imageUri"];
  },
): AzureMlEndpointArgs {
  return {
    subscriptionId: t.subscriptionId,
    resourceGroupName: t.resourceGroup,
    location: t.location,
    workspaceName: t.workspaceName,
    createWorkspace: t.createWorkspace,
    workspaceGeneration: t.workspaceGeneration,
    registryId: wiring.registryId,
    modelName: wiring.modelName,
    endpointName: t.endpointName,
    authMode: t.authMode,
    identity: t.identity,
    environment: t.environment,
    instanceType: t.instanceType,
    instanceCount: t.instanceCount,
    requestSettings: t.requestSettings,
    scaling: t.scaling && {
      minInstances: t.scaling.min,
      maxInstances: t.scaling.max,
      targetCpuPercent: t.scaling.targetCpuPercent,
    },
    deployments: azureMlDeploymentsFromConfig(t, wiring.modelVersion).map((d) => ({
      name: d.name,
      modelVersion: d.version,
      imageUri: wiring.imageFor(d.version),
      trafficPercent: d.trafficPercent,
      instanceType: d.instanceType,
      instanceCount: d.instanceCount,
    })),
  };
}
