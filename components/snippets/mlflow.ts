import { pythonString, shellQuote } from "./shell";

/** Commands that score an MLflow model server (`/invocations`, no auth), ready to paste. */

export function mlflowCurlCommand(url: string, body: unknown): string {
  return [
    "curl -sS -X POST",
    shellQuote(url),
    "-H 'Content-Type: application/json'",
    "-d",
    shellQuote(JSON.stringify(body)),
  ].join(" ");
}

export function mlflowPythonCommand(url: string, body: unknown): string {
  const code = [
    "import json, urllib.request",
    `req = urllib.request.Request(${pythonString(url)}, data=json.dumps(json.loads(${pythonString(
      JSON.stringify(body),
    )})).encode(), headers={"Content-Type": "application/json"})`,
    "print(urllib.request.urlopen(req, timeout=60).read().decode())",
  ].join("; ");
  return `python3 -c ${shellQuote(code)}`;
}
