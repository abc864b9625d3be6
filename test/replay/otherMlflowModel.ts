import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { cacheDir } from "../support/env";

/**
 * An iris model logged with another MLflow than the project's, to prove the scorer image builds and
 * serves what older clients logged. The venv (MLflow 2.17.2 with the scikit-learn, numpy and pandas of
 * its time) and the saved model are cached under $MODEL_SERVING_CACHE/docker/, made once per machine
 * (~1 min), keyed by the pins below.
 */
export const OTHER_MLFLOW_VERSION = "2.17.2";
const PINS = [
  `mlflow-skinny==${OTHER_MLFLOW_VERSION}`,
  "scikit-learn==1.5.2",
  "numpy==1.26.4",
  "pandas==2.2.3",
  "scipy==1.14.1",
];

export function otherMlflowModel(): string {
  const key = PINS.join(" ")
    .replace(/[^A-Za-z0-9.=-]+/g, "_")
    .slice(0, 120);
  const root = path.join(cacheDir, "docker", "other-mlflow");
  const venv = path.join(root, `venv-${OTHER_MLFLOW_VERSION}`);
  const model = path.join(root, `iris-${key}`);
  if (fs.existsSync(path.join(model, "MLmodel"))) {
    return model;
  }
  const python = path.join(venv, "bin", "python");
  const stamp = path.join(venv, "pins.txt");
  if (!fs.existsSync(stamp) || fs.readFileSync(stamp, "utf8") !== PINS.join("\n")) {
    fs.rmSync(venv, { recursive: true, force: true });
    execFileSync("python3", ["-m", "venv", venv], { stdio: "pipe" });
    execFileSync(python, ["-m", "pip", "install", "-q", ...PINS], {
      stdio: "pipe",
      timeout: 10 * 60_000,
    });
    fs.writeFileSync(stamp, PINS.join("\n"));
  }
  const tmp = `${model}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const version = execFileSync(python, [path.join(__dirname, "save_iris_model.py"), tmp], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
  if (version !== OTHER_MLFLOW_VERSION) {
    throw new Error(`the other-MLflow venv runs MLflow ${version}, not ${OTHER_MLFLOW_VERSION}`);
  }
  fs.renameSync(tmp, model);
  return model;
}
