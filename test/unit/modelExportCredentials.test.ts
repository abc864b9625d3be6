import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  hashScorerFiles,
  materializeContext,
  ModelExportInputs,
} from "../../providers/modelExport";

// ModelExport follows the one credential policy (providers/mlflow/connection.ts): the stack's secret
// `auth` input reaches the mlflow CLI, the provider's own MLFLOW_TRACKING_* only without it, and no
// credential is ever an output.
const SCORER = path.resolve(__dirname, "../../scorer");
const VARS = ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"];
let tmp: string;
let seen: string;
let saved: Record<string, string | undefined>;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "model-export-creds-"));
  seen = path.join(tmp, "env.log");
  fs.writeFileSync(
    path.join(tmp, "mlflow"),
    [
      "#!/bin/sh",
      `echo "uri=$MLFLOW_TRACKING_URI user=$MLFLOW_TRACKING_USERNAME pass=$MLFLOW_TRACKING_PASSWORD token=$MLFLOW_TRACKING_TOKEN" >> ${seen}`,
      'mkdir -p "$6" && printf "flavors: {python_function: {}}\\n" > "$6/MLmodel"',
    ].join("\n"),
    { mode: 0o755 },
  );
  saved = Object.fromEntries(VARS.map((k) => [k, process.env[k]]));
});
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) {
      delete process.env[k];
    } else {
      process.env[k] = v;
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const inputs = (over: Partial<ModelExportInputs> = {}): ModelExportInputs => ({
  modelName: "iris",
  modelVersion: "1",
  trackingUri: "http://127.0.0.1:5000",
  mlflowBin: path.join(tmp, "mlflow"),
  scorerDir: SCORER,
  scorerHash: hashScorerFiles(SCORER),
  contextRoot: path.join(tmp, "contexts"),
  ...over,
});

test("the secret auth input reaches the CLI and wins over the provider's environment", async () => {
  process.env.MLFLOW_TRACKING_TOKEN = "operator-token";
  process.env.MLFLOW_TRACKING_USERNAME = "operator";
  process.env.MLFLOW_TRACKING_PASSWORD = "operator-pass";
  const outs = await materializeContext(
    inputs({ auth: { username: "admin", password: "stack-secret-1" } }),
  );
  expect(fs.readFileSync(seen, "utf8")).toBe(
    "uri=http://127.0.0.1:5000 user=admin pass=stack-secret-1 token=\n",
  );
  expect(Object.keys(outs)).not.toContain("auth");
  expect(JSON.stringify(outs)).not.toContain("stack-secret-1");
});

test("without auth the documented MLFLOW_TRACKING_* fallback applies", async () => {
  process.env.MLFLOW_TRACKING_TOKEN = "operator-token";
  delete process.env.MLFLOW_TRACKING_USERNAME;
  delete process.env.MLFLOW_TRACKING_PASSWORD;
  await materializeContext(inputs());
  expect(fs.readFileSync(seen, "utf8")).toBe(
    "uri=http://127.0.0.1:5000 user= pass= token=operator-token\n",
  );
});
