import * as path from "path";
import type { MlflowServerState } from "../../providers/mlflowServerCore";
import {
  hashScorerFiles,
  materializeContext,
  type ModelExportOutputs,
} from "../../providers/modelExport";
import { hashSource } from "../../providers/modelSource";
import { createModelVersion } from "../../providers/modelVersionCore";
import { mlflowBin } from "../support/env";

const SCORER = path.resolve(__dirname, "../../scorer");

/**
 * Registers `source` as version 1 of `name` on a test MLflow server and exports it for real with the
 * ModelExport core: the build context a replayed image is built from.
 */
export async function registerAndExport(
  server: MlflowServerState,
  name: string,
  source: string,
  contextRoot: string,
): Promise<ModelExportOutputs> {
  await createModelVersion({
    trackingUri: server.trackingUri,
    registryId: `local:${server.dataDir}`,
    owner: `model-serving/test/replay-${name}`,
    name,
    source,
    sourceHash: hashSource(source),
    aliases: ["champion"],
    tags: {},
    description: "replay",
    registration: 1,
    experimentName: "model-serving",
    readyTimeoutSeconds: 60,
  });
  return materializeContext({
    modelName: name,
    modelVersion: "1",
    trackingUri: server.trackingUri,
    mlflowBin,
    scorerDir: SCORER,
    scorerHash: hashScorerFiles(SCORER),
    contextRoot,
  });
}
