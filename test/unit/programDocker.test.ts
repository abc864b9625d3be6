/* eslint-disable @typescript-eslint/no-explicit-any -- mock registrations are untyped JSON */
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { tempDir } from "../support/env";
import { mockRecorder, value as outputValue } from "../support/mockRecorder";

// index.ts with a Docker target under mocks: `targets.docker` reaches a StandaloneScorer, whose
// endpoint is `<model>/docker`; the cloud SDKs stay unloaded.
jest.mock("@pulumi/aws", () => {
  throw new Error("@pulumi/aws was loaded by a stack without cloud targets");
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
jest.mock("../../providers/modelExport", () =>
  jest.requireActual("../support/dynamicStandIns").modelExportModule(),
);

const { registrations, record } = mockRecorder();
const modelDir = tempDir("docker-program-model");
fs.writeFileSync(path.join(modelDir, "MLmodel"), "flavors: {}\n");

pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const state: Record<string, any> = { ...args.inputs };
      if (args.type.endsWith(":LocalMlflowServer")) {
        state.trackingUri = "http://127.0.0.1:5000";
      }
      if (args.type.endsWith(":ModelVersion")) {
        Object.assign(state, { version: "4", modelUri: "models:/iris/4" });
      }
      if (args.type.endsWith(":ModelReference")) {
        Object.assign(state, { resolvedVersion: "9", modelUri: "models:/fraud/9" });
      }
      if (args.type.endsWith(":ModelExport")) {
        Object.assign(state, { contextDir: "/ctx", contextHash: "h".repeat(64) });
      }
      if (args.type === "docker:index/remoteImage:RemoteImage") {
        state.imageId = `sha256:${"e".repeat(64)}`;
      }
      return { id: `${args.name}-id`, state };
    },
    call: () => ({}),
  },
  "model-serving",
  "dockerstack",
  false,
);
pulumi.runtime.setAllConfig({
  "model-serving:mlflow": JSON.stringify({ dataDir: "/data/mlflow" }),
  "model-serving:models": JSON.stringify([
    {
      name: "iris",
      source: modelDir,
      serve: false,
      sampleInput: { instances: [[1, 2]] },
      targets: { docker: { port: 8089 } },
    },
    { name: "fraud", registered: { alias: "champion" }, targets: { docker: { port: 8090 } } },
  ]),
});
process.env.MODEL_SERVING_CACHE = "/cache";

describe("index.ts with a Docker target", () => {
  let program: typeof import("../../index");
  beforeAll(async () => {
    program = await import("../../index");
    await outputValue(program.endpoints);
  });

  it("declares one StandaloneScorer per model with the version the model resolved to", () => {
    const scorers = registrations.filter((r) => r.type === "modelserving:docker:StandaloneScorer");
    expect(scorers.map((r) => r.name).sort()).toEqual(["fraud-docker", "iris-docker"]);
    const exports = registrations.filter((r) => r.type.endsWith(":ModelExport"));
    expect(exports.map((r) => [r.inputs.modelName, r.inputs.modelVersion]).sort()).toEqual([
      ["fraud", "9"],
      ["iris", "4"],
    ]);
    expect(registrations.filter((r) => r.type === "docker:index/container:Container")).toHaveLength(
      2,
    );
  });

  it("exports <model>/docker endpoints that send the configured sample", async () => {
    const endpoints = await outputValue(program.endpoints);
    // (fraud is also served on the MLflow host, whose mock URL is unknown: no entry for it here.)
    expect(Object.keys(endpoints).sort()).toEqual(["fraud/docker", "iris/docker"]);
    expect(endpoints["iris/docker"]).toMatchObject({ url: "http://127.0.0.1:8089/invocations" });
    expect(endpoints["iris/docker"].curl).toContain(`-d '{"instances":[[1,2]]}'`);
  });
});
