import { z } from "zod";
import { wholeNumber } from "./issues";

/**
 * Deploy mode `agent`: the `mlflow.agent` block, the model entry's `challenger`, and the secret
 * `agentToken`, validated here; config/stackConfig.ts only plugs them in. Without `url` the stack
 * starts the agent on the MLflow host: on this machine (the embedded case), or, with mlflow.mode
 * `remote`, installed over SSH on the remote host by its provisioning; with `url` it uses a running
 * agent and starts nothing. The agent's own port rules (agent/model_serving_agent/config.py) are checked here too, so
 * a bad range fails before anything starts.
 */

export const AGENT_TOKEN_KEY = "model-serving:agentToken";
/** The agent refuses shorter tokens (agent/model_serving_agent/auth.py MIN_TOKEN_LENGTH). */
export const AGENT_TOKEN_MIN_LENGTH = 16;

const agentPort = wholeNumber(1024, 65535);

const portRange = z
  .object({ first: agentPort, last: agentPort })
  .strict()
  .superRefine((r, ctx) => {
    if (r.first > r.last) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["first"],
        message: `is greater than last (${r.last})`,
      });
    }
  });

export type AgentPortRange = z.infer<typeof portRange>;

const LOCAL_ONLY = ["host", "port", "frontPorts", "backendPorts", "backendWorkers"] as const;

export const agentSchema = z
  .object({
    /** A running agent's API (`http(s)://host:port`); nothing is started. Without it: started here. */
    url: z
      .string()
      .refine((v) => {
        try {
          const u = new URL(v);
          return (
            (u.protocol === "http:" || u.protocol === "https:") && u.host !== "" && !u.username
          );
        } catch {
          return false;
        }
      }, "must be an http(s) URL without credentials, such as http://mlflow.internal:5100")
      .optional(),
    host: z.string().min(1).optional(),
    port: agentPort.optional(),
    frontPorts: portRange.optional(),
    backendPorts: portRange.optional(),
    /** uvicorn workers per backend (the agent's default: the core count). */
    backendWorkers: wholeNumber(1, 64).optional(),
    /** The agent's deadline for one backend start (/ping and the sample scoring). */
    startTimeoutSeconds: wholeNumber(1, 3600).default(180),
    /** `shared`: every model without a challenger in the agent's one multi-model worker. */
    backend: z.enum(["dedicated", "shared"]).default("dedicated"),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.url !== undefined) {
      for (const key of LOCAL_ONLY) {
        if (a[key] !== undefined) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: [key],
            message:
              "only applies to an agent this stack starts; with url, the agent's own config decides",
          });
        }
      }
      return;
    }
    const front = a.frontPorts ?? AGENT_DEFAULTS.frontPorts;
    const back = a.backendPorts ?? AGENT_DEFAULTS.backendPorts;
    const port = a.port ?? AGENT_DEFAULTS.port;
    if (front.first <= back.last && back.first <= front.last) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["backendPorts"],
        message: `overlaps frontPorts ${front.first}-${front.last}`,
      });
    }
    for (const [key, r] of [
      ["frontPorts", front],
      ["backendPorts", back],
    ] as const) {
      if (port >= r.first && port <= r.last) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["port"],
          message: `lies inside ${key} ${r.first}-${r.last}`,
          params: { got: port },
        });
      }
    }
  });

export const AGENT_DEFAULTS = {
  host: "127.0.0.1",
  /** Above the admin guide's model range 5001-5099 (MLflow itself is on 5000). */
  port: 5100,
  frontPorts: { first: 5001, last: 5099 },
  backendPorts: { first: 15001, last: 15999 },
} as const;

export type AgentConfigInput = z.infer<typeof agentSchema>;

/** The agent as the program uses it: `local` (started here), `remote` (installed on the remote
 * MLflow host, binding mlflow.remote.bindHost) or `existing` (its url). */
export type AgentConfig =
  | {
      mode: "remote";
      port: number;
      frontPorts: AgentPortRange;
      backendPorts: AgentPortRange;
      backendWorkers?: number;
      startTimeoutSeconds: number;
      backend: AgentBackend;
    }
  | {
      mode: "local";
      host: string;
      port: number;
      frontPorts: AgentPortRange;
      backendPorts: AgentPortRange;
      backendWorkers?: number;
      startTimeoutSeconds: number;
      backend: AgentBackend;
    }
  | { mode: "existing"; url: string; startTimeoutSeconds: number; backend: AgentBackend };

export type AgentBackend = "dedicated" | "shared";

export function resolveAgent(
  a: AgentConfigInput | undefined,
  mlflowMode: string = "local",
): AgentConfig {
  const startTimeoutSeconds = a?.startTimeoutSeconds ?? 180;
  const backend = a?.backend ?? "dedicated";
  if (a?.url !== undefined) {
    return { mode: "existing", url: a.url.replace(/\/+$/, ""), startTimeoutSeconds, backend };
  }
  if (mlflowMode === "remote") {
    return {
      mode: "remote",
      port: a?.port ?? AGENT_DEFAULTS.port,
      frontPorts: a?.frontPorts ?? { ...AGENT_DEFAULTS.frontPorts },
      backendPorts: a?.backendPorts ?? { ...AGENT_DEFAULTS.backendPorts },
      backendWorkers: a?.backendWorkers,
      startTimeoutSeconds,
      backend,
    };
  }
  return {
    mode: "local",
    host: a?.host ?? AGENT_DEFAULTS.host,
    port: a?.port ?? AGENT_DEFAULTS.port,
    frontPorts: a?.frontPorts ?? { ...AGENT_DEFAULTS.frontPorts },
    backendPorts: a?.backendPorts ?? { ...AGENT_DEFAULTS.backendPorts },
    backendWorkers: a?.backendWorkers,
    startTimeoutSeconds,
    backend,
  };
}

/** A model entry's challenger: a second registered version behind the same front URL. */
export const challengerSchema = z
  .object({
    /** The registry version that is the challenger... */
    version: wholeNumber(1).optional(),
    /** ...or the version this alias points to (followed like `registered.alias`). */
    alias: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,255}$/, 'must be 1-255 characters of letters, digits, "_" or "-"')
      .optional(),
    /** Share of the unpinned requests the challenger gets. */
    weight: z
      .number({ invalid_type_error: "must be a number between 0 and 1 (exclusive)" })
      .gt(0, "must be a number between 0 and 1 (exclusive)")
      .lt(1, "must be a number between 0 and 1 (exclusive)"),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.version === undefined) === (c.alias === undefined)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: [],
        message: 'needs exactly one of "version" (e.g. 2) or "alias" (e.g. challenger)',
      });
    }
  });

export type ChallengerConfig = z.infer<typeof challengerSchema>;

/** The problem with the agent token, or undefined; the token itself is never shown. */
export function agentTokenProblem(
  token: { value: string; secret: boolean } | undefined,
  deployMode: string,
): string | undefined {
  if (deployMode !== "agent") {
    return token === undefined
      ? undefined
      : `${AGENT_TOKEN_KEY}: is only used when mlflow.deployMode is "agent" (got mlflow.deployMode "${deployMode}")`;
  }
  if (token === undefined) {
    return (
      `${AGENT_TOKEN_KEY}: is required when mlflow.deployMode is "agent"; set it as a secret: ` +
      "pulumi config set --secret agentToken $(openssl rand -hex 24)"
    );
  }
  if (!token.secret) {
    return `${AGENT_TOKEN_KEY}: must be secret config, not plain text; set it again with: pulumi config set --secret agentToken <token>`;
  }
  if (token.value.trim().length < AGENT_TOKEN_MIN_LENGTH || /\s/.test(token.value.trim())) {
    return `${AGENT_TOKEN_KEY}: must be at least ${AGENT_TOKEN_MIN_LENGTH} characters without spaces (the agent refuses shorter tokens)`;
  }
  return undefined;
}
