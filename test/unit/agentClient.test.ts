import * as http from "http";
import { AgentError, createAgentClient } from "../../providers/agent/client";
import {
  deleteAgentDeployment,
  diffAgentDeployment,
  putDeployment,
  readAgentDeployment,
  type AgentDeploymentState,
} from "../../providers/agent/deploymentCore";
import { checkAgentServer, agentConfig } from "../../providers/agent/serverCore";
import { listenOnFreePort } from "../support/env";

// The agent client's retry policy and typed errors, and the AgentDeployment core's read/delete, against
// a scripted HTTP server on loopback that answers as the agent does (agent/model_serving_agent/api.py).
const TOKEN = "unit-agent-token-1234567890";

interface Scripted {
  url: string;
  hits: { method: string; path: string; auth?: string; body: string }[];
  close(): Promise<void>;
}

async function scripted(
  answer: (req: http.IncomingMessage, n: number) => { status: number; body: unknown },
): Promise<Scripted> {
  const hits: Scripted["hits"] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      hits.push({ method: req.method!, path: req.url!, auth: req.headers.authorization, body });
      const a = answer(req, hits.length);
      res.writeHead(a.status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(a.body));
    });
  });
  const port = await listenOnFreePort(server);
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const STATUS = {
  name: "iris",
  model_uri: "models:/iris/2",
  status: "serving",
  front_port: 5001,
  front_url: "http://127.0.0.1:5001/invocations",
  path_url: "http://127.0.0.1:5100/models/iris/invocations",
  verified_with: "sample_input",
  challenger: null,
};

describe("the agent client", () => {
  let server: Scripted | undefined;
  afterEach(async () => server?.close());

  it("never retries a 422 and reports the agent's message and the backend's log lines", async () => {
    server = await scripted(() => ({
      status: 422,
      body: { error: "models:/iris/3 failed its sample", log_tail: ["ModuleNotFoundError: x"] },
    }));
    const client = createAgentClient({ url: server.url, token: TOKEN, retries: 3 });
    const err = (await client
      .call("PUT", "/models/iris", { body: { model_uri: "models:/iris/3" } })
      .catch((e) => e)) as AgentError;
    expect(err).toBeInstanceOf(AgentError);
    expect(err.status).toBe(422);
    expect(err.agentMessage).toBe("models:/iris/3 failed its sample");
    expect(err.logTail).toEqual(["ModuleNotFoundError: x"]);
    expect(err.message).toBe(
      "agent PUT /models/iris failed with 422: models:/iris/3 failed its sample\n" +
        "the backend's last log lines:\nModuleNotFoundError: x",
    );
    expect(server.hits).toHaveLength(1);
    expect(server.hits[0].auth).toBe(`Bearer ${TOKEN}`);
  });

  it("retries a PUT on 503 (the agent is adopting) until it answers", async () => {
    server = await scripted((_, n) =>
      n < 3
        ? { status: 503, body: { error: "still bringing back" } }
        : { status: 200, body: STATUS },
    );
    const client = createAgentClient({ url: server.url, token: TOKEN, retries: 4 });
    await expect(client.call("PUT", "/models/iris", { body: {} })).resolves.toEqual(STATUS);
    expect(server.hits).toHaveLength(3);
  });

  it("retries a GET on 502 but a PUT not", async () => {
    server = await scripted(() => ({ status: 502, body: { error: "bad gateway" } }));
    const client = createAgentClient({ url: server.url, token: TOKEN, retries: 2 });
    await expect(client.call("GET", "/models/iris")).rejects.toThrow("failed with 502");
    expect(server.hits).toHaveLength(3);
    await expect(client.call("PUT", "/models/iris", { body: {} })).rejects.toThrow(
      "failed with 502",
    );
    expect(server.hits).toHaveLength(4);
  });

  it("names the token setting on a 401 and never shows the token", async () => {
    server = await scripted(() => ({ status: 401, body: { error: "missing or wrong token" } }));
    const err = (await createAgentClient({ url: server.url, token: TOKEN })
      .call("GET", "/models")
      .catch((e) => e)) as AgentError;
    expect(err.message).toBe(
      "agent GET /models failed with 401: missing or wrong token; check the secret config model-serving:agentToken (the agent's token)",
    );
    expect(JSON.stringify(err)).not.toContain(TOKEN);
  });

  it("reports an unreachable agent with its URL and the network code", async () => {
    server = await scripted(() => ({ status: 200, body: {} }));
    const url = server.url;
    await server.close();
    server = undefined;
    const err = (await createAgentClient({ url, token: TOKEN, retries: 1 })
      .call("GET", "/health")
      .catch((e) => e)) as AgentError;
    expect(err.status).toBeUndefined();
    expect(err.message).toBe(`the agent at ${url} is unreachable (ECONNREFUSED) on GET /health`);
  });

  it("refuses a URL with credentials", () => {
    expect(() => createAgentClient({ url: "http://u:p@host:5100", token: TOKEN })).toThrow(
      "agent url: must be an http(s) URL without credentials (got http://host:5100)",
    );
  });
});

describe("the AgentDeployment core", () => {
  let server: Scripted | undefined;
  afterEach(async () => server?.close());
  const args = (url: string) => ({
    agentUrl: url,
    token: TOKEN,
    modelName: "iris",
    modelUri: "models:/iris/2",
    startTimeoutSeconds: 30,
  });

  it("PUTs the model URI, challenger and sample, and records the agent's front URL", async () => {
    server = await scripted(() => ({
      status: 200,
      body: { ...STATUS, challenger: { model_uri: "models:/iris/1", weight: 0.25 }, changed: true },
    }));
    const state = await putDeployment({
      ...args(server.url),
      challenger: { modelUri: "models:/iris/1", weight: 0.25 },
      sampleInput: { inputs: [[1]] },
    });
    expect(JSON.parse(server.hits[0].body)).toEqual({
      model_uri: "models:/iris/2",
      sample_input: { inputs: [[1]] },
      challenger: { model_uri: "models:/iris/1", weight: 0.25, sample_input: { inputs: [[1]] } },
    });
    expect(state).toMatchObject({
      url: "http://127.0.0.1:5001/invocations",
      servedPort: 5001,
      challenger: { modelUri: "models:/iris/1", weight: 0.25 },
    });
  });

  it("read: a model the agent no longer serves is gone; what it serves replaces the state", async () => {
    let served = true;
    server = await scripted(() =>
      served
        ? { status: 200, body: { ...STATUS, model_uri: "models:/iris/1" } }
        : { status: 404, body: { error: "model iris is not deployed" } },
    );
    const recorded = {
      ...args(server.url),
      url: "",
      pathUrl: "",
      servedPort: 5001,
      verifiedWith: "",
    };
    expect(await readAgentDeployment(recorded)).toMatchObject({ modelUri: "models:/iris/1" });
    expect(Object.values((await readAgentDeployment(recorded))!)).not.toContain(undefined);
    served = false;
    expect(await readAgentDeployment(recorded)).toBeUndefined();
    await expect(deleteAgentDeployment(recorded)).resolves.toBeUndefined(); // 404 = already gone
  });

  it("read keeps the state (with a warning) when the agent does not answer", async () => {
    const lines: string[] = [];
    const recorded = {
      ...args("http://127.0.0.1:1"),
      url: "u",
      pathUrl: "p",
      servedPort: 5001,
      verifiedWith: "",
    } as AgentDeploymentState;
    expect(await readAgentDeployment(recorded, (l) => lines.push(l))).toBe(recorded);
    expect(lines[0]).toMatch(/^warning: the agent at http:\/\/127\.0\.0\.1:1 is unreachable/);
  });

  it("diff: a new URI updates in place, another agent or name replaces", () => {
    const olds = {
      ...args("http://a:5100"),
      url: "u",
      pathUrl: "p",
      servedPort: 5001,
      verifiedWith: "",
    };
    expect(
      diffAgentDeployment(olds, { ...args("http://a:5100"), modelUri: "models:/iris/3" }),
    ).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    expect(diffAgentDeployment(olds, { ...args("http://b:5100") }).replaces).toEqual(["agentUrl"]);
    expect(diffAgentDeployment(olds, args("http://a:5100")).changes).toBe(false);
  });
});

describe("the LocalAgent core", () => {
  it("writes an agent config without the token", () => {
    const config = agentConfig({
      python: "/venv/bin/python",
      agentDir: "/repo/agent",
      host: "127.0.0.1",
      port: 5100,
      frontPorts: { first: 5001, last: 5099 },
      backendPorts: { first: 15001, last: 15999 },
      dataDir: "/run/agent",
      trackingUri: "http://127.0.0.1:5000",
      token: TOKEN,
      startTimeoutSeconds: 300,
      backendStartTimeoutSeconds: 180,
    });
    expect(config).toEqual({
      host: "127.0.0.1",
      port: 5100,
      front_ports: { first: 5001, last: 5099 },
      backend_ports: { first: 15001, last: 15999 },
      state_file: "/run/agent/state.json",
      log_dir: "/run/agent/logs",
      token_file: "/run/agent/token",
      mlflow_tracking_uri: "http://127.0.0.1:5000",
      python: "/venv/bin/python",
      backend_start_timeout_seconds: 180,
    });
    expect(JSON.stringify(config)).not.toContain(TOKEN);
  });

  it("check: overlapping ranges and an API port inside one", () => {
    expect(
      checkAgentServer({
        port: 6005,
        frontPorts: { first: 6000, last: 6010 },
        backendPorts: { first: 6010, last: 6020 },
      }),
    ).toEqual([
      {
        property: "frontPorts",
        reason: "agent.frontPorts 6000-6010 overlap agent.backendPorts 6010-6020",
      },
      { property: "port", reason: "agent.port 6005 lies inside agent.frontPorts 6000-6010" },
    ]);
  });
});
