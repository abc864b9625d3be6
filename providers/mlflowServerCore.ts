import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { diffByKeys } from "./diffKeys";
import * as proc from "./process";

/**
 * Core of the LocalMlflowServer dynamic provider: `mlflow server` on this machine with a SQLite backend
 * store and served artifacts under `dataDir`.
 *
 * Contract
 * - id: `<host>:<port>`.
 * - replace: another host, port or data directory (another URL or another registry).
 * - update in place: executable, auth or timeouts: the server restarts on the same port and data.
 * - delete: stops the server's process group and checks the port is released. `dataDir` is kept, so
 *   undeploying loses no registry data and the next `up` finds every model again.
 * - read: gone unless the server we started is alive and answers /health.
 * - A port already taken by a process this stack does not own is an error, never adopted; `check`
 *   reports it before any step runs, so a replacement never stops the running server first.
 * - MLflow 3's job runner is off unless MLFLOW_SERVER_ENABLE_JOB_EXECUTION is set (see serverEnv).
 */

export interface MlflowServerArgs {
  mlflowBin: string;
  host: string;
  port: number;
  dataDir: string;
  startTimeoutSeconds: number;
  /** Basic auth (MLflow's `basic-auth` app) with this admin account. Secret. */
  auth?: { username: string; password: string };
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

/** MLflow's basic-auth settings, written 0600 into the data directory. */
export function basicAuthIni(
  dataDir: string,
  auth: { username: string; password: string },
): string {
  return [
    "[mlflow]",
    "default_permission = READ",
    `database_uri = sqlite:///${path.join(path.resolve(dataDir), "basic_auth.db")}`,
    `admin_username = ${auth.username}`,
    `admin_password = ${auth.password}`,
    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
    "",
  ].join("\n");
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
 * The server's environment: the venv's bin first on PATH, no MLFLOW_TRACKING_URI, and MLflow 3's job
 * runner off unless the caller's environment turns it on. The job runner (huey consumers for GenAI
 * jobs: scorers, trace rollups) plays no part in registering and serving models, but forks 8 more
 * Python processes: with it, a cold start took ~7 s longer and a stop ~2 s longer on 2 cores
 * (docs/performance.md).
 */
export function serverEnv(
  mlflowBin: string,
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION: "false",
    ...base,
    PATH: `${path.dirname(mlflowBin)}${path.delimiter}${base.PATH ?? ""}`,
  };
  delete env.MLFLOW_TRACKING_URI;
  return env;
}

/**
 * check(): a port the server does not hold yet must be free. It runs before any step (and in preview),
 * so a taken port fails the update before a replacement has stopped the running server.
 */
export async function checkMlflowServer(
  olds: Partial<MlflowServerArgs>,
  news: Partial<MlflowServerArgs>,
): Promise<{ property: string; reason: string }[]> {
  if (typeof news.host !== "string" || typeof news.port !== "number") {
    return []; // not known yet (preview)
  }
  if (olds.host === news.host && olds.port === news.port) {
    return []; // held by our own server
  }
  return (await proc.isPortFree(news.host, news.port))
    ? []
    : [{ property: "port", reason: portTakenMessage(news.host, news.port) }];
}

export async function startMlflowServer(
  args: MlflowServerArgs,
  log: (msg: string) => void = () => undefined,
): Promise<MlflowServerState> {
  if (!(await proc.isPortFree(args.host, args.port))) {
    throw new Error(portTakenMessage(args.host, args.port));
  }
  const dataDir = path.resolve(args.dataDir);
  fs.mkdirSync(path.join(dataDir, "artifacts"), { recursive: true });
  const env = serverEnv(args.mlflowBin);
  if (args.auth) {
    const iniPath = path.join(dataDir, "basic_auth.ini");
    fs.writeFileSync(iniPath, basicAuthIni(dataDir, args.auth), { mode: 0o600 });
    fs.chmodSync(iniPath, 0o600);
    env.MLFLOW_AUTH_CONFIG_PATH = iniPath;
    env.MLFLOW_FLASK_SERVER_SECRET_KEY = flaskSecretKey(dataDir);
  }
  const logFile = path.join(dataDir, "logs", `mlflow-server-${args.port}.log`);
  const handle = proc.spawnDetached(args.mlflowBin, serverCommand(args), {
    env,
    logFile,
    cwd: dataDir,
  });
  const trackingUri = `http://${args.host}:${args.port}`;
  log(`started mlflow server on ${trackingUri} (pid ${handle.pid})`);
  try {
    await proc.waitForHttpOk(
      `${trackingUri}/health`,
      handle,
      args.startTimeoutSeconds,
      logFile,
      log,
    );
  } catch (err) {
    await proc.killProcessGroup(handle);
    throw err;
  }
  return { ...args, ...handle, trackingUri, logFile };
}

export async function stopMlflowServer(state: MlflowServerState): Promise<void> {
  await proc.killProcessGroup(state);
  await proc.waitForPortFree(state.host, state.port, 15_000);
}

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

export async function updateMlflowServer(
  olds: MlflowServerState,
  news: MlflowServerArgs,
  log: (msg: string) => void = () => undefined,
): Promise<MlflowServerState> {
  if (
    olds.mlflowBin === news.mlflowBin &&
    JSON.stringify(olds.auth) === JSON.stringify(news.auth)
  ) {
    return { ...olds, ...news };
  }
  await stopMlflowServer(olds);
  return startMlflowServer(news, log);
}
