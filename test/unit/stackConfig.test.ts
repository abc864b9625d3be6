import * as fs from "fs";
import * as path from "path";
import { parseStackConfig } from "../../config/stackConfig";
import { tempDir } from "../support/env";

// A minimal MLflow model directory, so source checks pass without MLflow.
const projectDir = tempDir("config");
fs.mkdirSync(path.join(projectDir, "models/iris"), { recursive: true });
fs.writeFileSync(path.join(projectDir, "models/iris/MLmodel"), "flavors: {}\n");
fs.writeFileSync(path.join(projectDir, "a-file"), "x");
fs.mkdirSync(path.join(projectDir, "not-a-model"));

const ctx = { projectDir, stack: "dev", env: { MODEL_SERVING_CACHE: "/cache" } };
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
      dataDir: "/cache/mlflow/dev",
    });
    expect(cfg.models[0]).toEqual({
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
    expect(cfg.models[0].source).toBe("runs:/abc123/model");
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
        'model-serving:mlflow.deployMode: deploy mode "agent" is not available yet; use "local" (got "agent")',
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
      invalid('model-serving:models[0]: unknown key "alias"'),
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
