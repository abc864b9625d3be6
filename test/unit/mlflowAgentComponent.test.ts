import * as pulumi from "@pulumi/pulumi";
import { mockRecorder, value as outputValue } from "../support/mockRecorder";

jest.mock("../../providers/localAgent", () =>
  jest.requireActual("../support/dynamicStandIns").localAgentModule(),
);

// The MlflowAgent component: an existing agent (url) starts nothing and passes its URL and the secret
// token on; a local one needs what it runs; both validate before declaring anything.
const { registrations, record } = mockRecorder();
pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      return { id: `${args.name}-id`, state: args.inputs };
    },
    call: (args) => args.inputs,
  },
  "model-serving",
  "agentcomponent",
  false,
);

function isSecret<T>(o: pulumi.Output<T>): Promise<boolean> {
  return (o as unknown as { isSecret: Promise<boolean> }).isSecret;
}

describe("MlflowAgent", () => {
  it("uses an existing agent by its url and starts nothing", async () => {
    const { MlflowAgent } = await import("../../components/mlflowAgent");
    const agent = new MlflowAgent("shared", {
      mode: "existing",
      url: "http://mlflow.internal:5100/",
      token: "existing-agent-token-123456",
    });
    expect(await outputValue(agent.url)).toBe("http://mlflow.internal:5100");
    expect(await outputValue(agent.instance)).toBe("");
    expect(await isSecret(agent.token)).toBe(true);
    expect(registrations.map((r) => r.type)).toEqual(["modelserving:mlflow:MlflowAgent"]);
  });

  it.each<[string, Record<string, unknown>, string]>([
    [
      "no url for an existing agent",
      { mode: "existing" },
      'MlflowAgent: url is required when mode is "existing"',
    ],
    [
      "no python for a local agent",
      { mode: "local", dataDir: "/d", trackingUri: "http://m" },
      'MlflowAgent: python is required when mode is "local"',
    ],
    [
      "an unknown mode",
      { mode: "ssh" },
      'MlflowAgent: mode must be "local", "remote" or "existing", got "ssh"',
    ],
  ])("rejects %s", async (_, args, message) => {
    const { MlflowAgent } = await import("../../components/mlflowAgent");
    expect(() => new MlflowAgent("bad", { token: "t", ...args } as never)).toThrow(
      new Error(message),
    );
  });
});
