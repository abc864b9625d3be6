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
 * - token: AZURE_ACCESS_TOKEN from the environment, else `az account get-access-token`, read inside
 *   each method; never an input, never in outputs.
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

/** How the token is obtained: the env var, else this az command. */
export function tokenSource(
  env: Record<string, string | undefined>,
): { token: string } | { file: string; args: string[] } {
  if (env.AZURE_ACCESS_TOKEN) {
    return { token: env.AZURE_ACCESS_TOKEN };
  }
  return {
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
  };
}

export async function getArmToken(): Promise<string> {
  const childProcess: typeof import("child_process") = require("child_process");
  const source = tokenSource(process.env);
  if ("token" in source) {
    return source.token;
  }
  try {
    return childProcess
      .execFileSync(source.file, source.args, { encoding: "utf8", timeout: 60_000 })
      .trim();
  } catch (err) {
    throw new Error(
      `AzureMlTraffic: no ARM token: set AZURE_ACCESS_TOKEN or log in with az (${(err as Error).message.split("\n")[0]})`,
    );
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

/** GET, PUT with the new traffic, follow the async operation. Returns the traffic ARM reports. */
export async function applyTraffic(
  i: AzureMlTrafficInputs,
  traffic: Record<string, number>,
  deadlineMs = 30 * 60 * 1000,
  pollMs = 10_000,
): Promise<Record<string, number>> {
  const axios: typeof import("axios").default = require("axios");
  const headers = {
    Authorization: `Bearer ${await getArmToken()}`,
    "Content-Type": "application/json",
  };
  const url = endpointUrl(i);
  const current = await axios.get(url, { headers, validateStatus: () => true });
  if (current.status !== 200) {
    throw new Error(
      `AzureMlTraffic: GET ${endpointArmId(i)} returned ${current.status}: ${JSON.stringify(current.data).slice(0, 300)}`,
    );
  }
  const put = await axios.put(url, buildTrafficPutBody(current.data, traffic), {
    headers,
    validateStatus: () => true,
  });
  if (![200, 201, 202].includes(put.status)) {
    throw new Error(
      `AzureMlTraffic: PUT ${endpointArmId(i)} returned ${put.status}: ${JSON.stringify(put.data).slice(0, 300)}`,
    );
  }
  const operation = put.headers["azure-asyncoperation"] as string | undefined;
  const started = Date.now();
  while (operation) {
    const status = await axios.get(operation, { headers, validateStatus: () => true });
    const state = String(status.data?.status ?? "");
    if (state === "Succeeded") {
      break;
    }
    if (["Failed", "Canceled"].includes(state)) {
      throw new Error(
        `AzureMlTraffic: setting traffic on ${i.endpointName} ${state}: ${JSON.stringify(status.data?.error ?? status.data).slice(0, 300)}`,
      );
    }
    if (Date.now() - started > deadlineMs) {
      throw Object.assign(
        new Error(
          `AzureMlTraffic: setting traffic on ${i.endpointName} did not finish within ${deadlineMs / 1000}s`,
        ),
        {
          id: endpointArmId(i),
          properties: { ...i, endpointId: endpointArmId(i) },
          reasons: ["traffic update still running"],
        },
      );
    }
    // ARM says how long to wait (Retry-After, seconds); otherwise pollMs.
    const retryAfter = Number(status.headers["retry-after"]);
    const wait =
      Number.isFinite(retryAfter) && status.headers["retry-after"] !== undefined
        ? retryAfter * 1000
        : pollMs;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const after = await axios.get(url, { headers, validateStatus: () => true });
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
    const axios: typeof import("axios").default = require("axios");
    const olds = props as AzureMlTrafficOutputs;
    const headers = { Authorization: `Bearer ${await getArmToken()}` };
    const res = await axios.get(endpointUrl(olds), { headers, validateStatus: () => true });
    if (res.status === 404) {
      return {};
    }
    if (res.status !== 200) {
      throw new Error(`AzureMlTraffic: GET ${olds.endpointName} returned ${res.status}`);
    }
    return { id, props: { ...olds, traffic: res.data?.properties?.traffic ?? {} } };
  },
  async delete(_id, props) {
    const axios: typeof import("axios").default = require("axios");
    const headers = { Authorization: `Bearer ${await getArmToken()}` };
    const res = await axios.get(endpointUrl(props), { headers, validateStatus: () => true });
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
