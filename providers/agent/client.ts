import axios, { AxiosError, AxiosInstance, AxiosRequestConfig } from "axios";
import axiosRetry, { exponentialDelay, isNetworkError } from "axios-retry";

/**
 * The MLOps agent's REST client (agent/model_serving_agent/api.py, `GET /openapi.json`): bearer token,
 * typed errors that carry the agent's status and message, retries only where a repeat is safe.
 * - GET and DELETE (idempotent): retried on connection errors, 502/503/504.
 * - PUT (a deploy; idempotent on the agent's side but long): retried when nothing reached the agent
 *   (connection refused/reset before an answer) or on 503 (the agent is still adopting its models);
 *   never on a timeout (the start may still be running) and never on a 4xx such as 422 (the version
 *   is bad: repeating it changes nothing).
 * - POST (a workflow execute: not idempotent, a repeat is a second run): retried only when the
 *   connection was refused, so the request cannot have reached the agent.
 * The token never appears in an error, a log line or a URL.
 */

/** One of the agent's JSON errors (`{"error": ..., "log_tail"?: [...]}`), or an unreachable agent. */
export class AgentError extends Error {
  constructor(
    message: string,
    /** HTTP status; undefined when the agent never answered. */
    readonly status: number | undefined,
    /** The agent's own message (`error`), or the network error code. */
    readonly agentMessage: string,
    /** A failed start: the backend's last log lines, led by the traceback's cause. */
    readonly logTail: string[] | undefined,
    readonly method: string,
    readonly path: string,
  ) {
    super(message);
    // Set again: the closure serializer's Error subclass does not set `message` (see MlflowError).
    this.message = message;
    this.name = "AgentError";
  }
}

export interface AgentConnection {
  /** `http(s)://host:port` of the agent's API. */
  url: string;
  /** The API token (Authorization: Bearer). */
  token: string;
  /** Default per-call timeout (default 30 s). */
  timeoutMs?: number;
  /** Retries of a retriable failure (default 4), exponential backoff with jitter. */
  retries?: number;
}

export interface AgentCallOptions {
  body?: unknown;
  timeoutMs?: number;
}

export type AgentMethod = "GET" | "PUT" | "POST" | "DELETE";

export interface AgentClient {
  readonly baseUrl: string;
  call<T = Record<string, unknown>>(
    method: AgentMethod,
    path: string,
    options?: AgentCallOptions,
  ): Promise<T>;
}

/** Whether a failed call is retried (see the module comment). */
export function shouldRetryAgent(err: AxiosError): boolean {
  const method = (err.config?.method ?? "get").toUpperCase();
  const status = err.response?.status;
  if (method === "POST") {
    return status === undefined && err.code === "ECONNREFUSED";
  }
  if (status !== undefined) {
    if (status === 503) {
      return true;
    }
    return method !== "PUT" && (status === 502 || status === 504);
  }
  if (err.code === "ECONNABORTED" || err.code === "ETIMEDOUT") {
    return method !== "PUT"; // a PUT that timed out may still be starting the version
  }
  return err.code === "ECONNREFUSED" || err.code === "ECONNRESET" || isNetworkError(err);
}

export function toAgentError(err: unknown, baseUrl: string, method: string, path: string): Error {
  const e = err as AxiosError<{ error?: string; log_tail?: string[] } | string>;
  if (!e || !e.isAxiosError) {
    return err instanceof Error ? err : new Error(String(err));
  }
  if (e.response) {
    const status = e.response.status;
    const data = e.response.data;
    const detail =
      typeof data === "object" && data && typeof data.error === "string"
        ? data.error
        : typeof data === "string" && data.length > 0
          ? data.slice(0, 300)
          : e.message;
    const logTail =
      typeof data === "object" && data && Array.isArray(data.log_tail) ? data.log_tail : undefined;
    const hint =
      status === 401
        ? "; check the secret config model-serving:agentToken (the agent's token)"
        : "";
    const tail = logTail ? `\nthe backend's last log lines:\n${logTail.join("\n")}` : "";
    return new AgentError(
      `agent ${method} ${path} failed with ${status}: ${detail}${hint}${tail}`,
      status,
      detail,
      logTail,
      method,
      path,
    );
  }
  const code = e.code ?? "NETWORK_ERROR";
  return new AgentError(
    `the agent at ${baseUrl} is unreachable (${code}) on ${method} ${path}`,
    undefined,
    code,
    undefined,
    method,
    path,
  );
}

export function createAgentClient(connection: AgentConnection): AgentClient {
  const baseUrl = connection.url.replace(/\/+$/, "");
  const u = new URL(baseUrl);
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.username || u.password) {
    throw new Error(`agent url: must be an http(s) URL without credentials (got ${u.origin})`);
  }
  const http: AxiosInstance = axios.create({
    baseURL: baseUrl,
    timeout: connection.timeoutMs ?? 30_000,
    headers: { Authorization: `Bearer ${connection.token}` },
    maxBodyLength: Infinity,
    maxContentLength: Infinity,
  });
  axiosRetry(http, {
    retries: connection.retries ?? 4,
    retryDelay: (count, err) => exponentialDelay(count, err, 300),
    retryCondition: shouldRetryAgent,
    shouldResetTimeout: true,
  });
  return {
    baseUrl,
    async call<T>(method: AgentMethod, path: string, options: AgentCallOptions = {}) {
      const request: AxiosRequestConfig = {
        method,
        url: path,
        data: options.body,
        timeout: options.timeoutMs,
      };
      try {
        return (await http.request<T>(request)).data;
      } catch (err) {
        throw toAgentError(err, baseUrl, method, path);
      }
    },
  };
}
