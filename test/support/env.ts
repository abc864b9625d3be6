import { execFileSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { cacheDirFrom } from "../../config/stackConfig";

/** Where the bootstrap put things; tests that need them explain exactly what is missing. */
export const repoRoot = path.resolve(__dirname, "../..");
export const cacheDir = cacheDirFrom(process.env);
export const venvDir = process.env.MODEL_SERVING_VENV ?? path.join(cacheDir, "venv");
export const mlflowBin = path.join(venvDir, "bin", "mlflow");
export const venvPython = path.join(venvDir, "bin", "python");

/** Why the real-MLflow tests cannot run here, or undefined when they can. */
export function missingMlflow(): string | undefined {
  return fs.existsSync(mlflowBin)
    ? undefined
    : `no MLflow venv at ${venvDir}: run \`npm run bootstrap\` (or npm test, which runs it) first`;
}

/** A port nothing listens on right now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `model-serving-${prefix}-`));
}

/**
 * The demo iris model trained with regularization C, cached under the model-serving cache so the
 * suites train each variant once per machine (training is deterministic; ~20 s each).
 */
export function demoModel(regularization = 1.0): string {
  const dir = path.join(cacheDir, "test-models", `iris-C${regularization}`);
  if (!fs.existsSync(path.join(dir, "MLmodel"))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    execFileSync(
      venvPython,
      [
        path.join(repoRoot, "python/demo/train_iris.py"),
        tmp,
        "--regularization",
        String(regularization),
      ],
      { stdio: "pipe" },
    );
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  }
  return dir;
}

/** Posts JSON to a URL; resolves status and parsed body. */
export async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, body: parsed };
}

export const IRIS_ROW = {
  dataframe_split: {
    columns: ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    data: [[5.1, 3.5, 1.4, 0.2]],
  },
};
