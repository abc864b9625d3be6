import { execFileSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as path from "path";
import { firstRow, sampleRequestBody } from "../../components/sampleInput";
import { mlflowCurlCommand, mlflowPythonCommand } from "../../components/snippets/mlflow";
import { shellQuote } from "../../components/snippets/shell";
import { hashSource, isSourceUri } from "../../providers/modelSource";
import { IRIS_ROW, tempDir } from "../support/env";

describe("generated commands for the MLflow target", () => {
  const url = "http://127.0.0.1:5001/invocations";

  it("curl, exactly", () => {
    expect(mlflowCurlCommand(url, IRIS_ROW)).toBe(
      "curl -sS -X POST 'http://127.0.0.1:5001/invocations' -H 'Content-Type: application/json' " +
        `-d '{"dataframe_split":{"columns":["sepal_length","sepal_width","petal_length","petal_width"],"data":[[5.1,3.5,1.4,0.2]]}}'`,
    );
  });

  it("python, exactly", () => {
    expect(mlflowPythonCommand(url, { inputs: ["it's"] })).toBe(
      `python3 -c 'import json, urllib.request; req = urllib.request.Request("http://127.0.0.1:5001/invocations", ` +
        `data=json.dumps(json.loads("{\\"inputs\\":[\\"it'\\''s\\"]}")).encode(), headers={"Content-Type": "application/json"}); ` +
        `print(urllib.request.urlopen(req, timeout=60).read().decode())'`,
    );
  });

  it("quotes anything for the shell", () => {
    expect(
      execFileSync("bash", ["-c", `printf %s ${shellQuote(`a'b "c" $HOME \\ \``)}`]).toString(),
    ).toBe(`a'b "c" $HOME \\ \``);
  });

  it("both commands work when pasted into a shell", async () => {
    const received: unknown[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        received.push({ type: req.headers["content-type"], body: JSON.parse(body) });
        res.end('{"predictions": [0]}');
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const target = `http://127.0.0.1:${(server.address() as AddressInfo).port}/invocations`;
    const body = { dataframe_records: [{ name: "O'Brien", note: 'say "hi"' }] };
    try {
      for (const cmd of [mlflowCurlCommand(target, body), mlflowPythonCommand(target, body)]) {
        const out = await new Promise<string>((resolve, reject) =>
          require("child_process").execFile(
            "bash",
            ["-c", cmd],
            (err: Error | null, stdout: string) => (err ? reject(err) : resolve(stdout)),
          ),
        );
        expect(out.trim()).toBe('{"predictions": [0]}');
      }
      expect(received).toEqual([
        { type: "application/json", body },
        { type: "application/json", body },
      ]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe("sample request body", () => {
  it("keeps one row of the model's serving example", () => {
    const dir = tempDir("sample");
    fs.writeFileSync(
      path.join(dir, "serving_input_example.json"),
      JSON.stringify({ dataframe_split: { columns: ["a"], data: [[1], [2]] } }),
    );
    expect(sampleRequestBody(dir)).toEqual({ dataframe_split: { columns: ["a"], data: [[1]] } });
    expect(sampleRequestBody(dir, { inputs: [1] })).toEqual({ inputs: [1] });
    expect(sampleRequestBody("runs:/abc/model")).toEqual({
      dataframe_split: { columns: [], data: [] },
    });
    expect(firstRow({ instances: [1, 2, 3] })).toEqual({ instances: [1] });
  });
});

describe("model source hashing", () => {
  it("changes with content and paths, not with location", () => {
    const a = tempDir("hash-a");
    const b = tempDir("hash-b");
    for (const d of [a, b]) {
      fs.mkdirSync(path.join(d, "sub"));
      fs.writeFileSync(path.join(d, "MLmodel"), "flavors: {}");
      fs.writeFileSync(path.join(d, "sub", "model.pkl"), "weights");
    }
    expect(hashSource(a)).toBe(hashSource(b));
    expect(hashSource(a)).toMatch(/^sha256:[0-9a-f]{64}$/);
    fs.writeFileSync(path.join(b, "sub", "model.pkl"), "other weights");
    expect(hashSource(a)).not.toBe(hashSource(b));
    fs.renameSync(path.join(a, "sub", "model.pkl"), path.join(a, "sub", "renamed.pkl"));
    expect(hashSource(a)).not.toBe(hashSource(b));
  });

  it("hashes URIs as strings", () => {
    expect(hashSource("runs:/r1/model")).toBe(hashSource("runs:/r1/model"));
    expect(hashSource("runs:/r1/model")).not.toBe(hashSource("runs:/r2/model"));
    expect(isSourceUri("s3://bucket/model")).toBe(true);
    expect(isSourceUri("/abs/path")).toBe(false);
    expect(isSourceUri("relative/path")).toBe(false);
  });
});
