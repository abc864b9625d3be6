/**
 * The one credential policy for everything that talks to MLflow (ModelVersion, ModelDeployment,
 * ModelExport, and the model servers they start).
 *
 * Input: `{ trackingUri, auth? }`, where `auth` is a secret input of the resource. The credentials
 * come from exactly one source, the first that has any:
 *   1. `auth` (the stack's secret config: `mlflow.username` + `mlflowPassword`, or a token);
 *   2. user and password inside `trackingUri` (`http://user:pass@host`; stack config rejects it,
 *      direct callers of the client may still use it);
 *   3. the provider process's environment, MLflow's documented variables: `MLFLOW_TRACKING_USERNAME`
 *      + `MLFLOW_TRACKING_PASSWORD`, or `MLFLOW_TRACKING_TOKEN`.
 * Sources are never mixed (a token in the environment does not join the stack's basic credentials).
 * Within one source, username + password win over a token, as in MLflow's own client
 * (`mlflow.utils.rest_utils`), so our calls and the model servers' downloads authenticate alike.
 * A username without a password (or the reverse) is an error that names the setting. Empty strings
 * count as unset, as in MLflow. `trackingUri` falls back to `MLFLOW_TRACKING_URI`.
 *
 * The resolved credentials are never stored: resources keep only their `auth` input (secret), and
 * resolve again in each call, so a password from the environment never reaches state.
 *
 * No imports: ModelExport's serialized provider captures this module by value.
 */

export interface MlflowAuth {
  username?: string;
  password?: string;
  token?: string;
}

/** The connection input every MLflow-facing resource takes. */
export interface MlflowConnectionInput {
  trackingUri?: string;
  /** Secret. */
  auth?: MlflowAuth;
}

export type ResolvedAuth =
  | { kind: "basic"; username: string; password: string }
  | { kind: "token"; token: string }
  | { kind: "none" };

export interface ResolvedConnection {
  /** The tracking URI without credentials, no trailing slash: safe to log and store. */
  baseUrl: string;
  auth: ResolvedAuth;
  /** Where the credentials came from. */
  source: "auth" | "trackingUri" | "environment" | "none";
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** One source's credentials, or undefined when the source has none. */
function authFrom(
  username: string | undefined,
  password: string | undefined,
  token: string | undefined,
  names: { username: string; password: string },
): ResolvedAuth | undefined {
  const [u, p, t] = [nonEmpty(username), nonEmpty(password), nonEmpty(token)];
  if (u !== undefined && p !== undefined) {
    return { kind: "basic", username: u, password: p };
  }
  if (t !== undefined) {
    return { kind: "token", token: t };
  }
  if (u !== undefined) {
    throw new Error(`MLflow credentials: ${names.username} is set but ${names.password} is not`);
  }
  if (p !== undefined) {
    throw new Error(`MLflow credentials: ${names.password} is set but ${names.username} is not`);
  }
  return undefined;
}

/** Splits `http://user:pass@host:5000/` into a credential-free base URL and the credentials. */
export function splitCredentials(uri: string): {
  baseUrl: string;
  username?: string;
  password?: string;
} {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error("MLflow tracking URI is not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`MLflow tracking URI must be http(s), got "${url.protocol}" in ${url.host}`);
  }
  const username = url.username ? decodeURIComponent(url.username) : undefined;
  const password = url.password ? decodeURIComponent(url.password) : undefined;
  url.username = "";
  url.password = "";
  return { baseUrl: url.toString().replace(/\/+$/, ""), username, password };
}

/** Applies the policy above. Never puts a credential into an error message. */
export function resolveConnection(
  input: MlflowConnectionInput,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedConnection {
  const trackingUri = nonEmpty(input.trackingUri) ?? nonEmpty(env.MLFLOW_TRACKING_URI);
  if (trackingUri === undefined) {
    throw new Error("MLflow tracking URI is not set: pass trackingUri or set MLFLOW_TRACKING_URI");
  }
  // A local store (`sqlite:`, `file:`) is what MLflow's own client opens for the child processes
  // (`mlflow artifacts download`); it holds no credentials. The REST client accepts http(s) only.
  const { baseUrl, username, password } = /^https?:/i.test(trackingUri)
    ? splitCredentials(trackingUri)
    : { baseUrl: trackingUri, username: undefined, password: undefined };
  const fromArgs = authFrom(input.auth?.username, input.auth?.password, input.auth?.token, {
    username: "auth.username",
    password: "auth.password",
  });
  if (fromArgs) {
    return { baseUrl, auth: fromArgs, source: "auth" };
  }
  const fromUri = authFrom(username, password, undefined, {
    username: "the user in trackingUri",
    password: "a password in trackingUri",
  });
  if (fromUri) {
    return { baseUrl, auth: fromUri, source: "trackingUri" };
  }
  const fromEnv = authFrom(
    env.MLFLOW_TRACKING_USERNAME,
    env.MLFLOW_TRACKING_PASSWORD,
    env.MLFLOW_TRACKING_TOKEN,
    { username: "MLFLOW_TRACKING_USERNAME", password: "MLFLOW_TRACKING_PASSWORD" },
  );
  if (fromEnv) {
    return { baseUrl, auth: fromEnv, source: "environment" };
  }
  return { baseUrl, auth: { kind: "none" }, source: "none" };
}

/** The Authorization header for resolved credentials. */
export function authorizationHeader(auth: ResolvedAuth): string | undefined {
  switch (auth.kind) {
    case "basic":
      return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
    case "token":
      return `Bearer ${auth.token}`;
    default:
      return undefined;
  }
}

/** The MLflow variables a child process (`mlflow models serve`, `mlflow artifacts download`) needs
 * to reach the server with exactly the resolved credentials, and nothing else of ours. */
export function mlflowTrackingEnv(conn: ResolvedConnection): Record<string, string> {
  const env: Record<string, string> = { MLFLOW_TRACKING_URI: conn.baseUrl };
  if (conn.auth.kind === "basic") {
    env.MLFLOW_TRACKING_USERNAME = conn.auth.username;
    env.MLFLOW_TRACKING_PASSWORD = conn.auth.password;
  } else if (conn.auth.kind === "token") {
    env.MLFLOW_TRACKING_TOKEN = conn.auth.token;
  }
  return env;
}

/** The MLflow credential variables a child must not inherit from the provider process (the resolved
 * ones from mlflowTrackingEnv replace them). */
export const MLFLOW_CREDENTIAL_VARIABLES = [
  "MLFLOW_TRACKING_URI",
  "MLFLOW_TRACKING_USERNAME",
  "MLFLOW_TRACKING_PASSWORD",
  "MLFLOW_TRACKING_TOKEN",
] as const;
