import axios, { AxiosError, AxiosInstance, AxiosRequestConfig } from "axios";
import axiosRetry, { exponentialDelay, isNetworkError } from "axios-retry";
import { MlflowError } from "./errors";

/** How to reach an MLflow tracking server. Unset fields fall back to the MLFLOW_TRACKING_* variables. */
export interface MlflowConnection {
  trackingUri?: string;
  username?: string;
  password?: string;
  token?: string;
  /** Per-call timeout; every call has one. */
  timeoutMs?: number;
  /** Retries for idempotent calls (network errors, 429, 5xx), with exponential backoff and jitter. */
  retries?: number;
}

export interface CallOptions {
  /** Safe to repeat: retried on network errors, 429 and 5xx. Others retry only when nothing was sent. */
  idempotent?: boolean;
  timeoutMs?: number;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface MlflowClient {
  /** The tracking URI without any credentials, safe to log and store. */
  readonly baseUrl: string;
  call<T = Record<string, unknown>>(
    method: string,
    path: string,
    options?: CallOptions,
  ): Promise<T>;
}

type RetryMode = "idempotent" | "connect-only";

/** Resolves a connection from explicit settings and the standard MLflow environment variables. */
export function resolveConnection(
  conn: MlflowConnection,
  env: NodeJS.ProcessEnv = process.env,
): Required<Pick<MlflowConnection, "trackingUri">> & MlflowConnection {
  const trackingUri = conn.trackingUri ?? env.MLFLOW_TRACKING_URI;
  if (!trackingUri) {
    throw new Error("MLflow tracking URI is not set: pass trackingUri or set MLFLOW_TRACKING_URI");
  }
  return {
    ...conn,
    trackingUri,
    username: conn.username ?? env.MLFLOW_TRACKING_USERNAME,
    password: conn.password ?? env.MLFLOW_TRACKING_PASSWORD,
    token: conn.token ?? env.MLFLOW_TRACKING_TOKEN,
  };
}

/** Splits `http://user:pass@host:5000/` into a credential-free base URL and the credentials. */
export function splitCredentials(uri: string): {
  baseUrl: string;
  username?: string;
  password?: string;
} {
  const url = new URL(uri);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`MLflow tracking URI must be http(s), got "${url.protocol}" in ${url.host}`);
  }
  const username = url.username ? decodeURIComponent(url.username) : undefined;
  const password = url.password ? decodeURIComponent(url.password) : undefined;
  url.username = "";
  url.password = "";
  return { baseUrl: url.toString().replace(/\/+$/, ""), username, password };
}

/** Builds the Authorization header: a bearer token wins over basic credentials. */
export function authorizationHeader(conn: MlflowConnection): string | undefined {
  if (conn.token) {
    return `Bearer ${conn.token}`;
  }
  if (conn.username !== undefined && conn.password !== undefined) {
    return `Basic ${Buffer.from(`${conn.username}:${conn.password}`).toString("base64")}`;
  }
  return undefined;
}

/** Turns an axios failure into an MlflowError that names the request but never its credentials. */
export function toMlflowError(err: unknown, baseUrl: string, method: string, path: string): Error {
  const e = err as AxiosError<{ error_code?: string; message?: string }>;
  if (!e || !e.isAxiosError) {
    return err instanceof Error ? err : new Error(String(err));
  }
  if (e.response) {
    const status = e.response.status;
    const data = e.response.data as { error_code?: string; message?: string } | string | undefined;
    const code =
      (typeof data === "object" && data && data.error_code) ||
      (status === 401
        ? "UNAUTHENTICATED"
        : status === 403
          ? "PERMISSION_DENIED"
          : `HTTP_${status}`);
    const detail =
      typeof data === "object" && data && data.message
        ? data.message
        : typeof data === "string" && data.length > 0
          ? data.slice(0, 200)
          : e.message;
    // A 401 is nearly always the stack's own credentials: name the settings that hold them.
    const hint =
      status === 401
        ? "; check the MLflow credentials (secret config model-serving:mlflowPassword and " +
          "model-serving:mlflow.username, or MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN)"
        : "";
    return new MlflowError(
      `MLflow ${method} ${path} failed with ${status} ${code}: ${detail}${hint}`,
      code,
      status,
      method,
      path,
    );
  }
  const code = e.code ?? "NETWORK_ERROR";
  return new MlflowError(
    `MLflow at ${baseUrl} is unreachable (${code}) on ${method} ${path}`,
    code === "ECONNABORTED" || code === "ETIMEDOUT" ? "TIMEOUT" : "UNREACHABLE",
    undefined,
    method,
    path,
  );
}

/** Should a failed request be retried? Idempotent calls on network errors, 429 and 5xx; others only if
 * the connection was refused (nothing reached the server). */
export function shouldRetry(err: AxiosError): boolean {
  const mode = (err.config as { msRetry?: RetryMode } | undefined)?.msRetry ?? "connect-only";
  if (err.code === "ECONNREFUSED") {
    return true;
  }
  if (mode !== "idempotent") {
    return false;
  }
  const status = err.response?.status;
  return isNetworkError(err) || status === 429 || (status !== undefined && status >= 500);
}

/** Creates a client with retries, timeouts and auth for one MLflow server. */
export function createMlflowClient(connection: MlflowConnection): MlflowClient {
  const conn = resolveConnection(connection);
  const { baseUrl, username, password } = splitCredentials(conn.trackingUri);
  const auth = authorizationHeader({
    ...conn,
    username: conn.username ?? username,
    password: conn.password ?? password,
  });
  const http: AxiosInstance = axios.create({
    baseURL: baseUrl,
    timeout: conn.timeoutMs ?? 30_000,
    headers: auth ? { Authorization: auth } : {},
    maxBodyLength: Infinity,
    maxContentLength: Infinity,
  });
  axiosRetry(http, {
    retries: conn.retries ?? 4,
    retryDelay: (count, err) => exponentialDelay(count, err, 200),
    retryCondition: shouldRetry,
    shouldResetTimeout: true,
  });

  return {
    baseUrl,
    async call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
      const request: AxiosRequestConfig & { msRetry: RetryMode } = {
        method,
        url: path,
        params: options.query,
        data: options.body,
        headers: options.headers,
        timeout: options.timeoutMs,
        msRetry: options.idempotent ? "idempotent" : "connect-only",
      };
      try {
        const response = await http.request<T>(request);
        return response.data;
      } catch (err) {
        throw toMlflowError(err, baseUrl, method.toUpperCase(), path);
      }
    },
  };
}
