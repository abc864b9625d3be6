import * as http from "http";
import { AddressInfo } from "net";
import {
  authorizationHeader,
  createMlflowClient,
  resolveConnection,
  splitCredentials,
} from "../../providers/mlflow/client";
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

describe("connection settings", () => {
  it("falls back to the MLFLOW_TRACKING_* variables", () => {
    const env = {
      MLFLOW_TRACKING_URI: "http://mlflow:5000",
      MLFLOW_TRACKING_USERNAME: "u",
      MLFLOW_TRACKING_PASSWORD: "p",
      MLFLOW_TRACKING_TOKEN: "t",
    };
    expect(resolveConnection({}, env)).toEqual({
      trackingUri: "http://mlflow:5000",
      username: "u",
      password: "p",
      token: "t",
    });
    expect(
      resolveConnection({ trackingUri: "http://other:1", username: "x" }, env).trackingUri,
    ).toBe("http://other:1");
  });

  it("requires a tracking URI", () => {
    expect(() => resolveConnection({}, {})).toThrow(
      "MLflow tracking URI is not set: pass trackingUri or set MLFLOW_TRACKING_URI",
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
  });

  it("builds bearer and basic authorization", () => {
    expect(authorizationHeader({ token: "tok", username: "u", password: "p" })).toBe("Bearer tok");
    expect(authorizationHeader({ username: "u", password: "p" })).toBe("Basic dTpw");
    expect(authorizationHeader({ username: "u" })).toBeUndefined();
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
      const client = createMlflowClient({ trackingUri: srv.url, username: "u", password: "p" });
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
