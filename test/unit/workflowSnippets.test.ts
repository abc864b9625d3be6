import {
  programParameters,
  programWord,
  workflowSnippets,
} from "../../components/snippets/workflow";

// The workflow commands of the stack output workflows[<id>] (components/snippets/workflow.ts), on exact
// strings: the token is only ever read from $TOKEN; the execute body is the user guide's.
describe("score workflow snippets", () => {
  const s = workflowSnippets({
    agentUrl: "http://127.0.0.1:5100/",
    workflowId: "iris-daily",
    programParameters: programParameters("/data/in.csv", "/data/my out.csv"),
  });

  it("curl", () => {
    expect(s.curl).toBe(
      'printf \'{"token": "%s"}\' "$TOKEN" | curl -sS -f -c cookies.txt -o /dev/null -X POST \'http://127.0.0.1:5100/api/v1/login\' -H \'Content-Type: application/json\' --data-binary @- && curl -sS --fail-with-body -b cookies.txt -X POST \'http://127.0.0.1:5100/api/v1/workflow/execute\' -H \'Content-Type: application/json\' -d \'{"workflowId":"iris-daily","programParameters":"--input /data/in.csv --output \'\\\'\'/data/my out.csv\'\\\'\'","sparkConfig":{},"libJars":[],"emailOnSuccess":[],"emailOnFailure":[]}\'',
    );
  });

  it("curlBearer", () => {
    expect(s.curlBearer).toBe(
      'printf \'Authorization: Bearer %s\\n\' "$TOKEN" | curl -sS --fail-with-body -H @- -X POST \'http://127.0.0.1:5100/api/v1/workflow/execute\' -H \'Content-Type: application/json\' -d \'{"workflowId":"iris-daily","programParameters":"--input /data/in.csv --output \'\\\'\'/data/my out.csv\'\\\'\'","sparkConfig":{},"libJars":[],"emailOnSuccess":[],"emailOnFailure":[]}\'',
    );
  });

  it("statusCurl", () => {
    expect(s.statusCurl).toBe(
      "curl -sS --fail-with-body -b cookies.txt 'http://127.0.0.1:5100/api/v1/workflow/executions/'\"$EXECUTION_ID\"",
    );
  });

  it("python", () => {
    expect(s.python).toBe(
      'python3 -c \'import json, os, sys, time, requests\napi = "http://127.0.0.1:5100/api/v1"\ns = requests.Session()\ns.post(api + "/login", json={"token": os.environ["TOKEN"]}, timeout=30).raise_for_status()\nr = s.post(api + "/workflow/execute", json=json.loads("{\\"workflowId\\":\\"iris-daily\\",\\"programParameters\\":\\"--input /data/in.csv --output \'\\\'\'/data/my out.csv\'\\\'\'\\",\\"sparkConfig\\":{},\\"libJars\\":[],\\"emailOnSuccess\\":[],\\"emailOnFailure\\":[]}"), timeout=30)\nr.raise_for_status()\nurl = api + "/workflow/executions/" + r.json()["executionId"]\ne = s.get(url, timeout=30).json()\nwhile e["status"] in ("queued", "running"):\n    time.sleep(2)\n    e = s.get(url, timeout=30).json()\nprint(json.dumps(e))\nsys.exit(0 if e["status"] == "succeeded" else 1)\'',
    );
  });
});

describe("programParameters words", () => {
  it.each([
    ["/data/in.csv", "/data/in.csv"],
    ["s3://bucket/in/part-1.csv", "s3://bucket/in/part-1.csv"],
    ["/data/my in.csv", "'/data/my in.csv'"],
    ["/data/it's.csv", "'/data/it'\\''s.csv'"],
  ])("%s is passed as %s", (location, word) => {
    expect(programWord(location)).toBe(word);
  });

  it("never holds the token: every command reads $TOKEN", () => {
    const s = workflowSnippets({
      agentUrl: "http://a:5100",
      workflowId: "w",
      programParameters: "",
    });
    expect(s.curl).toContain('"$TOKEN"');
    expect(s.curlBearer).toContain('"$TOKEN"');
    expect(s.python).toContain('os.environ["TOKEN"]');
  });
});
