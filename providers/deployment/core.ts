import { changedKeys, diffByKeys } from "../diffKeys";
import { isPortFree } from "../process";
import { localServingHost } from "./localHost";
import { DeploymentArgs, DeploymentState, DeployMode, ServingHost } from "./types";

/**
 * Core of the ModelDeployment dynamic provider.
 *
 * Contract
 * - id: `<host>:<port>` of the model server.
 * - replace: another deploy mode, host or fixed port (the URL changes).
 * - update in place: a new model URI (a new version), tracking URI, credentials or executable: the
 *   server is restarted on the same port, so the URL stays the same.
 * - delete: stops the server's whole process group and checks the port is released.
 * - check: a fixed port it does not hold yet must be free, before any step runs (see checkDeployment).
 * - read: the deployment is gone unless the server we started is alive and answers /ping as this
 *   model's server, so `pulumi refresh` + `pulumi up` brings a dead server back.
 */

export function servingHostFor(mode: DeployMode): ServingHost {
  switch (mode) {
    case "local":
      return localServingHost();
    default:
      throw new Error(`deployMode: "${mode}" is not available yet; supported: local`);
  }
}

/**
 * check(): a fixed port the deployment does not hold yet must be free. It runs before any step (and in
 * preview), so a taken port fails the update before the replacement has stopped the running server
 * (the replacement deletes first: deleteBeforeReplace).
 */
export async function checkDeployment(
  olds: Partial<DeploymentArgs>,
  news: Partial<DeploymentArgs>,
): Promise<{ property: string; reason: string }[]> {
  if (news.mode !== "local" || typeof news.host !== "string" || typeof news.port !== "number") {
    return []; // another host, an automatic port, or not known yet (preview)
  }
  if (olds.host === news.host && olds.port === news.port) {
    return []; // held by our own server
  }
  return (await isPortFree(news.host, news.port))
    ? []
    : [
        {
          property: "port",
          reason:
            `port: ${news.port} on ${news.host} is already in use by a process this stack does ` +
            "not own; choose another port or stop that process",
        },
      ];
}

export function deploymentId(state: Pick<DeploymentState, "host" | "servedPort">): string {
  return `${state.host}:${state.servedPort}`;
}

export async function createDeployment(
  args: DeploymentArgs,
  log: (msg: string) => void = () => undefined,
): Promise<{ id: string; outs: DeploymentState }> {
  const host = servingHostFor(args.mode);
  const port = await host.reservePort(args);
  try {
    const outs = await host.start(args, port, log);
    return { id: deploymentId(outs), outs };
  } catch (err) {
    host.releasePort(args, port);
    throw err;
  }
}

const REPLACE_KEYS = ["mode", "host", "port"] as const;
const UPDATE_KEYS = [
  "modelUri",
  "trackingUri",
  "auth",
  "mlflowBin",
  "portRangeStart",
  "runDir",
  "startTimeoutSeconds",
] as const;
/** Changes that need the server restarted (the others are only recorded). */
const RESTART_KEYS = ["modelUri", "trackingUri", "auth", "mlflowBin"] as const;

export function diffDeployment(olds: DeploymentState, news: DeploymentArgs) {
  return diffByKeys<DeploymentArgs, keyof DeploymentArgs>(
    olds,
    news,
    REPLACE_KEYS,
    UPDATE_KEYS,
    true,
  );
}

export async function updateDeployment(
  olds: DeploymentState,
  news: DeploymentArgs,
  log: (msg: string) => void = () => undefined,
): Promise<DeploymentState> {
  if (changedKeys(olds, news, RESTART_KEYS).length === 0) {
    return { ...olds, ...news };
  }
  const host = servingHostFor(news.mode);
  await host.stop(olds);
  return host.start(news, olds.servedPort, log);
}

export async function readDeployment(state: DeploymentState): Promise<DeploymentState | undefined> {
  return (await servingHostFor(state.mode).isServing(state)) ? state : undefined;
}

export async function deleteDeployment(state: DeploymentState): Promise<void> {
  await servingHostFor(state.mode).stop(state);
}
