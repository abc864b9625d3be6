import * as fs from "fs";
import * as path from "path";
import {
  parseStackConfig,
  RESERVED_ENV_NAMES,
  type RegisterModelConfig,
} from "../../config/stackConfig";
import { RESERVED_ENV } from "../../providers/process/env";
import { tempDir } from "../support/env";

// A minimal MLflow model directory, so source checks pass without MLflow.
const projectDir = tempDir("config");
fs.mkdirSync(path.join(projectDir, "models/iris"), { recursive: true });
fs.writeFileSync(path.join(projectDir, "models/iris/MLmodel"), "flavors: {}\n");
fs.writeFileSync(path.join(projectDir, "a-file"), "x");
fs.mkdirSync(path.join(projectDir, "not-a-model"));

const ctx = {
  projectDir,
  stack: "dev",
  env: { MODEL_SERVING_CACHE: "/cache", XDG_DATA_HOME: "/data", HOME: "/home/u" },
};
const model = (extra: Record<string, unknown> = {}) => ({
  name: "iris",
  source: "models/iris",
  ...extra,
});
const parse = (raw: { mlflow?: unknown; models?: unknown }) => () => parseStackConfig(raw, ctx);
const invalid = (...lines: string[]) => `invalid stack configuration:\n  ${lines.join("\n  ")}`;

describe("stack config defaults", () => {
  it("describes the embedded local case", () => {
    const cfg = parseStackConfig({ models: [model()] }, ctx);
    expect(cfg.mlflow).toEqual({
      mode: "local",
      host: "127.0.0.1",
      port: 5000,
      deployMode: "local",
      startTimeoutSeconds: 120,
      passEnv: [],
      dataDir: "/data/model-serving/mlflow/dev",
    });
    expect(cfg.notices).toEqual([]);
    expect(cfg.models[0]).toEqual({
      kind: "register",
      name: "iris",
      source: path.join(projectDir, "models/iris"),
      aliases: [],
      tags: {},
      description: "",
      registration: 1,
      keepInRegistry: false,
      serve: { host: "127.0.0.1", startTimeoutSeconds: 300 },
    });
    expect(cfg.mlflowBin).toBe("/cache/venv/bin/mlflow");
    expect(cfg.runDir).toBe("/cache/run/dev");
  });

  it("keeps URI sources as they are", () => {
    const cfg = parseStackConfig({ models: [model({ source: "runs:/abc123/model" })] }, ctx);
    expect((cfg.models[0] as RegisterModelConfig).source).toBe("runs:/abc123/model");
  });
});

describe("stack config errors name the key and the value", () => {
  const cases: [string, { mlflow?: unknown; models?: unknown }, string][] = [
    [
      "model name with a space",
      { models: [model({ name: "my model" })] },
      invalid(
        'model-serving:models[0].name: must be 1-256 characters of letters, digits, ".", "_" or "-", starting with a letter or digit (got "my model")',
      ),
    ],
    [
      "model name with unicode",
      { models: [model({ name: "modèle" })] },
      invalid(
        'model-serving:models[0].name: must be 1-256 characters of letters, digits, ".", "_" or "-", starting with a letter or digit (got "modèle")',
      ),
    ],
    [
      "model name too long",
      { models: [model({ name: "m".repeat(300) })] },
      invalid(
        `model-serving:models[0].name: must be 1-256 characters of letters, digits, ".", "_" or "-", starting with a letter or digit (got "${"m".repeat(300)}")`,
      ),
    ],
    [
      "missing source directory",
      { models: [model({ source: "models/missing" })] },
      invalid(
        `model-serving:models[0].source: model directory "${path.join(projectDir, "models/missing")}" does not exist`,
      ),
    ],
    [
      "source that is a file",
      { models: [model({ source: "a-file" })] },
      invalid(
        `model-serving:models[0].source: "${path.join(projectDir, "a-file")}" is a file, expected an MLflow model directory`,
      ),
    ],
    [
      "source without MLmodel",
      { models: [model({ source: "not-a-model" })] },
      invalid(
        `model-serving:models[0].source: "${path.join(projectDir, "not-a-model")}" has no MLmodel file, so it is not an MLflow model directory`,
      ),
    ],
    [
      "source URI of an unknown scheme",
      { models: [model({ source: "ftp://host/model" })] },
      invalid(
        'model-serving:models[0].source: unsupported URI scheme "ftp:" in "ftp://host/model" (expected a local MLflow model directory or one of runs: models: mlflow-artifacts: s3: gs: wasbs: abfss: dbfs: hdfs: file: http: https:)',
      ),
    ],
    [
      "port out of range",
      { mlflow: { port: 70000 } },
      invalid("model-serving:mlflow.port: must be a whole number from 1 to 65535 (got 70000)"),
    ],
    [
      "serving port that is not a number",
      { models: [model({ serve: { port: "5001" } })] },
      invalid(
        'model-serving:models[0].serve.port: must be a whole number from 1 to 65535 (got "5001")',
      ),
    ],
    [
      "unknown deploy mode",
      { mlflow: { deployMode: "ssh" } },
      invalid(
        'model-serving:mlflow.deployMode: must be one of "local", "remote", "agent" (got "ssh")',
      ),
    ],
    [
      "deploy mode not available yet",
      { mlflow: { deployMode: "agent" } },
      invalid(
        'model-serving:mlflow.deployMode: deploy mode "agent" is not available yet; use "local" or "remote" (got "agent")',
      ),
    ],
    [
      "unknown MLflow mode",
      { mlflow: { mode: "cloud" } },
      invalid(
        'model-serving:mlflow.mode: must be one of "local", "existing", "remote" (got "cloud")',
      ),
    ],
    [
      "malformed tracking URI",
      { mlflow: { mode: "existing", trackingUri: "mlflow.internal:5000" } },
      invalid(
        'model-serving:mlflow.trackingUri: must be an http(s) URL such as http://mlflow.internal:5000 (got "mlflow.internal:5000")',
      ),
    ],
    [
      "existing server without a tracking URI",
      { mlflow: { mode: "existing" } },
      invalid('model-serving:mlflow.trackingUri: is required when mode is "existing"'),
    ],
    [
      "password in plain config",
      { mlflow: { password: "hunter2" } },
      invalid(
        "model-serving:mlflow.password: must not be plain config; set it as a secret: pulumi config set --secret mlflowPassword (got <hidden>)",
      ),
    ],
    [
      "alias MLflow reserves",
      { models: [model({ aliases: ["v3"] })] },
      invalid('model-serving:models[0].aliases[0]: is reserved by MLflow (got "v3")'),
    ],
    [
      "alias with a space",
      { models: [model({ aliases: ["my alias"] })] },
      invalid(
        'model-serving:models[0].aliases[0]: must be 1-255 characters of letters, digits, "_" or "-" (got "my alias")',
      ),
    ],
    [
      "registration counter below 1",
      { models: [model({ registration: 0 })] },
      invalid("model-serving:models[0].registration: must be a whole number of at least 1 (got 0)"),
    ],
    [
      "very long description",
      { models: [model({ description: "d".repeat(5001) })] },
      invalid(
        `model-serving:models[0].description: must be at most 5000 characters (got "${"d".repeat(5001)}")`,
      ),
    ],
    [
      "unknown key",
      { models: [model({ alias: "champion" })] },
      invalid(
        "model-serving:models[0].alias: unknown key; expected one of name, source, registered, aliases, tags, description, registration, keepInRegistry, serve, sampleInput, targets",
      ),
    ],
    [
      "duplicate model names",
      { models: [model(), model()] },
      invalid('model-serving:models[1].name: duplicate model name (got "iris")'),
    ],
  ];

  it.each(cases)("%s", (_title, raw, message) => {
    expect(parse(raw)).toThrow(new Error(message));
  });

  it("lists every problem at once", () => {
    expect(parse({ mlflow: { port: 0 }, models: [model({ name: "a b" })] })).toThrow(
      new Error(
        invalid(
          "model-serving:mlflow.port: must be a whole number from 1 to 65535 (got 0)",
          'model-serving:models[0].name: must be 1-256 characters of letters, digits, ".", "_" or "-", starting with a letter or digit (got "a b")',
        ),
      ),
    );
  });
});

describe("where the registry's data lives", () => {
  const dataDir = (env: NodeJS.ProcessEnv, mlflow: unknown = {}) =>
    parseStackConfig({ mlflow, models: [] }, { ...ctx, env }).mlflow.dataDir;

  it("defaults to a data directory, not the cache", () => {
    expect(dataDir({ MODEL_SERVING_CACHE: "/cache", XDG_DATA_HOME: "/data" })).toBe(
      "/data/model-serving/mlflow/dev",
    );
    expect(dataDir({ MODEL_SERVING_CACHE: "/cache", HOME: "/home/u" })).toBe(
      "/home/u/.local/share/model-serving/mlflow/dev",
    );
    // The XDG spec ignores a relative XDG_DATA_HOME.
    expect(dataDir({ XDG_DATA_HOME: "data", HOME: "/home/u" })).toBe(
      "/home/u/.local/share/model-serving/mlflow/dev",
    );
  });

  it("keeps a set dataDir, relative to the project", () => {
    expect(dataDir({ HOME: "/home/u" }, { dataDir: "/srv/mlflow" })).toBe("/srv/mlflow");
    expect(dataDir({ HOME: "/home/u" }, { dataDir: "store" })).toBe(path.join(projectDir, "store"));
  });

  it("keeps using a registry found at the old cache default, and says so", () => {
    const home = tempDir("config-home");
    const cache = path.join(home, ".cache/model-serving");
    fs.mkdirSync(path.join(cache, "mlflow/dev"), { recursive: true });
    const cfg = parseStackConfig({ models: [] }, { ...ctx, env: { HOME: home } });
    expect(cfg.mlflow.dataDir).toBe(path.join(cache, "mlflow/dev"));
    expect(cfg.notices).toEqual([
      `model-serving:mlflow.dataDir: using the registry found at the old default ${cache}/mlflow/dev; it is a cache folder users clean: stop the stack, move it to ${home}/.local/share/model-serving/mlflow/dev or set mlflow.dataDir`,
    ]);
    // Once the data directory exists, it wins.
    fs.mkdirSync(path.join(home, ".local/share/model-serving/mlflow/dev"), { recursive: true });
    const moved = parseStackConfig({ models: [] }, { ...ctx, env: { HOME: home } });
    expect(moved.mlflow.dataDir).toBe(path.join(home, ".local/share/model-serving/mlflow/dev"));
    expect(moved.notices).toEqual([]);
  });
});

describe("keepInRegistry", () => {
  const keep = (mlflow: unknown, extra: Record<string, unknown> = {}) =>
    (parseStackConfig({ mlflow, models: [model(extra)] }, ctx).models[0] as RegisterModelConfig)
      .keepInRegistry;
  const existing = { mode: "existing", trackingUri: "https://mlflow.internal" };

  it("defaults to true for an existing (shared) registry, false for the stack's own server", () => {
    expect(keep({})).toBe(false);
    expect(keep(existing)).toBe(true);
  });

  it("keeps an explicit choice", () => {
    expect(keep(existing, { keepInRegistry: false })).toBe(false);
    expect(keep({}, { keepInRegistry: true })).toBe(true);
  });
});

describe("mlflow.passEnv", () => {
  it("passes the listed names on", () => {
    const cfg = parseStackConfig({ mlflow: { passEnv: ["HF_TOKEN", "_X1"] } }, ctx);
    expect(cfg.mlflow.passEnv).toEqual(["HF_TOKEN", "_X1"]);
  });

  it.each([
    [
      "1ABC",
      'model-serving:mlflow.passEnv[0]: must be an environment variable name (letters, digits, _; not starting with a digit) (got "1ABC")',
    ],
    [
      "MY-VAR",
      'model-serving:mlflow.passEnv[0]: must be an environment variable name (letters, digits, _; not starting with a digit) (got "MY-VAR")',
    ],
    [
      "PULUMI_CONFIG_PASSPHRASE",
      `model-serving:mlflow.passEnv[0]: must not pass Pulumi's own variables (PULUMI_*) (got "PULUMI_CONFIG_PASSPHRASE")`,
    ],
    [
      "MLFLOW_TRACKING_PASSWORD",
      'model-serving:mlflow.passEnv[0]: is set by model-serving itself (got "MLFLOW_TRACKING_PASSWORD")',
    ],
  ])("rejects %s", (name, message) => {
    expect(parse({ mlflow: { passEnv: [name] } })).toThrow(new Error(invalid(message)));
  });

  it("rejects what the providers reserve (config cannot import providers/process/env.ts)", () => {
    expect([...RESERVED_ENV_NAMES].sort()).toEqual([...RESERVED_ENV].sort());
  });

  it("must be a list", () => {
    expect(parse({ mlflow: { passEnv: "HF_TOKEN" } })).toThrow(
      new Error(invalid('model-serving:mlflow.passEnv: must be an array (got "HF_TOKEN")')),
    );
  });
});

describe("credentials are never plain config", () => {
  it("rejects user:password@ in trackingUri without echoing it", () => {
    const run = parse({
      mlflow: { mode: "existing", trackingUri: "https://alice:hunter2@mlflow.internal:5000/" },
    });
    expect(run).toThrow(
      new Error(
        invalid(
          'model-serving:mlflow.trackingUri: must not contain credentials (user:password@); set mlflow.username and the secret mlflowPassword instead (got "https://<hidden>@mlflow.internal:5000/")',
        ),
      ),
    );
    expect(() => run()).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining("hunter2") }),
    );
    expect(() => run()).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining("alice") }),
    );
  });

  it("hides credentials even in a tracking URI that is not a URL", () => {
    expect(parse({ mlflow: { mode: "existing", trackingUri: "http://bob:pw@" } })).toThrow(
      new Error(
        invalid(
          'model-serving:mlflow.trackingUri: must not contain credentials (user:password@); set mlflow.username and the secret mlflowPassword instead (got "http://<hidden>@")',
        ),
      ),
    );
  });

  it("rejects a plain (non-secret) mlflowPassword, and never shows it", () => {
    const run = () =>
      parseStackConfig({ models: [], mlflowPassword: { value: "hunter2-pw", secret: false } }, ctx);
    expect(run).toThrow(
      new Error(
        invalid(
          "model-serving:mlflowPassword: must be secret config, not plain text; set it again with: pulumi config set --secret mlflowPassword",
        ),
      ),
    );
  });

  it("checks the secret password as MLflow does (config/mlflowPassword.ts), without showing it", () => {
    expect(() =>
      parseStackConfig({ models: [], mlflowPassword: { value: "short-pw", secret: true } }, ctx),
    ).toThrow(
      new Error(
        invalid(
          "model-serving:mlflowPassword: must be at least 12 characters, as MLflow requires (got 8)",
        ),
      ),
    );
    expect(() =>
      parseStackConfig(
        { models: [], mlflowPassword: { value: "line\nbreak-password", secret: true } },
        ctx,
      ),
    ).toThrow(
      new Error(
        invalid(
          "model-serving:mlflowPassword: must not contain a line break (it would end the value in MLflow's ini file)",
        ),
      ),
    );
  });

  it("accepts the password as secret config", () => {
    expect(() =>
      parseStackConfig(
        { models: [], mlflowPassword: { value: "hunter2-password", secret: true } },
        ctx,
      ),
    ).not.toThrow();
  });

  it("a tracking URI for the local server is a mistake", () => {
    expect(parse({ mlflow: { trackingUri: "http://127.0.0.1:5000" } })).toThrow(
      new Error(
        invalid(
          `model-serving:mlflow.trackingUri: is only used when mode is "existing"; the local server's URI comes from host and port (got "http://127.0.0.1:5000")`,
        ),
      ),
    );
  });
});

describe("ports", () => {
  it("a model port equal to the MLflow port", () => {
    expect(parse({ mlflow: { port: 5100 }, models: [model({ serve: { port: 5100 } })] })).toThrow(
      new Error(
        invalid(
          "model-serving:models[0].serve.port: is the MLflow server's port (mlflow.port); choose another (got 5100)",
        ),
      ),
    );
  });

  it("a model port equal to an existing server's port on this machine", () => {
    const mlflow = { mode: "existing", trackingUri: "http://localhost:5001" };
    expect(parse({ mlflow, models: [model({ serve: { port: 5001 } })] })).toThrow(
      new Error(
        invalid(
          "model-serving:models[0].serve.port: is the MLflow server's port (mlflow.trackingUri); choose another (got 5001)",
        ),
      ),
    );
    // Another host's port is no conflict.
    const remote = { mode: "existing", trackingUri: "http://mlflow.internal:5001" };
    expect(parse({ mlflow: remote, models: [model({ serve: { port: 5001 } })] })).not.toThrow();
  });

  it("duplicate fixed ports", () => {
    const models = [
      model({ serve: { port: 5001 } }),
      model({ name: "b", serve: { port: 5002 } }),
      model({ name: "c", serve: { port: 5001 } }),
      model({ name: "d", serve: false }),
      model({ name: "e" }),
    ];
    expect(parse({ models })).toThrow(
      new Error(
        invalid("model-serving:models[2].serve.port: is already used by models[0] (got 5001)"),
      ),
    );
  });
});

describe("cloud targets use the same strict schema and format", () => {
  const azure = {
    subscriptionId: "00000000-0000-0000-0000-000000000001",
    resourceGroup: "ml-rg",
    location: "westeurope",
    workspaceName: "ml-ws",
    registry: { name: "irisacr" },
  };
  const withTargets = (targets: unknown, name = "iris") => ({
    models: [model({ name, serve: false, targets })],
  });

  it.each<[string, unknown, string]>([
    [
      "a typo of a target",
      { sagemakr: { region: "eu-west-1" } },
      "model-serving:models[0].targets.sagemakr: unknown key; expected one of sagemaker, azureml, docker, kubernetes",
    ],
    [
      "a typo inside a target",
      { sagemaker: { region: "eu-west-1", instanceTyp: "ml.m5.large" } },
      "model-serving:models[0].targets.sagemaker.instanceTyp: unknown key; expected one of region, endpointName, repositoryName, instanceType, instanceCount, environment, containerStartupHealthCheckTimeoutSeconds, vpc, enableNetworkIsolation, kmsKeyArn, tags, serverless, roleArn, dataCaptureS3Uri, dataCaptureSamplingPercentage, autoscaling, blueGreen",
    ],
    [
      "a typo deep inside a target",
      { sagemaker: { region: "eu-west-1", blueGreen: { autoRollback: { max5xx: 1 } } } },
      "model-serving:models[0].targets.sagemaker.blueGreen.autoRollback.max5xx: unknown key; expected one of max5xxPerMinute, maxModelLatencyMs",
    ],
    [
      "a typo in an azureml deployment",
      { azureml: { ...azure, deployments: [{ name: "blue", trafic: 100 }] } },
      "model-serving:models[0].targets.azureml.deployments[0].traffic: is required\n  model-serving:models[0].targets.azureml.deployments[0].trafic: unknown key; expected one of name, version, traffic, instanceType, instanceCount",
    ],
    [
      "a Kubernetes target without the repository its image is pushed to",
      { kubernetes: { namespace: "scoring" } },
      "model-serving:models[0].targets.kubernetes.image: is required",
    ],
    [
      "a Kubernetes image repository with a tag",
      { kubernetes: { image: { repository: "registry.example.com/ml/iris:v1" } } },
      'model-serving:models[0].targets.kubernetes.image.repository: must be <registry>[:port]/<path> in lowercase, without a tag or digest (got "registry.example.com/ml/iris:v1")',
    ],
    [
      "a Kubernetes target with replicas and autoscaling",
      {
        kubernetes: {
          image: { repository: "registry.example.com/ml/iris" },
          replicas: 2,
          autoscaling: { min: 2, max: 4 },
        },
      },
      "model-serving:models[0].targets.kubernetes.replicas: set either replicas or autoscaling, not both (the autoscaler owns the replica count) (got 2)",
    ],
    [
      "a wrong type",
      { sagemaker: { region: "eu-west-1", instanceType: 5 } },
      "model-serving:models[0].targets.sagemaker.instanceType: must be a string (got 5)",
    ],
    [
      "a missing required key",
      { sagemaker: {} },
      "model-serving:models[0].targets.sagemaker.region: is required",
    ],
    [
      "a count below 1",
      { sagemaker: { region: "eu-west-1", instanceCount: 0 } },
      "model-serving:models[0].targets.sagemaker.instanceCount: must be a whole number of at least 1 (got 0)",
    ],
    [
      "a region that is not one",
      { sagemaker: { region: "Ireland" } },
      'model-serving:models[0].targets.sagemaker.region: must look like us-east-1 (got "Ireland")',
    ],
    [
      "instanceType and serverless",
      {
        sagemaker: {
          region: "eu-west-1",
          instanceType: "ml.m5.large",
          serverless: { memorySizeInMb: 2048, maxConcurrency: 5 },
        },
      },
      "model-serving:models[0].targets.sagemaker.serverless: set either instanceType or serverless, not both",
    ],
    [
      "a serverless memory size SageMaker does not offer",
      {
        sagemaker: { region: "eu-west-1", serverless: { memorySizeInMb: 1500, maxConcurrency: 5 } },
      },
      "model-serving:models[0].targets.sagemaker.serverless.memorySizeInMb: must be one of 1024, 2048, 3072, 4096, 5120, 6144 (got 1500)",
    ],
    [
      "an instance count outside autoscaling",
      {
        sagemaker: {
          region: "eu-west-1",
          instanceCount: 5,
          autoscaling: { min: 1, max: 3, targetInvocationsPerInstance: 100 },
        },
      },
      "model-serving:models[0].targets.sagemaker.instanceCount: must be within autoscaling.min..max (1..3) (got 5)",
    ],
    [
      "a canary without a step",
      { sagemaker: { region: "eu-west-1", blueGreen: { mode: "CANARY" } } },
      "model-serving:models[0].targets.sagemaker.blueGreen.stepPercent: is required when blueGreen.mode is CANARY",
    ],
    [
      "an unknown enum value",
      { azureml: { ...azure, authMode: "aad" } },
      'model-serving:models[0].targets.azureml.authMode: must be one of "key", "aml_token", "aad_token" (got "aad")',
    ],
    [
      "a subscription that is not a UUID",
      { azureml: { ...azure, subscriptionId: "abc" } },
      'model-serving:models[0].targets.azureml.subscriptionId: must be a UUID (got "abc")',
    ],
    [
      "traffic that does not sum to 100",
      {
        azureml: {
          ...azure,
          deployments: [
            { name: "blue", traffic: 70 },
            { name: "green", traffic: 20 },
          ],
        },
      },
      "model-serving:models[0].targets.azureml.deployments: traffic must sum to 100, got 90 (blue=70, green=20)",
    ],
    [
      "two deployments of one name",
      {
        azureml: {
          ...azure,
          deployments: [
            { name: "blue", traffic: 50 },
            { name: "blue", version: "2", traffic: 50 },
          ],
        },
      },
      'model-serving:models[0].targets.azureml.deployments[1].name: is used by deployments[0] too (got "blue")',
    ],
    [
      "registry.create with two versions",
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
      "model-serving:models[0].targets.azureml.registry.create: works with one model version; create the registry once, then use it by name for blue/green (got true)",
    ],
  ])("%s", (_title, targets, message) => {
    expect(parse(withTargets(targets))).toThrow(new Error(invalid(message)));
  });

  it("a model name that makes no valid default endpoint name", () => {
    expect(parse(withTargets({ sagemaker: { region: "eu-west-1" } }, "my_model"))).toThrow(
      new Error(
        invalid(
          'model-serving:models[0].targets.sagemaker.endpointName: is required because the default "my_model-sagemaker" (from the model name) is invalid: it must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit',
        ),
      ),
    );
    expect(
      parse(
        withTargets({ sagemaker: { region: "eu-west-1", endpointName: "my-model" } }, "my_model"),
      ),
    ).not.toThrow();
  });

  it("lists target problems with every other problem at once", () => {
    expect(() =>
      parseStackConfig(
        {
          mlflow: { port: 0 },
          models: [model({ targets: { sagemakr: {} } })],
          mlflowPassword: { value: "pw", secret: false },
        },
        ctx,
      ),
    ).toThrow(
      new Error(
        invalid(
          "model-serving:mlflow.port: must be a whole number from 1 to 65535 (got 0)",
          "model-serving:models[0].targets.sagemakr: unknown key; expected one of sagemaker, azureml, docker, kubernetes",
          "model-serving:mlflowPassword: must be secret config, not plain text; set it again with: pulumi config set --secret mlflowPassword",
        ),
      ),
    );
  });
});

describe("platform", () => {
  const onWindows = (raw: { mlflow?: unknown; models?: unknown }) => () =>
    parseStackConfig(raw, { ...ctx, platform: "win32" });

  it("refuses servers started here on Windows, naming the key", () => {
    expect(onWindows({ models: [model()] })).toThrow(
      invalid(
        "model-serving:mlflow.mode: local servers need a POSIX system with process groups (Linux, macOS), " +
          'not Windows; use mlflow.mode "existing" with models that are only registered (serve: false) (got "local")',
      ),
    );
    expect(
      onWindows({
        mlflow: { mode: "existing", trackingUri: "http://mlflow:5000" },
        models: [model()],
      }),
    ).toThrow("model-serving:mlflow.deployMode: local servers need a POSIX system");
  });

  it("accepts a registry-only stack on Windows and anything on macOS", () => {
    const existing = { mode: "existing", trackingUri: "http://mlflow:5000" };
    expect(onWindows({ mlflow: existing, models: [model({ serve: false })] })).not.toThrow();
    expect(
      parseStackConfig({ models: [model()] }, { ...ctx, platform: "darwin" }).mlflow.mode,
    ).toBe("local");
  });
});

describe("registered models (serve what the registry holds)", () => {
  const ref = (registered: unknown, extra: Record<string, unknown> = {}) => ({
    name: "fraud",
    registered,
    ...extra,
  });

  it("accepts a version or an alias, and registers nothing", () => {
    const cfg = parseStackConfig(
      {
        mlflow: { mode: "existing", trackingUri: "https://mlflow.internal" },
        models: [ref({ version: 3 }), ref({ alias: "champion" }, { name: "churn" })],
      },
      ctx,
    );
    expect(cfg.models).toEqual([
      { kind: "reference", name: "fraud", registered: { version: 3 }, serve: expect.any(Object) },
      {
        kind: "reference",
        name: "churn",
        registered: { alias: "champion" },
        serve: expect.any(Object),
      },
    ]);
    // The embedded local server can be referenced too (a version registered there by hand).
    expect(parseStackConfig({ models: [ref({ version: 1 })] }, ctx).models[0].kind).toBe(
      "reference",
    );
  });

  it.each([
    [
      "neither source nor registered",
      { name: "fraud" },
      'model-serving:models[0].source: is required unless the model is already registered: set "source" to register a new version, or "registered" ({version: N} or {alias: NAME}) to serve one the registry holds',
    ],
    [
      "both source and registered",
      { name: "fraud", source: "models:/fraud/3", registered: { version: 3 } },
      'model-serving:models[0].source: cannot be combined with "registered": "source" registers a new version, "registered" serves one the registry already holds; keep one (got "models:/fraud/3")',
    ],
    [
      "version and alias together",
      ref({ version: 3, alias: "champion" }),
      'model-serving:models[0].registered: needs exactly one of "version" (e.g. 3) or "alias" (e.g. champion) (got {"version":3,"alias":"champion"})',
    ],
    [
      "an empty reference",
      ref({}),
      'model-serving:models[0].registered: needs exactly one of "version" (e.g. 3) or "alias" (e.g. champion) (got {})',
    ],
    [
      "version zero",
      ref({ version: 0 }),
      "model-serving:models[0].registered.version: must be a whole number of at least 1 (got 0)",
    ],
    [
      "version as text",
      ref({ version: "3" }),
      'model-serving:models[0].registered.version: must be a whole number of at least 1 (got "3")',
    ],
    [
      "an alias MLflow reserves",
      ref({ alias: "latest" }),
      'model-serving:models[0].registered.alias: is reserved by MLflow (got "latest")',
    ],
    [
      "a typo",
      ref({ versoin: 3 }),
      "model-serving:models[0].registered.versoin: unknown key; expected one of version, alias",
    ],
    [
      "aliases on a referenced version",
      ref({ alias: "champion" }, { aliases: ["prod"] }),
      'model-serving:models[0].aliases: only applies to versions this stack registers from "source"; a "registered" model is served as the registry holds it (set aliases and tags in MLflow) (got ["prod"])',
    ],
    [
      "keepInRegistry on a referenced version",
      ref({ version: 2 }, { keepInRegistry: false }),
      'model-serving:models[0].keepInRegistry: only applies to versions this stack registers from "source"; a "registered" model is served as the registry holds it (set aliases and tags in MLflow) (got false)',
    ],
  ])("%s is refused, naming the key and the value", (_, entry, line) => {
    expect(parse({ models: [entry] })).toThrow(invalid(line));
  });
});
