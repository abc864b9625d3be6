import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { diffByKeys } from "../diffKeys";
import { writeCredentialsHome } from "../mlflow/credentialsHome";
import * as proc from "../process";
import { serverEnvironment } from "../process/env";

/**
 * Core of the LocalAgent dynamic provider: the MLOps agent (agent/, `python -m model_serving_agent`)
 * on this machine, the embedded case of deploy mode `agent`.
 *
 * Contract
 * - id: `<host>:<port>` of the agent's API.
 * - replace: another host, port or data directory.
 * - update in place = a restart of the agent alone (its backends keep running and the new agent
 *   adopts them, so no model restarts): another interpreter, agent folder, port ranges, tracking URI,
 *   backend settings or token, or MLflow basic auth turned on or off. New MLflow credentials are only
 *   written (a model server reads them when it starts). The deadline for /health is only recorded.
 * - MLflow basic auth (`mlflowAuth`, secret): MLflow's credentials file (providers/mlflow/
 *   credentialsHome.ts) in `<dataDir>/mlflow-home` (0700), the agent's HOME, which its model servers
 *   and scoring runs inherit: the password is in no process environment.
 * - create: writes `<dataDir>/agent.json` (no secret in it) and `<dataDir>/token` (0600, from the
 *   secret `token` input), reserves the API port machine-wide (kind "mlops-agent", crash-safe like
 *   the MLflow server: a killed `up`'s agent is adopted or stopped), starts the agent's supervisor in
 *   its own process group with the allow-listed environment (no token in argv or environment) and
 *   waits until /health says ok (every model of its state file serves again) or degraded (a warning).
 *   The supervisor starts the agent again when it dies (a kill -9 or a crash): the new agent adopts
 *   the backends, so the fronts are back in seconds with no `up`.
 * - read: the agent exists while the supervisor we started (pid + start identity) runs. A dead one is
 *   gone (its agent dies with it), so refresh + up starts it again on the same data directory: the
 *   agent adopts the backends that outlived it, on the same front ports, before /health says ok.
 * - delete: stops the agent, then every process that carries this agent's marker in its environment
 *   (its backends, which run in their own sessions so they outlive an agent restart by design), checks
 *   the API port is released, and removes the token and state files: nothing of it keeps running.
 */

export interface PortRange {
  first: number;
  last: number;
}

export interface AgentServerArgs {
  /** The venv's python: runs the agent and `mlflow models serve` for its backends. */
  python: string;
  /** The project's agent/ folder (PYTHONPATH). */
  agentDir: string;
  host: string;
  port: number;
  frontPorts: PortRange;
  backendPorts: PortRange;
  /** agent.json, the token file, the state file and the logs. */
  dataDir: string;
  trackingUri: string;
  /** Secret: written to the 0600 token file only. */
  token: string;
  /** Secret: MLflow basic auth for the model servers, written to MLflow's credentials file only. */
  mlflowAuth?: { username?: string; password?: string };
  /** Deadline for the agent's /health after a start. */
  startTimeoutSeconds: number;
  /** The agent's deadline for one backend start (/ping and the sample scoring). */
  backendStartTimeoutSeconds: number;
  /** uvicorn workers per backend (default: the agent's, the core count). */
  backendWorkers?: number;
  /** The stack resource `<org>/<project>/<stack>/<name>` (names the port reservation). */
  owner?: string;
}

export interface AgentServerState extends AgentServerArgs, proc.ProcessHandle {
  /** `http://<host>:<port>` of the API. */
  url: string;
  /** `<pid>:<start identity>` of the agent process: changes when the agent was started again. */
  instance: string;
  logFile: string;
}

/** The environment variable every process of this agent carries (the agent and, inherited, its
 * backends): its data directory. Not a secret; delete finds the backends by it. */
export const AGENT_MARKER = "MODEL_SERVING_AGENT_HOME";

export function agentId(args: Pick<AgentServerArgs, "host" | "port">): string {
  return `${args.host}:${args.port}`;
}

/** The agent's config file (agent/model_serving_agent/config.py): no secret, the token is a file. */
export function agentConfig(args: AgentServerArgs): Record<string, unknown> {
  const dataDir = path.resolve(args.dataDir);
  return {
    host: args.host,
    port: args.port,
    front_ports: args.frontPorts,
    backend_ports: args.backendPorts,
    state_file: path.join(dataDir, "state.json"),
    log_dir: path.join(dataDir, "logs"),
    token_file: path.join(dataDir, "token"),
    mlflow_tracking_uri: args.trackingUri,
    python: args.python,
    backend_start_timeout_seconds: args.backendStartTimeoutSeconds,
    ...(args.backendWorkers !== undefined ? { backend_workers: args.backendWorkers } : {}),
  };
}

/**
 * The agent under its supervisor (agent/model_serving_agent/supervise.py), which starts it again when
 * it dies: there is no systemd to do it for an agent started here.
 */
export function agentCommand(args: AgentServerArgs): string[] {
  return [
    "-m",
    "model_serving_agent.supervise",
    "--config",
    path.join(path.resolve(args.dataDir), "agent.json"),
  ];
}

function reservation(args: AgentServerArgs): proc.ReservationRequest {
  return {
    kind: "mlops-agent",
    owner: args.owner ?? "",
    command: [args.python, ...agentCommand(args)],
    subject: path.resolve(args.dataDir),
  };
}

function logFileOf(args: AgentServerArgs): string {
  return path.join(path.resolve(args.dataDir), "logs", "agent.stdout.log");
}

function stateOf(args: AgentServerArgs, handle: proc.ProcessHandle): AgentServerState {
  return {
    ...args,
    pid: handle.pid,
    pgid: handle.pgid,
    startTicks: handle.startTicks,
    url: `http://${args.host}:${args.port}`,
    instance: `${handle.pid}:${handle.startTicks}`,
    logFile: logFileOf(args),
  };
}

/** The input problems, before anything changes. */
export function checkAgentServer(news: Partial<AgentServerArgs>): {
  property: string;
  reason: string;
}[] {
  const failures: { property: string; reason: string }[] = [];
  const overlap = (a?: PortRange, b?: PortRange) =>
    a !== undefined && b !== undefined && a.first <= b.last && b.first <= a.last;
  if (overlap(news.frontPorts, news.backendPorts)) {
    failures.push({
      property: "frontPorts",
      reason:
        `agent.frontPorts ${news.frontPorts!.first}-${news.frontPorts!.last} overlap ` +
        `agent.backendPorts ${news.backendPorts!.first}-${news.backendPorts!.last}`,
    });
  }
  for (const [name, range] of [
    ["frontPorts", news.frontPorts],
    ["backendPorts", news.backendPorts],
  ] as const) {
    if (
      typeof news.port === "number" &&
      range &&
      news.port >= range.first &&
      news.port <= range.last
    ) {
      failures.push({
        property: "port",
        reason: `agent.port ${news.port} lies inside agent.${name} ${range.first}-${range.last}`,
      });
    }
  }
  return failures;
}

/** One GET of /health: the status code and the agent's `status`, or 0 when nothing answered. */
function healthOf(url: string): Promise<{ code: number; status?: string }> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/health`, { timeout: 2_000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        try {
          resolve({ code: res.statusCode ?? 0, status: JSON.parse(body).status });
        } catch {
          resolve({ code: res.statusCode ?? 0 });
        }
      });
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve({ code: 0 }));
  });
}

/** Waits until OUR agent answers /health ok (or degraded: a warning), failing early when it exits. */
export async function waitForAgent(
  state: AgentServerState,
  timeoutSeconds: number,
  log: (msg: string) => void,
): Promise<void> {
  const started = Date.now();
  let reported = started;
  for (;;) {
    const health = await healthOf(state.url);
    if (!proc.isSameProcessAlive(state)) {
      throw new Error(
        `the agent on ${state.url} exited during start-up; last log lines:\n${tailOf(state)}`,
      );
    }
    if (health.status === "ok" || health.status === "degraded") {
      const listener = proc.listenerIsOurs(state, state.port);
      if (listener.ours === false) {
        throw new Error(
          `agent.port: ${state.port} on ${state.host} is answered by a process this stack did not ` +
            `start (pid ${listener.pids.join(", ")}); stop it or choose another agent.port`,
        );
      }
      if (health.status === "degraded") {
        log(`warning: the agent on ${state.url} is up but degraded: see ${state.logFile}`);
      }
      return;
    }
    const elapsed = Date.now() - started;
    if (elapsed > timeoutSeconds * 1000) {
      throw new Error(
        `timed out after ${timeoutSeconds}s waiting for the agent's ${state.url}/health ` +
          `(last: ${health.code === 0 ? "no answer" : `${health.code} ${health.status ?? ""}`}); ` +
          `last log lines:\n${tailOf(state)}`,
      );
    }
    if (Date.now() - reported > 5_000) {
      log(`waiting for the agent's ${state.url}/health (${Math.round(elapsed / 1000)}s)`);
      reported = Date.now();
    }
    await proc.sleep(250);
  }
}

function tailOf(state: AgentServerState): string {
  const files = [state.logFile, path.join(path.resolve(state.dataDir), "logs", "agent.log")];
  const text = files
    .filter((f) => fs.existsSync(f))
    .map((f) => fs.readFileSync(f, "utf8"))
    .join("\n");
  return text.trim() === "" ? "(no log)" : proc.logExcerpt(text, 15);
}

/** `<dataDir>/mlflow-home`, the agent's HOME when MLflow has basic auth. */
export function mlflowHomeOf(dataDir: string): string {
  return path.join(path.resolve(dataDir), "mlflow-home");
}

function basicAuthOf(args: AgentServerArgs): { username: string; password: string } | undefined {
  const a = args.mlflowAuth;
  return a?.username && a.password ? { username: a.username, password: a.password } : undefined;
}

/** Writes agent.json, the 0600 token file (rewritten 0600 when it existed) and MLflow's credentials
 * file (or removes it without basic auth). */
export function writeAgentFiles(args: AgentServerArgs): void {
  const dataDir = path.resolve(args.dataDir);
  fs.mkdirSync(path.join(dataDir, "logs"), { recursive: true, mode: 0o700 });
  const tokenFile = path.join(dataDir, "token");
  fs.writeFileSync(tokenFile, `${args.token}\n`, { mode: 0o600 });
  fs.chmodSync(tokenFile, 0o600);
  fs.writeFileSync(path.join(dataDir, "agent.json"), JSON.stringify(agentConfig(args), null, 2));
  const auth = basicAuthOf(args);
  if (auth) {
    writeCredentialsHome(mlflowHomeOf(dataDir), auth.username, auth.password);
  } else {
    fs.rmSync(mlflowHomeOf(dataDir), { recursive: true, force: true });
  }
}

async function recoverAgent(
  args: AgentServerArgs,
  log: (msg: string) => void,
): Promise<AgentServerState | undefined> {
  for (const orphan of proc.ownLiveServers(args.owner, "mlops-agent", args.host)) {
    const handle = orphan.server!;
    const wanted = reservation(args);
    if (
      orphan.port === args.port &&
      orphan.subject === wanted.subject &&
      JSON.stringify(orphan.command) === JSON.stringify(wanted.command)
    ) {
      log(
        `found the agent of an interrupted create (pid ${handle.pid}): stopping it to start it with the current token`,
      );
    } else {
      log(`stopping the agent of an interrupted create (pid ${handle.pid}, port ${orphan.port})`);
    }
    // Stopped, never adopted: it may hold another token file's content. Its backends live on and the
    // agent started next adopts them.
    await proc.killProcessGroup(handle);
    await proc.waitForPortFree(args.host, orphan.port, 15_000);
  }
  return undefined;
}

/** create (and the start half of an update): see the contract. */
export async function startAgent(
  args: AgentServerArgs,
  log: (msg: string) => void = () => undefined,
): Promise<AgentServerState> {
  await recoverAgent(args, log);
  const taken = `agent.port: ${args.port} on ${args.host} is already in use by a process this stack does not own; stop it or choose another agent.port`;
  if (!(await proc.isPortFree(args.host, args.port))) {
    throw new Error(taken);
  }
  try {
    await proc.reservePort(args.host, args.port, args.port, reservation(args));
  } catch {
    throw new Error(taken);
  }
  writeAgentFiles(args);
  const dataDir = path.resolve(args.dataDir);
  const env = serverEnvironment({
    base: process.env,
    mlflowBin: args.python,
    set: {
      PYTHONPATH: path.resolve(args.agentDir),
      [AGENT_MARKER]: dataDir,
      ...(basicAuthOf(args) ? { HOME: mlflowHomeOf(dataDir) } : {}),
    },
  });
  const handle = proc.spawnDetached(args.python, agentCommand(args), {
    env,
    logFile: logFileOf(args),
    cwd: dataDir,
  });
  const state = stateOf(args, handle);
  try {
    await proc.recordServer(args.host, args.port, handle);
    log(`started the agent on ${state.url} (pid ${handle.pid})`);
    await waitForAgent(state, args.startTimeoutSeconds, log);
  } catch (err) {
    await proc.killProcessGroup(handle);
    await proc.releasePort(args.host, args.port, args.owner);
    throw err;
  }
  return state;
}

/** Process groups whose members carry this agent's marker (the agent and its backends). */
export function markedGroups(dataDir: string): number[] {
  const needle = `${AGENT_MARKER}=${path.resolve(dataDir)}\0`;
  const groups = new Set<number>();
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (fs.readFileSync(`/proc/${pid}/environ`, "utf8").includes(needle)) {
        const info = proc.probe().info(Number(pid));
        if (info && info.pgid > 1) {
          groups.add(info.pgid);
        }
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return [...groups];
}

/** Stops the agent only (its backends keep running for the next agent to adopt). */
async function stopAgentProcess(state: AgentServerState): Promise<void> {
  await proc.killProcessGroup(state);
  await proc.waitForPortFree(state.host, state.port, 15_000);
}

/** delete: see the contract. */
export async function stopAgent(state: AgentServerState): Promise<void> {
  await stopAgentProcess(state);
  for (const pgid of markedGroups(state.dataDir)) {
    await proc.killProcessGroup({ pid: pgid, pgid, startTicks: "" });
  }
  const left = markedGroups(state.dataDir);
  if (left.length > 0) {
    throw new Error(
      `the agent's backends (process groups ${left.join(", ")}) are still running after SIGKILL`,
    );
  }
  await proc.releasePort(state.host, state.port, state.owner);
  const dataDir = path.resolve(state.dataDir);
  fs.rmSync(path.join(dataDir, "token"), { force: true });
  fs.rmSync(path.join(dataDir, "state.json"), { force: true });
  fs.rmSync(mlflowHomeOf(dataDir), { recursive: true, force: true });
}

export async function readAgent(
  state: AgentServerState,
  log: (msg: string) => void = () => undefined,
): Promise<AgentServerState | undefined> {
  if (!proc.isSameProcessAlive(state)) {
    return undefined;
  }
  const health = await healthOf(state.url);
  if (health.status !== "ok") {
    log(
      `warning: the agent (pid ${state.pid}) runs but ${state.url}/health says ` +
        `${health.code === 0 ? "nothing" : `${health.code} ${health.status ?? ""}`}; keeping it (its log: ${state.logFile})`,
    );
  }
  return state;
}

const REPLACE_KEYS = ["host", "port", "dataDir"] as const;
const RESTART_KEYS = [
  "python",
  "agentDir",
  "frontPorts",
  "backendPorts",
  "trackingUri",
  "token",
  "backendStartTimeoutSeconds",
  "backendWorkers",
] as const;
const UPDATE_KEYS = [...RESTART_KEYS, "startTimeoutSeconds", "mlflowAuth"] as const;

export function diffAgentServer(olds: AgentServerState, news: AgentServerArgs) {
  return diffByKeys<AgentServerArgs, keyof AgentServerArgs>(
    olds,
    news,
    REPLACE_KEYS,
    UPDATE_KEYS,
    true,
  );
}

export async function updateAgentServer(
  olds: AgentServerState,
  news: AgentServerArgs,
  log: (msg: string) => void = () => undefined,
): Promise<AgentServerState> {
  const restart =
    RESTART_KEYS.some((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null)) ||
    // HOME is set when the agent starts.
    (basicAuthOf(olds) === undefined) !== (basicAuthOf(news) === undefined);
  if (!restart && proc.isSameProcessAlive(olds)) {
    writeAgentFiles(news);
    return { ...olds, ...news };
  }
  log(`restarting the agent on ${olds.url}: its backends keep serving and are adopted`);
  await stopAgentProcess(olds);
  await proc.releasePort(olds.host, olds.port, olds.owner);
  return startAgent(news, log);
}
