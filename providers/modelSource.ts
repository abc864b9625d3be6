import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as pure from "../config/modelSource";
import { listFiles } from "./mlflow/registry";

// The pure source checks live with the config (which validates sources first and imports no
// provider). Plain properties, not re-export getters, so a serialized provider captures plain values.
export const SOURCE_URI_SCHEMES = pure.SOURCE_URI_SCHEMES;
export const isSourceUri = pure.isSourceUri;
export const sourceProblem = pure.sourceProblem;

/**
 * Content hash of a model source: sha256 over every file's relative path and bytes for a local directory,
 * or of the URI itself. A new hash means a new model version.
 */
export function hashSource(source: string): string {
  const hash = crypto.createHash("sha256");
  if (isSourceUri(source)) {
    hash.update(`uri\0${source}`);
  } else {
    for (const file of listFiles(source)) {
      hash.update(`${file}\0`);
      hash.update(fs.readFileSync(path.join(source, file)));
      hash.update("\0");
    }
  }
  return `sha256:${hash.digest("hex")}`;
}
