import * as os from "os";
import * as path from "path";
import { z } from "zod";
import type { CloudTargetsConfig } from "../components/cloudTargets";
import { sourceProblem } from "../providers/modelSource";

/**
 * The stack's configuration (namespace `model-serving`), validated in one place before any resource is
 * declared. Defaults describe the embedded case: a local MLflow server on 127.0.0.1:5000 whose models are
 * served on this machine from port 5001 up.
 */

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$/;
const ALIAS = /^[A-Za-z0-9_-]{1,255}$/;
const port = z
  .number({ invalid_type_error: "must be a whole number from 1 to 65535" })
  .int("must be a whole number from 1 to 65535")
  .min(1, "must be a whole number from 1 to 65535")
  .max(65535, "must be a whole number from 1 to 65535");

const mlflowSchema = z
  .object({
    /** local: start `mlflow server` here; existing: use the server at trackingUri; remote: over SSH. */
    mode: z
      .enum(["local", "existing", "remote"], {
        errorMap: () => ({ message: 'must be one of "local", "existing", "remote"' }),
      })
      .default("local"),
    host: z.string().min(1, "must not be empty").default("127.0.0.1"),
    port: port.default(5000),
    trackingUri: z
      .string()
      .refine((v) => isHttpUrl(v), "must be an http(s) URL such as http://mlflow.internal:5000")
      .optional(),
    dataDir: z.string().min(1, "must not be empty").optional(),
    deployMode: z
      .enum(["local", "remote", "agent"], {
        errorMap: () => ({ message: 'must be one of "local", "remote", "agent"' }),
      })
      .default("local"),
    username: z.string().min(1, "must not be empty").optional(),
    password: z
      .never({
        errorMap: () => ({
          message:
            "must not be plain config; set it as a secret: pulumi config set --secret mlflowPassword",
        }),
      })
      .optional(),
    startTimeoutSeconds: z.number().int().min(1).max(3600).default(120),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.mode === "existing" && !m.trackingUri) {
      ctx.addIssue({
        code: "custom",
        path: ["trackingUri"],
        message: 'is required when mode is "existing"',
      });
    }
    if (m.mode === "remote") {
      ctx.addIssue({
        code: "custom",
        path: ["mode"],
        message: 'remote (SSH) MLflow hosts are not available yet; use "local" or "existing"',
      });
    }
    if (m.deployMode !== "local") {
      ctx.addIssue({
        code: "custom",
        path: ["deployMode"],
        message: `deploy mode "${m.deployMode}" is not available yet; use "local"`,
      });
    }
  });

const modelSchema = z
  .object({
    name: z
      .string({ required_error: "is required" })
      .regex(
        MODEL_NAME,
        'must be 1-256 characters of letters, digits, ".", "_" or "-", starting with a letter or digit',
      ),
    source: z.string({ required_error: "is required" }).min(1, "must not be empty"),
    aliases: z
      .array(
        z
          .string()
          .regex(ALIAS, 'must be 1-255 characters of letters, digits, "_" or "-"')
          .refine(
            (a) => a.toLowerCase() !== "latest" && !/^v\d+$/i.test(a),
            "is reserved by MLflow",
          ),
      )
      .default([]),
    tags: z
      .record(z.string().min(1).max(250), z.string().max(5000, "must be at most 5000 characters"))
      .default({}),
    description: z.string().max(5000, "must be at most 5000 characters").default(""),
    /** Bump to register the same source again as a new version. */
    registration: z.number().int().min(1, "must be a whole number of at least 1").default(1),
    /** Keep the registered versions in MLflow on destroy (resource option retainOnDelete). */
    keepInRegistry: z.boolean().default(false),
    serve: z
      .union([
        z.literal(false),
        z
          .object({
            host: z.string().min(1).default("127.0.0.1"),
            port: port.optional(),
            startTimeoutSeconds: z.number().int().min(1).max(3600).default(300),
          })
          .strict(),
      ])
      .default({}),
    /** A request body for the generated curl/Python commands; default: the model's serving example. */
    sampleInput: z.record(z.unknown()).optional(),
    /** Cloud serving targets (sagemaker, azureml), validated by components/cloudTargets. */
    targets: z.record(z.unknown()).optional(),
  })
  .strict();

const stackSchema = z.object({
  mlflow: mlflowSchema.default({}),
  models: z.array(modelSchema).default([]),
});

export type MlflowConfig = z.infer<typeof mlflowSchema>;
export type ModelConfig = Omit<z.infer<typeof modelSchema>, "targets"> & {
  targets?: CloudTargetsConfig;
};

export interface StackConfig {
  mlflow: MlflowConfig & { dataDir: string };
  models: ModelConfig[];
  /** Where logs, port locks and the venv live. */
  cacheDir: string;
  mlflowBin: string;
  runDir: string;
}

export interface ConfigContext {
  /** Relative model sources are resolved against this (the folder of Pulumi.yaml). */
  projectDir: string;
  stack: string;
  env?: NodeJS.ProcessEnv;
}

function isHttpUrl(v: string): boolean {
  try {
    const u = new URL(v);
    return (u.protocol === "http:" || u.protocol === "https:") && u.host !== "";
  } catch {
    return false;
  }
}

export function cacheDirFrom(env: NodeJS.ProcessEnv): string {
  return (
    env.MODEL_SERVING_CACHE ??
    path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "model-serving")
  );
}

/** A union's "Invalid input" says little: report the issues of the branch that got furthest instead. */
function mostSpecific(issue: z.ZodIssue): z.ZodIssue[] {
  if (issue.code !== "invalid_union") {
    return [issue];
  }
  const branches = issue.unionErrors.map((e) => e.issues.flatMap(mostSpecific));
  const depth = (issues: z.ZodIssue[]) => Math.max(...issues.map((i) => i.path.length));
  const best = branches.reduce((a, b) => (depth(b) > depth(a) ? b : a));
  return depth(best) > issue.path.length ? best : [issue];
}

function valueAt(raw: unknown, keys: (string | number)[]): unknown {
  return keys.reduce<unknown>(
    (v, k) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined),
    raw,
  );
}

function keyName(keys: (string | number)[]): string {
  return keys.reduce<string>(
    (acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc ? `${acc}.${k}` : k),
    "",
  );
}

/** Validates raw stack config; throws one Error listing every problem as `model-serving:<key>: <why> (got <value>)`. */
export function parseStackConfig(
  raw: { mlflow?: unknown; models?: unknown },
  ctx: ConfigContext,
): StackConfig {
  const env = ctx.env ?? process.env;
  const problems: string[] = [];
  const parsed = stackSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues.flatMap(mostSpecific)) {
      const got = valueAt(raw, issue.path);
      const message =
        issue.code === "unrecognized_keys"
          ? `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`
          : issue.message;
      const gotText =
        got === undefined || issue.code === "unrecognized_keys"
          ? ""
          : ` (got ${issue.path.at(-1) === "password" ? "<hidden>" : JSON.stringify(got)})`;
      problems.push(`model-serving:${keyName(issue.path)}: ${message}${gotText}`);
    }
    throw new Error(`invalid stack configuration:\n  ${problems.join("\n  ")}`);
  }
  const { mlflow, models } = parsed.data;

  const seen = new Set<string>();
  models.forEach((m, i) => {
    if (seen.has(m.name)) {
      problems.push(
        `model-serving:models[${i}].name: duplicate model name (got ${JSON.stringify(m.name)})`,
      );
    }
    seen.add(m.name);
    const source = resolveSource(m.source, ctx.projectDir);
    const problem = sourceProblem(`model-serving:models[${i}].source`, source);
    if (problem) {
      problems.push(problem);
    }
    m.source = source;
    if (m.targets !== undefined) {
      // Loaded only when a model names a cloud target: it pulls in the AWS and Azure SDKs.
      const { parseCloudTargets } = require("../components/cloudTargets");
      try {
        m.targets = parseCloudTargets(m.targets, `model-serving:models[${i}].targets`);
      } catch (err) {
        problems.push(...(err as Error).message.split("\n"));
      }
    }
  });
  if (problems.length > 0) {
    throw new Error(`invalid stack configuration:\n  ${problems.join("\n  ")}`);
  }

  const cacheDir = cacheDirFrom(env);
  const venv = env.MODEL_SERVING_VENV ?? path.join(cacheDir, "venv");
  return {
    mlflow: { ...mlflow, dataDir: mlflow.dataDir ?? path.join(cacheDir, "mlflow", ctx.stack) },
    models: models as ModelConfig[],
    cacheDir,
    mlflowBin: path.join(venv, "bin", "mlflow"),
    runDir: path.join(cacheDir, "run", ctx.stack),
  };
}

/** Local paths are relative to the project folder; URIs are kept as they are. */
function resolveSource(source: string, projectDir: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(source) ? source : path.resolve(projectDir, source);
}
