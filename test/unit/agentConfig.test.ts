import * as fs from "fs";
import * as path from "path";
import { parseStackConfig, type PasswordConfig } from "../../config/stackConfig";
import { tempDir } from "../support/env";

// Deploy mode `agent` in the stack config (config/agentConfig.ts): the agent block, the secret token,
// the challenger on a model entry; every message users see, verbatim.
const projectDir = tempDir("agent-config");
fs.mkdirSync(path.join(projectDir, "models/iris"), { recursive: true });
fs.writeFileSync(path.join(projectDir, "models/iris/MLmodel"), "flavors: {}\n");
const ctx = { projectDir, stack: "dev", env: { MODEL_SERVING_CACHE: "/cache", HOME: "/home/u" } };
const TOKEN: PasswordConfig = { value: "a-token-of-24-characters", secret: true };
const iris = (extra: Record<string, unknown> = {}) => ({
  name: "iris",
  source: "models/iris",
  ...extra,
});
/** `null`: no agentToken in the stack config. */
const parse = (
  mlflow: unknown,
  models: unknown[] = [iris()],
  token: PasswordConfig | null = TOKEN,
) => parseStackConfig({ mlflow, models, agentToken: token ?? undefined }, ctx);
const invalid = (...lines: string[]) => `invalid stack configuration:\n  ${lines.join("\n  ")}`;

describe("deploy mode agent in the stack config", () => {
  it("defaults to an agent started here on 5100 with the admin guide's front ports", () => {
    const cfg = parse({ deployMode: "agent" });
    expect(cfg.agent).toEqual({
      mode: "local",
      host: "127.0.0.1",
      port: 5100,
      frontPorts: { first: 5001, last: 5099 },
      backendPorts: { first: 15001, last: 15999 },
      backendWorkers: undefined,
      startTimeoutSeconds: 180,
      backend: "dedicated",
    });
    expect(parse({}, [iris()], null).agent).toBeUndefined();
  });

  it("uses an existing agent by url, starting nothing", () => {
    expect(
      parse({ deployMode: "agent", agent: { url: "http://mlflow.internal:5100/" } }).agent,
    ).toEqual({
      mode: "existing",
      url: "http://mlflow.internal:5100",
      startTimeoutSeconds: 180,
      backend: "dedicated",
    });
  });

  it("maps a challenger by alias or version with its weight", () => {
    const cfg = parse({ deployMode: "agent" }, [
      iris({ challenger: { alias: "challenger", weight: 0.2 } }),
    ]);
    expect(cfg.models[0].challenger).toEqual({ alias: "challenger", weight: 0.2 });
  });

  it.each<[string, () => unknown, string]>([
    [
      "no token",
      () => parse({ deployMode: "agent" }, [iris()], null),
      invalid(
        'model-serving:agentToken: is required when mlflow.deployMode is "agent"; set it as a secret: pulumi config set --secret agentToken $(openssl rand -hex 24)',
      ),
    ],
    [
      "a plain token",
      () => parse({ deployMode: "agent" }, [iris()], { value: TOKEN.value, secret: false }),
      invalid(
        "model-serving:agentToken: must be secret config, not plain text; set it again with: pulumi config set --secret agentToken <token>",
      ),
    ],
    [
      "a short token",
      () => parse({ deployMode: "agent" }, [iris()], { value: "short", secret: true }),
      invalid(
        "model-serving:agentToken: must be at least 16 characters without spaces (the agent refuses shorter tokens)",
      ),
    ],
    [
      "a token without deploy mode agent",
      () => parse({}),
      invalid(
        'model-serving:agentToken: is only used when mlflow.deployMode is "agent" (got mlflow.deployMode "local")',
      ),
    ],
    [
      "an agent block without deploy mode agent",
      () => parse({ agent: { port: 5200 } }, [iris()], null),
      invalid('model-serving:mlflow.agent: is only used when deployMode is "agent"'),
    ],
    [
      "overlapping port ranges",
      () =>
        parse({
          deployMode: "agent",
          agent: {
            frontPorts: { first: 6000, last: 6010 },
            backendPorts: { first: 6010, last: 6020 },
          },
        }),
      invalid(
        'model-serving:mlflow.agent.backendPorts: overlaps frontPorts 6000-6010 (got {"first":6010,"last":6020})',
      ),
    ],
    [
      "the API port inside the front range",
      () => parse({ deployMode: "agent", agent: { port: 5050 } }),
      invalid("model-serving:mlflow.agent.port: lies inside frontPorts 5001-5099 (got 5050)"),
    ],
    [
      "a reversed range",
      () => parse({ deployMode: "agent", agent: { frontPorts: { first: 6010, last: 6000 } } }),
      invalid(
        "model-serving:mlflow.agent.frontPorts.first: is greater than last (6000) (got 6010)",
      ),
    ],
    [
      "local settings with an existing agent's url",
      () => parse({ deployMode: "agent", agent: { url: "http://a:5100", port: 5200 } }),
      invalid(
        "model-serving:mlflow.agent.port: only applies to an agent this stack starts; with url, the agent's own config decides (got 5200)",
      ),
    ],
    [
      "a url with credentials",
      () => parse({ deployMode: "agent", agent: { url: "http://u:p@a:5100" } }),
      invalid(
        'model-serving:mlflow.agent.url: must be an http(s) URL without credentials, such as http://mlflow.internal:5100 (got "http://<hidden>@a:5100")',
      ),
    ],
    [
      "a fixed serving port outside the front range",
      () => parse({ deployMode: "agent" }, [iris({ serve: { port: 6001 } })]),
      invalid(
        "model-serving:models[0].serve.port: must lie inside mlflow.agent.frontPorts 5001-5099 (the agent's front ports) (got 6001)",
      ),
    ],
    [
      "a challenger without deploy mode agent",
      () => parse({}, [iris({ challenger: { version: 1, weight: 0.5 } })], null),
      invalid(
        'model-serving:models[0].challenger: needs mlflow.deployMode "agent" and a served model (the agent splits the requests)',
      ),
    ],
    [
      "a challenger on the shared backend",
      () =>
        parse({ deployMode: "agent", agent: { backend: "shared" } }, [
          iris({ challenger: { version: 1, weight: 0.5 } }),
        ]),
      invalid(
        'model-serving:models[0].challenger: cannot be combined with mlflow.agent.backend "shared" (the multi-model worker serves one version per model)',
      ),
    ],
    [
      "a challenger weight of 1",
      () => parse({ deployMode: "agent" }, [iris({ challenger: { version: 1, weight: 1 } })]),
      invalid(
        "model-serving:models[0].challenger.weight: must be a number between 0 and 1 (exclusive) (got 1)",
      ),
    ],
    [
      "a challenger with both version and alias",
      () =>
        parse({ deployMode: "agent" }, [
          iris({ challenger: { version: 1, alias: "b", weight: 0.1 } }),
        ]),
      invalid(
        'model-serving:models[0].challenger: needs exactly one of "version" (e.g. 2) or "alias" (e.g. challenger) (got {"version":1,"alias":"b","weight":0.1})',
      ),
    ],
  ])("rejects %s", (_, run, message) => {
    expect(run).toThrow(new Error(message));
  });

  it("takes MLflow basic auth with an agent started here, and never shows the token", () => {
    const cfg = parseStackConfig(
      {
        mlflow: { deployMode: "agent" },
        models: [iris()],
        agentToken: TOKEN,
        mlflowPassword: { value: "a-long-enough-password", secret: true },
      },
      ctx,
    );
    expect(cfg.mlflow.deployMode).toBe("agent");
    try {
      parse({ deployMode: "agent", agent: { port: 5050 } });
    } catch (err) {
      expect((err as Error).message).not.toContain(TOKEN.value);
    }
  });
});
