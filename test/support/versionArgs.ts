import type { ModelVersionArgs } from "../../providers/modelVersionCore";
import { hashSource } from "../../providers/modelSource";

/** ModelVersion inputs as the program builds them for a plain entry (`name` and `source` only). */
export function versionArgs(
  trackingUri: string,
  name: string,
  source: string,
  extra: Partial<ModelVersionArgs> = {},
): ModelVersionArgs {
  return {
    trackingUri,
    name,
    source,
    sourceHash: hashSource(source),
    aliases: [],
    tags: {},
    description: "",
    registration: 1,
    experimentName: "model-serving",
    readyTimeoutSeconds: 60,
    ...extra,
  };
}
