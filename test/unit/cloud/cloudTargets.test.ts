/* eslint-disable @typescript-eslint/no-explicit-any -- mock registrations and ARM payloads are untyped JSON */
import * as fs from "fs";
import * as path from "path";
import {
  azureMlArgsFromConfig,
  parseCloudTargets,
  sageMakerArgsFromConfig,
} from "../../../components/cloudTargets";

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
    "model-serving:models.iris.targets",
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

test.each([
  [
    { sagemaker: { region: "eu-west-1", instanceCount: 0 } },
    "model-serving:models.iris.targets.sagemaker.instanceCount: Number must be greater than or equal to 1 (got 0)",
  ],
  [
    { sagemaker: { region: "eu-west-1", instanceTyp: "ml.m5.large" } },
    "model-serving:models.iris.targets.sagemaker: unknown key(s) instanceTyp",
  ],
  [
    { sagemaker: { region: "eu-west-1", roleArn: "my-role" } },
    'model-serving:models.iris.targets.sagemaker.roleArn: must be an IAM role ARN (got "my-role")',
  ],
  [
    {
      sagemaker: {
        region: "eu-west-1",
        instanceType: "ml.m5.large",
        serverless: { memorySizeInMb: 2048, maxConcurrency: 5 },
      },
    },
    "model-serving:models.iris.targets.sagemaker: SageMakerEndpoint: set either instanceType or serverless, not both",
  ],
  [
    {
      azureml: {
        ...azure,
        deployments: [
          { name: "blue", traffic: 70 },
          { name: "green", traffic: 20 },
        ],
      },
    },
    "model-serving:models.iris.targets.azureml: AzureMlEndpoint: traffic must sum to 100, got 90 (blue=70, green=20)",
  ],
  [
    { azureml: { ...azure, authMode: "aad" } },
    `model-serving:models.iris.targets.azureml.authMode: Invalid enum value. Expected 'key' | 'aml_token', received 'aad' (got "aad")`,
  ],
  [
    {
      azureml: {
        ...azure,
        registry: { name: "irisacr", create: true },
        deployments: [
          { name: "blue", traffic: 50 },
          { name: "green", version: "4", traffic: 50 },
        ],
      },
    },
    "model-serving:models.iris.targets.azureml.registry.create: registry.create works with one model version; create the registry once, then use it by name for blue/green",
  ],
  [
    { azureml: { ...azure, subscriptionId: "abc" } },
    'model-serving:models.iris.targets.azureml.subscriptionId: Invalid uuid (got "abc")',
  ],
])("rejects %j", (raw, message) => {
  expect(() => parseCloudTargets(raw, "model-serving:models.iris.targets")).toThrow(
    new Error(message),
  );
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
