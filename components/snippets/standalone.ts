/**
 * Commands that score a standalone scorer container (MLflow's `/invocations`, no auth), ready to paste:
 * the same request shapes as the MLflow target, plus a CSV variant (the scorer accepts text/csv).
 */
import { mlflowCurlCommand, mlflowPythonCommand } from "./mlflow";
import { shellQuote } from "./shell";

/** `http://<host>:<port>/invocations`; IPv6 literals are bracketed. */
export function standaloneInvocationsUrl(host: string, port: number): string {
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `http://${h}:${port}/invocations`;
}

export function standaloneSnippets(url: string, body: unknown): { curl: string; python: string } {
  return { curl: mlflowCurlCommand(url, body), python: mlflowPythonCommand(url, body) };
}

/** A curl command posting `csv` (a header row, then rows) as text/csv. */
export function standaloneCsvCurlCommand(url: string, csv: string): string {
  return [
    "curl -sS -X POST",
    shellQuote(url),
    "-H 'Content-Type: text/csv'",
    "--data-binary",
    shellQuote(csv),
  ].join(" ");
}
