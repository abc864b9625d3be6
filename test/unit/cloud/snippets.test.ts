import { execFileSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { azureMlSnippets } from "../../../components/snippets/azureml";
import { sageMakerInvocationUrl, sageMakerSnippets } from "../../../components/snippets/sagemaker";

/** One iris row: the tests' sample body (the components pass the model's own). */
const SAMPLE = {
  dataframe_split: {
    columns: ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    data: [[5.1, 3.5, 1.4, 0.2]],
  },
};
const BODY =
  '{"dataframe_split":{"columns":["sepal_length","sepal_width","petal_length","petal_width"],"data":[[5.1,3.5,1.4,0.2]]}}';

describe("SageMaker snippets", () => {
  const s = sageMakerSnippets({ region: "eu-west-1", endpointName: "iris-prod", body: SAMPLE });

  test("exact strings", () => {
    expect(JSON.stringify(SAMPLE)).toBe(BODY);
    expect(sageMakerInvocationUrl("eu-west-1", "iris-prod")).toBe(
      "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/iris-prod/invocations",
    );
    expect(s.awsCli).toBe(
      `aws sagemaker-runtime invoke-endpoint --region 'eu-west-1' --endpoint-name 'iris-prod' --content-type application/json --cli-binary-format raw-in-base64-out --body '${BODY}' /dev/stdout`,
    );
    expect(s.curl).toBe(
      `(AWS_CREDENTIALS="$(aws configure export-credentials --format env)" && eval "$AWS_CREDENTIALS" && ` +
        `curl -sS -X POST 'https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/iris-prod/invocations' --aws-sigv4 'aws:amz:eu-west-1:sagemaker' ` +
        `--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \${AWS_SESSION_TOKEN:+-H "x-amz-security-token: $AWS_SESSION_TOKEN"} -H 'Content-Type: application/json' -d '${BODY}')`,
    );
    expect(s.python).toBe(
      `python3 -c 'import boto3; r = boto3.client("sagemaker-runtime", region_name="eu-west-1").invoke_endpoint(EndpointName="iris-prod", ContentType="application/json", ` +
        `Body="{\\"dataframe_split\\":{\\"columns\\":[\\"sepal_length\\",\\"sepal_width\\",\\"petal_length\\",\\"petal_width\\"],\\"data\\":[[5.1,3.5,1.4,0.2]]}}"); print(r["Body"].read().decode())'`,
    );
  });

  // A stand-in `aws` whose `configure export-credentials --format env` prints what the AWS CLI
  // prints for the chain's credentials (SSO, profile or instance role): export lines.
  const fakeAws = (exports: string) =>
    `aws() { if [ "$1 $2 $3 $4" = "configure export-credentials --format env" ]; then printf '%s\\n' ${exports}; else printf '%s\\n' "$@"; fi; }`;
  const argv = (cmd: string, prelude: string, env: Record<string, string> = {}) =>
    execFileSync("bash", ["-c", `${prelude}; ${cmd}`], {
      env: { PATH: process.env.PATH ?? "", ...env },
      encoding: "utf8",
    })
      .split("\n")
      .slice(0, -1);
  const curlArgs = `curl() { printf '%s\\n' "$@"; }`;

  test("curl takes temporary credentials from the AWS CLI's chain, with no credential in the environment", () => {
    const sso = fakeAws(
      `"export AWS_ACCESS_KEY_ID=ASIAEXAMPLE" "export AWS_SECRET_ACCESS_KEY=secret" "export AWS_SESSION_TOKEN=tok"`,
    );
    expect(argv(s.curl, `${sso}; ${curlArgs}`)).toEqual([
      "-sS",
      "-X",
      "POST",
      "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/iris-prod/invocations",
      "--aws-sigv4",
      "aws:amz:eu-west-1:sagemaker",
      "--user",
      "ASIAEXAMPLE:secret",
      "-H",
      "x-amz-security-token: tok",
      "-H",
      "Content-Type: application/json",
      "-d",
      BODY,
    ]);
  });

  test("long-term keys: no empty session-token header; the caller's shell keeps its environment", () => {
    const keys = fakeAws(
      `"export AWS_ACCESS_KEY_ID=AKIDEXAMPLE" "export AWS_SECRET_ACCESS_KEY=secret"`,
    );
    const out = argv(
      `${s.curl}; echo "after:\${AWS_ACCESS_KEY_ID:-unset}"`,
      `${keys}; ${curlArgs}`,
    );
    expect(out).not.toContain("-H\nx-amz-security-token: ");
    expect(out.filter((a) => a.startsWith("x-amz-security-token"))).toEqual([]);
    expect(out.slice(6, 8)).toEqual(["--user", "AKIDEXAMPLE:secret"]);
    expect(out.at(-1)).toBe("after:unset");
  });

  test("curl fails (and sends nothing) when the AWS CLI has no credentials", () => {
    const none = `aws() { echo "Unable to locate credentials" >&2; return 255; }; ${curlArgs}`;
    expect(() => argv(s.curl, none)).toThrow();
  });

  test("pasted into bash, aws gets the right argv", () => {
    expect(argv(s.awsCli, `aws() { printf '%s\\n' "$@"; }`)).toEqual([
      "sagemaker-runtime",
      "invoke-endpoint",
      "--region",
      "eu-west-1",
      "--endpoint-name",
      "iris-prod",
      "--content-type",
      "application/json",
      "--cli-binary-format",
      "raw-in-base64-out",
      "--body",
      BODY,
      "/dev/stdout",
    ]);
  });

  test("the Python command calls boto3 sagemaker-runtime invoke_endpoint as documented", () => {
    const fake = fs.mkdtempSync(path.join(os.tmpdir(), "fake-boto3-"));
    try {
      fs.writeFileSync(
        path.join(fake, "boto3.py"),
        [
          "import io, json",
          "class _Client:",
          "    def invoke_endpoint(self, **kw):",
          "        return {'Body': io.BytesIO(json.dumps({'kwargs': kw, 'service': SERVICE}).encode())}",
          "def client(service, region_name=None):",
          "    global SERVICE",
          "    SERVICE = [service, region_name]",
          "    return _Client()",
        ].join("\n"),
      );
      const out = execFileSync("bash", ["-c", s.python], {
        env: { PATH: process.env.PATH, PYTHONPATH: fake },
        encoding: "utf8",
      });
      expect(JSON.parse(out)).toEqual({
        service: ["sagemaker-runtime", "eu-west-1"],
        kwargs: { EndpointName: "iris-prod", ContentType: "application/json", Body: BODY },
      });
    } finally {
      fs.rmSync(fake, { recursive: true, force: true });
    }
  });
});

describe("Azure ML snippets", () => {
  test("exact strings, key mode", () => {
    const s = azureMlSnippets({
      scoringUri: "https://iris.westeurope.inference.ml.azure.com/score",
      auth: { mode: "key", key: "abc123" },
      body: SAMPLE,
    });
    expect(s.curl).toBe(
      `KEY='abc123'; curl -sS -X POST 'https://iris.westeurope.inference.ml.azure.com/score' -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '${BODY}'`,
    );
    expect(s.python).toBe(
      `python3 -c 'import urllib.request; key = "abc123"; req = urllib.request.Request("https://iris.westeurope.inference.ml.azure.com/score", ` +
        `data="{\\"dataframe_split\\":{\\"columns\\":[\\"sepal_length\\",\\"sepal_width\\",\\"petal_length\\",\\"petal_width\\"],\\"data\\":[[5.1,3.5,1.4,0.2]]}}".encode(), ` +
        `headers={"Content-Type": "application/json", "Authorization": "Bearer " + key}); print(urllib.request.urlopen(req, timeout=60).read().decode())'`,
    );
  });

  test("exact Python, aml_token mode fetches the token with az", () => {
    const s = azureMlSnippets({
      scoringUri: "https://iris.westeurope.inference.ml.azure.com/score",
      auth: {
        mode: "aml_token",
        endpointName: "iris",
        resourceGroup: "ml-rg",
        workspaceName: "ml-ws",
      },
      body: SAMPLE,
    });
    expect(s.python).toContain(
      `import subprocess; key = subprocess.check_output(["az", "ml", "online-endpoint", "get-credentials", "--name", "iris", "--resource-group", "ml-rg", "--workspace-name", "ml-ws", "--query", "accessToken", "--output", "tsv"], text=True).strip(); `,
    );
  });

  test("aad_token mode: an Entra ID token for https://ml.azure.com, fetched when the command runs", () => {
    const s = azureMlSnippets({
      scoringUri: "https://iris.westeurope.inference.ml.azure.com/score",
      auth: { mode: "aad_token" },
      body: SAMPLE,
    });
    expect(s.curl).toBe(
      `KEY="$('az' 'account' 'get-access-token' '--resource' 'https://ml.azure.com' '--query' 'accessToken' '--output' 'tsv')"; ` +
        `curl -sS -X POST 'https://iris.westeurope.inference.ml.azure.com/score' -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '${BODY}'`,
    );
    expect(s.python).toContain(
      `key = subprocess.check_output(["az", "account", "get-access-token", "--resource", "https://ml.azure.com", "--query", "accessToken", "--output", "tsv"], text=True).strip()`,
    );
  });

  test("a deployment's own command sends azureml-model-deployment", () => {
    const s = azureMlSnippets({
      scoringUri: "https://iris.westeurope.inference.ml.azure.com/score",
      auth: { mode: "key", key: "abc123" },
      body: SAMPLE,
      deployment: "green",
    });
    expect(s.curl).toBe(
      `KEY='abc123'; curl -sS -X POST 'https://iris.westeurope.inference.ml.azure.com/score' -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' ` +
        `-H 'azureml-model-deployment: green' -d '${BODY}'`,
    );
    expect(s.python).toContain(
      `headers={"Content-Type": "application/json", "Authorization": "Bearer " + key, "azureml-model-deployment": "green"}`,
    );
  });

  test("curl and python, pasted into bash, really send the body and the key (even a key with quotes)", async () => {
    const seen: { auth?: string; type?: string; body: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen.push({ auth: req.headers.authorization, type: req.headers["content-type"], body });
        res.writeHead(200, { "Content-Type": "application/json" }).end('{"predictions": [0]}');
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as { port: number }).port;
      const s = azureMlSnippets({
        scoringUri: `http://127.0.0.1:${port}/score`,
        auth: { mode: "key", key: `k'e"y$1` },
        body: SAMPLE,
      });
      const run = (cmd: string) =>
        new Promise<string>((resolve, reject) =>
          require("child_process").execFile(
            "bash",
            ["-c", cmd],
            { encoding: "utf8" },
            (e: Error | null, out: string) => (e ? reject(e) : resolve(out)),
          ),
        );
      const haveCurl = fs.existsSync("/usr/bin/curl") || fs.existsSync("/usr/local/bin/curl");
      if (haveCurl) {
        expect(await run(s.curl)).toBe('{"predictions": [0]}');
      } else {
        console.log("curl not installed: only the Python command was executed");
      }
      expect((await run(s.python)).trim()).toBe('{"predictions": [0]}');
      for (const r of seen) {
        expect(r).toEqual({ auth: `Bearer k'e"y$1`, type: "application/json", body: BODY });
      }
      expect(seen).toHaveLength(haveCurl ? 2 : 1);
    } finally {
      server.close();
    }
  });
});
