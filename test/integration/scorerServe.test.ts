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
// Small enough that a test body crosses it; the default (6 MiB) is asserted from serve.py's log line.
const BODY_LIMIT = 4096;
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
        SCORER_MAX_BODY_BYTES: String(BODY_LIMIT),
        SCORER_WORKERS: "1",
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

  test("the server logs its settings: the overridden body limit, keep-alive and timeout defaults", () => {
    expect(logs).toContain(
      `with 1 workers, keep-alive 300s, body limit ${BODY_LIMIT} bytes, timeout 55s`,
    );
  });

  test("a body over SCORER_MAX_BODY_BYTES -> 413, by Content-Length and chunked", async () => {
    const big = JSON.stringify({
      dataframe_split: { columns: COLUMNS, data: Array(400).fill(ROWS[0]) },
    });
    expect(big.length).toBeGreaterThan(BODY_LIMIT);
    const res = await post(big, "application/json");
    expect(res.status).toBe(413);
    expect(await res.text()).toContain(`limit of ${BODY_LIMIT} bytes (SCORER_MAX_BODY_BYTES)`);
    // No Content-Length: a streamed body is counted as it arrives.
    const chunks = [big.slice(0, 3000), big.slice(3000)];
    const stream = new ReadableStream({
      pull(controller) {
        const next = chunks.shift();
        if (next === undefined) {
          controller.close();
        } else {
          controller.enqueue(new TextEncoder().encode(next));
        }
      },
    });
    const chunked = await fetch(`${base}/invocations`, {
      method: "POST",
      body: stream,
      headers: { "Content-Type": "application/json" },
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
    // Under the limit, chunked, still scores.
    const small = JSON.stringify({ dataframe_split: { columns: COLUMNS, data: ROWS } });
    const parts = [small.slice(0, 20), small.slice(20)];
    const okStream = new ReadableStream({
      pull(controller) {
        const next = parts.shift();
        if (next === undefined) {
          controller.close();
        } else {
          controller.enqueue(new TextEncoder().encode(next));
        }
      },
    });
    const ok = await fetch(`${base}/invocations`, {
      method: "POST",
      body: okStream,
      headers: { "Content-Type": "application/json" },
      duplex: "half",
    } as RequestInit);
    expect(await predictions(ok)).toEqual([0, 1, 2]);
  });

  test("unsupported or missing content type -> 415", async () => {
    expect((await post("<rows/>", "application/xml")).status).toBe(415);
    expect((await post("5.1,3.5,1.4,0.2")).status).toBe(415);
  });
});

maybe("scorer serve.py prepare (build time, before anything is installed)", () => {
  const python = venv ? path.join(venv, "bin/python") : "python3";
  const serve = path.join(ROOT, "scorer/serve.py");
  const run = (modelDir: string, out: string) => {
    try {
      const stdout = execFileSync(python, [serve, "prepare", modelDir, out], { stdio: "pipe" });
      return { code: 0, stdout: String(stdout), stderr: "" };
    } catch (err) {
      const e = err as { status: number; stdout: Buffer; stderr: Buffer };
      return { code: e.status, stdout: String(e.stdout), stderr: String(e.stderr) };
    }
  };
  const modelDir = (pythonVersion: string, requirements: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "scorer-prepare-"));
    fs.writeFileSync(
      path.join(dir, "python_env.yaml"),
      `python: ${pythonVersion}\nbuild_dependencies:\n- pip==23.2.1\n- setuptools==65.5.0\n- wheel\ndependencies:\n- -r requirements.txt\n`,
    );
    fs.writeFileSync(path.join(dir, "requirements.txt"), requirements);
    return dir;
  };
  const here = String(
    execFileSync(python, ["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]),
  ).trim();

  test("the image's own pins yield to the model's: a package the model names is left to its pin", () => {
    const dir = modelDir(here, "mlflow==3.17.2\nPandas==2.2.3\nscikit-learn==1.5.2\n");
    const stack = path.join(dir, "stack.txt");
    fs.writeFileSync(stack, "# ours\nmlflow-skinny==3.17.2\nnumpy==2.4.6\npandas==3.1.1\n");
    try {
      const execResult = execFileSync(python, [
        serve,
        "prepare",
        dir,
        path.join(dir, "out"),
        stack,
      ]);
      expect(String(execResult)).toContain("ok");
      expect(fs.readFileSync(path.join(dir, "out/stack-requirements.txt"), "utf8")).toBe(
        "# ours\nmlflow-skinny==3.17.2\nnumpy==2.4.6\n",
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the model's mlflow / mlflow-skinny pins are dropped, every other line kept as written", () => {
    const dir = modelDir(
      `${here.split(".").slice(0, 2).join(".")}.99`,
      "mlflow==2.17.2\nMLflow_Skinny[databricks]==2.17.2\nnumpy==1.26.4\nscikit-learn==1.5.2 # sk\nmlflow-tracing==0.1\n",
    );
    try {
      const result = run(dir, path.join(dir, "out"));
      expect(result.code).toBe(0);
      expect(fs.readFileSync(path.join(dir, "out/model-requirements.txt"), "utf8")).toBe(
        "numpy==1.26.4\nscikit-learn==1.5.2 # sk\nmlflow-tracing==0.1\n",
      );
      expect(fs.readFileSync(path.join(dir, "out/build-requirements.txt"), "utf8")).toBe(
        "pip==23.2.1\nsetuptools==65.5.0\nwheel\n",
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a model that needs another Python major.minor stops the build, naming both and the fix", () => {
    const dir = modelDir("3.8.18", "numpy\n");
    try {
      const result = run(dir, path.join(dir, "out"));
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        `scorer image: the model needs Python 3.8 (python_env.yaml: python: 3.8.18) but the base image has Python ${here}: build with --build-arg BASE_IMAGE=<an image with python3.8 and its venv module>, e.g. python:3.8-slim-bookworm`,
      );
      expect(fs.existsSync(path.join(dir, "out"))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("settings: SCORER_* names win; WORKERS and MLflow's timeout name apply when they are unset", () => {
    const settings = (env: Record<string, string>) =>
      JSON.parse(
        String(
          execFileSync(
            python,
            [
              "-c",
              "import dataclasses, json, sys; sys.path.insert(0, sys.argv[1]); import serve; " +
                "print(json.dumps(dataclasses.asdict(serve.Settings.from_env(json.loads(sys.argv[2])))))",
              path.dirname(serve),
              JSON.stringify(env),
            ],
            { stdio: "pipe" },
          ),
        ),
      );
    expect(settings({})).toMatchObject({
      port: 8080,
      keep_alive_seconds: 300,
      max_body_bytes: 6 * 1024 * 1024,
      timeout_seconds: 55,
    });
    expect(settings({ WORKERS: "3", MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: "7" })).toMatchObject({
      workers: 3,
      timeout_seconds: 7,
    });
    expect(
      settings({
        WORKERS: "3",
        SCORER_WORKERS: "5",
        MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: "7",
        SCORER_TIMEOUT_SECONDS: "9",
      }),
    ).toMatchObject({ workers: 5, timeout_seconds: 9 });
  });

  test("a bad SCORER_* value names the variable and the value", () => {
    try {
      execFileSync(python, [serve, "check"], {
        stdio: "pipe",
        env: { ...process.env, SCORER_WORKERS: "two" },
      });
      throw new Error("serve.py check accepted SCORER_WORKERS=two");
    } catch (err) {
      const e = err as { status: number; stderr: Buffer };
      expect(e.status).toBe(2);
      expect(String(e.stderr)).toContain(
        "scorer: SCORER_WORKERS must be an integer >= 1, got 'two'",
      );
    }
  });
});

maybe("scorer serve.py scoring timeout", () => {
  let tmp: string;
  let server: ChildProcess | undefined;
  let logs = "";

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once("exit", r));
      server.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (server.exitCode === null) {
        server.kill("SIGKILL");
      }
    }
    if (tmp) {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 30_000);

  test("a prediction slower than SCORER_TIMEOUT_SECONDS ends as 504, in about that time", async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "scorer-timeout-"));
    const python = path.join(venv!, "bin/python");
    const model = path.join(tmp, "slow");
    execFileSync(
      python,
      [
        "-c",
        [
          "import sys, time, mlflow.pyfunc",
          "class Slow(mlflow.pyfunc.PythonModel):",
          "    def predict(self, context, model_input, params=None):",
          "        time.sleep(5)",
          "        return [0] * len(model_input)",
          "mlflow.pyfunc.save_model(sys.argv[1], python_model=Slow())",
        ].join("\n"),
        model,
      ],
      { stdio: "pipe" },
    );
    const port = await freePort();
    server = spawn(python, [path.join(ROOT, "scorer/serve.py"), "serve"], {
      env: {
        ...process.env,
        MODEL_PATH: model,
        HOST: "127.0.0.1",
        PORT: String(port),
        SCORER_WORKERS: "1",
        SCORER_TIMEOUT_SECONDS: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    server.stdout!.on("data", (d) => (logs += d));
    server.stderr!.on("data", (d) => (logs += d));
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 120_000;
    while (
      (await fetch(`${base}/ping`).then(
        (r) => r.status,
        () => 0,
      )) !== 200
    ) {
      if (server.exitCode !== null || Date.now() > deadline) {
        throw new Error(`serve.py did not come up:\n${logs}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const started = Date.now();
    const res = await fetch(`${base}/invocations`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ dataframe_split: { columns: ["x"], data: [[1]] } }),
    });
    const seconds = (Date.now() - started) / 1000;
    expect(res.status).toBe(504);
    expect(seconds).toBeLessThan(4); // the timeout (1 s), not the 5 s prediction
  }, 180_000);
});
