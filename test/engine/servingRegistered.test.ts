import { execFile } from "child_process";
import { promisify } from "util";
import { MlflowServerState } from "../../providers/mlflowServerCore";
import { demoModel } from "../support/env";
import { EngineStack, whyEngineCannotRun } from "../support/engineStack";
import { startTestServer, stopTestServer } from "../support/mlflowServer";
import { mlflowPython, registrySnapshot } from "../support/registryClient";

// The "platform team" setup end to end on the real engine: a registry that MLflow's own client wrote,
// a stack that only serves what an alias points to. Moving the alias in MLflow and running
// `up --refresh` serves the new version on the same URL; destroy leaves the registry as it was.
const skip = whyEngineCannotRun();
if (skip) {
  console.warn(`skipping the registered-models engine suite: ${skip}`);
}
const describeEngine = skip ? describe.skip : describe;

// A row the two versions disagree on: C=1 says 1 (versicolor), C=0.01 says 2 (virginica).
const ROW = {
  dataframe_split: {
    columns: ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    data: [[7.0, 3.2, 4.7, 1.4]],
  },
};

interface Entry {
  url: string;
  version: string;
  modelUri: string;
  curl: string;
}

describeEngine("serving what the registry holds, following an alias", () => {
  let server: MlflowServerState | undefined;
  let engine: EngineStack;

  beforeAll(async () => {
    server = await startTestServer();
    await mlflowPython(server.trackingUri, "register", "fraud", demoModel(1.0));
    await mlflowPython(server.trackingUri, "register", "fraud", demoModel(0.01));
    await mlflowPython(server.trackingUri, "alias", "fraud", "champion", "1");
    engine = await EngineStack.create({
      prefix: "registered",
      mlflow: { mode: "existing", trackingUri: server.trackingUri },
      models: [{ name: "fraud", registered: { alias: "champion" }, sampleInput: ROW }],
    });
  }, 300_000);
  afterAll(async () => {
    await engine?.cleanup();
    await stopTestServer(server);
  }, 300_000);

  const entry = async (): Promise<Entry> =>
    ((await engine.stack.outputs()).endpoints.value as Record<string, Entry>).fraud;
  /** Scores with the stack output's own curl command. */
  const scoreWithCurl = async (e: Entry) =>
    JSON.parse((await promisify(execFile)("bash", ["-c", e.curl], { timeout: 30_000 })).stdout);

  it("serves the version the alias names, moves with it on up --refresh, and leaves the registry as it found it", async () => {
    const uri = server!.trackingUri;
    const found = await registrySnapshot(uri, "fraud");

    await engine.stack.up(engine.opts());
    const first = await entry();
    expect(first).toMatchObject({ version: "1", modelUri: "models:/fraud/1" });
    expect(await scoreWithCurl(first)).toEqual({ predictions: [1] });
    // Nothing was written to the registry by up.
    expect(await registrySnapshot(uri, "fraud")).toEqual(found);

    await mlflowPython(uri, "alias", "fraud", "champion", "2");

    // preview --refresh shows the move: the reference reads version 2, the server will restart.
    const preview = await engine.cli(["preview", "--refresh", "--diff"]);
    expect(preview.code).toBe(0);
    expect(preview.stdout).toMatch(/resolvedVersion\s*:\s*"1"\s*=>\s*"2"/);
    expect(preview.stdout).toMatch(/modelUri\s*:\s*"models:\/fraud\/1"\s*=>\s*"models:\/fraud\/2"/);

    const up = await engine.cli(["up", "--refresh", "--yes", "--skip-preview"]);
    expect(up.code).toBe(0);
    const second = await entry();
    expect(second).toMatchObject({ version: "2", modelUri: "models:/fraud/2", url: first.url });
    expect(await scoreWithCurl(second)).toEqual({ predictions: [2] });

    // A second up changes nothing.
    const again = await engine.stack.up(engine.opts());
    expect(again.summary.resourceChanges).not.toHaveProperty("update");

    // A bad release: the alias moves to a version that cannot load. The up fails with the server's own
    // last lines, and the old version serves on the same URL meanwhile.
    const broken = await mlflowPython<{ version: string }>(uri, "register-broken", "fraud");
    await mlflowPython(uri, "alias", "fraud", "champion", broken.version);
    const failed = await engine.cli(["up", "--refresh", "--yes", "--skip-preview"]);
    expect(failed.code).not.toBe(0);
    expect(failed.stdout + failed.stderr).toContain("model_serving_no_such_module");
    expect(await scoreWithCurl(second)).toEqual({ predictions: [2] });

    // A plain up (no refresh) follows the alias too: the reference's diff resolves it again.
    await mlflowPython(uri, "alias", "fraud", "champion", "1");
    const movedBack = await registrySnapshot(uri, "fraud");
    await engine.stack.up(engine.opts());
    const third = await entry();
    expect(third).toMatchObject({ version: "1", url: first.url });
    expect(await scoreWithCurl(third)).toEqual({ predictions: [1] });

    await engine.stack.destroy(engine.opts());
    expect(await registrySnapshot(uri, "fraud")).toEqual(movedBack);
    // Nothing the stack did added or removed a version: the two it found and the bad release.
    expect(movedBack.versions.map((v) => v.version)).toEqual(["1", "2", broken.version]);
    expect(movedBack.versions.slice(0, 2)).toEqual(found.versions);
  }, 900_000);
});
