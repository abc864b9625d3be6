import * as fs from "fs";
import * as path from "path";
import { parseStackConfig, type PasswordConfig } from "../../config/stackConfig";
import { tempDir } from "../support/env";

// The stack's `workflows` list (config/workflowConfig.ts): what the program gets, and every message
// users see, verbatim.
const projectDir = tempDir("workflow-config");
fs.mkdirSync(path.join(projectDir, "models/iris"), { recursive: true });
fs.writeFileSync(path.join(projectDir, "models/iris/MLmodel"), "flavors: {}\n");
const ctx = { projectDir, stack: "dev", env: { MODEL_SERVING_CACHE: "/cache", HOME: "/home/u" } };
const TOKEN: PasswordConfig = { value: "a-token-of-24-characters", secret: true };
const iris = { name: "iris", source: "models/iris" };
const wf = (extra: Record<string, unknown> = {}) => ({
  id: "iris-daily",
  model: "iris",
  input: "/data/in.csv",
  output: "/data/out.csv",
  ...extra,
});
const parse = (workflows: unknown, mlflow: unknown = { deployMode: "agent" }) =>
  parseStackConfig(
    {
      mlflow,
      models: [iris],
      workflows,
      agentToken: (mlflow as { deployMode?: string }).deployMode === "agent" ? TOKEN : undefined,
    },
    ctx,
  );
const invalid = (...lines: string[]) => `invalid stack configuration:\n  ${lines.join("\n  ")}`;

describe("the workflows list in the stack config", () => {
  it("resolves defaults, formats from the extension, normalized paths and the model forms", () => {
    const cfg = parse([
      wf(),
      wf({
        id: "by-alias",
        model: { name: "iris", alias: "champion" },
        input: "/data//in/",
        output: "/data/out/scores.parquet",
        batchSize: 32,
        executeOnUp: true,
      }),
      wf({ id: "by-version", model: { name: "iris", version: 3 }, input: "/d/in.jsonl" }),
      wf({ id: "by-uri", model: "models:/other@prod", input: "s3://bucket/in.csv" }),
    ]);
    expect(cfg.workflows).toEqual([
      {
        id: "iris-daily",
        model: { kind: "stack", name: "iris" },
        input: "/data/in.csv",
        inputFormat: "csv",
        output: "/data/out.csv",
        outputFormat: "csv",
        batchSize: 1000,
        maxConcurrentRuns: 1,
        timeoutSeconds: 3600,
        executeOnUp: false,
      },
      expect.objectContaining({
        id: "by-alias",
        model: { kind: "registry", name: "iris", alias: "champion" },
        input: "/data/in",
        inputFormat: "csv",
        outputFormat: "parquet",
        batchSize: 32,
        executeOnUp: true,
      }),
      expect.objectContaining({
        model: { kind: "registry", name: "iris", version: 3 },
        inputFormat: "jsonl",
      }),
      expect.objectContaining({
        model: { kind: "uri", uri: "models:/other@prod" },
        input: "s3://bucket/in.csv",
      }),
    ]);
    expect(parse(undefined).workflows).toEqual([]);
  });

  it.each<[string, unknown, unknown, string[]]>([
    [
      "a workflow without deploy mode agent",
      [wf()],
      {},
      [
        'model-serving:workflows: needs mlflow.deployMode "agent" (the workflows run on the MLOps agent); mlflow.deployMode is "local"',
      ],
    ],
    [
      "a bad id",
      [wf({ id: "-daily" })],
      undefined,
      [
        'model-serving:workflows[0].id: must be 1-64 characters of letters, digits, "_", "." or "-", starting with a letter or digit (got "-daily")',
      ],
    ],
    [
      "a duplicate id",
      [wf(), wf()],
      undefined,
      ['model-serving:workflows[1].id: is already the id of workflows[0] (got "iris-daily")'],
    ],
    [
      "a model name that is not in models[]",
      [wf({ model: "irs" })],
      undefined,
      [
        'model-serving:workflows[0].model: is not a name in models[] (iris); use a models:/ URI for a model this stack does not declare (got "irs")',
      ],
    ],
    [
      "an unknown name with an alias",
      [wf({ model: { name: "wine", alias: "prod" } })],
      undefined,
      [
        'model-serving:workflows[0].model.name: is not a name in models[] (iris); use a models:/ URI for a model this stack does not declare (got "wine")',
      ],
    ],
    [
      "alias and version together",
      [wf({ model: { name: "iris", alias: "prod", version: 2 } })],
      undefined,
      [
        'model-serving:workflows[0].model.version: cannot be combined with "alias"; keep one (got 2)',
      ],
    ],
    [
      "a malformed models:/ URI",
      [wf({ model: "models:/iris" })],
      undefined,
      [
        'model-serving:workflows[0].model: must be models:/<name>/<version> or models:/<name>@<alias> (got "models:/iris")',
      ],
    ],
    [
      "a relative input and an unsupported scheme",
      [wf({ input: "data/in.csv", output: "gs://b/out.csv" })],
      undefined,
      [
        'model-serving:workflows[0].input: must be an absolute path on the agent\'s host (or an s3:// or abfss:// URI) (got "data/in.csv")',
        'model-serving:workflows[0].output: must be an absolute path on the agent\'s host (or an s3:// or abfss:// URI) (got "gs://b/out.csv")',
      ],
    ],
    [
      "the output at the input's place",
      [wf({ output: "/data/./in.csv" })],
      undefined,
      [
        'model-serving:workflows[0].output: is the input location; write the scores elsewhere (got "/data/./in.csv")',
      ],
    ],
    [
      "a bad format, batch size and executeOnUp",
      [wf({ inputFormat: "xlsx", batchSize: 0, executeOnUp: "yes" })],
      undefined,
      [
        'model-serving:workflows[0].inputFormat: must be one of "csv", "parquet", "jsonl" (got "xlsx")',
        "model-serving:workflows[0].batchSize: must be a whole number from 1 to 1000000 (got 0)",
        'model-serving:workflows[0].executeOnUp: must be a boolean (got "yes")',
      ],
    ],
    [
      "an unknown key",
      [wf({ schedule: "daily" })],
      undefined,
      [
        "model-serving:workflows[0].schedule: unknown key; expected one of id, model, input, inputFormat, output, outputFormat, batchSize, maxConcurrentRuns, timeoutSeconds, executeOnUp",
      ],
    ],
  ])("refuses %s, naming the field and value", (_, workflows, mlflow, lines) => {
    expect(() => parse(workflows, mlflow ?? { deployMode: "agent" })).toThrow(invalid(...lines));
  });
});
