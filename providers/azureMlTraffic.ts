/**
 * AzureMlTraffic: sets an Azure ML online endpoint's traffic split once its deployments exist
 * (the OnlineEndpoint resource cannot: at its creation the deployments it would name do not exist).
 *
 * Contract
 * - id: the endpoint's ARM id (natural, stable).
 * - create/update: GET the endpoint, PUT it back with properties.traffic replaced (ARM's PATCH for
 *   online endpoints accepts only identity and tags, so traffic needs the read-modify-write PUT the
 *   az CLI also does), then follow Azure-AsyncOperation until Succeeded, with its own deadline.
 *   A PUT that was accepted but did not finish rejects with partial state.
 * - diff: subscription/resource group/workspace/endpoint -> replace; traffic or endpointSpecHash
 *   (the endpoint's own inputs changed, and its PUT may have reset traffic) -> update.
 * - read: the endpoint's real traffic; a missing endpoint is reported as gone.
 * - delete: sets all traffic to 0 so the deployments can be deleted after it; a missing endpoint is fine.
 * - token: AZURE_ACCESS_TOKEN from the environment, else @azure/identity's DefaultAzureCredential
 *   (service principal, workload or managed identity, az login), asked for before every request so it
 *   is refreshed; never an input, never in outputs.
 * - every call: a deadline per request, retries on 408/429/5xx and network errors (Retry-After, else
 *   exponential backoff); the PUT's long-running operation is followed by Azure-AsyncOperation or
 *   Location. Not the ARM SDK: @azure/arm-machinelearning 2.1.1, the newest on npm, pins api-version 2022-10-01,
 *   whose read-modify-write PUT would drop what newer versions hold (e.g. the AADToken auth mode).
 * Provider methods run in another process: every module is required inside the functions below.
 */
import * as pulumi from "@pulumi/pulumi";

export interface AzureMlTrafficInputs {
  subscriptionId: string;
  resourceGroupName: string;
  workspaceName: string;
  endpointName: string;
  /** deployment name -> percent, summing to 100. */
  traffic: Record<string, number>;
  /** Changes whenever the endpoint's declared inputs change, so traffic is re-applied after its PUT. */
  endpointSpecHash: string;
  /** ARM base URL (override only for tests or sovereign clouds). */
  armEndpoint: string;
  apiVersion: string;
}

export interface AzureMlTrafficOutputs extends AzureMlTrafficInputs {
  endpointId: string;
}

export const AZUREML_API_VERSION = "2025-12-01";

export function endpointArmId(
  i: Pick<
    AzureMlTrafficInputs,
    "subscriptionId" | "resourceGroupName" | "workspaceName" | "endpointName"
  >,
): string {
  return (
    `/subscriptions/${encodeURIComponent(i.subscriptionId)}/resourceGroups/${encodeURIComponent(i.resourceGroupName)}` +
    `/providers/Microsoft.MachineLearningServices/workspaces/${encodeURIComponent(i.workspaceName)}` +
    `/onlineEndpoints/${encodeURIComponent(i.endpointName)}`
  );
}

export function endpointUrl(i: AzureMlTrafficInputs): string {
  return `${i.armEndpoint.replace(/\/+$/, "")}${endpointArmId(i)}?api-version=${encodeURIComponent(i.apiVersion)}`;
}

/** The PUT body: the endpoint as read, minus read-only fields, with traffic replaced. */
export function buildTrafficPutBody(
  current: Record<string, unknown>,
  traffic: Record<string, number>,
): Record<string, unknown> {
  const properties = { ...((current.properties as Record<string, unknown>) ?? {}) };
  for (const readOnly of ["provisioningState", "scoringUri", "swaggerUri"]) {
    delete properties[readOnly];
  }
  const body: Record<string, unknown> = {
    location: current.location,
    properties: { ...properties, traffic },
  };
  for (const key of ["identity", "kind", "sku", "tags"]) {
    if (current[key] !== undefined && current[key] !== null) {
      body[key] = current[key];
    }
  }
  const identity = body.identity as Record<string, unknown> | undefined;
  if (identity) {
    body.identity = {
      type: identity.type,
      ...(identity.userAssignedIdentities
        ? { userAssignedIdentities: identity.userAssignedIdentities }
        : {}),
    };
  }
  return body;
}

/** What @azure/identity's credentials offer (TokenCredential), so tests can inject their own. */
export interface TokenCredentialLike {
  getToken(scopes: string | string[]): Promise<{ token: string } | null>;
}

/** How the ARM calls run: token source, per-request deadline, retries. */
export interface ArmCallOptions {
  /** Default: AZURE_ACCESS_TOKEN if set, else @azure/identity's DefaultAzureCredential. */
  credential?: TokenCredentialLike;
  /** Deadline of one HTTP request; default 60 s. */
  requestTimeoutMs?: number;
  /** Attempts per call on throttling (429), 408, 5xx and network errors; default 5. */
  attempts?: number;
  /** First backoff when ARM sends no Retry-After (doubling, at most 60 s); default 2 s. */
  backoffMs?: number;
}

/** The token scope of an ARM endpoint (public or sovereign cloud). */
export function armScope(armEndpoint: string): string {
  return `${armEndpoint.replace(/\/+$/, "")}/.default`;
}

/**
 * The credential the provider uses: a fixed AZURE_ACCESS_TOKEN (CI), else DefaultAzureCredential
 * (environment service principal, workload identity, managed identity, az/azd CLI login), which
 * caches tokens and refreshes them before they expire.
 */
export function defaultCredential(env: Record<string, string | undefined>): TokenCredentialLike {
  const fixed = env.AZURE_ACCESS_TOKEN;
  if (fixed) {
    return { getToken: async () => ({ token: fixed }) };
  }
  const identity: typeof import("@azure/identity") = require("@azure/identity");
  return new identity.DefaultAzureCredential();
}

/** A token for `scope`, asked for before every request (the credential refreshes it). */
export async function armToken(credential: TokenCredentialLike, scope: string): Promise<string> {
  let token: string | undefined;
  try {
    token = (await credential.getToken(scope))?.token;
  } catch (err) {
    throw new Error(
      `AzureMlTraffic: no ARM token for ${scope}: log in with az, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET or AZURE_ACCESS_TOKEN (${String((err as Error).message).split("\n")[0]})`,
    );
  }
  if (!token) {
    throw new Error(`AzureMlTraffic: no ARM token for ${scope}: the credential returned none`);
  }
  return token;
}

/** Whether an ARM answer is worth another attempt. */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** How long to wait before attempt `attempt + 1`: ARM's Retry-After, else exponential backoff. */
export function retryDelayMs(
  retryAfter: string | undefined,
  attempt: number,
  backoffMs: number,
  now = Date.now(),
): number {
  if (retryAfter !== undefined && retryAfter !== "") {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) {
      return Math.min(Math.max(seconds, 0) * 1000, 60_000);
    }
    const at = Date.parse(retryAfter);
    if (Number.isFinite(at)) {
      return Math.min(Math.max(at - now, 0), 60_000);
    }
  }
  return Math.min(backoffMs * 2 ** (attempt - 1), 60_000);
}

interface ArmResponse {
  status: number;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- ARM JSON
  headers: Record<string, string | undefined>;
}

/** One ARM call with a fresh token, a deadline per request and retries on transient failures. */
export async function armCall(
  method: "GET" | "PUT",
  url: string,
  what: string,
  options: ArmCallOptions & { scope: string },
  body?: unknown,
): Promise<ArmResponse> {
  const axios: typeof import("axios").default = require("axios");
  const credential = options.credential ?? defaultCredential(process.env);
  const attempts = options.attempts ?? 5;
  const backoffMs = options.backoffMs ?? 2000;
  let last = "";
  for (let attempt = 1; ; attempt++) {
    const token = await armToken(credential, options.scope);
    let retryAfter: string | undefined;
    try {
      const res = await axios.request({
        method,
        url,
        data: body,
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        timeout: options.requestTimeoutMs ?? 60_000,
        validateStatus: () => true,
      });
      const headers = Object.fromEntries(
        Object.entries(res.headers).map(([k, v]) => [
          k.toLowerCase(),
          v === undefined ? v : String(v),
        ]),
      );
      if (!retryableStatus(res.status)) {
        return { status: res.status, data: res.data, headers };
      }
      last = `${res.status}`;
      retryAfter = headers["retry-after"];
    } catch (err) {
      const e = err as { code?: string; message?: string };
      last = e.code ?? String(e.message);
    }
    if (attempt >= attempts) {
      throw new Error(
        `AzureMlTraffic: ${method} ${what} failed after ${attempts} attempts (last: ${last})`,
      );
    }
    await new Promise((r) => setTimeout(r, retryDelayMs(retryAfter, attempt, backoffMs)));
  }
}

export function sameTraffic(
  a: Record<string, number> | undefined,
  b: Record<string, number> | undefined,
): boolean {
  const norm = (t: Record<string, number> | undefined) =>
    JSON.stringify(
      Object.entries(t ?? {})
        .filter(([, v]) => v !== 0)
        .sort(([x], [y]) => x.localeCompare(y)),
    );
  return norm(a) === norm(b);
}

export function diffTraffic(
  olds: AzureMlTrafficOutputs,
  news: AzureMlTrafficInputs,
): pulumi.dynamic.DiffResult {
  const replaces = (
    ["subscriptionId", "resourceGroupName", "workspaceName", "endpointName"] as const
  ).filter((k) => olds[k] !== news[k]);
  const changed =
    replaces.length > 0 ||
    !sameTraffic(olds.traffic, news.traffic) ||
    olds.endpointSpecHash !== news.endpointSpecHash ||
    olds.armEndpoint !== news.armEndpoint ||
    olds.apiVersion !== news.apiVersion;
  return { changes: changed, replaces, deleteBeforeReplace: false };
}

/**
 * GET, PUT with the new traffic, follow the long-running operation (Azure-AsyncOperation, else
 * Location) until it ends, then GET. Returns the traffic ARM reports.
 */
export async function applyTraffic(
  i: AzureMlTrafficInputs,
  traffic: Record<string, number>,
  deadlineMs = 30 * 60 * 1000,
  pollMs = 10_000,
  options: ArmCallOptions = {},
): Promise<Record<string, number>> {
  const call = { ...options, scope: armScope(i.armEndpoint) };
  const id = endpointArmId(i);
  const url = endpointUrl(i);
  const current = await armCall("GET", url, id, call);
  if (current.status !== 200) {
    throw new Error(
      `AzureMlTraffic: GET ${id} returned ${current.status}: ${JSON.stringify(current.data).slice(0, 300)}`,
    );
  }
  const put = await armCall("PUT", url, id, call, buildTrafficPutBody(current.data, traffic));
  if (![200, 201, 202].includes(put.status)) {
    throw new Error(
      `AzureMlTraffic: PUT ${id} returned ${put.status}: ${JSON.stringify(put.data).slice(0, 300)}`,
    );
  }
  const asyncOperation = put.headers["azure-asyncoperation"];
  const location = put.headers["location"];
  const started = Date.now();
  let poll = put;
  while (asyncOperation || (location && poll.status === 202)) {
    if (Date.now() - started > deadlineMs) {
      throw Object.assign(
        new Error(
          `AzureMlTraffic: setting traffic on ${i.endpointName} did not finish within ${deadlineMs / 1000}s`,
        ),
        {
          id,
          properties: { ...i, endpointId: id },
          reasons: ["traffic update still running"],
        },
      );
    }
    // ARM's Retry-After of the last answer; without one, poll at once the first time, then every pollMs.
    const retryAfter = poll.headers["retry-after"];
    if (retryAfter !== undefined || poll !== put) {
      await new Promise((resolve) => setTimeout(resolve, retryDelayMs(retryAfter, 1, pollMs)));
    }
    poll = await armCall(
      "GET",
      (asyncOperation ?? location)!,
      `operation of ${i.endpointName}`,
      call,
    );
    if (asyncOperation) {
      const state = String(poll.data?.status ?? "");
      if (state === "Succeeded") {
        break;
      }
      if (["Failed", "Canceled"].includes(state)) {
        throw new Error(
          `AzureMlTraffic: setting traffic on ${i.endpointName} ${state}: ${JSON.stringify(poll.data?.error ?? poll.data).slice(0, 300)}`,
        );
      }
    } else if (poll.status !== 202 && poll.status >= 300) {
      throw new Error(
        `AzureMlTraffic: setting traffic on ${i.endpointName} failed: ${poll.status} ${JSON.stringify(poll.data).slice(0, 300)}`,
      );
    }
  }
  const after = await armCall("GET", url, id, call);
  return (after.data?.properties?.traffic as Record<string, number>) ?? {};
}

export const trafficProvider: pulumi.dynamic.ResourceProvider<
  AzureMlTrafficInputs,
  AzureMlTrafficOutputs
> = {
  async create(inputs) {
    const traffic = await applyTraffic(inputs, inputs.traffic);
    if (!sameTraffic(traffic, inputs.traffic)) {
      throw new Error(
        `AzureMlTraffic: ${inputs.endpointName} reports traffic ${JSON.stringify(traffic)} after setting ${JSON.stringify(inputs.traffic)}`,
      );
    }
    return { id: endpointArmId(inputs), outs: { ...inputs, endpointId: endpointArmId(inputs) } };
  },
  async diff(_id, olds, news) {
    return diffTraffic(olds, news);
  },
  async update(_id, _olds, news) {
    const traffic = await applyTraffic(news, news.traffic);
    if (!sameTraffic(traffic, news.traffic)) {
      throw new Error(
        `AzureMlTraffic: ${news.endpointName} reports traffic ${JSON.stringify(traffic)} after setting ${JSON.stringify(news.traffic)}`,
      );
    }
    return { outs: { ...news, endpointId: endpointArmId(news) } };
  },
  async read(id, props) {
    const olds = props as AzureMlTrafficOutputs;
    const res = await armCall("GET", endpointUrl(olds), endpointArmId(olds), {
      scope: armScope(olds.armEndpoint),
    });
    if (res.status === 404) {
      return {};
    }
    if (res.status !== 200) {
      throw new Error(`AzureMlTraffic: GET ${olds.endpointName} returned ${res.status}`);
    }
    return { id, props: { ...olds, traffic: res.data?.properties?.traffic ?? {} } };
  },
  async delete(_id, props) {
    const res = await armCall("GET", endpointUrl(props), endpointArmId(props), {
      scope: armScope(props.armEndpoint),
    });
    if (res.status === 404) {
      return;
    }
    const zero = Object.fromEntries(Object.keys(props.traffic ?? {}).map((k) => [k, 0]));
    await applyTraffic(props, zero);
  },
};

export interface AzureMlTrafficArgs {
  /** Azure subscription id. */
  readonly subscriptionId: pulumi.Input<string>;
  /** Resource group of the workspace. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Azure ML workspace name. */
  readonly workspaceName: pulumi.Input<string>;
  /** Online endpoint name. */
  readonly endpointName: pulumi.Input<string>;
  /** deployment name -> percent (sums to 100; validated by the component). */
  readonly traffic: pulumi.Input<Record<string, pulumi.Input<number>>>;
  /** Hash of the endpoint's declared inputs; a change re-applies the traffic. */
  readonly endpointSpecHash: pulumi.Input<string>;
  /** ARM base URL; default https://management.azure.com. */
  readonly armEndpoint?: pulumi.Input<string>;
  /** ARM api-version for online endpoints; default AZUREML_API_VERSION. */
  readonly apiVersion?: pulumi.Input<string>;
}

export class AzureMlTraffic extends pulumi.dynamic.Resource {
  declare public readonly endpointId: pulumi.Output<string>;
  declare public readonly traffic: pulumi.Output<Record<string, number>>;

  constructor(name: string, args: AzureMlTrafficArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      trafficProvider,
      name,
      {
        ...args,
        armEndpoint: args.armEndpoint ?? "https://management.azure.com",
        apiVersion: args.apiVersion ?? AZUREML_API_VERSION,
        endpointId: undefined,
      },
      opts,
      "modelserving",
      "AzureMlTraffic",
    );
  }
}
