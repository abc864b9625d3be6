import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  diffModelExport,
  downloadCommand,
  hashScorerFiles,
  hashTree,
  materializeContext,
  modelExportId,
  modelExportProvider,
  readContext,
  type ModelExportInputs,
  type ModelExportOutputs,
} from "../../../providers/modelExport";

const SCORER = path.resolve(__dirname, "../../../scorer");
let tmp: string;
let fakeMlflow: string;
let log: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "model-export-"));
  log = path.join(tmp, "calls.log");
  // A stand-in for the mlflow CLI: records its argv and tracking URI, writes a model into --dst-path.
  fakeMlflow = path.join(tmp, "mlflow");
  fs.writeFileSync(
    fakeMlflow,
    [
      "#!/bin/sh",
      `echo "$MLFLOW_TRACKING_URI $*" >> ${log}`,
      'case "$4" in models:/broken/*) echo "RESOURCE_DOES_NOT_EXIST: Registered Model not found" >&2; exit 1;; esac',
      'mkdir -p "$6" && printf "flavors: {python_function: {}}\\n" > "$6/MLmodel" && printf "mlflow==3.17.2\\n" > "$6/requirements.txt"',
      'echo "$4" > "$6/source.txt"',
    ].join("\n"),
    { mode: 0o755 },
  );
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const inputs = (over: Partial<ModelExportInputs> = {}): ModelExportInputs => ({
  modelName: "iris",
  modelVersion: "3",
  trackingUri: "http://127.0.0.1:5000",
  mlflowBin: fakeMlflow,
  scorerDir: SCORER,
  scorerHash: hashScorerFiles(SCORER),
  contextRoot: path.join(tmp, "contexts"),
  ...over,
});

test("id and download command", () => {
  expect(modelExportId("iris", "3")).toBe("iris/3");
  expect(downloadCommand(inputs({ mlflowBin: "/venv/bin/mlflow" }), "/ctx/model")).toEqual({
    file: "/venv/bin/mlflow",
    args: ["artifacts", "download", "--artifact-uri", "models:/iris/3", "--dst-path", "/ctx/model"],
    env: { MLFLOW_TRACKING_URI: "http://127.0.0.1:5000" },
  });
});

test("materializes a content-addressed context: scorer files + model/, reused for the same bytes", async () => {
  const outs = await materializeContext(inputs());
  const escaped = path.join(tmp, "contexts").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  expect(fs.readFileSync(log, "utf8")).toMatch(
    new RegExp(
      `^http://127\\.0\\.0\\.1:5000 artifacts download --artifact-uri models:/iris/3 --dst-path ${escaped}/\\.tmp-\\w+/model\n$`,
    ),
  );
  expect(outs.contextDir).toBe(path.join(tmp, "contexts", outs.contextHash));
  expect(outs.contextHash).toBe(hashTree(outs.contextDir));
  expect(fs.readdirSync(outs.contextDir).sort()).toEqual([
    ".dockerignore",
    "Dockerfile",
    "model",
    "requirements.txt",
    "serve.py",
  ]);
  expect(fs.readFileSync(path.join(outs.contextDir, "model", "source.txt"), "utf8")).toBe(
    "models:/iris/3\n",
  );
  expect(outs.modelUri).toBe("models:/iris/3");
  expect(Object.keys(outs).sort()).toEqual(
    [
      "contextDir",
      "contextHash",
      "contextRoot",
      "mlflowBin",
      "modelName",
      "modelUri",
      "modelVersion",
      "scorerDir",
      "scorerHash",
      "trackingUri",
    ].sort(),
  );
  const again = await materializeContext(inputs());
  expect(again.contextDir).toBe(outs.contextDir);
  expect(fs.readdirSync(path.join(tmp, "contexts"))).toEqual([outs.contextHash]); // no temp dirs left
  const other = await materializeContext(inputs({ modelVersion: "4" }));
  expect(other.contextHash).not.toBe(outs.contextHash);
});

test("a failed download rejects with mlflow's message and leaves nothing behind", async () => {
  await expect(materializeContext(inputs({ modelName: "broken" }))).rejects.toThrow(
    new Error(
      "ModelExport: downloading models:/broken/3 failed: RESOURCE_DOES_NOT_EXIST: Registered Model not found",
    ),
  );
  expect(fs.readdirSync(path.join(tmp, "contexts"))).toEqual([]);
});

test("a download that hangs times out with a clear error", async () => {
  fs.writeFileSync(fakeMlflow, "#!/bin/sh\nsleep 5\n", { mode: 0o755 });
  await expect(materializeContext(inputs(), 300)).rejects.toThrow(
    new Error("ModelExport: downloading models:/iris/3 timed out after 0.3s"),
  );
});

test("diff: name/version replace, tracking URI or scorer change update, the rest is ignored", () => {
  const olds = {
    ...inputs(),
    modelUri: "models:/iris/3",
    contextDir: "/c/x",
    contextHash: "x",
  } as ModelExportOutputs;
  expect(diffModelExport(olds, inputs())).toEqual({
    changes: false,
    replaces: [],
    deleteBeforeReplace: false,
  });
  expect(diffModelExport(olds, inputs({ modelVersion: "4" }))).toEqual({
    changes: true,
    replaces: ["modelVersion"],
    deleteBeforeReplace: false,
  });
  expect(diffModelExport(olds, inputs({ modelName: "wine" }))).toEqual({
    changes: true,
    replaces: ["modelName"],
    deleteBeforeReplace: false,
  });
  expect(diffModelExport(olds, inputs({ trackingUri: "http://mlflow:5000" }))).toEqual({
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
  expect(diffModelExport(olds, inputs({ scorerHash: "new" }))).toEqual({
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
  expect(
    diffModelExport(olds, inputs({ mlflowBin: "/other/mlflow", contextRoot: "/elsewhere" })),
  ).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
});

test("read reports a missing or altered context as gone; provider create/delete round trip", async () => {
  const created = await modelExportProvider.create(inputs());
  expect(created.id).toBe("iris/3");
  const outs = created.outs!;
  expect(readContext("iris/3", outs)).toEqual({ id: "iris/3", props: outs });
  fs.appendFileSync(path.join(outs.contextDir, "serve.py"), "# edited\n");
  expect(readContext("iris/3", outs)).toEqual({});
  await modelExportProvider.delete!("iris/3", outs);
  expect(fs.existsSync(outs.contextDir)).toBe(false);
  expect(readContext("iris/3", outs)).toEqual({});
});
