import axios, { AxiosError, AxiosInstance, AxiosRequestConfig } from "axios";
import axiosRetry, { exponentialDelay, isNetworkError } from "axios-retry";
import {
  authorizationHeader,
  MlflowConnectionInput,
  resolveConnection,
  ResolvedConnection,
  splitCredentials,
} from "./connection";
import { MlflowError } from "./errors";

export {
  authorizationHeader,
  mlflowTrackingEnv,
  resolveConnection,
  splitCredentials,
} from "./connection";
export type { MlflowAuth, MlflowConnectionInput, ResolvedConnection } from "./connection";

/** How to reach an MLflow tracking server: the one connection input (see ./connection for the
 * credential policy) plus per-client settings. */
export interface MlflowConnection extends MlflowConnectionInput {
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
export function createMlflowClient(
  connection: MlflowConnection,
  env: NodeJS.ProcessEnv = process.env,
): MlflowClient {
  const conn: ResolvedConnection = resolveConnection(connection, env);
  const baseUrl = conn.baseUrl;
  splitCredentials(baseUrl); // throws for anything but an http(s) URL
  const auth = authorizationHeader(conn.auth);
  const http: AxiosInstance = axios.create({
    baseURL: baseUrl,
    timeout: connection.timeoutMs ?? 30_000,
    headers: auth ? { Authorization: auth } : {},
    maxBodyLength: Infinity,
    maxContentLength: Infinity,
  });
  axiosRetry(http, {
    retries: connection.retries ?? 4,
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
