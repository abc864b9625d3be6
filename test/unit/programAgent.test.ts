import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { mockRecorder, value as outputValue } from "../support/mockRecorder";

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
jest.mock("../../providers/localAgent", () =>
  jest.requireActual("../support/dynamicStandIns").localAgentModule(),
);
jest.mock("../../providers/agentDeployment", () =>
  jest.requireActual("../support/dynamicStandIns").agentDeploymentModule(),
);

// index.ts with mlflow.deployMode agent under Pulumi's mocks: the agent is started here with the secret
// token, each served model is an AgentDeployment against it, a challenger alias is resolved through
// a ModelReference, and the endpoint is the agent's stable front URL with the usual commands.
const { registrations, record } = mockRecorder();
const TOKEN = "mock-agent-token-1234567890";
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

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
        outs.resolvedVersion = "6";
        outs.modelUri = `models:/${args.inputs.name}/6`;
      }
      if (args.type.endsWith(":LocalAgent")) {
        outs.url = `http://${args.inputs.host}:${args.inputs.port}`;
        outs.instance = "4242:123";
      }
      if (args.type.endsWith(":AgentDeployment")) {
        outs.url = "http://127.0.0.1:5003/invocations";
      }
      return { id: `${args.name}-id`, state: outs };
    },
    call: (args) => args.inputs,
  },
  "model-serving",
  "agentstack",
  false,
);
pulumi.runtime.setAllConfig(
  {
    "model-serving:mlflow": JSON.stringify({
      port: 5000,
      dataDir: "/data/mlflow",
      deployMode: "agent",
      agent: { port: 5200, backendWorkers: 2 },
    }),
    "model-serving:models": JSON.stringify([
      {
        name: "iris",
        source: "runs:/abc/model",
        serve: { port: 5003 },
        sampleInput: { inputs: [[1, 2]] },
        challenger: { alias: "challenger", weight: 0.1 },
      },
    ]),
    "model-serving:agentToken": TOKEN,
  },
  ["model-serving:agentToken"],
);
process.env.MODEL_SERVING_CACHE = "/cache";
delete process.env.MODEL_SERVING_VENV;

describe("index.ts with deploy mode agent under mocks", () => {
  let program: typeof import("../../index");
  beforeAll(async () => {
    program = await import("../../index");
    await outputValue(program.endpoints);
  });

  it("registers the agent and an AgentDeployment, no local model server", () => {
    expect(registrations.map((r) => `${r.type} ${r.name}`).sort()).toEqual(
      [
        "modelserving:mlflow:MlflowServer mlflow",
        "pulumi-nodejs:dynamic/modelserving:LocalMlflowServer mlflow-server",
        "modelserving:mlflow:MlflowAgent agent",
        "pulumi-nodejs:dynamic/modelserving:LocalAgent agent-server",
        "modelserving:mlflow:RegisteredModel iris",
        "pulumi-nodejs:dynamic/modelserving:ModelVersion iris-version",
        "pulumi-nodejs:dynamic/modelserving:ModelReference iris-challenger",
        "pulumi-nodejs:dynamic/modelserving:AgentDeployment iris-server",
      ].sort(),
    );
  });

  it("starts the agent from the venv with the token as a secret", () => {
    const agent = registrations.find((r) => r.name === "agent-server")!;
    expect(agent.inputs).toEqual({
      python: "/cache/venv/bin/python",
      agentDir: path.resolve(__dirname, "../../agent"),
      host: "127.0.0.1",
      port: 5200,
      frontPorts: { first: 5001, last: 5099 },
      backendPorts: { first: 15001, last: 15999 },
      backendWorkers: 2,
      dataDir: "/cache/run/agentstack/agent",
      trackingUri: "http://127.0.0.1:5000",
      token: { [SECRET_SIG]: SECRET_VALUE, value: TOKEN },
      startTimeoutSeconds: 300,
      backendStartTimeoutSeconds: 180,
    });
  });

  it("deploys through the agent with the challenger's resolved version and weight", () => {
    const challenger = registrations.find((r) => r.name === "iris-challenger")!;
    expect(challenger.inputs).toMatchObject({ name: "iris", alias: "challenger" });
    const deployment = registrations.find((r) => r.name === "iris-server")!;
    expect(deployment.inputs).toEqual({
      agentUrl: "http://127.0.0.1:5200",
      token: { [SECRET_SIG]: SECRET_VALUE, value: TOKEN },
      modelName: "iris",
      modelUri: "models:/iris/7",
      challenger: { modelUri: "models:/iris/6", weight: 0.1 },
      frontPort: 5003,
      sampleInput: { inputs: [[1, 2]] },
      backend: "dedicated",
      startTimeoutSeconds: 180,
      agentInstance: "4242:123",
    });
  });

  it("exports the stable front URL with the usual commands", async () => {
    const endpoints = await outputValue(program.endpoints);
    expect(endpoints.iris).toEqual({
      target: "mlflow",
      url: "http://127.0.0.1:5003/invocations",
      modelUri: "models:/iris/7",
      version: "7",
      curl:
        "curl -sS -X POST 'http://127.0.0.1:5003/invocations' -H 'Content-Type: application/json' " +
        `-d '{"inputs":[[1,2]]}'`,
      python: expect.stringContaining('urllib.request.Request("http://127.0.0.1:5003/invocations"'),
    });
  });
});
