import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { diffByKeys } from "./diffKeys";
import { basicAuthIniText } from "./mlflow/basicAuthIni";
import { createMlflowClient } from "./mlflow/client";
import * as proc from "./process";
import { passEnvProblem, serverEnvironment } from "./process/env";

/**
 * Core of the LocalMlflowServer dynamic provider: `mlflow server` on this machine with a SQLite backend
 * store and served artifacts under `dataDir`.
 *
 * Contract
 * - id: `<host>:<port>`.
 * - replace: another host, port or data directory (another URL or another registry).
 * - update in place (same port and data): a new executable or passEnv, turning basic auth on or off, or
 *   another username restarts the server; a new password is changed through MLflow's user API with the
 *   old one (PATCH users/update-password) and written to the ini, without a restart (MLflow reads the
 *   ini's admin_password only when it creates the admin user); timeouts are only recorded. See
 *   updateMlflowServer.
 * - delete: stops the server's process group and checks the port is released. `dataDir` is kept, so
 *   undeploying loses no registry data and the next `up` finds every model again.
 * - create: crash-safe. The port is reserved in the machine's lock directory ($MODEL_SERVING_CACHE/
 *   locks/ports, shared by all stacks) with what is started (command, data dir, the resource `owner`)
 *   before the spawn, and the pid + start identity right after; a create first adopts this resource's
 *   server left by a killed `up` (same command and data, answers as ours) or stops it.
 *   "Ready" = our process is alive, /health answers 200 and the port's listener is our process group.
 * - read: the server exists while the process we started (pid + start identity) runs; a missed /health
 *   is a warning line, not a deletion.
 * - A port already taken by a process this stack does not own is an error, never adopted; `check`
 *   reports it before any step runs, so a replacement never stops the running server first.
 * - Environment: an allow-list (providers/process/env.ts) plus `passEnv`; MLflow 3's job runner is off
 *   unless MLFLOW_SERVER_ENABLE_JOB_EXECUTION is set (see serverEnv).
 */

export interface MlflowServerArgs {
  mlflowBin: string;
  host: string;
  port: number;
  dataDir: string;
  startTimeoutSeconds: number;
  /** Basic auth (MLflow's `basic-auth` app) with this admin account. Secret. */
  auth?: { username: string; password: string };
  /** Environment variable names copied from the deploying environment into the server's (config
   * `mlflow.passEnv`); nothing else of that environment reaches it (providers/process/env.ts). */
  passEnv?: string[];
  /** The stack resource, `<org>/<project>/<stack>/<name>`: names the port reservation (crash-safe
   * create, see the contract). */
  owner?: string;
}

export interface MlflowServerState extends MlflowServerArgs, proc.ProcessHandle {
  trackingUri: string;
  logFile: string;
}

export function serverId(args: Pick<MlflowServerArgs, "host" | "port">): string {
  return `${args.host}:${args.port}`;
}

/** The `mlflow server` command line (no secrets: the admin account goes into an ini file). */
export function serverCommand(args: MlflowServerArgs): string[] {
  const dataDir = path.resolve(args.dataDir);
  const cmd = [
    "server",
    "--host",
    args.host,
    "--port",
    String(args.port),
    "--backend-store-uri",
    `sqlite:///${path.join(dataDir, "mlflow.db")}`,
    "--artifacts-destination",
    path.join(dataDir, "artifacts"),
    "--serve-artifacts",
    "--workers",
    "1",
  ];
  if (args.auth) {
    cmd.push("--app-name", "basic-auth");
  }
  return cmd;
}

/** MLflow's basic-auth settings for a server here (providers/mlflow/basicAuthIni.ts), its user store
 * in the data directory; written 0600 there. A later password change goes through rotateAdminPassword. */
export function basicAuthIni(
  dataDir: string,
  auth: { username: string; password: string },
): string {
  return basicAuthIniText(path.join(path.resolve(dataDir), "basic_auth.db"), auth);
}

/** Writes basicAuthIni to `<dataDir>/basic_auth.ini` (0600, also when it existed) and returns its path. */
export function writeBasicAuthIni(
  dataDir: string,
  auth: { username: string; password: string },
): string {
  const iniPath = path.join(path.resolve(dataDir), "basic_auth.ini");
  fs.writeFileSync(iniPath, basicAuthIni(dataDir, auth), { mode: 0o600 });
  fs.chmodSync(iniPath, 0o600);
  return iniPath;
}

/** MLflow's user API routes (mlflow/server/auth/routes.py, MLflow 3.17). */
export const MLFLOW_USER_ROUTES = {
  current: "/api/2.0/mlflow/users/current",
  updatePassword: "/api/2.0/mlflow/users/update-password",
} as const;

/** True when MLflow at `trackingUri` accepts these basic-auth credentials, false on 401. */
export async function credentialsAccepted(
  trackingUri: string,
  auth: { username: string; password: string },
): Promise<boolean> {
  const client = createMlflowClient({ trackingUri, auth, retries: 2, timeoutMs: 15_000 }, {});
  try {
    await client.call("GET", MLFLOW_USER_ROUTES.current, { idempotent: true });
    return true;
  } catch (err) {
    if ((err as { status?: number }).status === 401) {
      return false;
    }
    throw err;
  }
}

/**
 * Rotates the admin's password through MLflow's own user API: `PATCH users/update-password` as the
 * admin with the previous password (MLflow wants `current_password` when users change their own).
 * Idempotent: when MLflow already accepts the new password (an earlier update rotated it and failed
 * later), nothing is sent. No password appears in a log line or error.
 */
export async function rotateAdminPassword(
  trackingUri: string,
  username: string,
  previous: string,
  next: string,
  log: (msg: string) => void = () => undefined,
): Promise<"rotated" | "already"> {
  if (await credentialsAccepted(trackingUri, { username, password: next })) {
    return "already";
  }
  if (!(await credentialsAccepted(trackingUri, { username, password: previous }))) {
    throw new Error(
      `model-serving:mlflowPassword: cannot change the password of MLflow user "${username}" at ` +
        `${trackingUri}: MLflow accepts neither the previous nor the new password (was it changed ` +
        "outside this stack?). Set mlflowPassword to the password MLflow has now, run `pulumi up`, " +
        "then change it",
    );
  }
  const client = createMlflowClient(
    { trackingUri, auth: { username, password: previous }, retries: 2, timeoutMs: 30_000 },
    {},
  );
  await client.call("PATCH", MLFLOW_USER_ROUTES.updatePassword, {
    body: { username, password: next, current_password: previous },
  });
  if (!(await credentialsAccepted(trackingUri, { username, password: next }))) {
    throw new Error(
      `model-serving:mlflowPassword: MLflow at ${trackingUri} accepted the password change of user ` +
        `"${username}" but still rejects the new password`,
    );
  }
  log(`changed the password of MLflow user "${username}" through MLflow's user API`);
  return "rotated";
}

/** The basic-auth app's CSRF key: random, made once per data dir and kept there (0600), so restarts
 * keep sessions valid. */
function flaskSecretKey(dataDir: string): string {
  const keyPath = path.join(dataDir, "flask_secret_key");
  if (!fs.existsSync(keyPath)) {
    fs.writeFileSync(keyPath, crypto.randomBytes(32).toString("hex"), { mode: 0o600 });
  }
  return fs.readFileSync(keyPath, "utf8").trim();
}

/** The error for a port held by a process this stack did not start. */
export function portTakenMessage(host: string, port: number): string {
  return (
    `mlflow.port: ${port} on ${host} is already in use by a process this stack does not own; ` +
    "stop it or choose another port"
  );
}

/**
 * The server's environment: the allow-list of providers/process/env.ts (PATH with the venv's bin first,
 * HOME, LANG, LC_*, TZ, TMPDIR, the `passEnv` names) and the MLflow variables it needs (`set`: the
 * basic-auth ini and Flask key), never the rest of `pulumi up`'s environment. No MLFLOW_TRACKING_URI.
 * MLflow 3's job runner is off unless the caller's environment turns it on: the job runner (huey
 * consumers for GenAI jobs: scorers, trace rollups) plays no part in registering and serving models, but
 * forks 8 more Python processes: with it, a cold start took ~7 s longer and a stop ~2 s longer on 2
 * cores (docs/performance.md).
 */
export function serverEnv(
  mlflowBin: string,
  base: NodeJS.ProcessEnv = process.env,
  passEnv: readonly string[] = [],
  set: Record<string, string | undefined> = {},
): Record<string, string> {
  return serverEnvironment({
    base,
    mlflowBin,
    passEnv,
    set: {
      MLFLOW_SERVER_ENABLE_JOB_EXECUTION: base.MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?? "false",
      ...set,
    },
  });
}

/**
 * check(): a port the server does not hold yet must be free. It runs before any step (and in preview),
 * so a taken port fails the update before a replacement has stopped the running server.
 */
export async function checkMlflowServer(
  olds: Partial<MlflowServerArgs>,
  news: Partial<MlflowServerArgs>,
): Promise<{ property: string; reason: string }[]> {
  const problem = passEnvProblem(news.passEnv);
  if (problem) {
    return [{ property: "passEnv", reason: `mlflow.${problem}` }];
  }
  if (typeof news.host !== "string" || typeof news.port !== "number") {
    return []; // not known yet (preview)
  }
  if (olds.host === news.host && olds.port === news.port) {
    return []; // held by our own server
  }
  if (proc.portHeldByOwnServer(news.owner, "mlflow-server", news.host, news.port)) {
    return []; // this resource's server from an interrupted create: create adopts or stops it
  }
  return (await proc.isPortFree(news.host, news.port))
    ? []
    : [{ property: "port", reason: portTakenMessage(news.host, news.port) }];
}

/** What a start records in the port reservation (no secrets: the command line has none). */
function reservation(args: MlflowServerArgs): proc.ReservationRequest {
  return {
    kind: "mlflow-server",
    owner: args.owner ?? "",
    command: [args.mlflowBin, ...serverCommand(args)],
    subject: path.resolve(args.dataDir),
  };
}

/**
 * Before a create: this resource's own server left running by a create that never finished (a killed
 * `up`): adopted when it runs the same command on the same data and answers /health as ours, otherwise
 * stopped so the port is free again.
 */
async function recoverMlflowServer(
  args: MlflowServerArgs,
  log: (msg: string) => void,
): Promise<MlflowServerState | undefined> {
  for (const orphan of proc.ownLiveServers(args.owner, "mlflow-server", args.host)) {
    const handle = orphan.server!;
    const trackingUri = `http://${args.host}:${orphan.port}`;
    const logFile = path.join(
      path.resolve(args.dataDir),
      "logs",
      `mlflow-server-${orphan.port}.log`,
    );
    const wanted = reservation(args);
    if (
      orphan.port === args.port &&
      orphan.subject === wanted.subject &&
      JSON.stringify(orphan.command) === JSON.stringify(wanted.command)
    ) {
      log(`found the mlflow server of an interrupted create (pid ${handle.pid}): adopting it`);
      try {
        await proc.waitForHttpOk(
          `${trackingUri}/health`,
          handle,
          args.startTimeoutSeconds,
          logFile,
          log,
        );
        return { ...args, ...handle, trackingUri, logFile };
      } catch (err) {
        log(`cannot adopt it (${(err as Error).message.split("\n")[0]}): stopping it`);
      }
    } else {
      log(
        `stopping the mlflow server of an interrupted create (pid ${handle.pid}, ${trackingUri})`,
      );
    }
    await proc.killProcessGroup(handle);
    await proc.waitForPortFree(args.host, orphan.port, 15_000);
  }
  return undefined;
}

/**
 * create (and the start half of an update): adopts or stops an interrupted create's server, reserves the
 * port machine-wide with a record of what is started, spawns with the allow-listed environment, records
 * the pid, and waits until OUR process answers /health.
 */
export async function startMlflowServer(
  args: MlflowServerArgs,
  log: (msg: string) => void = () => undefined,
): Promise<MlflowServerState> {
  const adopted = await recoverMlflowServer(args, log);
  if (adopted) {
    return adopted;
  }
  if (!(await proc.isPortFree(args.host, args.port))) {
    throw new Error(portTakenMessage(args.host, args.port));
  }
  try {
    await proc.reservePort(args.host, args.port, args.port, reservation(args));
  } catch {
    throw new Error(portTakenMessage(args.host, args.port)); // reserved by another stack's start
  }
  const dataDir = path.resolve(args.dataDir);
  fs.mkdirSync(path.join(dataDir, "artifacts"), { recursive: true });
  const set: Record<string, string> = {};
  if (args.auth) {
    const iniPath = path.join(dataDir, "basic_auth.ini");
    fs.writeFileSync(iniPath, basicAuthIni(dataDir, args.auth), { mode: 0o600 });
    fs.chmodSync(iniPath, 0o600);
    set.MLFLOW_AUTH_CONFIG_PATH = iniPath;
    set.MLFLOW_FLASK_SERVER_SECRET_KEY = flaskSecretKey(dataDir);
  }
  const env = serverEnv(args.mlflowBin, process.env, args.passEnv ?? [], set);
  const logFile = path.join(dataDir, "logs", `mlflow-server-${args.port}.log`);
  const handle = proc.spawnDetached(args.mlflowBin, serverCommand(args), {
    env,
    logFile,
    cwd: dataDir,
  });
  const trackingUri = `http://${args.host}:${args.port}`;
  try {
    await proc.recordServer(args.host, args.port, handle);
    log(`started mlflow server on ${trackingUri} (pid ${handle.pid})`);
    await proc.waitForHttpOk(
      `${trackingUri}/health`,
      handle,
      args.startTimeoutSeconds,
      logFile,
      log,
    );
  } catch (err) {
    await proc.killProcessGroup(handle);
    await proc.releasePort(args.host, args.port, args.owner);
    throw err;
  }
  return { ...args, ...handle, trackingUri, logFile };
}

export async function stopMlflowServer(state: MlflowServerState): Promise<void> {
  await proc.killProcessGroup(state);
  await proc.waitForPortFree(state.host, state.port, 15_000);
  await proc.releasePort(state.host, state.port, state.owner);
}

/**
 * read: the server exists while the process we started (pid + start identity) runs. A missed /health
 * (slow, stopped, overloaded) is a warning line, not a deletion, which would orphan it.
 */
export async function readMlflowServer(
  state: MlflowServerState,
  log: (msg: string) => void = () => undefined,
): Promise<MlflowServerState | undefined> {
  if (!proc.isSameProcessAlive(state)) {
    return undefined;
  }
  if ((await proc.httpStatus(`${state.trackingUri}/health`)) !== 200) {
    log(
      `warning: the mlflow server (pid ${state.pid}) runs but ${state.trackingUri}/health did not ` +
        `answer; keeping it (its log: ${state.logFile})`,
    );
  }
  return state;
}

/** True when the server we started runs and answers /health. */
export async function isMlflowServerRunning(state: MlflowServerState): Promise<boolean> {
  return (
    proc.isSameProcessAlive(state) && (await proc.httpStatus(`${state.trackingUri}/health`)) === 200
  );
}

const REPLACE_KEYS = ["host", "port", "dataDir"] as const;
const UPDATE_KEYS = ["mlflowBin", "auth", "startTimeoutSeconds"] as const;

export function diffMlflowServer(olds: MlflowServerState, news: MlflowServerArgs) {
  return diffByKeys<MlflowServerArgs, keyof MlflowServerArgs>(
    olds,
    news,
    REPLACE_KEYS,
    UPDATE_KEYS,
    true,
  );
}

/**
 * update: see the contract.
 * - A new password for the same user is changed in place through MLflow's user API (the running
 *   server, or, when ours is not running, one started first), then the ini is rewritten; no restart.
 *   MLflow reads the ini's `admin_password` only when it creates the admin user, so restarting with a
 *   new ini alone would leave the old password in force (401 for the new one).
 * - A new executable, passEnv, or turning basic auth on or off or another username restart the server
 *   (MLflow creates a new admin user from the ini; an existing user of that name keeps its password).
 *   After a restart with basic auth, the stack's credentials must work, else the update fails naming
 *   the setting.
 * - Timeouts alone are only recorded.
 */
export async function updateMlflowServer(
  olds: MlflowServerState,
  news: MlflowServerArgs,
  log: (msg: string) => void = () => undefined,
): Promise<MlflowServerState> {
  const sameEnv =
    JSON.stringify([...new Set(olds.passEnv ?? [])].sort()) ===
    JSON.stringify([...new Set(news.passEnv ?? [])].sort());
  const sameAuthApp =
    (olds.auth === undefined) === (news.auth === undefined) &&
    olds.auth?.username === news.auth?.username;
  const restart = olds.mlflowBin !== news.mlflowBin || !sameEnv || !sameAuthApp;
  const rotate =
    olds.auth !== undefined &&
    news.auth !== undefined &&
    sameAuthApp &&
    olds.auth.password !== news.auth.password;
  if (!restart && !rotate) {
    return { ...olds, ...news };
  }

  let state: MlflowServerState = { ...olds, ...news };
  let restarted = false;
  if (rotate) {
    if (!(await isMlflowServerRunning(olds))) {
      // Ours is not running (or not answering): start it, then rotate through it.
      await stopMlflowServer(olds);
      state = await startMlflowServer(news, log);
      restarted = true;
    }
    await rotateAdminPassword(
      state.trackingUri,
      news.auth!.username,
      olds.auth!.password,
      news.auth!.password,
      log,
    );
    writeBasicAuthIni(news.dataDir, news.auth!);
  }
  if (restart && !restarted) {
    await stopMlflowServer(olds);
    if (!news.auth) {
      // Basic auth off: no password stays in the data directory.
      fs.rmSync(path.join(path.resolve(news.dataDir), "basic_auth.ini"), { force: true });
    }
    state = await startMlflowServer(news, log);
    if (news.auth && !(await credentialsAccepted(state.trackingUri, news.auth))) {
      throw Object.assign(
        new Error(
          `model-serving:mlflowPassword: MLflow at ${state.trackingUri} rejects the password of ` +
            `user "${news.auth.username}": that user already exists in ` +
            `${path.join(path.resolve(news.dataDir), "basic_auth.db")} with another password (MLflow ` +
            "takes the configured password only when it creates the user). Set mlflowPassword to " +
            "that user's password, or change mlflow.username",
        ),
        { id: serverId(state), properties: state, reasons: ["the admin password is not in force"] },
      );
    }
  }
  return state;
}
