import * as fs from "fs";
import * as path from "path";

// Pure checks of a model source, shared by config validation and the providers (which re-export them
// from providers/modelSource.ts). Imports nothing of components/ or providers/.

/** URI schemes MLflow can register a model version from, besides a local directory. */
export const SOURCE_URI_SCHEMES = [
  "runs:",
  "models:",
  "mlflow-artifacts:",
  "s3:",
  "gs:",
  "wasbs:",
  "abfss:",
  "dbfs:",
  "hdfs:",
  "file:",
  "http:",
  "https:",
];

/** True when `source` is a URI (as opposed to a local directory path). */
export function isSourceUri(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(source) && !/^[a-z]:[\\/]/i.test(source);
}

/** Why `source` cannot be registered, or undefined when it can. Names the field and the value. */
export function sourceProblem(field: string, source: string): string | undefined {
  if (isSourceUri(source)) {
    const scheme = source.slice(0, source.indexOf(":") + 1).toLowerCase();
    return SOURCE_URI_SCHEMES.includes(scheme)
      ? undefined
      : `${field}: unsupported URI scheme "${scheme}" in "${source}" (expected a local MLflow model ` +
          `directory or one of ${SOURCE_URI_SCHEMES.join(" ")})`;
  }
  if (!fs.existsSync(source)) {
    return `${field}: model directory "${source}" does not exist`;
  }
  if (!fs.statSync(source).isDirectory()) {
    return `${field}: "${source}" is a file, expected an MLflow model directory`;
  }
  if (!fs.existsSync(path.join(source, "MLmodel"))) {
    return `${field}: "${source}" has no MLmodel file, so it is not an MLflow model directory`;
  }
  return undefined;
}
