/* eslint-disable @typescript-eslint/no-explicit-any -- mock registrations and ARM payloads are untyped JSON */
import * as fs from "fs";
import * as path from "path";
import { azureMlArgsFromConfig, sageMakerArgsFromConfig } from "../../../components/cloudTargets";
import { parseCloudTargets } from "../../../config/cloudTargets";

const azure = {
  subscriptionId: "00000000-0000-0000-0000-000000000001",
  resourceGroup: "ml-rg",
  location: "westeurope",
  workspaceName: "ml-ws",
  registry: { name: "irisacr" },
};

test("valid targets parse and map onto component args", () => {
  const t = parseCloudTargets(
    {
      sagemaker: {
        region: "eu-west-1",
        instanceType: "ml.c5.large",
        instanceCount: 2,
        autoscaling: { min: 2, max: 4, targetInvocationsPerInstance: 100 },
        dataCaptureS3Uri: "s3://captures/p",
      },
      azureml: {
        ...azure,
        deployments: [
          { name: "blue", traffic: 80 },
          { name: "green", version: "4", traffic: 20 },
        ],
      },
    },
    "model-serving:models[0].targets",
  );
  expect(
    sageMakerArgsFromConfig(t.sagemaker!, {
      imageUri: "i",
      ecrRepositoryArn: "a",
      modelName: "iris",
      modelVersion: "3",
    }),
  ).toMatchObject({
    region: "eu-west-1",
    instanceCount: 2,
    autoscaling: { minInstances: 2, maxInstances: 4, targetInvocationsPerInstance: 100 },
    dataCapture: { s3Uri: "s3://captures/p" },
  });
  const args = azureMlArgsFromConfig(t.azureml!, {
    registryId: "r",
    modelName: "iris",
    modelVersion: "3",
    imageFor: (v) => `img-for-${v}`,
  });
  expect(
    args.deployments.map((d) => [d.name, d.modelVersion, d.imageUri, d.trafficPercent]),
  ).toEqual([
    ["blue", "3", "img-for-3", 80],
    ["green", "4", "img-for-4", 20],
  ]);
  expect(args.resourceGroupName).toBe("ml-rg");
});

// Outside the stack config (CloudServing checks its args with the same schema) the format is the same;
// every rule is asserted verbatim in test/unit/stackConfig.test.ts.
test.each([
  [
    { sagemaker: { region: "eu-west-1", instanceCount: 0 } },
    "model-serving:models[0].targets.sagemaker.instanceCount: must be a whole number of at least 1 (got 0)",
  ],
  [
    { sagemakr: { region: "eu-west-1" } },
    "model-serving:models[0].targets.sagemakr: unknown key; expected one of sagemaker, azureml, docker, kubernetes",
  ],
  [
    { azureml: { ...azure, authMode: "aad" } },
    'model-serving:models[0].targets.azureml.authMode: must be one of "key", "aml_token", "aad_token" (got "aad")',
  ],
  // SageMaker's blue/green limits: canary at most 50%, linear steps 10-50%.
  [
    { sagemaker: { region: "eu-west-1", blueGreen: { mode: "CANARY", stepPercent: 51 } } },
    "model-serving:models[0].targets.sagemaker.blueGreen.stepPercent: must be from 1 to 50 for CANARY (a canary is at most half the new fleet), got 51",
  ],
  [
    { sagemaker: { region: "eu-west-1", blueGreen: { mode: "LINEAR", stepPercent: 9 } } },
    "model-serving:models[0].targets.sagemaker.blueGreen.stepPercent: must be from 10 to 50 for LINEAR, got 9",
  ],
  [
    { sagemaker: { region: "eu-west-1", blueGreen: { mode: "LINEAR", stepPercent: 75 } } },
    "model-serving:models[0].targets.sagemaker.blueGreen.stepPercent: must be from 10 to 50 for LINEAR, got 75",
  ],
  // The provider's 60-minute wait for an endpoint update.
  [
    {
      sagemaker: {
        region: "eu-west-1",
        blueGreen: { mode: "CANARY", stepPercent: 10, waitIntervalSeconds: 1800 },
      },
    },
    "model-serving:models[0].targets.sagemaker.blueGreen.waitIntervalSeconds: makes an update take up to 4200s (600s provisioning + 2 baking periods of 1800s + 0s termination wait), " +
      "more than the 3600s the AWS provider waits for an endpoint update; shorten waitIntervalSeconds or terminationWaitSeconds",
  ],
  [
    { sagemaker: { region: "eu-west-1", blueGreen: { maximumExecutionTimeoutSeconds: 14400 } } },
    "model-serving:models[0].targets.sagemaker.blueGreen.maximumExecutionTimeoutSeconds: must be at most 3600: the AWS provider stops waiting for an endpoint update after 60 minutes, got 14400",
  ],
  [
    {
      sagemaker: {
        region: "eu-west-1",
        environment: { MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: "120" },
      },
    },
    'model-serving:models[0].targets.sagemaker.environment.MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: must be whole seconds from 1 to 59 (SageMaker ends an invocation at 60s), got "120"',
  ],
  [
    { sagemaker: { region: "eu-west-1", repositoryName: "Iris_Scorer" } },
    'model-serving:models[0].targets.sagemaker.repositoryName: must be lowercase letters, digits and . _ - / separators (got "Iris_Scorer")',
  ],
  [
    {
      sagemaker: { region: "eu-west-1", vpc: { subnetIds: ["vpc-1"], securityGroupIds: ["sg-1"] } },
    },
    'model-serving:models[0].targets.sagemaker.vpc.subnetIds[0]: must be a subnet id (got "vpc-1")',
  ],
  // Azure ML: the autoscale default (the instance count) lies within min..max.
  [
    { azureml: { ...azure, instanceCount: 4, scaling: { min: 1, max: 3, targetCpuPercent: 70 } } },
    "model-serving:models[0].targets.azureml.instanceCount: must be within scaling.min..max (1..3): it is the autoscale default (got 4)",
  ],
  [
    { azureml: { ...azure, scaling: { min: 2, max: 3, targetCpuPercent: 70 } } },
    "model-serving:models[0].targets.azureml.instanceCount: must be within scaling.min..max (2..3): it is the autoscale default",
  ],
  [
    {
      azureml: {
        ...azure,
        instanceCount: 2,
        scaling: { min: 2, max: 3, targetCpuPercent: 70 },
        deployments: [
          { name: "blue", traffic: 50 },
          { name: "green", traffic: 50, instanceCount: 1 },
        ],
      },
    },
    "model-serving:models[0].targets.azureml.deployments[1].instanceCount: must be within scaling.min..max (2..3): it is the autoscale default (got 1)",
  ],
])("rejects %j", (raw, message) => {
  expect(() => parseCloudTargets(raw, "model-serving:models[0].targets")).toThrow(
    new Error(message),
  );
});

test("new target keys map onto the component args", () => {
  const t = parseCloudTargets(
    {
      sagemaker: {
        region: "eu-west-1",
        environment: { WORKERS: "2" },
        containerStartupHealthCheckTimeoutSeconds: 600,
        vpc: { subnetIds: ["subnet-0a"], securityGroupIds: ["sg-0b"] },
        enableNetworkIsolation: true,
        kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:key/k",
        tags: { team: "ml" },
        blueGreen: { mode: "LINEAR", stepPercent: 25, waitIntervalSeconds: 600 },
      },
      azureml: {
        ...azure,
        identity: "userAssigned",
        authMode: "aad_token",
        environment: { A: "b" },
        workspaceGeneration: 2,
      },
    },
    "t",
  );
  expect(
    sageMakerArgsFromConfig(t.sagemaker!, {
      imageUri: "i",
      ecrRepositoryArn: "a",
      modelName: "iris",
      modelVersion: "3",
    }),
  ).toMatchObject({
    environment: { WORKERS: "2" },
    containerStartupHealthCheckTimeoutSeconds: 600,
    vpcConfig: { subnetIds: ["subnet-0a"], securityGroupIds: ["sg-0b"] },
    enableNetworkIsolation: true,
    kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:key/k",
    tags: { team: "ml" },
  });
  expect(
    azureMlArgsFromConfig(t.azureml!, {
      registryId: "r",
      modelName: "iris",
      modelVersion: "3",
      imageFor: (v) => v,
    }),
  ).toMatchObject({
    identity: "userAssigned",
    authMode: "aad_token",
    environment: { A: "b" },
    workspaceGeneration: 2,
  });
});

test("the example stacks' targets are valid", () => {
  // js-yaml comes with jest (istanbul); the example stacks are plain YAML.
  const yaml = require("js-yaml") as { load: (text: string) => any };
  for (const stack of ["Pulumi.sagemaker.yaml", "Pulumi.azureml.yaml"]) {
    const doc = yaml.load(fs.readFileSync(path.resolve(__dirname, "../../..", stack), "utf8"));
    const models = doc.config["model-serving:models"];
    expect(models.length).toBeGreaterThan(0);
    for (const m of models) {
      expect(() => parseCloudTargets(m.targets, `${stack} ${m.name}.targets`)).not.toThrow();
      expect(Object.keys(m.targets).length).toBeGreaterThan(0);
    }
  }
});
