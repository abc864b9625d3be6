import * as path from "path";
import { RESERVED_ENV_NAMES } from "../../config/serverEnv";

/**
 * The environment of every server the providers start (`mlflow server`, `mlflow models serve`): an
 * allow-list, never the whole environment of `pulumi up`, which carries the operator's secrets
 * (PULUMI_CONFIG_PASSPHRASE, PULUMI_ACCESS_TOKEN, AWS_*, AZURE_*, ARM_*, GOOGLE_* ...) and would hand them
 * to model code.
 *
 * What a server gets:
 * - from the deploying environment, as is: HOME, LANG, LC_*, TZ, TMPDIR, and the names in `passEnv`
 *   (the user's explicit list, config `mlflow.passEnv`);
 * - PATH with the venv's bin folder first (the model server execs uvicorn by name);
 * - `set`: the MLflow variables that server needs, decided by its provider (tracking URI and
 *   credentials for a model server, the basic-auth ini and Flask key for the MLflow server). These win
 *   over anything in `passEnv`; the names in RESERVED_ENV are only ever set this way.
 */
export const BASE_ENV = ["HOME", "LANG", "TZ", "TMPDIR"] as const;

/** Names a server's provider sets itself: `passEnv` cannot pass them through from the deploying shell. */
export const RESERVED_ENV = RESERVED_ENV_NAMES;

export function serverEnvironment(options: {
  /** The deploying environment (the provider's process.env). */
  base: NodeJS.ProcessEnv;
  /** The `mlflow` executable; its folder goes first on PATH. */
  mlflowBin: string;
  /** Variables the server needs, set by its provider; undefined values are left out. */
  set?: Record<string, string | undefined>;
  /** Names copied from `base` when set there (config `mlflow.passEnv`). */
  passEnv?: readonly string[];
}): Record<string, string> {
  const { base } = options;
  const env: Record<string, string> = {};
  const copy = (name: string) => {
    const value = base[name];
    if (value !== undefined) {
      env[name] = value;
    }
  };
  for (const name of BASE_ENV) {
    copy(name);
  }
  for (const name of Object.keys(base)) {
    if (name.startsWith("LC_")) {
      copy(name);
    }
  }
  const reserved: readonly string[] = RESERVED_ENV;
  for (const name of options.passEnv ?? []) {
    if (!reserved.includes(name)) {
      copy(name);
    }
  }
  const dirs = [path.dirname(options.mlflowBin), ...(base.PATH ?? "").split(path.delimiter)];
  env.PATH = dirs.filter((d, i) => d !== "" && dirs.indexOf(d) === i).join(path.delimiter);
  for (const [name, value] of Object.entries(options.set ?? {})) {
    if (value !== undefined) {
      env[name] = value;
    }
  }
  return env;
}

/** Pulumi's placeholder for a value not known during preview. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** The problem with a `passEnv` list, or undefined: names are shell-style, and not ones we set. */
export function passEnvProblem(passEnv: unknown): string | undefined {
  if (passEnv === undefined || passEnv === UNKNOWN) {
    return undefined;
  }
  if (!Array.isArray(passEnv)) {
    return `passEnv: must be a list of environment variable names (got ${JSON.stringify(passEnv)})`;
  }
  for (const name of passEnv) {
    if (name === UNKNOWN) {
      continue; // not known yet (preview)
    }
    if (typeof name !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      return `passEnv: ${JSON.stringify(name)} is not an environment variable name`;
    }
    if ((RESERVED_ENV as readonly string[]).includes(name)) {
      return `passEnv: ${name} is set by model-serving itself and cannot be passed through`;
    }
  }
  return undefined;
}
