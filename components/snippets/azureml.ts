/**
 * Commands that score an Azure ML managed online endpoint, ready to paste: curl and Python (standard
 * library only). Pure and tested on exact strings. In key mode the key is inlined (the component
 * wraps the result in pulumi.secret); in aml_token mode the token is fetched with the az CLI when the
 * command runs, in aad_token mode an Entra ID token for https://ml.azure.com likewise.
 */
import { pythonString, shellQuote } from "./shell";

export type AzureMlSnippetAuth =
  | { mode: "key"; key: string }
  | { mode: "aml_token"; endpointName: string; resourceGroup: string; workspaceName: string }
  | { mode: "aad_token" };

export interface AzureMlSnippetArgs {
  /** The endpoint's scoring URI (https://<endpoint>.<region>.inference.ml.azure.com/score). */
  scoringUri: string;
  /** How the caller authenticates. */
  auth: AzureMlSnippetAuth;
  /** Request body: the model's own sample input (components/sampleInput.ts). */
  body: unknown;
  /** Score this deployment only (`azureml-model-deployment` header), bypassing the traffic split. */
  deployment?: string;
}

/** The audience of Entra ID tokens for managed online endpoints. */
export const AZUREML_TOKEN_RESOURCE = "https://ml.azure.com";

function tokenCommand(auth: Exclude<AzureMlSnippetAuth, { mode: "key" }>): string[] {
  if (auth.mode === "aad_token") {
    return [
      "az",
      "account",
      "get-access-token",
      "--resource",
      AZUREML_TOKEN_RESOURCE,
      "--query",
      "accessToken",
      "--output",
      "tsv",
    ];
  }
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
  const body = JSON.stringify(args.body);
  const auth = args.auth;
  const keyShell =
    auth.mode === "key"
      ? `KEY=${shellQuote(auth.key)}`
      : `KEY="$(${tokenCommand(auth).map(shellQuote).join(" ")})"`;
  const curl = [
    `${keyShell};`,
    "curl -sS -X POST",
    shellQuote(args.scoringUri),
    '-H "Authorization: Bearer $KEY"',
    "-H 'Content-Type: application/json'",
    ...(args.deployment
      ? [`-H ${shellQuote(`azureml-model-deployment: ${args.deployment}`)}`]
      : []),
    `-d ${shellQuote(body)}`,
  ].join(" ");
  const keyPython =
    auth.mode === "key"
      ? [`key = ${pythonString(auth.key)}`]
      : [
          "import subprocess",
          `key = subprocess.check_output([${tokenCommand(auth).map(pythonString).join(", ")}], text=True).strip()`,
        ];
  const deploymentHeader = args.deployment
    ? `, "azureml-model-deployment": ${pythonString(args.deployment)}`
    : "";
  const code = [
    "import urllib.request",
    ...keyPython,
    `req = urllib.request.Request(${pythonString(args.scoringUri)}, data=${pythonString(body)}.encode(), ` +
      `headers={"Content-Type": "application/json", "Authorization": "Bearer " + key${deploymentHeader}})`,
    "print(urllib.request.urlopen(req, timeout=60).read().decode())",
  ].join("; ");
  return { curl, python: `python3 -c ${shellQuote(code)}` };
}
