/**
 * Commands that score an Azure ML managed online endpoint, ready to paste: curl and Python (standard
 * library only). Pure and tested on exact strings. In key mode the key is inlined (the component
 * wraps the result in pulumi.secret); in aml_token mode the token is fetched with the az CLI when the
 * command runs.
 */
import { pythonString, shellQuote } from "./shell";
import { SAMPLE_REQUEST } from "./sagemaker";

export type AzureMlSnippetAuth =
  | { mode: "key"; key: string }
  | { mode: "aml_token"; endpointName: string; resourceGroup: string; workspaceName: string };

export interface AzureMlSnippetArgs {
  /** The endpoint's scoring URI (https://<endpoint>.<region>.inference.ml.azure.com/score). */
  scoringUri: string;
  /** How the caller authenticates. */
  auth: AzureMlSnippetAuth;
  /** Request body; default SAMPLE_REQUEST. */
  body?: unknown;
}

function tokenCommand(auth: Extract<AzureMlSnippetAuth, { mode: "aml_token" }>): string[] {
  return [
    "az",
    "ml",
    "online-endpoint",
    "get-credentials",
    "--name",
    auth.endpointName,
    "--resource-group",
    auth.resourceGroup,
    "--workspace-name",
    auth.workspaceName,
    "--query",
    "accessToken",
    "--output",
    "tsv",
  ];
}

export function azureMlSnippets(args: AzureMlSnippetArgs): { curl: string; python: string } {
  const body = JSON.stringify(args.body ?? SAMPLE_REQUEST);
  const keyShell =
    args.auth.mode === "key"
      ? `KEY=${shellQuote(args.auth.key)}`
      : `KEY="$(${tokenCommand(args.auth).map(shellQuote).join(" ")})"`;
  const curl = [
    `${keyShell};`,
    "curl -sS -X POST",
    shellQuote(args.scoringUri),
    '-H "Authorization: Bearer $KEY"',
    "-H 'Content-Type: application/json'",
    `-d ${shellQuote(body)}`,
  ].join(" ");
  const keyPython =
    args.auth.mode === "key"
      ? [`key = ${pythonString(args.auth.key)}`]
      : [
          "import subprocess",
          `key = subprocess.check_output([${tokenCommand(args.auth).map(pythonString).join(", ")}], text=True).strip()`,
        ];
  const code = [
    "import urllib.request",
    ...keyPython,
    `req = urllib.request.Request(${pythonString(args.scoringUri)}, data=${pythonString(body)}.encode(), ` +
      'headers={"Content-Type": "application/json", "Authorization": "Bearer " + key})',
    "print(urllib.request.urlopen(req, timeout=60).read().decode())",
  ].join("; ");
  return { curl, python: `python3 -c ${shellQuote(code)}` };
}
