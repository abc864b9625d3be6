import * as http from "http";
import { AddressInfo } from "net";
import {
  authorizationHeader,
  createMlflowClient,
  mlflowTrackingEnv,
  resolveConnection,
  splitCredentials,
} from "../../providers/mlflow/client";
import { MlflowConnectionInput, ResolvedAuth } from "../../providers/mlflow/connection";
import { hasErrorCode, isNotFound, MlflowError } from "../../providers/mlflow/errors";
import { errorText } from "../support/errorText";

/** A scripted loopback HTTP server: each request takes the next response from the script. */
async function scriptedServer(script: { status: number; body: unknown }[]) {
  const seen: { method: string; url: string; auth?: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      const next = script.shift() ?? { status: 500, body: { error_code: "INTERNAL_ERROR" } };
      res.writeHead(next.status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(next.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise((r) => server.close(r)) };
}

describe("connection settings: one credential policy", () => {
  const URI = "http://mlflow:5000";
  const ENV_BASIC = { MLFLOW_TRACKING_USERNAME: "env-user", MLFLOW_TRACKING_PASSWORD: "env-pass" };
  const ENV_TOKEN = { MLFLOW_TRACKING_TOKEN: "env-token" };
  const basic = (username: string, password: string) => ({
    kind: "basic" as const,
    username,
    password,
  });
  // [case, input, environment, expected credentials, expected source]
  const table: [string, MlflowConnectionInput, NodeJS.ProcessEnv, ResolvedAuth, string][] = [
    [
      "args win over the environment",
      { trackingUri: URI, auth: { username: "u", password: "p" } },
      { ...ENV_BASIC, ...ENV_TOKEN },
      basic("u", "p"),
      "auth",
    ],
    [
      "an args token wins over env basic",
      { trackingUri: URI, auth: { token: "t" } },
      ENV_BASIC,
      { kind: "token", token: "t" },
      "auth",
    ],
    [
      "sources never mix: args basic, env token ignored",
      { trackingUri: URI, auth: { username: "u", password: "p" } },
      ENV_TOKEN,
      basic("u", "p"),
      "auth",
    ],
    [
      "basic wins over a token in one source (as MLflow)",
      { trackingUri: URI, auth: { username: "u", password: "p", token: "t" } },
      {},
      basic("u", "p"),
      "auth",
    ],
    [
      "env fallback: basic",
      { trackingUri: URI },
      ENV_BASIC,
      basic("env-user", "env-pass"),
      "environment",
    ],
    [
      "env fallback: token",
      { trackingUri: URI },
      ENV_TOKEN,
      { kind: "token", token: "env-token" },
      "environment",
    ],
    [
      "env fallback: basic wins over token",
      { trackingUri: URI },
      { ...ENV_BASIC, ...ENV_TOKEN },
      basic("env-user", "env-pass"),
      "environment",
    ],
    [
      "empty args count as unset",
      { trackingUri: URI, auth: { username: "", password: "", token: "" } },
      ENV_TOKEN,
      { kind: "token", token: "env-token" },
      "environment",
    ],
    [
      "credentials in the URI come before the environment",
      { trackingUri: "http://ann:s%40cret@mlflow:5000/" },
      ENV_TOKEN,
      basic("ann", "s@cret"),
      "trackingUri",
    ],
    [
      "args come before credentials in the URI",
      { trackingUri: "http://ann:x@mlflow:5000", auth: { token: "t" } },
      {},
      { kind: "token", token: "t" },
      "auth",
    ],
    ["nothing anywhere", { trackingUri: URI }, {}, { kind: "none" }, "none"],
  ];
  it.each(table)("%s", (_case, input, env, auth, source) => {
    const conn = resolveConnection(input, env);
    expect(conn).toEqual({ baseUrl: "http://mlflow:5000", auth, source });
  });

  it("falls back to MLFLOW_TRACKING_URI, and an explicit URI wins", () => {
    expect(resolveConnection({}, { MLFLOW_TRACKING_URI: "http://env:1/" }).baseUrl).toBe(
      "http://env:1",
    );
    expect(
      resolveConnection({ trackingUri: "http://arg:2" }, { MLFLOW_TRACKING_URI: "http://env:1" })
        .baseUrl,
    ).toBe("http://arg:2");
  });

  it("requires a tracking URI", () => {
    expect(() => resolveConnection({}, {})).toThrow(
      "MLflow tracking URI is not set: pass trackingUri or set MLFLOW_TRACKING_URI",
    );
  });

  it("refuses half a basic credential, naming the setting and not the value", () => {
    expect(() =>
      resolveConnection({ trackingUri: URI, auth: { username: "u" } }, ENV_TOKEN),
    ).toThrow("MLflow credentials: auth.username is set but auth.password is not");
    expect(() =>
      resolveConnection({ trackingUri: URI, auth: { password: "hidden-1" } }, {}),
    ).toThrow("MLflow credentials: auth.password is set but auth.username is not");
    expect(() =>
      resolveConnection({ trackingUri: URI }, { MLFLOW_TRACKING_PASSWORD: "x" }),
    ).toThrow(
      "MLflow credentials: MLFLOW_TRACKING_PASSWORD is set but MLFLOW_TRACKING_USERNAME is not",
    );
    expect(() => resolveConnection({ trackingUri: "http://ann@mlflow:5000" }, {})).toThrow(
      "MLflow credentials: the user in trackingUri is set but a password in trackingUri is not",
    );
  });

  it("passes a local store URI (sqlite:, file:) through for MLflow's own client, not the REST client", () => {
    const conn = resolveConnection({ trackingUri: "sqlite:///tmp/mlflow.db" }, {});
    expect(conn).toEqual({
      baseUrl: "sqlite:///tmp/mlflow.db",
      auth: { kind: "none" },
      source: "none",
    });
    expect(() => createMlflowClient({ trackingUri: "sqlite:///tmp/mlflow.db" }, {})).toThrow(
      'MLflow tracking URI must be http(s), got "sqlite:" in ',
    );
  });

  it("moves credentials out of the URI", () => {
    expect(splitCredentials("http://ann:s%40cret@mlflow:5000/")).toEqual({
      baseUrl: "http://mlflow:5000",
      username: "ann",
      password: "s@cret",
    });
    expect(() => splitCredentials("ftp://mlflow")).toThrow(
      'MLflow tracking URI must be http(s), got "ftp:" in mlflow',
    );
    expect(() => splitCredentials("http://ann:secret-1@")).toThrow(
      "MLflow tracking URI is not a valid URL",
    );
  });

  it("builds bearer and basic authorization", () => {
    expect(authorizationHeader({ kind: "token", token: "tok" })).toBe("Bearer tok");
    expect(authorizationHeader(basic("u", "p"))).toBe("Basic dTpw");
    expect(authorizationHeader({ kind: "none" })).toBeUndefined();
  });

  it("hands child processes exactly the resolved credentials", () => {
    expect(
      mlflowTrackingEnv(
        resolveConnection({ trackingUri: "http://ann:pw@mlflow:5000/" }, ENV_TOKEN),
      ),
    ).toEqual({
      MLFLOW_TRACKING_URI: "http://mlflow:5000",
      MLFLOW_TRACKING_USERNAME: "ann",
      MLFLOW_TRACKING_PASSWORD: "pw",
    });
    expect(mlflowTrackingEnv(resolveConnection({ trackingUri: URI }, ENV_TOKEN))).toEqual({
      MLFLOW_TRACKING_URI: URI,
      MLFLOW_TRACKING_TOKEN: "env-token",
    });
    expect(mlflowTrackingEnv(resolveConnection({ trackingUri: URI }, {}))).toEqual({
      MLFLOW_TRACKING_URI: URI,
    });
  });
});

describe("MLflow client against a scripted server", () => {
  it("retries idempotent calls on 503 and 429, then succeeds", async () => {
    const srv = await scriptedServer([
      { status: 503, body: {} },
      { status: 429, body: {} },
      { status: 200, body: { ok: true } },
    ]);
    try {
      const client = createMlflowClient({ trackingUri: srv.url, retries: 3 });
      await expect(client.call("GET", "/x", { idempotent: true })).resolves.toEqual({ ok: true });
      expect(srv.seen).toHaveLength(3);
    } finally {
      await srv.close();
    }
  });

  it("does not repeat a non-idempotent create that reached the server", async () => {
    const srv = await scriptedServer([
      { status: 503, body: { error_code: "TEMPORARILY_UNAVAILABLE" } },
    ]);
    try {
      const client = createMlflowClient({ trackingUri: srv.url, retries: 3 });
      await expect(client.call("POST", "/create", { body: {} })).rejects.toThrow(
        "MLflow POST /create failed with 503 TEMPORARILY_UNAVAILABLE: Request failed with status code 503",
      );
      expect(srv.seen).toHaveLength(1);
    } finally {
      await srv.close();
    }
  });

  it("turns MLflow errors into typed errors and sends credentials", async () => {
    const srv = await scriptedServer([
      { status: 404, body: { error_code: "RESOURCE_DOES_NOT_EXIST", message: "no such model" } },
    ]);
    try {
      const client = createMlflowClient({
        trackingUri: srv.url,
        auth: { username: "u", password: "p" },
      });
      const err = await client
        .call("GET", "/api/2.0/mlflow/registered-models/get", {
          query: { name: "m" },
          idempotent: true,
        })
        .catch((e) => e);
      expect(err).toBeInstanceOf(MlflowError);
      expect(err).toMatchObject({
        errorCode: "RESOURCE_DOES_NOT_EXIST",
        status: 404,
        method: "GET",
        path: "/api/2.0/mlflow/registered-models/get",
        message:
          "MLflow GET /api/2.0/mlflow/registered-models/get failed with 404 RESOURCE_DOES_NOT_EXIST: no such model",
      });
      expect(isNotFound(err)).toBe(true);
      expect(hasErrorCode(err, "RESOURCE_DOES_NOT_EXIST")).toBe(true);
      expect(srv.seen[0]).toMatchObject({
        url: "/api/2.0/mlflow/registered-models/get?name=m",
        auth: "Basic dTpw",
      });
    } finally {
      await srv.close();
    }
  });

  it("sends the resource's credentials even when the environment holds others", async () => {
    const srv = await scriptedServer([
      { status: 200, body: {} },
      { status: 200, body: {} },
    ]);
    const saved = process.env.MLFLOW_TRACKING_TOKEN;
    process.env.MLFLOW_TRACKING_TOKEN = "operator-token";
    try {
      await createMlflowClient({
        trackingUri: srv.url,
        auth: { username: "u", password: "p" },
      }).call("GET", "/a");
      await createMlflowClient({ trackingUri: srv.url }).call("GET", "/b");
      expect(srv.seen.map((r) => r.auth)).toEqual(["Basic dTpw", "Bearer operator-token"]);
    } finally {
      if (saved === undefined) {
        delete process.env.MLFLOW_TRACKING_TOKEN;
      } else {
        process.env.MLFLOW_TRACKING_TOKEN = saved;
      }
      await srv.close();
    }
  });

  it("reports an unreachable server with a typed error and no credentials", async () => {
    const srv = await scriptedServer([]);
    const url = srv.url;
    await srv.close();
    const client = createMlflowClient({
      trackingUri: url.replace("http://", "http://admin:topsecret@"),
      retries: 1,
    });
    const err = await client.call("GET", "/health", { idempotent: true }).catch((e) => e);
    expect(err).toMatchObject({
      errorCode: "UNREACHABLE",
      status: undefined,
      message: `MLflow at ${url} is unreachable (ECONNREFUSED) on GET /health`,
    });
    // Message, stack, hidden properties and cause: JSON.stringify(err) shows none of an Error's own text.
    expect(errorText(err)).toContain(`MLflow at ${url} is unreachable`);
    expect(errorText(err)).not.toContain("topsecret");
  });

  it("times out every call", async () => {
    const server = http.createServer(() => undefined); // never answers
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const client = createMlflowClient({ trackingUri: url, timeoutMs: 200, retries: 0 });
      await expect(client.call("GET", "/slow", { idempotent: true })).rejects.toMatchObject({
        errorCode: "TIMEOUT",
        message: `MLflow at ${url} is unreachable (ECONNABORTED) on GET /slow`,
      });
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
