/**
 * Commands that trigger a score workflow on the MLOps agent and poll it, ready to paste: curl with the
 * user guide's cookie login, curl with the bearer token, the status poll, and Python (requests, which
 * MLflow installs). Pure and tested on exact strings. The token is never inlined: every command reads
 * it from the environment variable TOKEN (as agent/README.md's examples do), and curl gets it on
 * stdin from the shell's printf builtin, so it is not on a command line (`ps`).
 */
import { pythonString, shellQuote } from "./shell";

/** The environment variable the commands read the agent token from. */
export const WORKFLOW_TOKEN_ENV = "TOKEN";

export interface WorkflowSnippetArgs {
  /** The agent's API URL, `http://host:port`. */
  agentUrl: string;
  workflowId: string;
  /** The guide's `programParameters` (per-run overrides such as `--input ... --output ...`). */
  programParameters: string;
}

export interface WorkflowSnippets {
  /** Log in (session cookie in cookies.txt), then execute: prints `{"executionId": ...}`. */
  curl: string;
  /** Execute with the bearer token. */
  curlBearer: string;
  /** Poll one execution with the cookie: set EXECUTION_ID to the executionId first. */
  statusCurl: string;
  /** Log in, execute, poll to the end; prints the final execution and exits 1 unless it succeeded. */
  python: string;
}

/** A word for the agent's shlex.split: bare when it is plainly safe, else single-quoted. */
export function programWord(s: string): string {
  return /^[A-Za-z0-9_/.:@%+=,-]+$/.test(s) ? s : shellQuote(s);
}

/** `--input <input> --output <output>`, as the user guide passes them. */
export function programParameters(input: string, output: string): string {
  return `--input ${programWord(input)} --output ${programWord(output)}`;
}

/** The guide's execute body. */
export function guideBody(workflowId: string, parameters: string): Record<string, unknown> {
  return {
    workflowId,
    programParameters: parameters,
    sparkConfig: {},
    libJars: [],
    emailOnSuccess: [],
    emailOnFailure: [],
  };
}

export function workflowSnippets(args: WorkflowSnippetArgs): WorkflowSnippets {
  const api = `${args.agentUrl.replace(/\/+$/, "")}/api/v1`;
  const body = JSON.stringify(guideBody(args.workflowId, args.programParameters));
  const json = "-H 'Content-Type: application/json'";
  const login = [
    `printf '{"token": "%s"}' "$${WORKFLOW_TOKEN_ENV}" |`,
    "curl -sS -f -c cookies.txt -o /dev/null -X POST",
    shellQuote(`${api}/login`),
    json,
    "--data-binary @-",
  ].join(" ");
  const execute = (auth: string) =>
    [
      "curl -sS --fail-with-body",
      auth,
      "-X POST",
      shellQuote(`${api}/workflow/execute`),
      json,
      "-d",
      shellQuote(body),
    ].join(" ");
  const curl = `${login} && ${execute("-b cookies.txt")}`;
  // printf is a shell builtin: the header is built by the shell and read by curl from stdin.
  const curlBearer = `printf 'Authorization: Bearer %s\\n' "$${WORKFLOW_TOKEN_ENV}" | ${execute("-H @-")}`;
  const statusCurl = `curl -sS --fail-with-body -b cookies.txt ${shellQuote(`${api}/workflow/executions/`)}"$EXECUTION_ID"`;
  const code = [
    "import json, os, sys, time, requests",
    `api = ${pythonString(api)}`,
    "s = requests.Session()",
    `s.post(api + "/login", json={"token": os.environ[${pythonString(WORKFLOW_TOKEN_ENV)}]}, timeout=30).raise_for_status()`,
    `r = s.post(api + "/workflow/execute", json=json.loads(${pythonString(body)}), timeout=30)`,
    "r.raise_for_status()",
    'url = api + "/workflow/executions/" + r.json()["executionId"]',
    "e = s.get(url, timeout=30).json()",
    'while e["status"] in ("queued", "running"):',
    "    time.sleep(2)",
    "    e = s.get(url, timeout=30).json()",
    "print(json.dumps(e))",
    'sys.exit(0 if e["status"] == "succeeded" else 1)',
  ].join("\n");
  return { curl, curlBearer, statusCurl, python: `python3 -c ${shellQuote(code)}` };
}
