import * as path from "path";
import { createMlflowClient } from "../../providers/mlflow/client";
import { searchModelVersions } from "../../providers/mlflow/registry";
import { EngineStack, whyEngineCannotRun } from "../support/engineStack";
import { demoModel, freePort } from "../support/env";

// What `pulumi preview` announces when the local MLflow server is updated in place: the real Pulumi CLI
// (file backend in a temp dir) on the dev program with a real local MLflow server and model server.
// A preview that shows "replace" for a ModelVersion announces that the registered version is deleted.
// Then a new data directory (a new, empty registry behind the same URL) must register every version
// again instead of keeping state that names versions which do not exist there.
const PASSWORD = "e2e-Preview-Pa55word";
const ROTATED = "e2e-Preview-Rotated-Pa55word";
const REPLACING_OPS = ["replace", "create-replacement", "delete-replaced", "delete"];

const skip = whyEngineCannotRun();
if (skip) {
  console.warn(`skipping the preview suite: ${skip}`);
}
const describeEngine = skip ? describe.skip : describe;

interface PreviewStep {
  op: string;
  urn: string;
}

/** The steps of `pulumi preview --json` (an unchanged resource may be missing), by resource type, as `op`
 * strings. */
function opsByType(steps: PreviewStep[]): Record<string, string[]> {
  const byType: Record<string, string[]> = {};
  for (const s of steps) {
    const type = s.urn.split("::")[2].split("$").pop()!.split(":").pop()!;
    (byType[type] ??= []).push(s.op);
  }
  return byType;
}

describeEngine("the local MLflow server changes: preview, then up", () => {
  let engine: EngineStack;
  let mlflowPort: number;
  let modelPort: number;

  beforeAll(async () => {
    mlflowPort = await freePort();
    modelPort = await freePort();
    engine = await EngineStack.create({
      prefix: "preview",
      mlflow: { mode: "local", port: mlflowPort, startTimeoutSeconds: 120 },
      password: PASSWORD,
      models: [
        {
          name: "iris",
          source: demoModel(1.0),
          aliases: ["champion"],
          serve: { port: modelPort },
        },
        { name: "iris-registered", source: demoModel(0.01), serve: false },
      ],
    });
    const up = await engine.stack.up(engine.opts());
    expect(up.outputs.modelUris.value).toEqual({
      iris: "models:/iris/1",
      "iris-registered": "models:/iris-registered/1",
    });
  }, 600_000);

  afterAll(async () => {
    await engine?.cleanup();
  }, 600_000);

  async function preview(): Promise<Record<string, string[]>> {
    const r = await engine.cli(["preview", "--json"]);
    expect({ code: r.code, stderr: r.stderr.slice(-2000) }).toMatchObject({ code: 0 });
    return opsByType((JSON.parse(r.stdout) as { steps: PreviewStep[] }).steps);
  }

  it("previews an in-place update of the server and no replacement of any version", async () => {
    // What updates the server in place: its start deadline and its password.
    await engine.setMlflow({ mode: "local", port: mlflowPort, startTimeoutSeconds: 240 });
    await engine.stack.setConfig("model-serving:mlflowPassword", { value: ROTATED, secret: true });
    const ops = await preview();
    expect(ops.LocalMlflowServer).toEqual(["update"]);
    expect(ops.ModelVersion).toHaveLength(2);
    for (const type of ["ModelVersion", "ModelDeployment"]) {
      for (const op of ops[type]) {
        expect({ type, op, replacing: REPLACING_OPS.includes(op) }).toEqual({
          type,
          op,
          replacing: false,
        });
      }
    }
  }, 600_000);

  it("keeps every registered version through the update the preview announced", async () => {
    // Password rotation has its own suite; here only the deadline changes, and `up` does what the
    // preview said: the server restarts in place, the versions stay.
    await engine.stack.setConfig("model-serving:mlflowPassword", { value: PASSWORD, secret: true });
    const ops = await preview();
    expect(ops.LocalMlflowServer).toEqual(["update"]);
    const up = await engine.stack.up(engine.opts());
    expect(up.summary.resourceChanges).not.toHaveProperty("replace");
    expect(up.summary.resourceChanges).not.toHaveProperty("delete");
    expect(up.outputs.modelUris.value).toEqual({
      iris: "models:/iris/1",
      "iris-registered": "models:/iris-registered/1",
    });
  }, 600_000);

  it("registers every version again when the data directory (the registry) changes", async () => {
    const newDir = path.join(engine.cache, "mlflow-data-moved");
    await engine.setMlflow({
      mode: "local",
      port: mlflowPort,
      startTimeoutSeconds: 240,
      dataDir: newDir,
    });
    const ops = await preview();
    expect(ops.LocalMlflowServer).toContain("replace");
    // Replaced, not kept as "same" with versions that the new registry does not have.
    const versionOps = ops.ModelVersion ?? [];
    expect({ replaced: versionOps.filter((op) => op === "replace").length, versionOps }).toEqual({
      replaced: 2,
      versionOps,
    });

    engine.logs.length = 0;
    const up = await engine.stack.up(engine.opts());
    expect(up.outputs.modelUris.value).toEqual({
      iris: "models:/iris/1",
      "iris-registered": "models:/iris-registered/1",
    });
    // The new registry really has them (READY, the alias set), registered by this up.
    const client = createMlflowClient({
      trackingUri: `http://127.0.0.1:${mlflowPort}`,
      auth: { username: "admin", password: PASSWORD },
    });
    for (const name of ["iris", "iris-registered"]) {
      const versions = await searchModelVersions(client, name);
      expect(versions.map((v) => ({ version: v.version, status: v.status }))).toEqual([
        { version: "1", status: "READY" },
      ]);
    }
    // The replaced resources' deletes met the new versions (same number, same URL) and kept them.
    const log = engine.logs.join("");
    for (const name of ["iris", "iris-registered"]) {
      expect(log).toContain(
        `registry: keeping ${name} version 1 in the registry: the resource that replaced this one ` +
          "claimed it (tag model_serving.claim)",
      );
    }
  }, 900_000);
});
