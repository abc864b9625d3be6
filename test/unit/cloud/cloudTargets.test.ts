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
    "model-serving:models[0].targets.sagemakr: unknown key; expected one of sagemaker, azureml",
  ],
  [
    { azureml: { ...azure, authMode: "aad" } },
    'model-serving:models[0].targets.azureml.authMode: must be one of "key", "aml_token" (got "aad")',
  ],
])("rejects %j", (raw, message) => {
  expect(() => parseCloudTargets(raw, "model-serving:models[0].targets")).toThrow(
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
