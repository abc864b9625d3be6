import * as pulumi from "@pulumi/pulumi";
import { mockRecorder, value as outputValue } from "../support/mockRecorder";

jest.mock("../../providers/modelVersion", () =>
  jest.requireActual("../support/dynamicStandIns").modelVersionModule(),
);
jest.mock("../../providers/modelReference", () =>
  jest.requireActual("../support/dynamicStandIns").modelReferenceModule(),
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

// index.ts with score workflows under Pulumi's mocks: one ScoreWorkflow component per entry of
// `workflows`, its resource against the agent with the token as a secret, the model as this stack's
// version or an alias resolved through a ModelReference, and the workflows output with the commands
// (the token itself nowhere in it).
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
      if (args.type.endsWith(":ScoreWorkflow") && args.type.startsWith("pulumi-nodejs")) {
        outs.lastExecutionId = "";
        outs.lastExecutionStatus = "";
      }
      return { id: `${args.name}-id`, state: outs };
    },
    call: (args) => args.inputs,
  },
  "model-serving",
  "wfstack",
  false,
);
pulumi.runtime.setAllConfig(
  {
    "model-serving:mlflow": JSON.stringify({
      port: 5000,
      dataDir: "/data/mlflow",
      deployMode: "agent",
    }),
    "model-serving:models": JSON.stringify([{ name: "iris", source: "runs:/abc/model" }]),
    "model-serving:workflows": JSON.stringify([
      { id: "iris-daily", model: "iris", input: "/in/iris.csv", output: "/out/iris.csv" },
      {
        id: "iris-champion",
        model: { name: "iris", alias: "champion" },
        input: "/in/parts",
        output: "/out/scores.parquet",
        batchSize: 500,
        executeOnUp: true,
      },
    ]),
    "model-serving:agentToken": TOKEN,
  },
  ["model-serving:agentToken"],
);
process.env.MODEL_SERVING_CACHE = "/cache";
delete process.env.MODEL_SERVING_VENV;

describe("index.ts with score workflows under mocks", () => {
  let program: typeof import("../../index");
  beforeAll(async () => {
    program = await import("../../index");
    await outputValue(program.workflows);
  });

  it("declares one ScoreWorkflow per entry, the alias resolved through a ModelReference", () => {
    expect(
      registrations
        .filter((r) => /ScoreWorkflow|workflow-/.test(`${r.type} ${r.name}`))
        .map((r) => `${r.type} ${r.name}`)
        .sort(),
    ).toEqual(
      [
        "modelserving:agent:ScoreWorkflow workflow-iris-daily",
        "pulumi-nodejs:dynamic/modelserving:ScoreWorkflow workflow-iris-daily-workflow",
        "modelserving:agent:ScoreWorkflow workflow-iris-champion",
        "pulumi-nodejs:dynamic/modelserving:ModelReference workflow-iris-champion-model",
        "pulumi-nodejs:dynamic/modelserving:ScoreWorkflow workflow-iris-champion-workflow",
      ].sort(),
    );
    expect(
      registrations.find((r) => r.name === "workflow-iris-champion-model")!.inputs,
    ).toMatchObject({ name: "iris", alias: "champion", trackingUri: "http://127.0.0.1:5000" });
  });

  it("hands the agent the spec, the token only as a secret", () => {
    const inputs = (name: string) => {
      const { __provider, ...rest } = registrations.find((r) => r.name === name)!.inputs;
      expect(typeof __provider).toBe("string");
      return rest;
    };
    expect(inputs("workflow-iris-daily-workflow")).toEqual({
      agentUrl: "http://127.0.0.1:5100",
      token: { [SECRET_SIG]: SECRET_VALUE, value: TOKEN },
      agentInstance: "4242:123",
      workflowId: "iris-daily",
      modelUri: "models:/iris/7",
      input: "/in/iris.csv",
      inputFormat: "csv",
      output: "/out/iris.csv",
      outputFormat: "csv",
      batchSize: 1000,
      maxConcurrentRuns: 1,
      timeoutSeconds: 3600,
      executeOnUp: false,
    });
    expect(inputs("workflow-iris-champion-workflow")).toMatchObject({
      modelUri: "models:/iris/6",
      input: "/in/parts",
      inputFormat: "csv",
      outputFormat: "parquet",
      batchSize: 500,
      executeOnUp: true,
    });
  });

  it("exports workflows[<id>] with the commands, never the token", async () => {
    const workflows = await outputValue(program.workflows);
    expect(Object.keys(workflows).sort()).toEqual(["iris-champion", "iris-daily"]);
    expect(workflows["iris-daily"]).toEqual({
      workflowId: "iris-daily",
      agentUrl: "http://127.0.0.1:5100",
      modelUri: "models:/iris/7",
      executeUrl: "http://127.0.0.1:5100/api/v1/workflow/execute",
      statusUrl: "http://127.0.0.1:5100/api/v1/workflow/executions/",
      tokenEnv: "TOKEN",
      curl: expect.stringContaining(
        `"programParameters":"--input /in/iris.csv --output /out/iris.csv"`,
      ),
      curlBearer: expect.stringContaining(
        "-H @- -X POST 'http://127.0.0.1:5100/api/v1/workflow/execute'",
      ),
      statusCurl:
        "curl -sS --fail-with-body -b cookies.txt 'http://127.0.0.1:5100/api/v1/workflow/executions/'\"$EXECUTION_ID\"",
      python: expect.stringContaining('api = "http://127.0.0.1:5100/api/v1"'),
      executeOnUp: false,
      lastExecutionId: "",
      lastExecutionStatus: "",
    });
    expect(JSON.stringify(workflows)).not.toContain(TOKEN);
  });
});
