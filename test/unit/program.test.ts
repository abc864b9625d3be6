import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { tempDir } from "../support/env";
import { mockRecorder, value as outputValue } from "../support/mockRecorder";

// A stack without cloud targets must not load the cloud SDKs (they cost ~1 s each per `pulumi up`).
jest.mock("@pulumi/aws", () => {
  throw new Error("@pulumi/aws was loaded by a stack without cloud targets");
});
jest.mock("@pulumi/docker", () => {
  throw new Error("@pulumi/docker was loaded by a stack without a Docker target");
});
jest.mock("@pulumi/azure-native/machinelearningservices", () => {
  throw new Error("@pulumi/azure-native was loaded by a stack without cloud targets");
});
jest.mock("../../providers/modelVersion", () =>
  jest.requireActual("../support/dynamicStandIns").modelVersionModule(),
);
jest.mock("../../providers/modelReference", () =>
  jest.requireActual("../support/dynamicStandIns").modelReferenceModule(),
);
jest.mock("../../providers/modelDeployment", () =>
  jest.requireActual("../support/dynamicStandIns").modelDeploymentModule(),
);
jest.mock("../../providers/localMlflowServer", () =>
  jest.requireActual("../support/dynamicStandIns").localMlflowServerModule(),
);

// The whole program (index.ts) under Pulumi's mocks: every registration is recorded and asserted.
const { registrations, record } = mockRecorder();

const modelDir = tempDir("program-model");
fs.writeFileSync(path.join(modelDir, "MLmodel"), "flavors: {}\n");
fs.writeFileSync(
  path.join(modelDir, "serving_input_example.json"),
  JSON.stringify({
    dataframe_split: {
      columns: ["a", "b"],
      data: [
        [1, 2],
        [3, 4],
      ],
    },
  }),
);

pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const outs: Record<string, unknown> = { ...args.inputs };
      if (args.type.endsWith(":LocalMlflowServer")) {
        outs.trackingUri = `http://${args.inputs.host}:${args.inputs.port}`;
      }
      if (args.type.endsWith(":ModelVersion")) {
        outs.version = "7";
        outs.modelUri = `models:/${args.inputs.name}/7`;
      }
      if (args.type.endsWith(":ModelReference")) {
        outs.resolvedVersion = "4";
        outs.modelUri = `models:/${args.inputs.name}/4`;
        outs.servingExample = JSON.stringify({ instances: [[9, 9]] });
      }
      if (args.type.endsWith(":ModelDeployment")) {
        outs.url = "http://127.0.0.1:5001/invocations";
      }
      return { id: `${args.name}-id`, state: outs };
    },
    call: (args) => args.inputs,
  },
  "model-serving",
  "mockstack",
  false,
);
pulumi.runtime.setAllConfig(
  {
    "model-serving:mlflow": JSON.stringify({
      port: 5100,
      dataDir: "/data/mlflow",
      passEnv: ["HF_TOKEN"],
    }),
    "model-serving:models": JSON.stringify([
      { name: "iris", source: modelDir, aliases: ["champion"], tags: { owner: "platform" } },
      { name: "registry-only", source: "runs:/abc/model", serve: false, keepInRegistry: true },
      { name: "fraud", registered: { alias: "champion" } },
    ]),
    "model-serving:mlflowPassword": "s3cr3t-password",
  },
  ["model-serving:mlflowPassword"],
);
process.env.MODEL_SERVING_CACHE = "/cache";
delete process.env.MODEL_SERVING_VENV;

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

function isSecret<T>(o: pulumi.Output<T>): Promise<boolean> {
  return (o as unknown as { isSecret: Promise<boolean> }).isSecret;
}

describe("index.ts under mocks", () => {
  let program: typeof import("../../index");
  beforeAll(async () => {
    program = await import("../../index");
    await outputValue(program.endpoints);
  });

  it("registers the MLflow host, each model version and each served model", () => {
    expect(registrations.map((r) => `${r.type} ${r.name}`).sort()).toEqual(
      [
        "modelserving:mlflow:MlflowServer mlflow",
        "pulumi-nodejs:dynamic/modelserving:LocalMlflowServer mlflow-server",
        "modelserving:mlflow:RegisteredModel iris",
        "pulumi-nodejs:dynamic/modelserving:ModelVersion iris-version",
        "pulumi-nodejs:dynamic/modelserving:ModelDeployment iris-server",
        "modelserving:mlflow:RegisteredModel registry-only",
        "pulumi-nodejs:dynamic/modelserving:ModelVersion registry-only-version",
        // A registered model is referenced, never registered: no ModelVersion.
        "modelserving:mlflow:RegisteredModel fraud",
        "pulumi-nodejs:dynamic/modelserving:ModelReference fraud-registered",
        "pulumi-nodejs:dynamic/modelserving:ModelDeployment fraud-server",
      ].sort(),
    );
  });

  it("starts the local MLflow server from the venv with basic auth", () => {
    const server = registrations.find((r) => r.name === "mlflow-server")!;
    expect(server.inputs).toMatchObject({
      mlflowBin: "/cache/venv/bin/mlflow",
      host: "127.0.0.1",
      port: 5100,
      dataDir: "/data/mlflow",
      startTimeoutSeconds: 120,
      passEnv: ["HF_TOKEN"],
      // Pulumi's wire form of a secret: the engine encrypts it in state.
      auth: {
        [SECRET_SIG]: SECRET_VALUE,
        value: { username: "admin", password: "s3cr3t-password" },
      },
    });
  });

  it("registers versions with hash, aliases, tags and counter", () => {
    const iris = registrations.find((r) => r.name === "iris-version")!;
    expect(iris.inputs).toMatchObject({
      trackingUri: "http://127.0.0.1:5100",
      // MlflowServer.registryId: the registry is the local server's data directory.
      registryId: "local:/data/mlflow",
      name: "iris",
      source: modelDir,
      aliases: ["champion"],
      tags: { owner: "platform" },
      description: "",
      registration: 1,
      experimentName: "model-serving",
      readyTimeoutSeconds: 120,
    });
    expect(iris.inputs.sourceHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    const uriOnly = registrations.find((r) => r.name === "registry-only-version")!;
    expect(uriOnly.inputs).toMatchObject({ source: "runs:/abc/model", aliases: [] });
  });

  it("serves a model from port 5001 up on the MLflow host", () => {
    const server = registrations.find((r) => r.name === "iris-server")!;
    expect(server.inputs).toMatchObject({
      mode: "local",
      modelUri: "models:/iris/7",
      trackingUri: "http://127.0.0.1:5100",
      host: "127.0.0.1",
      portRangeStart: 5001,
      mlflowBin: "/cache/venv/bin/mlflow",
      runDir: "/cache/run/mockstack",
      startTimeoutSeconds: 300,
      passEnv: ["HF_TOKEN"],
    });
    expect(server.inputs.port).toBeUndefined();
  });

  it("exports the endpoint map with ready-to-paste commands", async () => {
    const endpoints = await outputValue(program.endpoints);
    expect(Object.keys(endpoints)).toEqual(["iris", "fraud"]);
    expect(endpoints.iris).toEqual({
      target: "mlflow",
      url: "http://127.0.0.1:5001/invocations",
      modelUri: "models:/iris/7",
      version: "7",
      curl:
        "curl -sS -X POST 'http://127.0.0.1:5001/invocations' -H 'Content-Type: application/json' " +
        `-d '{"dataframe_split":{"columns":["a","b"],"data":[[1,2]]}}'`,
      python: expect.stringContaining('urllib.request.Request("http://127.0.0.1:5001/invocations"'),
    });
    expect(await outputValue(program.mlflowTrackingUri)).toBe("http://127.0.0.1:5100");
    expect(await outputValue(program.modelUris)).toEqual({
      iris: "models:/iris/7",
      "registry-only": "models:/registry-only/7",
      fraud: "models:/fraud/4",
    });
  });

  it("serves the version a reference resolves to, with the version's own serving example", async () => {
    const ref = registrations.find((r) => r.name === "fraud-registered")!;
    expect(ref.inputs).toMatchObject({
      trackingUri: "http://127.0.0.1:5100",
      registryId: "local:/data/mlflow",
      name: "fraud",
      alias: "champion",
    });
    expect(ref.inputs.version).toBeUndefined();
    const server = registrations.find((r) => r.name === "fraud-server")!;
    expect(server.inputs).toMatchObject({ modelUri: "models:/fraud/4" });
    const endpoints = await outputValue(program.endpoints);
    expect(endpoints.fraud).toMatchObject({ version: "4", modelUri: "models:/fraud/4" });
    expect(endpoints.fraud.curl).toContain(`-d '{"instances":[[9,9]]}'`);
  });

  it("keeps the MLflow password secret and out of the outputs", async () => {
    const endpoints = await outputValue(program.endpoints);
    expect(JSON.stringify(endpoints)).not.toContain("s3cr3t-password");
  });
});

describe("components validate their arguments first", () => {
  it("RegisteredModel rejects a source that is not a model directory", async () => {
    const { RegisteredModel } = await import("../../components/registeredModel");
    expect(
      () =>
        new RegisteredModel("bad", {
          trackingUri: "http://x",
          modelName: "bad",
          source: "/no/such/dir",
        }),
    ).toThrow('RegisteredModel bad: source: model directory "/no/such/dir" does not exist');
  });

  it("MlflowServer needs a tracking URI for an existing server", async () => {
    const { MlflowServer } = await import("../../components/mlflowServer");
    expect(() => new MlflowServer("m", { mode: "existing" } as never)).toThrow(
      'MlflowServer: trackingUri is required when mode is "existing"',
    );
    expect(() => new MlflowServer("m", { mode: "local" } as never)).toThrow(
      'MlflowServer: mlflowBin is required when mode is "local"',
    );
  });

  it("MlflowServer makes its credentials a secret", async () => {
    const { MlflowServer } = await import("../../components/mlflowServer");
    const m = new MlflowServer("sec", {
      mode: "existing",
      trackingUri: "http://x:5000",
      password: "pw",
    });
    expect(await isSecret(m.auth)).toBe(true);
  });
});
