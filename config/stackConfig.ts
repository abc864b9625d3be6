import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { z } from "zod";
import { RESERVED_ENV_NAMES } from "./serverEnv";
import {
  cloudTargetsSchema,
  defaultEndpointNameIssues,
  type CloudTargetsConfig,
} from "./cloudTargets";
import {
  AGENT_DEFAULTS,
  agentSchema,
  agentTokenProblem,
  challengerSchema,
  resolveAgent,
  type AgentConfig,
  type ChallengerConfig,
} from "./agentConfig";
import { errorMap, formatIssues, problem, wholeNumber } from "./issues";
import { mlflowPasswordProblem } from "./mlflowPassword";
import { sourceProblem } from "./modelSource";
import {
  resolveWorkflow,
  workflowIssues,
  workflowSchema,
  type WorkflowConfig,
} from "./workflowConfig";
import {
  remoteHostSchema,
  remoteKeyMaterial,
  type RemoteKeyMaterial,
  type SecretConfig,
} from "./remoteHost";

/**
 * The stack's configuration (namespace `model-serving`), validated in one place before any resource is
 * declared. Defaults describe the embedded case: a local MLflow server on 127.0.0.1:5000 whose models are
 * served on this machine from port 5001 up. This module imports nothing of components/ or providers/.
 */

export { RESERVED_ENV_NAMES };

const PREFIX = "model-serving:";
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$/;
const ALIAS = /^[A-Za-z0-9_-]{1,255}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const port = wholeNumber(1, 65535);
const seconds = wholeNumber(1, 3600);

const custom = (ctx: z.RefinementCtx, path: (string | number)[], message: string, got = true) =>
  ctx.addIssue({ code: z.ZodIssueCode.custom, path, message, params: { got } });

function isHttpUrl(v: string): boolean {
  try {
    const u = new URL(v);
    return (u.protocol === "http:" || u.protocol === "https:") && u.host !== "";
  } catch {
    return false;
  }
}

function hasUserInfo(v: string): boolean {
  try {
    const u = new URL(v);
    return u.username !== "" || u.password !== "";
  } catch {
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(v);
  }
}

const mlflowSchema = z
  .object({
    /** local: start `mlflow server` here; existing: use the server at trackingUri; remote: over SSH. */
    mode: z.enum(["local", "existing", "remote"]).default("local"),
    host: z.string().min(1).default("127.0.0.1"),
    port: port.default(5000),
    trackingUri: z
      .string()
      .superRefine((v, ctx) => {
        if (hasUserInfo(v)) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            message:
              "must not contain credentials (user:password@); set mlflow.username and the secret mlflowPassword instead",
          });
        } else if (!isHttpUrl(v)) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            message: "must be an http(s) URL such as http://mlflow.internal:5000",
          });
        }
      })
      .optional(),
    dataDir: z.string().min(1).optional(),
    deployMode: z.enum(["local", "remote", "agent"]).default("local"),
    /** Deploy mode `agent`: the MLOps agent (config/agentConfig.ts). */
    agent: agentSchema.optional(),
    /** The MLflow host over SSH (mode remote): config/remoteHost.ts. */
    remote: remoteHostSchema.optional(),
    username: z.string().min(1).optional(),
    password: z
      .never({
        errorMap: () => ({
          message:
            "must not be plain config; set it as a secret: pulumi config set --secret mlflowPassword",
        }),
      })
      .optional(),
    startTimeoutSeconds: seconds.default(120),
    /** Environment variables of the deploying environment passed on to the MLflow and model servers. */
    passEnv: z
      .array(
        z
          .string()
          .regex(
            ENV_NAME,
            "must be an environment variable name (letters, digits, _; not starting with a digit)",
          )
          .refine(
            (n) => !n.startsWith("PULUMI_"),
            "must not pass Pulumi's own variables (PULUMI_*)",
          )
          .refine(
            (n) => !(RESERVED_ENV_NAMES as readonly string[]).includes(n),
            "is set by model-serving itself",
          ),
      )
      .default([]),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.mode === "existing" && m.trackingUri === undefined) {
      custom(ctx, ["trackingUri"], 'is required when mode is "existing"');
    }
    if (m.mode === "local" && m.trackingUri !== undefined) {
      custom(
        ctx,
        ["trackingUri"],
        'is only used when mode is "existing"; the local server\'s URI comes from host and port',
      );
    }
    if (m.mode === "remote" && m.remote === undefined) {
      custom(ctx, ["remote"], 'is required when mode is "remote" (host, user, hostKey, the key)');
    }
    if (m.mode !== "remote" && m.remote !== undefined) {
      custom(ctx, ["remote"], 'is only used when mode is "remote"');
    }
    if (m.mode === "remote" && m.trackingUri !== undefined) {
      custom(
        ctx,
        ["trackingUri"],
        'is only used when mode is "existing"; the remote server\'s URI comes from remote.publicHost and port',
      );
    }
    // The agent the provisioning of mode remote installs on the MLflow host.
    if (m.deployMode === "agent" && m.mode === "remote" && m.agent?.url === undefined) {
      if (m.agent?.host !== undefined) {
        custom(
          ctx,
          ["agent", "host"],
          "only applies to an agent started here; on the remote host the agent binds mlflow.remote.bindHost",
        );
      }
      if (m.agent?.port !== undefined && m.agent.port === m.port) {
        custom(
          ctx,
          ["agent", "port"],
          `is MLflow's port on the remote host (mlflow.port ${m.port}); choose another`,
        );
      } else if (m.agent?.port === undefined && m.port === AGENT_DEFAULTS.port) {
        custom(
          ctx,
          ["port"],
          `is the agent's default port on the remote host; set another mlflow.port or mlflow.agent.port`,
        );
      }
    }
    if (m.deployMode === "remote" && m.mode !== "remote") {
      custom(
        ctx,
        ["deployMode"],
        'deploy mode "remote" serves on the MLflow host over SSH: it needs mode "remote"',
      );
    }
    if (m.deployMode === "local" && m.mode === "remote") {
      custom(
        ctx,
        ["deployMode"],
        'must be "remote" when mode is "remote" (models are served on the MLflow host)',
      );
    }
    if (m.agent !== undefined && m.deployMode !== "agent") {
      custom(ctx, ["agent"], 'is only used when deployMode is "agent"', false);
    }
  });

const aliasName = z
  .string()
  .regex(ALIAS, 'must be 1-255 characters of letters, digits, "_" or "-"')
  .refine((a) => a.toLowerCase() !== "latest" && !/^v\d+$/i.test(a), "is reserved by MLflow");

/** What the registry already holds: one version, or whatever version an alias points to. */
const registeredSchema = z
  .object({
    version: wholeNumber(1).optional(),
    alias: aliasName.optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if ((r.version === undefined) === (r.alias === undefined)) {
      custom(ctx, [], 'needs exactly one of "version" (e.g. 3) or "alias" (e.g. champion)');
    }
  });

/** Fields that only make sense when this stack registers the version itself (from `source`). */
const REGISTER_ONLY = ["aliases", "tags", "description", "registration", "keepInRegistry"] as const;

const modelSchema = z
  .object({
    name: z
      .string()
      .regex(
        MODEL_NAME,
        'must be 1-256 characters of letters, digits, ".", "_" or "-", starting with a letter or digit',
      ),
    /** Register a new version from this source (a local model directory or an MLflow URI). */
    source: z.string().min(1).optional(),
    /** Serve a version the registry already holds; nothing is registered or deleted. */
    registered: registeredSchema.optional(),
    aliases: z.array(aliasName).optional(),
    tags: z.record(z.string().min(1).max(250), z.string().max(5000)).optional(),
    description: z.string().max(5000).optional(),
    /** Bump to register the same source again as a new version. */
    registration: wholeNumber(1).optional(),
    /**
     * Keep the registered versions in MLflow on destroy and replacement (retainOnDelete). Default: true
     * for an existing (shared) registry, false for the stack's own local server.
     */
    keepInRegistry: z.boolean().optional(),
    serve: z
      .union([
        z.literal(false),
        z
          .object({
            host: z.string().min(1).default("127.0.0.1"),
            port: port.optional(),
            startTimeoutSeconds: seconds.default(300),
          })
          .strict(),
      ])
      .default({}),
    /** Deploy mode agent: a second version behind the same front URL (config/agentConfig.ts). */
    challenger: challengerSchema.optional(),
    /** A request body for the generated curl/Python commands; default: the model's serving example. */
    sampleInput: z.record(z.unknown()).optional(),
    /** Cloud serving targets (sagemaker, azureml): config/cloudTargets.ts. */
    targets: cloudTargetsSchema.optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if ((m.source === undefined) === (m.registered === undefined)) {
      custom(
        ctx,
        ["source"],
        m.source === undefined
          ? 'is required unless the model is already registered: set "source" to register a new ' +
              'version, or "registered" ({version: N} or {alias: NAME}) to serve one the registry holds'
          : 'cannot be combined with "registered": "source" registers a new version, "registered" ' +
              "serves one the registry already holds; keep one",
      );
    }
    if (m.registered !== undefined) {
      for (const key of REGISTER_ONLY) {
        if (m[key] !== undefined) {
          custom(
            ctx,
            [key],
            'only applies to versions this stack registers from "source"; a "registered" model ' +
              "is served as the registry holds it (set aliases and tags in MLflow)",
          );
        }
      }
    }
    if (m.targets) {
      defaultEndpointNameIssues(m.name, m.targets, ctx, ["targets"]);
    }
  });

const stackSchema = z
  .object({
    mlflow: mlflowSchema.default({}),
    models: z.array(modelSchema).default([]),
    /** Score workflows on the MLOps agent (config/workflowConfig.ts). */
    workflows: z.array(workflowSchema).default([]),
  })
  .superRefine((s, ctx) => {
    workflowIssues(
      s.workflows,
      s.mlflow.deployMode,
      s.models.map((m) => m.name),
      ctx,
    );
    const mlflowPort = mlflowListenPort(s.mlflow);
    const fixed = new Map<number, number>();
    const agent =
      s.mlflow.deployMode === "agent" ? resolveAgent(s.mlflow.agent, s.mlflow.mode) : undefined;
    s.models.forEach((m, i) => {
      if (m.challenger !== undefined && (agent === undefined || m.serve === false)) {
        custom(
          ctx,
          ["models", i, "challenger"],
          'needs mlflow.deployMode "agent" and a served model (the agent splits the requests)',
          false,
        );
      }
      if (m.challenger !== undefined && agent?.backend === "shared") {
        custom(
          ctx,
          ["models", i, "challenger"],
          'cannot be combined with mlflow.agent.backend "shared" (the multi-model worker serves one version per model)',
          false,
        );
      }
      if (m.serve === false || m.serve.port === undefined) {
        return;
      }
      const p = m.serve.port;
      const front =
        agent?.mode === "local" || agent?.mode === "remote" ? agent.frontPorts : undefined;
      if (front && (p < front.first || p > front.last)) {
        custom(
          ctx,
          ["models", i, "serve", "port"],
          `must lie inside mlflow.agent.frontPorts ${front.first}-${front.last} (the agent's front ports)`,
        );
      }
      if (p === mlflowPort) {
        custom(
          ctx,
          ["models", i, "serve", "port"],
          `is the MLflow server's port (${s.mlflow.mode === "existing" ? "mlflow.trackingUri" : "mlflow.port"}); choose another`,
        );
      } else if (fixed.has(p)) {
        custom(ctx, ["models", i, "serve", "port"], `is already used by models[${fixed.get(p)}]`);
      }
      fixed.set(p, fixed.get(p) ?? i);
    });
  });

/** The port the MLflow server listens on here: mlflow.port, or a loopback trackingUri's port. */
function mlflowListenPort(m: z.infer<typeof mlflowSchema>): number | undefined {
  if (m.mode !== "existing") {
    return m.port;
  }
  if (m.trackingUri === undefined || !isHttpUrl(m.trackingUri)) {
    return undefined;
  }
  const u = new URL(m.trackingUri);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(u.hostname)) {
    return undefined;
  }
  return u.port === "" ? (u.protocol === "https:" ? 443 : 80) : Number(u.port);
}

export type MlflowConfig = z.infer<typeof mlflowSchema>;
type ParsedModel = z.infer<typeof modelSchema>;

/** What every model entry has, however its version comes about. */
interface ModelCommon {
  name: string;
  serve: ParsedModel["serve"];
  sampleInput?: Record<string, unknown>;
  targets?: CloudTargetsConfig;
  challenger?: ChallengerConfig;
}

/** This stack registers a version from `source` (and deletes it on destroy unless kept). */
export interface RegisterModelConfig extends ModelCommon {
  kind: "register";
  source: string;
  aliases: string[];
  tags: Record<string, string>;
  description: string;
  registration: number;
  keepInRegistry: boolean;
}

/** A version the registry already holds: `version: N`, or the version `alias` points to. */
export type RegistryRef =
  { version: number; alias?: undefined } | { alias: string; version?: undefined };

/** This stack serves what the registry holds and never changes the registry. */
export interface ReferenceModelConfig extends ModelCommon {
  kind: "reference";
  registered: RegistryRef;
}

export type ModelConfig = RegisterModelConfig | ReferenceModelConfig;

export interface StackConfig {
  mlflow: MlflowConfig & { dataDir: string };
  /** Deploy mode `agent` only: the agent started here or the one at its url. */
  agent?: AgentConfig;
  models: ModelConfig[];
  /** Score workflows on the agent (deploy mode `agent` only). */
  workflows: WorkflowConfig[];
  /** Where logs, port locks and the venv live. */
  cacheDir: string;
  mlflowBin: string;
  runDir: string;
  /** mlflow.mode remote: the SSH key (from privateKeyFile or the secret sshPrivateKey) and passphrase;
   * config/load.ts makes them Pulumi secrets. */
  remoteKey?: RemoteKeyMaterial;
  /** Things the user should know that are not errors (logged as warnings by config/load.ts). */
  notices: string[];
}

/** The secret `mlflowPassword` as the stack holds it: its value and whether it is secret config. */
export interface PasswordConfig {
  value: string;
  secret: boolean;
}

export interface ConfigContext {
  /** Relative model sources are resolved against this (the folder of Pulumi.yaml). */
  projectDir: string;
  stack: string;
  env?: NodeJS.ProcessEnv;
  /** `process.platform` unless a test says otherwise. */
  platform?: string;
}

export function cacheDirFrom(env: NodeJS.ProcessEnv): string {
  return (
    env.MODEL_SERVING_CACHE ??
    path.join(env.XDG_CACHE_HOME ?? path.join(env.HOME ?? os.homedir(), ".cache"), "model-serving")
  );
}

/** `$XDG_DATA_HOME/model-serving` (default `~/.local/share/model-serving`): data users keep. */
export function dataHomeFrom(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_DATA_HOME;
  const base =
    xdg !== undefined && path.isAbsolute(xdg)
      ? xdg
      : path.join(env.HOME ?? os.homedir(), ".local", "share");
  return path.join(base, "model-serving");
}

/**
 * Validates raw stack config; throws one Error listing every problem as
 * `model-serving:<key>: <why> (got <value>)`. Secrets are never part of a message.
 */
export function parseStackConfig(
  raw: {
    mlflow?: unknown;
    models?: unknown;
    workflows?: unknown;
    mlflowPassword?: PasswordConfig;
    agentToken?: PasswordConfig;
    sshPrivateKey?: SecretConfig;
    sshPassphrase?: SecretConfig;
    backendStoreDsn?: SecretConfig;
  },
  ctx: ConfigContext,
): StackConfig {
  const env = ctx.env ?? process.env;
  const input = { mlflow: raw.mlflow, models: raw.models, workflows: raw.workflows };
  const parsed = stackSchema.safeParse(input, { errorMap });
  const problems = parsed.success ? [] : formatIssues(parsed.error, input, stackSchema, PREFIX);
  problems.push(...passwordProblems(raw.mlflowPassword));
  const deployMode = parsed.success ? parsed.data.mlflow.deployMode : "";
  const tokenProblem = parsed.success ? agentTokenProblem(raw.agentToken, deployMode) : undefined;
  if (tokenProblem) {
    problems.push(tokenProblem);
  }
  if (!parsed.success) {
    throw new Error(`invalid stack configuration:\n  ${problems.join("\n  ")}`);
  }
  const { mlflow, models, workflows } = parsed.data;
  const remoteKey =
    mlflow.remote === undefined
      ? undefined
      : remoteKeyMaterial(
          mlflow.remote,
          {
            privateKey: raw.sshPrivateKey,
            passphrase: raw.sshPassphrase,
            dsn: raw.backendStoreDsn,
          },
          ctx.projectDir,
          PREFIX,
        );
  problems.push(...(remoteKey?.problems ?? []));

  const seen = new Set<string>();
  const resolved = models.map((m, i): ModelConfig => {
    if (seen.has(m.name)) {
      problems.push(problem(PREFIX, ["models", i, "name"], "duplicate model name", m.name));
    }
    seen.add(m.name);
    const common: ModelCommon = {
      name: m.name,
      serve: m.serve,
      sampleInput: m.sampleInput,
      targets: m.targets,
      challenger: m.challenger,
    };
    if (m.registered !== undefined) {
      return { ...common, kind: "reference", registered: m.registered as RegistryRef };
    }
    const source = resolveSource(m.source!, ctx.projectDir);
    const sourceIssue = sourceProblem(`${PREFIX}models[${i}].source`, source);
    if (sourceIssue) {
      problems.push(sourceIssue);
    }
    return {
      ...common,
      kind: "register",
      source,
      aliases: m.aliases ?? [],
      tags: m.tags ?? {},
      description: m.description ?? "",
      registration: m.registration ?? 1,
      // A shared registry keeps its versions unless the stack says otherwise.
      keepInRegistry: m.keepInRegistry ?? mlflow.mode === "existing",
    };
  });
  // The local servers rely on POSIX process groups and signals (providers/process/identity.ts).
  const platform = ctx.platform ?? process.platform;
  const agent = mlflow.deployMode === "agent" ? resolveAgent(mlflow.agent, mlflow.mode) : undefined;
  const servedHere =
    resolved.some((m) => m.serve !== false) &&
    (mlflow.deployMode === "local" || agent?.mode === "local");
  if (agent?.mode === "remote" && raw.mlflowPassword !== undefined) {
    problems.push(
      problem(
        PREFIX,
        ["mlflow", "deployMode"],
        "the agent installed on the remote host does not hand MLflow credentials to its model servers yet; " +
          'use deployMode "remote" with mlflowPassword, or MLflow without basic auth',
        "agent",
      ),
    );
  }
  if (platform === "win32" && (mlflow.mode === "local" || servedHere)) {
    problems.push(
      problem(
        PREFIX,
        ["mlflow", mlflow.mode === "local" ? "mode" : "deployMode"],
        "local servers need a POSIX system with process groups (Linux, macOS), not Windows; " +
          'use mlflow.mode "existing" with models that are only registered (serve: false)',
        "local",
      ),
    );
  }
  if (problems.length > 0) {
    throw new Error(`invalid stack configuration:\n  ${problems.join("\n  ")}`);
  }

  const cacheDir = cacheDirFrom(env);
  const venv = env.MODEL_SERVING_VENV ?? path.join(cacheDir, "venv");
  const notices: string[] = [];
  let dataDir =
    mlflow.dataDir === undefined ? undefined : path.resolve(ctx.projectDir, mlflow.dataDir);
  if (dataDir === undefined) {
    dataDir = path.join(dataHomeFrom(env), "mlflow", ctx.stack);
    const legacy = path.join(cacheDir, "mlflow", ctx.stack);
    if (mlflow.mode === "local" && !fs.existsSync(dataDir) && fs.existsSync(legacy)) {
      notices.push(
        `model-serving:mlflow.dataDir: using the registry found at the old default ${legacy}; ` +
          `it is a cache folder users clean: stop the stack, move it to ${dataDir} or set mlflow.dataDir`,
      );
      dataDir = legacy;
    }
  }
  return {
    mlflow: { ...mlflow, dataDir },
    agent,
    models: resolved,
    workflows: workflows.map(resolveWorkflow),
    cacheDir,
    mlflowBin: path.join(venv, "bin", "mlflow"),
    runDir: path.join(cacheDir, "run", ctx.stack),
    remoteKey: remoteKey?.material,
    notices,
  };
}

/** The password must be secret config, and one MLflow accepts (config/mlflowPassword.ts). */
function passwordProblems(password: PasswordConfig | undefined): string[] {
  if (password === undefined) {
    return [];
  }
  if (!password.secret) {
    return [
      `${PREFIX}mlflowPassword: must be secret config, not plain text; set it again with: pulumi config set --secret mlflowPassword`,
    ];
  }
  const rule = mlflowPasswordProblem(password.value);
  return rule === undefined ? [] : [rule];
}

/** Local paths are relative to the project folder; URIs are kept as they are. */
function resolveSource(source: string, projectDir: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(source) ? source : path.resolve(projectDir, source);
}
