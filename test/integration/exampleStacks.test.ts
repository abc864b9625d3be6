import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parseStackConfig, type RegisterModelConfig } from "../../config/stackConfig";
import { missingMlflow, repoRoot, venvPython } from "../support/env";

// The stack files shipped in the repo must pass the same validation `pulumi up` runs first.
// YAML is read with the venv's PyYAML (an MLflow dependency) to avoid a parser dependency here.
const skip =
  missingMlflow() ??
  (fs.existsSync(path.join(repoRoot, ".models/iris/MLmodel"))
    ? undefined
    : "the demo model .models/iris is missing: run `npm run bootstrap` first");
if (skip) {
  console.warn(`skipping example stack checks: ${skip}`);
}
const describeReal = skip ? describe.skip : describe;

function stackConfig(file: string): Record<string, unknown> {
  const json = execFileSync(venvPython, [
    "-c",
    "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
    path.join(repoRoot, file),
  ]).toString();
  return JSON.parse(json).config;
}

describeReal("example stack files", () => {
  // Pulumi.dev.yaml and the agent, remote and platform stacks: their own cases below.
  it.each([
    "Pulumi.sagemaker.yaml",
    "Pulumi.azureml.yaml",
    "Pulumi.docker.yaml",
    "Pulumi.kubernetes.yaml",
  ])("%s is valid", (file) => {
    const config = stackConfig(file);
    const parsed = parseStackConfig(
      { mlflow: config["model-serving:mlflow"], models: config["model-serving:models"] },
      { projectDir: repoRoot, stack: file.split(".")[1] },
    );
    expect(parsed.models.map((m) => m.name)).toEqual(["iris"]);
  });

  it("remote is an SSH MLflow host serving there, its key from secret config", () => {
    const config = stackConfig("Pulumi.remote.yaml");
    const parsed = parseStackConfig(
      {
        mlflow: config["model-serving:mlflow"],
        models: config["model-serving:models"],
        // What `pulumi config set --secret sshPrivateKey < key` supplies.
        sshPrivateKey: { value: "-----BEGIN OPENSSH PRIVATE KEY-----\n", secret: true },
      },
      { projectDir: repoRoot, stack: "remote" },
    );
    expect(parsed.mlflow).toMatchObject({
      mode: "remote",
      deployMode: "remote",
      port: 5000,
      remote: { host: "mlflow-1.internal.example.com", user: "deploy", profile: "default" },
    });
    expect(parsed.models.map((m) => m.name)).toEqual(["iris"]);
  });

  it("agent serves through the MLOps agent and declares a score workflow on it", () => {
    const config = stackConfig("Pulumi.agent.yaml");
    const parsed = parseStackConfig(
      {
        mlflow: config["model-serving:mlflow"],
        models: config["model-serving:models"],
        workflows: config["model-serving:workflows"],
        // What `pulumi config set --secret agentToken ...` supplies.
        agentToken: { value: "0123456789abcdef0123456789abcdef", secret: true },
      },
      { projectDir: repoRoot, stack: "agent" },
    );
    expect(parsed.mlflow).toMatchObject({ mode: "local", deployMode: "agent" });
    expect(parsed.agent).toMatchObject({ mode: "local", port: 5100 });
    expect(parsed.models.map((m) => m.name)).toEqual(["iris"]);
    expect(parsed.workflows).toEqual([
      {
        id: "iris-daily",
        model: { kind: "registry", name: "iris", alias: "champion" },
        input: "/srv/scoring/in/iris.csv",
        inputFormat: "csv",
        output: "/srv/scoring/out/iris-scored.csv",
        outputFormat: "csv",
        batchSize: 10000,
        maxConcurrentRuns: 1,
        timeoutSeconds: 3600,
        executeOnUp: false,
      },
    ]);
  });

  it("dev is the embedded case on the production path: iris with alias champion, served by the agent", () => {
    const config = stackConfig("Pulumi.dev.yaml");
    const parsed = parseStackConfig(
      {
        mlflow: config["model-serving:mlflow"],
        models: config["model-serving:models"],
        // What scripts/up.sh sets the first time.
        agentToken: { value: "0123456789abcdef0123456789abcdef0123456789abcdef", secret: true },
      },
      { projectDir: repoRoot, stack: "dev" },
    );
    expect(parsed.mlflow).toMatchObject({ mode: "local", port: 5000, deployMode: "agent" });
    expect(parsed.agent).toMatchObject({ mode: "local", port: 5100 });
    expect(parsed.models[0]).toMatchObject({
      aliases: ["champion"],
      serve: { host: "127.0.0.1" },
      keepInRegistry: false,
    });
  });

  it("platform is deploy-only: an existing registry, references only, nothing registered", () => {
    const config = stackConfig("Pulumi.platform.yaml");
    const parsed = parseStackConfig(
      { mlflow: config["model-serving:mlflow"], models: config["model-serving:models"] },
      { projectDir: repoRoot, stack: "platform" },
    );
    expect(parsed.mlflow).toMatchObject({ mode: "existing", deployMode: "local" });
    expect(parsed.models.map((m) => [m.name, m.kind])).toEqual([
      ["fraud", "reference"],
      ["churn", "reference"],
    ]);
    expect(parsed.models.map((m) => m.kind === "reference" && m.registered)).toEqual([
      { alias: "champion" },
      { version: 3 },
    ]);
  });

  it("the cloud examples carry their targets", () => {
    const sm = stackConfig("Pulumi.sagemaker.yaml");
    const az = stackConfig("Pulumi.azureml.yaml");
    const parse = (c: Record<string, unknown>) =>
      parseStackConfig(
        { mlflow: c["model-serving:mlflow"], models: c["model-serving:models"] },
        { projectDir: repoRoot, stack: "x" },
      ).models[0];
    expect(Object.keys(parse(sm).targets ?? {})).toEqual(["sagemaker"]);
    expect(Object.keys(parse(az).targets ?? {})).toEqual(["azureml"]);
    expect(parse(sm).serve).toBe(false);
    // A shared (existing) registry keeps the versions on destroy unless the stack says otherwise.
    expect([sm, az].map((c) => (parse(c) as RegisterModelConfig).keepInRegistry)).toEqual([
      true,
      true,
    ]);
  });
});
