/* eslint-disable @typescript-eslint/no-explicit-any -- mock registrations and ARM payloads are untyped JSON */
import * as http from "http";
import {
  applyTraffic,
  buildTrafficPutBody,
  diffTraffic,
  endpointArmId,
  endpointUrl,
  sameTraffic,
  tokenSource,
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

test("ARM id, URL, token source", () => {
  expect(endpointArmId(inputs())).toBe(ARM_ID);
  expect(endpointUrl(inputs({ armEndpoint: "https://management.azure.com/" }))).toBe(
    `https://management.azure.com${ARM_ID}?api-version=2025-12-01`,
  );
  expect(tokenSource({ AZURE_ACCESS_TOKEN: "tok" })).toEqual({ token: "tok" });
  expect(tokenSource({})).toEqual({
    file: "az",
    args: [
      "account",
      "get-access-token",
      "--resource",
      "https://management.azure.com/",
      "--query",
      "accessToken",
      "--output",
      "tsv",
    ],
  });
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

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let raw = "";
      req.on("data", (c) => (raw += c));
      req.on("end", (): void => {
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
        if (req.url!.startsWith("/operations/")) {
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
          json(202, {}, { "Azure-AsyncOperation": `${base}/operations/1` });
        } else {
          json(405, {});
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => server.close());
  beforeEach(() => {
    requests.length = 0;
    state = JSON.parse(JSON.stringify(current));
    pollsBeforeSuccess = 2;
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
});
