import { changedKeys, containsUnknown, diffByKeys } from "../diffKeys";
import { isPortFree, portHeldByOwnServer } from "../process";
import { passEnvProblem } from "../process/env";
import { localServingHost } from "./localHost";
import { remoteServingHost } from "./remoteHost";
import { DeploymentArgs, DeploymentState, DeployMode, ServingHost } from "./types";

/**
 * Core of the ModelDeployment dynamic provider.
 *
 * Contract
 * - id: `<host>:<port>` of the model server.
 * - replace: another deploy mode, host or fixed port (the URL changes); mode remote: another SSH host,
 *   public host or layout (`remote`; a rotated key or a new host key pin of the same host is recorded).
 * - update in place, restarting the server on the same port (the URL stays the same): a new model URI
 *   (a new version), executable or passEnv (the server's environment). Only these restart it.
 * - update in place without a restart: trackingUri and auth (the server downloaded the model when it
 *   started; the connection only matters for a new download, so it is recorded for the next start),
 *   portRangeStart, runDir, startTimeoutSeconds.
 * - a failed restart is not an outage: when the new server does not come up, the old version is started
 *   again on the same port with the old state's arguments (if that fails and the connection changed
 *   too, e.g. a rotated password, once more with the new connection), and the update fails with the
 *   new server's last log lines. It fails with partial state (Pulumi's ErrorResourceInitFailed) that describes what
 *   really runs (the old model URI, the new pid), so nothing is lost and the next `up` retries. Only when
 *   the old version cannot start either does nothing serve (the error says so).
 * - create: crash-safe. The port is reserved machine-wide ($MODEL_SERVING_CACHE/locks/ports, shared by
 *   all stacks) with a record of what is started (command, model, the resource `owner`) written before
 *   the spawn and the pid + start identity right after. A create first adopts this resource's server
 *   left by a killed `up` (same model and command, answers as ours) or stops it and reuses its port.
 *   "Ready" = our process is alive, /ping answers 200, and the port's listener is our process group.
 *   Relies on deleteBeforeReplace (a create never runs while the same resource's old server is live).
 * - delete: stops the server's whole process group, checks the port is released, drops its reservation.
 * - check: a fixed port it does not hold yet must be free, before any step runs (see checkDeployment);
 *   a port held by this resource's own orphan is not foreign.
 * - read: the deployment exists while the process we started (pid + start identity) runs; a missed
 *   /ping is a warning line, not a deletion. A dead server is gone, so refresh + up brings it back.
 * - The server's environment is an allow-list (providers/process/env.ts) plus `passEnv`.
 */

export function servingHostFor(mode: DeployMode): ServingHost {
  switch (mode) {
    case "local":
      return localServingHost();
    case "remote":
      return remoteServingHost();
    default:
      throw new Error(`deployMode: "${mode}" is not available yet; supported: local, remote`);
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
  const problem = passEnvProblem(news.passEnv);
  if (problem) {
    return [{ property: "passEnv", reason: problem }];
  }
  if (news.mode !== "local" || typeof news.host !== "string" || typeof news.port !== "number") {
    return []; // another host, an automatic port, or not known yet (preview)
  }
  if (olds.host === news.host && olds.port === news.port) {
    return []; // held by our own server
  }
  if (portHeldByOwnServer(news.owner, "model-server", news.host, news.port)) {
    return []; // this resource's server from an interrupted create: create adopts or stops it
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

/**
 * create: first adopt or stop this resource's own server left by an interrupted create (a killed `up`:
 * its start was recorded in the machine's port reservations before it was spawned), then reserve a port
 * (that orphan's port again when it is free, so the URL stays the same) and start the server.
 */
export async function createDeployment(
  args: DeploymentArgs,
  log: (msg: string) => void = () => undefined,
): Promise<{ id: string; outs: DeploymentState }> {
  const host = servingHostFor(args.mode);
  const adopted = await host.recover(args, log);
  if (adopted) {
    return { id: deploymentId(adopted), outs: adopted };
  }
  const port = await host.reservePort(args);
  try {
    const outs = await host.start(args, port, log);
    return { id: deploymentId(outs), outs };
  } catch (err) {
    await host.releasePort(args, port);
    throw err;
  }
}

const REPLACE_KEYS = ["mode", "host", "port"] as const;
const UPDATE_KEYS = [
  "modelUri",
  "trackingUri",
  "auth",
  "mlflowBin",
  "passEnv",
  "portRangeStart",
  "runDir",
  "startTimeoutSeconds",
] as const;
/** Changes that need the server restarted: what it serves, what runs it, its environment. The others
 * (trackingUri and auth included: the model is already loaded) are only recorded. */
export const RESTART_KEYS = ["modelUri", "mlflowBin", "passEnv"] as const;

/** State written before passEnv existed has none: the same as []. Order and repeats do not matter. */
function normalized<T extends Partial<DeploymentArgs>>(args: T): T {
  const passEnv = args.passEnv;
  if (passEnv === undefined || passEnv === null) {
    return { ...args, passEnv: [] };
  }
  if (Array.isArray(passEnv) && passEnv.every((v) => typeof v === "string")) {
    return { ...args, passEnv: [...new Set(passEnv)].sort() };
  }
  return args; // unknown during preview
}

export function diffDeployment(olds: DeploymentState, news: DeploymentArgs) {
  const result = diffByKeys<DeploymentArgs, keyof DeploymentArgs>(
    normalized(olds),
    normalized(news),
    REPLACE_KEYS,
    [...UPDATE_KEYS, "remote"],
    true,
  );
  // Mode remote: another host (SSH address, the URL's host) or layout is another server; a changed key,
  // user or host key pin of the same host is only recorded.
  const target = (r: DeploymentArgs["remote"]) =>
    JSON.stringify([r?.connection?.host, r?.connection?.port, r?.publicHost, r?.layout]);
  if (
    !containsUnknown(news.remote) &&
    target(olds.remote) !== target(news.remote) &&
    !result.replaces.includes("remote")
  ) {
    result.replaces.push("remote");
  }
  return result;
}

/** The keys of a state that describe the running process, not the deployment's arguments. */
const PROCESS_KEYS = ["pid", "pgid", "startTicks", "servedPort", "baseUrl", "url", "logFile"];

/** The arguments the running server was started with (everything else in the state is recorded, such as
 * the provider key Pulumi keeps in it). */
export function argsOfState(state: DeploymentState): DeploymentArgs {
  const args: Record<string, unknown> = { ...state };
  for (const key of PROCESS_KEYS) {
    delete args[key];
  }
  return args as unknown as DeploymentArgs;
}

/**
 * update: see the contract. A restart stops the old server (keeping the port's reservation), starts the
 * new one on the same port, and on failure brings the old version back there before it fails.
 */
export async function updateDeployment(
  olds: DeploymentState,
  news: DeploymentArgs,
  log: (msg: string) => void = () => undefined,
): Promise<DeploymentState> {
  if (changedKeys(normalized(olds), normalized(news), RESTART_KEYS).length === 0) {
    return { ...olds, ...news };
  }
  const host = servingHostFor(news.mode);
  const port = olds.servedPort;
  await host.stop(olds, { keepReservation: true });
  let failure: string;
  try {
    return await host.start(news, port, log);
  } catch (err) {
    failure = (err as Error).message;
  }
  // The URL clients use (for mode remote the public host, not the interface bound there).
  const baseUrl = olds.baseUrl;
  log(`${news.modelUri} did not start on ${baseUrl}: starting ${olds.modelUri} there again`);
  // The old version with the old state's arguments; if the connection changed too (a rotated
  // password makes the old one fail), once more with the new connection.
  const oldArgs = argsOfState(olds);
  const attempts = [oldArgs];
  if (changedKeys(olds, news, ["trackingUri", "auth"]).length > 0) {
    attempts.push({ ...oldArgs, trackingUri: news.trackingUri, auth: news.auth });
  }
  let restored: DeploymentState | undefined;
  const restoreFailures: string[] = [];
  for (const args of attempts) {
    try {
      restored = await host.start(args, port, log);
      break;
    } catch (err) {
      restoreFailures.push((err as Error).message);
    }
  }
  if (!restored) {
    await host.releasePort(news, port).catch(() => undefined);
    throw new Error(
      `${news.modelUri} did not start on ${baseUrl}, and starting ${olds.modelUri} again failed ` +
        `too, so nothing serves there now; the next \`pulumi up\` tries ${news.modelUri} again.\n` +
        `The new server: ${failure}\nThe old version: ${restoreFailures.join("\n")}`,
    );
  }
  const message =
    `${news.modelUri} did not start on ${baseUrl}, so ${olds.modelUri} serves there again ` +
    `(pid ${restored.pid}); the next \`pulumi up\` tries ${news.modelUri} again. ${failure}`;
  // Partial state: the resource keeps describing what runs (the old version, its new process).
  throw Object.assign(new Error(message), {
    id: deploymentId(restored),
    properties: restored,
    reasons: [message],
  });
}

/**
 * read: the deployment exists while the process we started (pid + start identity, the model on its
 * command line) runs. A missed /ping (a slow, stopped or overloaded server) is a warning, not a deletion:
 * dropping a running server from state would orphan it and make the next `up` start a second one.
 */
export async function readDeployment(
  state: DeploymentState,
  log: (msg: string) => void = () => undefined,
): Promise<DeploymentState | undefined> {
  const health = await servingHostFor(state.mode).health(state);
  if (health === "gone") {
    return undefined;
  }
  if (health === "not answering") {
    log(
      `warning: the server of ${state.modelUri} (pid ${state.pid}) runs but ${state.baseUrl}/ping ` +
        "did not answer; keeping it (its log: " +
        `${state.logFile})`,
    );
  }
  return state;
}

export async function deleteDeployment(state: DeploymentState): Promise<void> {
  await servingHostFor(state.mode).stop(state);
}
