/* eslint-disable @typescript-eslint/no-explicit-any -- mock registrations are untyped JSON */
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { tempDir } from "../support/env";
import { mockRecorder, value as outputValue } from "../support/mockRecorder";

// index.ts with a Kubernetes target under mocks: `targets.kubernetes` builds the scorer image, pushes
// it to `image.repository` and deploys it by digest (test/replay/registryPush.test.ts performs these
// recorded inputs on a real engine, registry and API server); the cloud SDKs stay unloaded.
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

const { registrations, record, one, settle } = mockRecorder();
const modelDir = tempDir("kubernetes-program-model");
fs.writeFileSync(path.join(modelDir, "MLmodel"), "flavors: {}\n");
const DIGEST = `sha256:${"d".repeat(64)}`;

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
      if (args.type.endsWith(":ModelExport")) {
        Object.assign(state, {
          contextDir: "/ctx",
          contextHash: "h".repeat(64),
          modelUri: "models:/iris/4",
        });
      }
      if (args.type === "docker:index/remoteImage:RemoteImage") {
        state.imageId = `sha256:${"e".repeat(64)}`;
      }
      if (args.type === "docker:index/registryImage:RegistryImage") {
        state.sha256Digest = DIGEST;
      }
      return { id: `${args.name}-id`, state };
    },
    call: () => ({}),
  },
  "model-serving",
  "kubestack",
  false,
);
pulumi.runtime.setAllConfig({
  "model-serving:mlflow": JSON.stringify({ dataDir: "/data/mlflow" }),
  "model-serving:models": JSON.stringify([
    {
      name: "iris",
      source: modelDir,
      serve: false,
      sampleInput: { instances: [[1, 2, 3, 4]] },
      targets: {
        kubernetes: {
          image: { repository: "registry.example.com/ml/iris-scorer", platform: "linux/amd64" },
          namespace: "scoring",
          replicas: 3,
          workers: 1,
        },
      },
    },
  ]),
});
process.env.MODEL_SERVING_CACHE = "/cache";

describe("index.ts with a Kubernetes target", () => {
  let program: typeof import("../../index");
  beforeAll(async () => {
    program = await import("../../index");
    await outputValue(program.endpoints);
    await settle();
  });

  it("builds the version's image, pushes it and deploys it by digest", () => {
    expect(
      registrations
        .filter((r) => r.name.startsWith("iris-kubernetes"))
        .map((r) => `${r.type} ${r.name}`)
        .sort(),
    ).toEqual([
      "docker:index/registryImage:RegistryImage iris-kubernetes-image-push",
      "docker:index/remoteImage:RemoteImage iris-kubernetes-image-image",
      "kubernetes:apps/v1:Deployment iris-kubernetes-deployment",
      "kubernetes:core/v1:Service iris-kubernetes-service",
      "kubernetes:policy/v1:PodDisruptionBudget iris-kubernetes-pdb",
      "modelserving:docker:PushedScorerImage iris-kubernetes-image",
      "modelserving:kubernetes:StandaloneScorer iris-kubernetes",
      "pulumi-nodejs:dynamic/modelserving:ModelExport iris-kubernetes-image-export",
    ]);
    const build = one("iris-kubernetes-image", "docker:index/remoteImage:RemoteImage").inputs;
    expect(build.name).toBe(`registry.example.com/ml/iris-scorer:v4-${"h".repeat(12)}`);
    expect(build.build).toMatchObject({ target: "standalone", platform: "linux/amd64" });
    expect(one("iris-kubernetes-image", "docker:index/registryImage:RegistryImage").inputs).toEqual(
      {
        name: `registry.example.com/ml/iris-scorer:v4-${"h".repeat(12)}`,
        keepRemotely: true,
        triggers: { contextHash: "h".repeat(64) },
      },
    );
    const deployment = one("iris-kubernetes", "kubernetes:apps/v1:Deployment").inputs;
    expect(deployment.metadata).toMatchObject({ name: "iris-kubernetes", namespace: "scoring" });
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.template.spec.containers[0].image).toBe(
      `registry.example.com/ml/iris-scorer@${DIGEST}`,
    );
  });

  it("exports a <model>/kubernetes endpoint with the in-cluster URL and the configured sample", async () => {
    const endpoints = await outputValue(program.endpoints);
    expect(Object.keys(endpoints)).toEqual(["iris/kubernetes"]);
    expect(endpoints["iris/kubernetes"]).toMatchObject({
      url: "http://iris-kubernetes.scoring.svc.cluster.local/invocations",
      modelUri: "models:/iris/4",
    });
    expect(endpoints["iris/kubernetes"].curl).toContain(`-d '{"instances":[[1,2,3,4]]}'`);
  });
});
