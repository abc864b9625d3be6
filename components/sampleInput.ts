import * as fs from "fs";
import * as path from "path";
import { firstRow } from "../providers/servingExample";

/** The body sent when no sample is known: valid JSON for MLflow that the user fills in. */
export const EMPTY_SAMPLE = { dataframe_split: { columns: [], data: [] } };

/**
 * The request body the generated commands send: the configured sample, else the first row of the
 * model's own `serving_input_example.json` (written by MLflow when the model was logged with an input
 * example), else an empty `dataframe_split` that the user must fill in.
 */
export function sampleRequestBody(source: string, configured?: Record<string, unknown>): unknown {
  if (configured) {
    return configured;
  }
  const examplePath = path.join(source, "serving_input_example.json");
  if (!/^[a-z][a-z0-9+.-]*:/i.test(source) && fs.existsSync(examplePath)) {
    return firstRow(JSON.parse(fs.readFileSync(examplePath, "utf8")));
  }
  return EMPTY_SAMPLE;
}

export { firstRow };
