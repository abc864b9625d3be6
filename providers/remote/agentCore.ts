import { changedKeys, containsUnknown } from "../diffKeys";
import { lastLines, runScriptAsRoot, SshSession, withSsh } from "../ssh/client";
import { buildCommand } from "../ssh/command";
import { SshConnection } from "../ssh/connection";
import { writeRemoteFile } from "../ssh/files";
import { shQuote } from "../ssh/quote";
import { DETECT_SUPERVISOR, httpUrlOf, serviceRunningScript, Supervisor } from "./serviceScripts";
import {
  AGENT_UNIT_NAME,
  agentPackage,
  agentPaths,
  agentRevision,
  agentSupervisorScript,
  supervisorArgv,
  agentSystemdUnit,
  installedHashScript,
  remoteAgentConfig,
  RemoteAgentSpec,
  REMOTE_AGENT_MARKER,
  requirementsScript,
  runtimePins,
  unpackArgv,
} from "./agentUnits";

/**
 * Core of the RemoteAgent dynamic provider: the MLOps agent (agent/) installed on the remote MLflow
 * host (mode `remote`, deploy mode `agent`) over SSH, run as the service user (agentUnits.ts renders
 * what is installed).
 *
 * Contract
 * - id: `<publicHost>:<port>` of the agent's API.
 * - replace: another host (SSH host or port, publicHost), API port or layout (deleteBeforeReplace).
 * - update in place: a new package hash (agent/ changed) copies the package again; it, another config
 *   (port ranges, tracking URI, backend settings), a new provisioning hash or another token restart
 *   the agent alone (the backends keep running and are adopted: no model restarts). A changed
 *   connection or start deadline is only recorded.
 * - create: copies the package over SSH stdin when the host's hash differs (a second `up` copies
 *   nothing), checks the agent's runtime pins in the venv (pip-installs them only when missing),
 *   writes the config (no secret) and the token (stdin, 0600, the service user's), then runs the agent
 *   under the MLflow server's mechanism: the unit `model-serving-agent.service` (Restart=always,
 *   KillMode=process) where systemd runs, else a restart loop started with setsid as the service user.
 *   An agent already running the same revision is adopted untouched. Ready = /health ok (or degraded,
 *   a warning) on the host, and the API URL answers from here.
 * - read: "gone" when the unit or the loop is not running (refresh drops it, up starts it again and
 *   it adopts its backends); a running supervisor whose agent does not answer is a warning. A kill -9
 *   of the agent itself is repaired by its supervisor within seconds.
 * - delete: stops the unit or loop, then every process carrying the agent's marker (its backends),
 *   waits until the API and front ports are free, removes the token, config and unit/loop; keeps the
 *   agent's data dir (<dataDir>/agent: state, logs) and the package.
 * - Secrets: `token` and `connection` are secret inputs and outputs; the token never reaches a command
 *   line, the unit, the loop, an environment or a log line.
 */
export type { Supervisor };

export interface RemoteAgentArgs extends RemoteAgentSpec {
  /** Secret (the private key). */
  connection: SshConnection;
  /** The host name in the agent's URL and its front URLs. */
  publicHost: string;
  /** Secret: only ever written to the host's 0600 token file. */
  token: string;
  /** The project's agent/ folder, read at create/update. */
  agentDir: string;
  /** Its content hash when the program ran (agentPackage): a new one re-installs. */
  packageHash: string;
  /** The host's provisioning hash: a new venv restarts the agent. */
  provisioned?: string;
  /** Deadline for /health after a start, seconds. */
  startTimeoutSeconds: number;
}

export interface RemoteAgentState extends RemoteAgentArgs {
  supervisor: Supervisor;
  /** `http://<publicHost>:<port>` */
  url: string;
  logFile: string;
}

export function remoteAgentId(args: Pick<RemoteAgentArgs, "publicHost" | "port">): string {
  return `${args.publicHost}:${args.port}`;
}

export function remoteAgentUrl(args: Pick<RemoteAgentArgs, "publicHost" | "port">): string {
  return httpUrlOf(args.publicHost, args.port);
}

/** Prints `running` when the unit is active or the pidfile's process is the agent's supervisor. */
export function agentRunningScript(spec: RemoteAgentSpec, supervisor: Supervisor): string {
  return serviceRunningScript(supervisor, {
    unit: AGENT_UNIT_NAME,
    pidFile: agentPaths(spec.layout).supervisorPid,
    commandLine: supervisorArgv(spec.layout).join(" "),
  });
}

/** The agent's /health on the host: its `status` ("" when nothing answers). */
export function agentHealthScript(port: number): string {
  return `curl -s -m 5 http://127.0.0.1:${port}/health | sed -n 's/.*"status": *"\\([a-z]*\\)".*/\\1/p' || true`;
}

/** Listeners on the API port or the front range (what must be gone after a stop). */
function listenersFilter(spec: RemoteAgentSpec): string {
  return `'( sport = :${spec.port} or ( sport >= :${spec.frontPorts.first} and sport <= :${spec.frontPorts.last} ) )'`;
}

/** Stops the loop (TERM to its process group: the agent closes its fronts), KILL after 20 s. The
 * backends are left alone (a restart adopts them); stopScript removes them too. */
function stopLoopScript(spec: RemoteAgentSpec): string {
  const paths = agentPaths(spec.layout);
  return [
    `pid=$(cat ${shQuote(paths.supervisorPid)} 2>/dev/null || true)`,
    'pgid=$( [ -n "$pid" ] && ps -o pgid= -p "$pid" | tr -d " " || true)',
    'if [ -n "$pgid" ]; then kill -TERM "-$pgid" 2>/dev/null || true; i=0; while kill -0 "-$pgid" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.5; i=$((i+1)); done; kill -KILL "-$pgid" 2>/dev/null || true; fi',
    `apid=$(cat ${shQuote(paths.agentPid)} 2>/dev/null || true)`,
    'if [ -n "$apid" ]; then kill -KILL "$apid" 2>/dev/null || true; fi',
    `rm -f ${shQuote(paths.supervisorPid)} ${shQuote(paths.agentPid)}`,
  ].join("\n");
}

/**
 * Runs the agent under its supervisor. The same revision running is left alone (unless `restart`);
 * otherwise what runs is stopped (the backends stay) and started again. A foreign listener on the API
 * port is refused.
 */
export function agentStartScript(
  spec: RemoteAgentSpec,
  supervisor: Supervisor,
  revision: string,
  restart: boolean,
): string {
  const paths = agentPaths(spec.layout);
  const user = shQuote(spec.layout.serviceUser);
  const applied = shQuote(
    `${supervisor === "systemd" ? paths.unitFile : paths.supervisor}.applied`,
  );
  const lines = [
    "set -e",
    `install -d -m 0750 -o ${user} -g ${user} ${shQuote(`${spec.layout.baseDir}/run`)} ${shQuote(`${spec.layout.baseDir}/log`)} ${shQuote(paths.dataDir)} ${shQuote(paths.logDir)}`,
    `rev=${shQuote(revision)}`,
    `running=$(${agentRunningScript(spec, supervisor).split("\n").join("; ")})`,
    `if [ "$running" = running ] && [ "$(cat ${applied} 2>/dev/null)" = "$rev" ] && [ ${restart ? 1 : 0} = 0 ]; then echo 'agent: already running'; exit 0; fi`,
  ];
  if (supervisor === "systemd") {
    return [
      ...lines,
      "systemctl daemon-reload",
      `systemctl enable ${AGENT_UNIT_NAME}`,
      `systemctl restart ${AGENT_UNIT_NAME}`,
      `echo "$rev" > ${applied}`,
      "echo 'agent: started'",
    ].join("\n");
  }
  return [
    ...lines,
    stopLoopScript(spec),
    `i=0; while ss -Hltn 'sport = :${spec.port}' | grep -q . && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done`,
    `if ss -Hltn 'sport = :${spec.port}' | grep -q .; then echo 'port ${spec.port} is in use on the host by a process this agent does not own' >&2; exit 1; fi`,
    `echo "$rev" > ${applied}`,
    `setsid -f runuser -u ${user} -- sh ${shQuote(paths.supervisor)} >> ${shQuote(paths.log)} 2>&1 < /dev/null`,
    "echo 'agent: started'",
  ].join("\n");
}

/** Stops the agent and everything carrying its marker, waits for its ports, removes its token,
 * config and unit/loop; the data dir stays. */
export function agentStopScript(spec: RemoteAgentSpec, supervisor: Supervisor): string {
  const paths = agentPaths(spec.layout);
  const marker = `${REMOTE_AGENT_MARKER}=${paths.dataDir}`;
  const stop =
    supervisor === "systemd"
      ? [
          `systemctl disable --now ${AGENT_UNIT_NAME} 2>/dev/null || true`,
          `rm -f ${shQuote(paths.unitFile)} ${shQuote(`${paths.unitFile}.applied`)}`,
          "systemctl daemon-reload",
        ]
      : [
          stopLoopScript(spec),
          `rm -f ${shQuote(paths.supervisor)} ${shQuote(`${paths.supervisor}.applied`)}`,
        ];
  return [
    ...stop,
    // The backends (own sessions, the agent's environment): found by the marker.
    `for d in /proc/[0-9]*; do if tr '\\0' '\\n' < "$d/environ" 2>/dev/null | grep -qxF ${shQuote(marker)}; then kill -KILL "\${d#/proc/}" 2>/dev/null || true; fi; done`,
    `rm -f ${shQuote(paths.token)} ${shQuote(paths.config)}`,
    `i=0; while ss -Hltn ${listenersFilter(spec)} | grep -q . && [ $i -lt 40 ]; do sleep 0.5; i=$((i+1)); done`,
    `if ss -Hltn ${listenersFilter(spec)} | grep -q .; then echo "the agent's ports are still in use on the host:" >&2; ss -Hltn ${listenersFilter(spec)} >&2; exit 1; fi`,
  ].join("\n");
}

async function logTail(ssh: SshSession, args: RemoteAgentArgs, supervisor: Supervisor) {
  const paths = agentPaths(args.layout);
  const script =
    supervisor === "systemd"
      ? `journalctl -u ${AGENT_UNIT_NAME} -n 30 --no-pager 2>&1 || true`
      : `tail -n 30 ${shQuote(paths.log)} 2>&1 || true`;
  const out = await ssh.exec(
    buildCommand(args.connection.user, { argv: ["sh", "-s"], asRoot: true }),
    {
      stdin: script,
    },
  );
  return lastLines(out.stdout, 30);
}

/** Copies the package when the host's hash differs; returns whether it did. */
async function installPackage(ssh: SshSession, args: RemoteAgentArgs, log: (m: string) => void) {
  const user = args.connection.user;
  const pkg = agentPackage(args.agentDir);
  const onHost = (
    await runScriptAsRoot(ssh, user, installedHashScript(args.layout), "reading the agent's hash")
  ).stdout.trim();
  if (onHost !== pkg.hash) {
    log(
      `copying the agent package (${Object.keys(pkg.files).length} files, ${pkg.hash.slice(0, 12)}) to ${ssh.target}`,
    );
    await ssh.run(buildCommand(user, { argv: unpackArgv(args.layout, pkg.hash), asRoot: true }), {
      stdin: JSON.stringify(pkg.files),
      what: "installing the agent package",
    });
  }
  const requirements = Buffer.from(pkg.files["requirements.txt"], "base64").toString("utf8");
  const out = await runScriptAsRoot(
    ssh,
    user,
    requirementsScript(args.layout, runtimePins(requirements)),
    "checking the agent's requirements",
    600_000,
  );
  log(out.stdout.trim().split("\n").pop() ?? "");
  return { hash: pkg.hash, copied: onHost !== pkg.hash };
}

async function waitReady(
  ssh: SshSession,
  args: RemoteAgentArgs,
  supervisor: Supervisor,
  log: (m: string) => void,
) {
  const deadline = Date.now() + args.startTimeoutSeconds * 1000;
  let reported = Date.now();
  for (;;) {
    const status = (await ssh.run(agentHealthScript(args.port))).stdout.trim();
    if (status === "ok" || status === "degraded") {
      if (status === "degraded") {
        log(`warning: the agent on ${ssh.target} is degraded (a recorded model did not come back)`);
      }
      return;
    }
    if (Date.now() > deadline) {
      const tail = await logTail(ssh, args, supervisor);
      throw new Error(
        `the agent on ${ssh.target} did not answer /health ok on port ${args.port} within ` +
          `${args.startTimeoutSeconds} s (last status "${status}"); last log lines:\n${tail}`,
      );
    }
    if (Date.now() - reported > 10_000) {
      log(`waiting for the agent on ${ssh.target} (port ${args.port}, status "${status}")`);
      reported = Date.now();
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function reachableFromHere(url: string): Promise<number | string> {
  try {
    return (await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) })).status;
  } catch (err) {
    return (err as Error).message;
  }
}

async function install(
  args: RemoteAgentArgs,
  restart: boolean,
  log: (msg: string) => void,
): Promise<RemoteAgentState> {
  const user = args.connection.user;
  return withSsh(args.connection, async (ssh) => {
    const supervisor = (await ssh.run(DETECT_SUPERVISOR)).stdout.trim() as Supervisor;
    log(
      `agent on ${ssh.target}: ${supervisor === "systemd" ? "systemd unit" : "supervised process (no systemd)"}`,
    );
    const paths = agentPaths(args.layout);
    const pkg = await installPackage(ssh, args, log);
    const owner = `${args.layout.serviceUser}:${args.layout.serviceUser}`;
    await writeRemoteFile(ssh, user, {
      path: paths.config,
      content: `${JSON.stringify(remoteAgentConfig(args), null, 2)}\n`,
      mode: "0644",
      asRoot: true,
    });
    // The token only in the service user's 0600 file, written over stdin.
    await writeRemoteFile(ssh, user, {
      path: paths.token,
      content: `${args.token}\n`,
      mode: "0600",
      owner,
      asRoot: true,
    });
    await writeRemoteFile(ssh, user, {
      path: supervisor === "systemd" ? paths.unitFile : paths.supervisor,
      content:
        supervisor === "systemd"
          ? agentSystemdUnit(args.layout)
          : agentSupervisorScript(args.layout),
      mode: supervisor === "systemd" ? "0644" : "0755",
      asRoot: true,
    });
    const revision = agentRevision(args, `${pkg.hash}:${args.provisioned ?? ""}`, supervisor);
    const started = await runScriptAsRoot(
      ssh,
      user,
      agentStartScript(args, supervisor, revision, restart || pkg.copied),
      "starting the agent",
    );
    log(started.stdout.trim());
    try {
      await waitReady(ssh, args, supervisor, log);
    } catch (err) {
      await runScriptAsRoot(
        ssh,
        user,
        agentStopScript(args, supervisor),
        "stopping the agent",
      ).catch(() => undefined);
      throw err;
    }
    const url = remoteAgentUrl(args);
    const fromHere = await reachableFromHere(url);
    if (fromHere !== 200) {
      throw new Error(
        `the agent answers on ${ssh.target} (port ${args.port}) but not at ${url} from here (${fromHere}): ` +
          "check publicHost, mlflow.remote.bindHost and the host's firewall",
      );
    }
    return {
      ...args,
      packageHash: pkg.hash,
      supervisor,
      url,
      logFile: supervisor === "systemd" ? `journalctl -u ${AGENT_UNIT_NAME}` : paths.log,
    };
  });
}

export async function createRemoteAgent(
  args: RemoteAgentArgs,
  log: (msg: string) => void = () => undefined,
): Promise<RemoteAgentState> {
  return install(args, false, log);
}

const REPLACE_KEYS = ["publicHost", "port", "layout"] as const;
const UPDATE_KEYS = [
  "bindHost",
  "frontPorts",
  "backendPorts",
  "hostTrackingUri",
  "backendStartTimeoutSeconds",
  "backendWorkers",
  "packageHash",
  "provisioned",
  "token",
  "agentDir",
  "connection",
  "startTimeoutSeconds",
] as const;

/** diff: old outputs against new inputs; unknown values are updates, never replacements. */
export function diffRemoteAgent(olds: RemoteAgentState, news: RemoteAgentArgs) {
  const replaces: string[] = changedKeys(olds, news, REPLACE_KEYS).filter(
    (k) => !containsUnknown(news[k]),
  );
  const target = (c: SshConnection | undefined) => JSON.stringify([c?.host, c?.port]);
  if (!containsUnknown(news.connection) && target(olds.connection) !== target(news.connection)) {
    replaces.push("connection");
  }
  const updates = changedKeys(olds, news, UPDATE_KEYS);
  return {
    changes: replaces.length > 0 || updates.length > 0,
    replaces,
    deleteBeforeReplace: true,
  };
}

/** update: installs again (an unchanged revision is adopted); a new token restarts the agent. */
export async function updateRemoteAgent(
  olds: RemoteAgentState,
  news: RemoteAgentArgs,
  log: (msg: string) => void = () => undefined,
): Promise<RemoteAgentState> {
  return install(news, olds.token !== news.token, log);
}

export type RemoteAgentHealth = "serving" | "not answering" | "gone";

export async function remoteAgentHealth(state: RemoteAgentState): Promise<RemoteAgentHealth> {
  return withSsh(state.connection, async (ssh) => {
    const running = (
      await runScriptAsRoot(
        ssh,
        state.connection.user,
        agentRunningScript(state, state.supervisor),
        "checking the agent",
      )
    ).stdout.trim();
    if (running !== "running") {
      return "gone";
    }
    const status = (await ssh.run(agentHealthScript(state.port))).stdout.trim();
    return status === "ok" || status === "degraded" ? "serving" : "not answering";
  });
}

export async function readRemoteAgent(
  state: RemoteAgentState,
  warn: (msg: string) => void = () => undefined,
): Promise<RemoteAgentState | undefined> {
  const health = await remoteAgentHealth(state);
  if (health === "not answering") {
    warn(`the agent ${remoteAgentId(state)} runs but does not answer /health`);
  }
  return health === "gone" ? undefined : state;
}

export async function deleteRemoteAgent(state: RemoteAgentState): Promise<void> {
  await withSsh(state.connection, (ssh) =>
    runScriptAsRoot(
      ssh,
      state.connection.user,
      agentStopScript(state, state.supervisor),
      "stopping the agent",
    ),
  );
}
