import * as path from "path";
import { z } from "zod";
import { wholeNumber } from "./issues";

/**
 * The stack's `workflows` list: score workflows declared on the MLOps agent (deploy mode `agent`),
 * validated here; config/stackConfig.ts only plugs them in. A workflow's model is a name from
 * `models[]` (the version this stack registers or references), that name with an `alias` or
 * `version` of the registry (resolved to `models:/<name>/<version>` at `up`), or a `models:/` URI
 * passed to the agent as it is. Locations are absolute paths on the agent's host (or `s3://`/
 * `abfss://` URIs, which the agent accepts where its host has the client).
 */

/** agent/model_serving_agent/workflows/spec.py WORKFLOW_ID. */
const WORKFLOW_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MODEL_URI = /^models:\/[A-Za-z0-9][A-Za-z0-9_.\- ]*(@[A-Za-z0-9_-]+|\/[0-9]+)$/;
const ALIAS = /^[A-Za-z0-9_-]{1,255}$/;
const FORMATS = ["csv", "parquet", "jsonl"] as const;
export type WorkflowFormat = (typeof FORMATS)[number];

const location = z
  .string()
  .min(1)
  .refine(
    (v) => path.posix.isAbsolute(v) || /^(s3|abfss):\/\/[^/]+/.test(v),
    "must be an absolute path on the agent's host (or an s3:// or abfss:// URI)",
  );

const modelRef = z
  .object({
    /** A name from `models[]`. */
    name: z.string().min(1),
    /** The registry version this alias points to (resolved at `up`). */
    alias: z
      .string()
      .regex(ALIAS, 'must be 1-255 characters of letters, digits, "_" or "-"')
      .optional(),
    /** This registry version. */
    version: wholeNumber(1).optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.alias !== undefined && m.version !== undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["version"],
        message: 'cannot be combined with "alias"; keep one',
      });
    }
  });

export const workflowSchema = z
  .object({
    id: z
      .string()
      .regex(
        WORKFLOW_ID,
        'must be 1-64 characters of letters, digits, "_", "." or "-", starting with a letter or digit',
      ),
    /** A `models[]` name, `{ name, alias }` / `{ name, version }`, or a `models:/` URI. */
    model: z.union([z.string().min(1), modelRef]),
    input: location,
    /** Default: from the input's extension (.parquet/.pq, .jsonl/.json), else csv. */
    inputFormat: z.enum(FORMATS).optional(),
    output: location,
    outputFormat: z.enum(FORMATS).optional(),
    batchSize: wholeNumber(1, 1_000_000).default(1000),
    /** Runs of this workflow at the same time; more wait as queued. */
    maxConcurrentRuns: wholeNumber(1, 16).default(1),
    /** A run still scoring after this is stopped and reported failed. */
    timeoutSeconds: wholeNumber(1, 7 * 24 * 3600).default(3600),
    /** Run once during `up` whenever the workflow or its model version changes; fail `up` if it fails. */
    executeOnUp: z.boolean().default(false),
  })
  .strict()
  .superRefine((w, ctx) => {
    if (typeof w.model === "string" && w.model.startsWith("models:/") && !MODEL_URI.test(w.model)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["model"],
        message: "must be models:/<name>/<version> or models:/<name>@<alias>",
      });
    }
  });

export type WorkflowInput = z.infer<typeof workflowSchema>;

/** Which model a workflow scores with, as the program resolves it. */
export type WorkflowModel =
  | { kind: "stack"; name: string }
  | { kind: "registry"; name: string; alias: string; version?: undefined }
  | { kind: "registry"; name: string; version: number; alias?: undefined }
  | { kind: "uri"; uri: string };

export interface WorkflowConfig {
  id: string;
  model: WorkflowModel;
  input: string;
  inputFormat: WorkflowFormat;
  output: string;
  outputFormat: WorkflowFormat;
  batchSize: number;
  maxConcurrentRuns: number;
  timeoutSeconds: number;
  executeOnUp: boolean;
}

const custom = (ctx: z.RefinementCtx, keys: (string | number)[], message: string, got = true) =>
  ctx.addIssue({ code: z.ZodIssueCode.custom, path: keys, message, params: { got } });

/** The checks across the stack: deploy mode, model names, duplicate ids, input vs output. */
export function workflowIssues(
  workflows: WorkflowInput[],
  deployMode: string,
  modelNames: string[],
  ctx: z.RefinementCtx,
): void {
  if (workflows.length > 0 && deployMode !== "agent") {
    custom(
      ctx,
      ["workflows"],
      `needs mlflow.deployMode "agent" (the workflows run on the MLOps agent); mlflow.deployMode is "${deployMode}"`,
      false,
    );
  }
  const seen = new Map<string, number>();
  workflows.forEach((w, i) => {
    if (seen.has(w.id)) {
      custom(ctx, ["workflows", i, "id"], `is already the id of workflows[${seen.get(w.id)}]`);
    }
    seen.set(w.id, seen.get(w.id) ?? i);
    const name = typeof w.model === "string" ? w.model : w.model.name;
    const isUri = typeof w.model === "string" && w.model.startsWith("models:/");
    if (!isUri && !modelNames.includes(name)) {
      custom(
        ctx,
        typeof w.model === "string" ? ["workflows", i, "model"] : ["workflows", i, "model", "name"],
        `is not a name in models[] (${modelNames.length > 0 ? modelNames.join(", ") : "none declared"}); ` +
          "use a models:/ URI for a model this stack does not declare",
      );
    }
    if (normalized(w.input) === normalized(w.output)) {
      custom(ctx, ["workflows", i, "output"], "is the input location; write the scores elsewhere");
    }
  });
}

/** An absolute path as the agent stores it (os.path.normpath), so a refresh sees no drift. */
export function normalized(location: string): string {
  if (!location.startsWith("/")) {
    return location;
  }
  const n = path.posix.normalize(location);
  return n.length > 1 ? n.replace(/\/+$/, "") : n;
}

/** The format a location's extension implies. */
export function formatOf(location: string): WorkflowFormat {
  const lower = location.toLowerCase();
  if (lower.endsWith(".parquet") || lower.endsWith(".pq")) {
    return "parquet";
  }
  if (lower.endsWith(".jsonl") || lower.endsWith(".json")) {
    return "jsonl";
  }
  return "csv";
}

export function resolveWorkflow(w: WorkflowInput): WorkflowConfig {
  const model: WorkflowModel =
    typeof w.model === "string"
      ? w.model.startsWith("models:/")
        ? { kind: "uri", uri: w.model }
        : { kind: "stack", name: w.model }
      : w.model.alias !== undefined
        ? { kind: "registry", name: w.model.name, alias: w.model.alias }
        : w.model.version !== undefined
          ? { kind: "registry", name: w.model.name, version: w.model.version }
          : { kind: "stack", name: w.model.name };
  return {
    id: w.id,
    model,
    input: normalized(w.input),
    inputFormat: w.inputFormat ?? formatOf(w.input),
    output: normalized(w.output),
    outputFormat: w.outputFormat ?? formatOf(w.output),
    batchSize: w.batchSize,
    maxConcurrentRuns: w.maxConcurrentRuns,
    timeoutSeconds: w.timeoutSeconds,
    executeOnUp: w.executeOnUp,
  };
}
