/**
 * The scorer image's serving contract, run for real as a local process (no Docker engine here):
 * train the demo model, register it in a throwaway MLflow store, export it with the real ModelExport
 * core (the `mlflow artifacts download` CLI) into a build context, then start the context's serve.py
 * on a free loopback port with MODEL_PATH pointing at the context's model/ (in the image: /opt/ml/model).
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { hashScorerFiles, materializeContext } from "../../providers/modelExport";
// freePort: a reserved port below the ephemeral range (serve.py takes its port from PORT, so it
// cannot bind port 0 and report back).
import { freePort, missingMlflow, venvDir } from "../support/env";

const ROOT = path.resolve(__dirname, "../..");
const missing = missingMlflow();
if (missing) {
  console.log(`SKIPPED scorer serving contract: ${missing}`);
}
const venv = missing ? undefined : venvDir;
const maybe = venv ? describe : describe.skip;

const COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
const ROWS = [
  [5.1, 3.5, 1.4, 0.2],
  [6.0, 2.9, 4.5, 1.5],
  [6.7, 3.0, 5.2, 2.3],
];

maybe("scorer serve.py (MLflow scoring server) contract", () => {
  let tmp: string;
  let server: ChildProcess | undefined;
  let base: string;
  let logs = "";

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "scorer-serve-"));
    const python = path.join(venv!, "bin/python");
    const trackingUri = `sqlite:///${path.join(tmp, "mlflow.db")}`;
    execFileSync(
      python,
      [path.join(ROOT, "python/demo/train_iris.py"), path.join(tmp, "trained")],
      { stdio: "pipe" },
    );
    execFileSync(
      python,
      [
        "-c",
        "import mlflow, sys; c = mlflow.MlflowClient(); c.create_registered_model('iris'); print(c.create_model_version('iris', source=sys.argv[1]).version)",
        path.join(tmp, "trained"),
      ],
      { env: { ...process.env, MLFLOW_TRACKING_URI: trackingUri }, stdio: "pipe" },
    );
    const ctx = await materializeContext({
      modelName: "iris",
      modelVersion: "1",
      trackingUri,
      mlflowBin: path.join(venv!, "bin/mlflow"),
      scorerDir: path.join(ROOT, "scorer"),
      scorerHash: hashScorerFiles(path.join(ROOT, "scorer")),
      contextRoot: path.join(tmp, "contexts"),
    });
    expect(fs.existsSync(path.join(ctx.contextDir, "model/MLmodel"))).toBe(true);

    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = spawn(python, [path.join(ctx.contextDir, "serve.py"), "serve"], {
      env: {
        ...process.env,
        MODEL_PATH: path.join(ctx.contextDir, "model"),
        HOST: "127.0.0.1",
        PORT: String(port),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    server.stdout!.on("data", (d) => (logs += d));
    server.stderr!.on("data", (d) => (logs += d));
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (server.exitCode !== null) {
        throw new Error(`serve.py exited with ${server.exitCode}:\n${logs}`);
      }
      const ok = await fetch(`${base}/ping`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) {
        break;
      }
      if (Date.now() > deadline) {
        throw new Error(`serve.py did not answer /ping within 120s:\n${logs}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }, 300_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once("exit", r));
      server.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer);
      if (server.exitCode === null) {
        server.kill("SIGKILL");
      }
    }
    if (tmp) {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 30_000);

  const post = (body: string, contentType?: string) =>
    fetch(`${base}/invocations`, {
      method: "POST",
      body,
      headers: contentType ? { "Content-Type": contentType } : {},
    });
  const predictions = async (res: Response) => {
    expect(res.status).toBe(200);
    const json = (await res.json()) as { predictions: number[] };
    expect(json.predictions).toHaveLength(ROWS.length);
    for (const p of json.predictions) {
      expect([0, 1, 2]).toContain(p);
    }
    return json.predictions;
  };

  test("GET /ping -> 200", async () => {
    expect((await fetch(`${base}/ping`)).status).toBe(200);
  });

  test("dataframe_split, dataframe_records, instances and CSV give the same predictions in {0,1,2}", async () => {
    const split = await predictions(
      await post(
        JSON.stringify({ dataframe_split: { columns: COLUMNS, data: ROWS } }),
        "application/json",
      ),
    );
    const records = ROWS.map((r) => Object.fromEntries(COLUMNS.map((c, i) => [c, r[i]])));
    expect(
      await predictions(
        await post(JSON.stringify({ dataframe_records: records }), "application/json"),
      ),
    ).toEqual(split);
    expect(
      await predictions(await post(JSON.stringify({ instances: records }), "application/json")),
    ).toEqual(split);
    const csv = [COLUMNS.join(","), ...ROWS.map((r) => r.join(","))].join("\n") + "\n";
    expect(await predictions(await post(csv, "text/csv"))).toEqual(split);
    expect(split).toEqual([0, 1, 2]); // the three iris classes, one row each
  });

  test("malformed JSON, or a body without a known input key -> 400", async () => {
    expect((await post('{"dataframe_split": ', "application/json")).status).toBe(400);
    expect((await post('{"rows": [[1, 2, 3, 4]]}', "application/json")).status).toBe(400);
  });

  test("unsupported or missing content type -> 415", async () => {
    expect((await post("<rows/>", "application/xml")).status).toBe(415);
    expect((await post("5.1,3.5,1.4,0.2")).status).toBe(415);
  });
});
