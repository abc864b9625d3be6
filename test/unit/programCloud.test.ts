/* eslint-disable @typescript-eslint/no-explicit-any -- mock registrations are untyped JSON */
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { tempDir } from "../support/env";
import { mockRecorder, value } from "../support/mockRecorder";

// index.ts with cloud targets under mocks: the targets config reaches the cloud components, which are
// children of the model's own CloudServing component, and their entries join the `endpoints` map as
// `<model>/<target>`.
jest.mock("../../providers/modelVersion", () =>
  jest.requireActual("../support/dynamicStandIns").modelVersionModule(),
);
jest.mock("../../providers/modelDeployment", () =>
  jest.requireActual("../support/dynamicStandIns").modelDeploymentModule(),
);
jest.mock("../../providers/localMlflowServer", () =>
  jest.requireActual("../support/dynamicStandIns").localMlflowServerModule(),
);
jest.mock("../../providers/modelExport", () =>
  jest.requireActual("../support/dynamicStandIns").modelExportModule(),
);
jest.mock("../../components/cloud/sagemakerVariantGuard", () => {
  const actual = jest.requireActual("../../components/cloud/sagemakerVariantGuard");
  const { CustomResource } = jest.requireActual("@pulumi/pulumi");
  class SageMakerVariantGuard extends CustomResource {
    constructor(name: string, args: Record<string, unknown>, opts?: object) {
      super("pulumi-nodejs:dynamic/modelserving:SageMakerVariantGuard", name, args, opts);
    }
  }
  return { ...actual, SageMakerVariantGuard };
});
jest.mock("../../components/cloud/uniqueSuffix", () => {
  const actual = jest.requireActual("../../components/cloud/uniqueSuffix");
  const { CustomResource } = jest.requireActual("@pulumi/pulumi");
  class UniqueSuffix extends CustomResource {
    constructor(name: string, args: Record<string, unknown>, opts?: object) {
      super(
        "pulumi-nodejs:dynamic/modelserving:UniqueSuffix",
        name,
        { ...args, suffix: undefined },
        opts,
      );
    }
  }
  return { ...actual, UniqueSuffix };
});
jest.mock("../../providers/azureMlTraffic", () =>
  jest.requireActual("../support/dynamicStandIns").azureMlTrafficModule(),
);

const { registrations, record } = mockRecorder();
const SUB = "00000000-0000-0000-0000-000000000001";
const modelDir = tempDir("cloud-program-model");
fs.writeFileSync(path.join(modelDir, "MLmodel"), "flavors: {}\n");
// The exported build context holds the model MLflow logged, with its input example.
const contextDir = tempDir("cloud-program-context");
fs.mkdirSync(path.join(contextDir, "model"));
fs.writeFileSync(
  path.join(contextDir, "model", "serving_input_example.json"),
  JSON.stringify({
    dataframe_split: {
      columns: ["x", "y"],
      data: [
        [7, 8],
        [9, 10],
      ],
    },
  }),
);

pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const state: Record<string, any> = { ...args.inputs };
      switch (args.type) {
        case "pulumi-nodejs:dynamic/modelserving:LocalMlflowServer":
          state.trackingUri = "http://127.0.0.1:5000";
          break;
        case "pulumi-nodejs:dynamic/modelserving:ModelVersion":
          Object.assign(state, { version: "4", modelUri: "models:/iris/4" });
          break;
        case "pulumi-nodejs:dynamic/modelserving:ModelDeployment":
          state.url = "http://127.0.0.1:5001/invocations";
          break;
        case "pulumi-nodejs:dynamic/modelserving:ModelExport":
          Object.assign(state, { contextDir, contextHash: "h".repeat(64) });
          break;
        case "aws:ecr/repository:Repository":
          Object.assign(state, {
            arn: `arn:aws:ecr:eu-west-1:123456789012:repository/${args.inputs.name}`,
            repositoryUrl: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/${args.inputs.name}`,
          });
          break;
        case "docker:index/image:Image":
          state.repoDigest = `${args.inputs.imageName.split(":")[0]}@sha256:${"d".repeat(64)}`;
          break;
        case "azure-native:machinelearningservices:OnlineEndpoint":
          state.identity = { principalId: "p" };
          state.properties = {
            ...args.inputs.properties,
            scoringUri: `https://${args.inputs.endpointName}.westeurope.inference.ml.azure.com/score`,
          };
          break;
      }
      state.name ??= args.name;
      state.arn ??= `arn:aws:mock:::${args.name}`;
      return { id: `${args.name}-id`, state };
    },
    call(args) {
      switch (args.token) {
        case "aws:index/getCallerIdentity:getCallerIdentity":
          return { accountId: "123456789012" };
        case "aws:index/getPartition:getPartition":
          return { partition: "aws", dnsSuffix: "amazonaws.com" };
        case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
          return { userName: "AWS", password: "ecr-password", proxyEndpoint: "https://x" };
        case "azure-native:containerregistry:getRegistry":
          return {
            name: args.inputs.registryName,
            loginServer: `${args.inputs.registryName}.azurecr.io`,
            id: `/subscriptions/${SUB}/resourceGroups/ml-rg/providers/Microsoft.ContainerRegistry/registries/${args.inputs.registryName}`,
          };
        case "azure-native:containerregistry:listRegistryCredentials":
          return { username: "u", passwords: [{ name: "password", value: "acr-password" }] };
        case "azure-native:machinelearningservices:getWorkspace":
          return { name: args.inputs.workspaceName, id: "/ws" };
        case "azure-native:machinelearningservices:listOnlineEndpointKeys":
          return { primaryKey: "endpoint-key-123", secondaryKey: "s" };
        case "azure-native:authorization:getClientConfig":
          return { tenantId: "t", subscriptionId: SUB, clientId: "c", objectId: "o" };
        case "azure-native:authorization:getClientToken":
          return { token: "entra-token" };
      }
      throw new Error(`unexpected call ${args.token}`);
    },
  },
  "model-serving",
  "cloud",
  false,
);
pulumi.runtime.setAllConfig({
  "model-serving:models": JSON.stringify([
    {
      name: "iris",
      source: modelDir,
      targets: {
        sagemaker: { region: "eu-west-1", instanceType: "ml.c5.large", instanceCount: 2 },
        azureml: {
          subscriptionId: SUB,
          resourceGroup: "ml-rg",
          location: "westeurope",
          workspaceName: "ml-ws",
          registry: { name: "irisacr" },
          deployments: [
            { name: "blue", version: "3", traffic: 90 },
            { name: "green", traffic: 10 },
          ],
        },
      },
    },
  ]),
});

describe("index.ts with cloud targets under mocks", () => {
  let endpoints: Record<string, any>;
  let secret: boolean;
  // The ACR push logs in with an Entra ID token exchanged at the registry: answered here.
  const fetchSpy = jest
    .spyOn(global, "fetch")
    .mockImplementation(async () => new Response('{"refresh_token":"acr-token"}'));
  afterAll(() => fetchSpy.mockRestore());
  beforeAll(async () => {
    const program = await import("../../index");
    endpoints = await value(program.endpoints);
    secret = await (program.endpoints as any).isSecret;
  });

  it("declares a scorer image and endpoint per target, one image per AzureML model version", () => {
    const names = registrations.map((r) => `${r.type} ${r.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        "modelserving:image:ScorerImage iris-sagemaker-image",
        "modelserving:aws:SageMakerEndpoint iris-sagemaker",
        "modelserving:image:ScorerImage iris-azureml-image-3",
        "modelserving:image:ScorerImage iris-azureml-image-current",
        "modelserving:azure:AzureMlEndpoint iris-azureml",
      ]),
    );
    const exports = registrations.filter((r) => r.type.endsWith(":ModelExport"));
    expect(exports.map((e) => [e.name, e.inputs.modelVersion]).sort()).toEqual([
      ["iris-azureml-image-3-export", "3"],
      ["iris-azureml-image-current-export", "4"],
      ["iris-sagemaker-image-export", "4"],
    ]);
    const repo = registrations.find((r) => r.type === "aws:ecr/repository:Repository")!;
    // Unique per project and stack ("cloud"): two stacks in one account never share a repository.
    expect(repo.inputs.name).toBe("model-serving-cloud-iris-scorer");
    // Images of the same version for SageMaker and Azure ML build from folders of their own.
    const roots = exports.map((e) => e.inputs.contextRoot);
    expect(new Set(roots).size).toBe(3);
  });

  it("the cloud commands send the model's own input example, not a fixed row", () => {
    const row = `{"dataframe_split":{"columns":["x","y"],"data":[[7,8]]}}`;
    expect(endpoints["iris/sagemaker"].awsCli).toContain(`--body '${row}'`);
    expect(endpoints["iris/sagemaker"].curl).toContain(`-d '${row}'`);
    expect(endpoints["iris/azureml"].curl).toContain(`-d '${row}'`);
    expect(endpoints["iris/azureml"].deploymentCurl.green).toContain(
      "-H 'azureml-model-deployment: green'",
    );
  });

  it("parents the cloud resources to a CloudServing component of their own, not to RegisteredModel", () => {
    // The mock monitor's URNs carry each resource's parent type chain.
    const monitor = pulumi.runtime.getMonitor() as unknown as {
      getRegisteredResources(): Map<string, { state: { toJavaScript(): Record<string, unknown> } }>;
    };
    const urns = [...monitor.getRegisteredResources().keys()];
    const typeOf = (name: string) =>
      urns.filter((u) => u.endsWith(`::${name}`)).map((u) => u.split("::")[2]);
    expect(typeOf("iris-cloud")).toEqual(["modelserving:cloud:CloudServing"]);
    const cloud = "modelserving:cloud:CloudServing";
    expect(typeOf("iris-sagemaker-image")).toEqual([`${cloud}$modelserving:image:ScorerImage`]);
    expect(typeOf("iris-sagemaker")).toEqual([`${cloud}$modelserving:aws:SageMakerEndpoint`]);
    expect(typeOf("iris-azureml-image-3")).toEqual([`${cloud}$modelserving:image:ScorerImage`]);
    expect(typeOf("iris-azureml-image-current")).toEqual([
      `${cloud}$modelserving:image:ScorerImage`,
    ]);
    expect(typeOf("iris-azureml")).toEqual([`${cloud}$modelserving:azure:AzureMlEndpoint`]);
    // Nothing is hung off the RegisteredModel besides its own version and server.
    const underModel = urns.filter((u) => u.includes("modelserving:mlflow:RegisteredModel$"));
    expect(underModel.map((u) => u.split("::")[3]).sort()).toEqual(["iris-server", "iris-version"]);
    // registerOutputs ran: the component's recorded state holds its endpoints.
    const component = monitor
      .getRegisteredResources()
      .get(urns.find((u) => u.endsWith("::iris-cloud"))!)!;
    // (a protobuf Struct once registerOutputs replaced it)
    expect(Object.keys(component.state.toJavaScript())).toEqual(["endpoints"]);
  });

  it("CloudServing honours a configured repositoryName and sends a given sampleInput", async () => {
    const { CloudServing } = await import("../../components/cloudServing");
    const cs = new CloudServing("direct", {
      modelName: "direct",
      version: "2",
      trackingUri: "http://127.0.0.1:5000",
      mlflowBin: "/bin/mlflow",
      targets: { sagemaker: { region: "eu-west-1", repositoryName: "team/direct-scorer" } },
      sampleInput: { inputs: [[1.5, 2.5]] },
    });
    const e = await value(cs.endpoints);
    const repos = registrations.filter(
      (r) => r.type === "aws:ecr/repository:Repository" && r.name === "direct-sagemaker-image-repo",
    );
    expect(repos.map((r) => r.inputs.name)).toEqual(["team/direct-scorer"]);
    expect(e.sagemaker.awsCli).toContain(`--body '{"inputs":[[1.5,2.5]]}'`);
  });

  it("the default repository name is a valid ECR/ACR name for any stack name", async () => {
    const { defaultRepositoryName } = await import("../../components/cloudServing");
    expect(defaultRepositoryName("model-serving", "Dev_Stack..1", "Iris")).toBe(
      "model-serving-dev_stack-1-iris-scorer",
    );
    expect(defaultRepositoryName("p", "prod", "iris")).not.toBe(
      defaultRepositoryName("p", "staging", "iris"),
    );
  });

  it("a URI source without sampleInput falls back to the exported model's example", async () => {
    const { cloudSampleBody } = await import("../../components/cloudServing");
    expect(await value(cloudSampleBody({ source: "runs:/abc/model" }, contextDir))).toEqual({
      dataframe_split: { columns: ["x", "y"], data: [[7, 8]] },
    });
    expect(
      await value(
        cloudSampleBody({ source: "runs:/abc/model", sampleInput: { inputs: [1] } }, contextDir),
      ),
    ).toEqual({ inputs: [1] });
  });

  it("CloudServing checks its targets with the config's schema and format", async () => {
    const { CloudServing } = await import("../../components/cloudServing");
    expect(
      () =>
        new CloudServing("bad", {
          modelName: "bad",
          version: "1",
          trackingUri: "http://127.0.0.1:5000",
          mlflowBin: "/bin/mlflow",
          targets: { sagemakr: {} } as never,
        }),
    ).toThrow(
      new Error(
        "CloudServing bad: targets.sagemakr: unknown key; expected one of sagemaker, azureml, docker, kubernetes",
      ),
    );
  });

  it("keys the endpoint map by model and target, and keeps it secret (AzureML keys)", () => {
    expect(Object.keys(endpoints).sort()).toEqual(["iris", "iris/azureml", "iris/sagemaker"]);
    expect(endpoints["iris/sagemaker"]).toMatchObject({ target: "sagemaker", version: "4" });
    expect(endpoints["iris/azureml"]).toMatchObject({ target: "azureml" });
    expect(endpoints["iris/azureml"].curl).toContain("endpoint-key-123");
    expect(secret).toBe(true);
  });
});
