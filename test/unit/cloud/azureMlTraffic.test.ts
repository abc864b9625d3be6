/* eslint-disable @typescript-eslint/no-explicit-any -- mock registrations and ARM payloads are untyped JSON */
import * as http from "http";
import { DefaultAzureCredential } from "@azure/identity";
import {
  applyTraffic,
  armScope,
  armToken,
  buildTrafficPutBody,
  defaultCredential,
  diffTraffic,
  endpointArmId,
  endpointUrl,
  retryDelayMs,
  sameTraffic,
  trafficProvider,
  type AzureMlTrafficInputs,
} from "../../../providers/azureMlTraffic";

const SUB = "00000000-0000-0000-0000-000000000001";
const inputs = (over: Partial<AzureMlTrafficInputs> = {}): AzureMlTrafficInputs => ({
  subscriptionId: SUB,
  resourceGroupName: "ml-rg",
  workspaceName: "ml-ws",
  endpointName: "iris-prod",
  traffic: { blue: 90, green: 10 },
  endpointSpecHash: "h1",
  armEndpoint: "https://management.azure.com",
  apiVersion: "2025-12-01",
  ...over,
});
const ARM_ID = `/subscriptions/${SUB}/resourceGroups/ml-rg/providers/Microsoft.MachineLearningServices/workspaces/ml-ws/onlineEndpoints/iris-prod`;

const current = {
  id: ARM_ID,
  name: "iris-prod",
  location: "westeurope",
  kind: "Managed",
  tags: { team: "ml" },
  identity: { type: "SystemAssigned", principalId: "p", tenantId: "t" },
  systemData: { createdBy: "me" },
  properties: {
    authMode: "Key",
    description: "d",
    provisioningState: "Succeeded",
    scoringUri: "https://iris-prod.westeurope.inference.ml.azure.com/score",
    swaggerUri: "https://x/swagger.json",
    traffic: { blue: 100 },
  },
};

test("ARM id, URL, token scope and source", async () => {
  expect(endpointArmId(inputs())).toBe(ARM_ID);
  expect(endpointUrl(inputs({ armEndpoint: "https://management.azure.com/" }))).toBe(
    `https://management.azure.com${ARM_ID}?api-version=2025-12-01`,
  );
  expect(armScope("https://management.azure.com/")).toBe("https://management.azure.com/.default");
  expect(armScope("https://management.usgovcloudapi.net")).toBe(
    "https://management.usgovcloudapi.net/.default",
  );
  expect(await defaultCredential({ AZURE_ACCESS_TOKEN: "tok" }).getToken("s")).toEqual({
    token: "tok",
  });
  // No fixed token: @azure/identity's chain (service principal, managed identity, az login...).
  expect(defaultCredential({})).toBeInstanceOf(DefaultAzureCredential);
});

test("a credential that fails or returns nothing is a clear error", async () => {
  await expect(
    armToken(
      { getToken: () => Promise.reject(new Error("AADSTS700016: no app\nmore")) },
      "s/.default",
    ),
  ).rejects.toThrow(
    new Error(
      "AzureMlTraffic: no ARM token for s/.default: log in with az, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET or AZURE_ACCESS_TOKEN (AADSTS700016: no app)",
    ),
  );
  await expect(armToken({ getToken: async () => null }, "s/.default")).rejects.toThrow(
    new Error("AzureMlTraffic: no ARM token for s/.default: the credential returned none"),
  );
});

test("retry delays: Retry-After seconds or date, else doubling backoff, at most 60 s", () => {
  expect(retryDelayMs("3", 1, 100)).toBe(3000);
  expect(retryDelayMs("Thu, 01 Jan 1970 00:00:10 GMT", 1, 100, 4000)).toBe(6000);
  expect(retryDelayMs(undefined, 1, 100)).toBe(100);
  expect(retryDelayMs(undefined, 3, 100)).toBe(400);
  expect(retryDelayMs("600", 1, 100)).toBe(60_000);
});

test("PUT body keeps the endpoint, drops read-only fields, replaces traffic", () => {
  expect(buildTrafficPutBody(current, { blue: 90, green: 10 })).toEqual({
    location: "westeurope",
    kind: "Managed",
    tags: { team: "ml" },
    identity: { type: "SystemAssigned" },
    properties: { authMode: "Key", description: "d", traffic: { blue: 90, green: 10 } },
  });
});

test("diff: traffic or endpoint spec -> update; identity of the endpoint -> replace; zero entries ignored", () => {
  const olds = { ...inputs(), endpointId: ARM_ID };
  expect(diffTraffic(olds, inputs())).toEqual({
    changes: false,
    replaces: [],
    deleteBeforeReplace: false,
  });
  expect(diffTraffic(olds, inputs({ traffic: { green: 10, blue: 90 } })).changes).toBe(false);
  expect(diffTraffic(olds, inputs({ traffic: { blue: 100 } }))).toEqual({
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
  expect(diffTraffic(olds, inputs({ endpointSpecHash: "h2" }))).toEqual({
    changes: true,
    replaces: [],
    deleteBeforeReplace: false,
  });
  expect(diffTraffic(olds, inputs({ endpointName: "other" }))).toEqual({
    changes: true,
    replaces: ["endpointName"],
    deleteBeforeReplace: false,
  });
  expect(sameTraffic({ blue: 100, green: 0 }, { blue: 100 })).toBe(true);
});

describe("against a fake ARM on loopback", () => {
  let server: http.Server;
  let base: string;
  const requests: { method: string; url: string; auth?: string; body?: any }[] = [];
  let state: any;
  let pollsBeforeSuccess = 2;
  /** Transient faults, one per request, in order: throttled, unavailable, reset, no answer. */
  let faults: ("429" | "503" | "reset" | "hang")[] = [];
  /** How the PUT's long-running operation is reported. */
  let lro: "async" | "location" = "async";

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let raw = "";
      req.on("data", (c) => (raw += c));
      req.on("end", (): void => {
        const fault = faults.shift();
        if (fault) {
          requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization });
          if (fault === "reset") {
            req.socket.destroy();
          } else if (fault !== "hang") {
            res
              .writeHead(Number(fault), { "Retry-After": "0", "Content-Type": "application/json" })
              .end("{}");
          }
          return;
        }
        const body = raw ? JSON.parse(raw) : undefined;
        requests.push({
          method: req.method!,
          url: req.url!,
          auth: req.headers.authorization,
          body,
        });
        const json = (code: number, data: unknown, headers: Record<string, string> = {}) =>
          res
            .writeHead(code, { "Content-Type": "application/json", ...headers })
            .end(JSON.stringify(data));
        if (req.url!.startsWith("/locations/")) {
          pollsBeforeSuccess -= 1;
          json(pollsBeforeSuccess > 0 ? 202 : 200, {}, { "Retry-After": "0" });
        } else if (req.url!.startsWith("/operations/")) {
          pollsBeforeSuccess -= 1;
          json(
            200,
            { status: pollsBeforeSuccess > 0 ? "InProgress" : "Succeeded" },
            { "Retry-After": "0" },
          );
        } else if (!req.url!.startsWith(`${ARM_ID}?api-version=2025-12-01`)) {
          json(404, { error: { code: "NotFound" } });
        } else if (req.method === "GET") {
          json(200, state);
        } else if (req.method === "PUT") {
          state = {
            ...state,
            properties: { ...state.properties, traffic: body.properties.traffic },
          };
          json(
            202,
            {},
            lro === "async"
              ? { "Azure-AsyncOperation": `${base}/operations/1` }
              : { Location: `${base}/locations/1` },
          );
        } else {
          json(405, {});
        }
      });
    });
    // A free port in 33000-33499 (this suite's range).
    for (let port = 33000 + Math.floor(Math.random() * 400); ; port++) {
      const ok = await new Promise<boolean>((resolve) => {
        server.once("error", () => resolve(false));
        server.listen(port, "127.0.0.1", () => resolve(true));
      });
      if (ok) {
        base = `http://127.0.0.1:${port}`;
        break;
      }
    }
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });
  beforeEach(() => {
    requests.length = 0;
    state = JSON.parse(JSON.stringify(current));
    pollsBeforeSuccess = 2;
    faults = [];
    lro = "async";
    process.env.AZURE_ACCESS_TOKEN = "test-token";
  });
  afterEach(() => delete process.env.AZURE_ACCESS_TOKEN);

  test("create: GET, PUT with the split, follow the async operation, verify", async () => {
    const created = await trafficProvider.create(inputs({ armEndpoint: base }));
    expect(created.id).toBe(ARM_ID);
    expect(created.outs).toEqual({ ...inputs({ armEndpoint: base }), endpointId: ARM_ID });
    expect(JSON.stringify(created.outs)).not.toContain("test-token");
    expect(requests.map((r) => `${r.method} ${r.url.split("?")[0]}`)).toEqual([
      `GET ${ARM_ID}`,
      `PUT ${ARM_ID}`,
      "GET /operations/1",
      "GET /operations/1",
      `GET ${ARM_ID}`,
    ]);
    expect(requests.every((r) => r.auth === "Bearer test-token")).toBe(true);
    expect(requests[1].body.properties.traffic).toEqual({ blue: 90, green: 10 });
    expect(state.properties.traffic).toEqual({ blue: 90, green: 10 });
  });

  test("read reports the real traffic; delete drains it to zero", async () => {
    state.properties.traffic = { blue: 50, green: 50 };
    const props = { ...inputs({ armEndpoint: base }), endpointId: ARM_ID };
    expect(await trafficProvider.read!(ARM_ID, props)).toEqual({
      id: ARM_ID,
      props: { ...props, traffic: { blue: 50, green: 50 } },
    });
    await trafficProvider.delete!(ARM_ID, props);
    expect(state.properties.traffic).toEqual({ blue: 0, green: 0 });
    expect(await trafficProvider.read!(ARM_ID, { ...props, endpointName: "gone" })).toEqual({});
  });

  test("an operation that never finishes rejects with partial state after its deadline", async () => {
    pollsBeforeSuccess = 1000;
    const err = await applyTraffic(inputs({ armEndpoint: base }), { blue: 100 }, 50, 10).catch(
      (e) => e,
    );
    expect(err.message).toBe(
      "AzureMlTraffic: setting traffic on iris-prod did not finish within 0.05s",
    );
    expect(err.id).toBe(ARM_ID);
    expect(err.properties.endpointId).toBe(ARM_ID);
  });

  test("a missing endpoint is a clear error", async () => {
    await expect(
      applyTraffic(inputs({ armEndpoint: base, endpointName: "nope" }), { blue: 100 }),
    ).rejects.toThrow(
      /^AzureMlTraffic: GET \/subscriptions\/.*\/onlineEndpoints\/nope returned 404/,
    );
  });

  const fast = { backoffMs: 1, requestTimeoutMs: 300 };
  const calls = () => requests.map((r) => `${r.method} ${r.url.split("?")[0]}`);

  test("throttling, 5xx, a reset connection and a request without answer are retried", async () => {
    faults = ["429", "reset", "503", "hang"];
    const traffic = await applyTraffic(
      inputs({ armEndpoint: base }),
      { blue: 100 },
      60_000,
      1,
      fast,
    );
    expect(traffic).toEqual({ blue: 100 });
    expect(calls().slice(0, 5)).toEqual([
      `GET ${ARM_ID}`, // 429
      `GET ${ARM_ID}`, // reset
      `GET ${ARM_ID}`, // 503
      `GET ${ARM_ID}`, // no answer within 300 ms
      `GET ${ARM_ID}`, // answered
    ]);
    expect(requests[5]).toMatchObject({ method: "PUT" });
  });

  test("a persistent failure gives up after the attempts, naming the call and the last status", async () => {
    faults = ["503", "503", "503"];
    await expect(
      applyTraffic(inputs({ armEndpoint: base }), { blue: 100 }, 60_000, 1, {
        ...fast,
        attempts: 3,
      }),
    ).rejects.toThrow(
      new Error(`AzureMlTraffic: GET ${ARM_ID} failed after 3 attempts (last: 503)`),
    );
  });

  test("a token is asked for before every request, so a refreshed one is used", async () => {
    let n = 0;
    const scopes: unknown[] = [];
    const credential = {
      getToken: async (scope: string | string[]) => {
        scopes.push(scope);
        return { token: `token-${++n}` };
      },
    };
    delete process.env.AZURE_ACCESS_TOKEN;
    await applyTraffic(inputs({ armEndpoint: base }), { blue: 100 }, 60_000, 1, {
      ...fast,
      credential,
    });
    expect(requests.map((r) => r.auth)).toEqual(requests.map((_, k) => `Bearer token-${k + 1}`));
    expect(new Set(scopes)).toEqual(new Set([`${base}/.default`]));
  });

  test("a Location-only long-running operation is followed until it stops answering 202", async () => {
    lro = "location";
    pollsBeforeSuccess = 3;
    await applyTraffic(inputs({ armEndpoint: base }), { blue: 100 }, 60_000, 1, fast);
    expect(calls()).toEqual([
      `GET ${ARM_ID}`,
      `PUT ${ARM_ID}`,
      "GET /locations/1",
      "GET /locations/1",
      "GET /locations/1",
      `GET ${ARM_ID}`,
    ]);
  });
});
