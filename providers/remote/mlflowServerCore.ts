import { changedKeys, containsUnknown } from "../diffKeys";
import { lastLines, runScriptAsRoot, SshSession, withSsh } from "../ssh/client";
import { buildCommand } from "../ssh/command";
import { SshConnection } from "../ssh/connection";
import { writeRemoteFile } from "../ssh/files";
import { shQuote } from "../ssh/quote";
import { DETECT_SUPERVISOR, httpUrlOf, serviceRunningScript, Supervisor } from "./serviceScripts";
import { credentialsAccepted } from "../mlflowServerCore";
import {
  basicAuthIni,
  flaskKeyScript,
  remotePaths,
  RemoteServerSpec,
  serverArgv,
  supervisorScript,
  systemdUnit,
  splitDsn,
  UNIT_NAME,
} from "./mlflowServerUnits";

/**
 * Core of the remote MLflow server (mode `remote`): `mlflow server` on a provisioned host (see
 * provision.ts), managed over SSH as root (sudo -n for a sudo user).
 *
 * Contract
 * - id: `<publicHost>:<port>`.
 * - replace: another host (SSH host or port, publicHost), MLflow port, bind address, layout or backend
 *   store (deleteBeforeReplace: the same id).
 * - update in place: a new provisioning hash (`provisioned`: the host's venv changed) restarts the
 *   server; a changed connection (user, key, host key pin) or start timeout is only recorded (the
 *   running server is adopted as it is).
 * - create: a systemd unit (`model-serving-mlflow.service`, Restart=always) where systemd runs
 *   (/run/systemd/system exists), else a supervised process: a restart loop started with setsid as the
 *   service user, pidfile under <baseDir>/run. A server already running under the same supervisor is
 *   adopted (the files are rewritten, a changed command restarts it). Ready = /health answers 200 on the
 *   host and the tracking URI answers from the deploying side. A server that does not get ready is
 *   stopped again and the error carries the host's last log lines.
 * - read: "gone" when the supervisor (unit inactive, or the pidfile's process is not our loop) is not
 *   running, so refresh drops it and the next up starts it again; "not answering" when it runs but
 *   /health does not answer (a warning, not a deletion).
 * - delete: stops the unit or the loop's whole process group, waits until the port is free, keeps the
 *   data directory (backend store and artifacts) and the PostgreSQL database.
 * - Secrets: none reaches the host's command lines or environment; the SSH key stays in memory here.
 *   An existing database's DSN (backendStore postgresql-dsn, a secret input and output) reaches the host
 *   without its password on the command line; the password is in <baseDir>/pgpass (0600, the service
 *   user's), found through PGPASSFILE.
 * - Basic auth (`auth`, secret input and output): `--app-name basic-auth`; the admin's credentials
 *   reach the host over SSH stdin into <baseDir>/basic_auth.ini (0600, the service user's), which MLflow
 *   reads (MLFLOW_AUTH_CONFIG_PATH) to create the admin on its first start; the CSRF key is made on the
 *   host (<baseDir>/auth.env, 0600). Neither is on a command line, in the unit file or in the server's
 *   environment. Ready also means the stack's credentials are accepted from here; a server whose admin
 *   has another password (rotation over SSH is not implemented) fails the create/update naming it.
 *   Turning auth on or off restarts the server (its command changes).
 */
export type { Supervisor };

export interface RemoteMlflowServerArgs extends RemoteServerSpec {
  /** Secret (the private key). */
  connection: SshConnection;
  /** MLflow basic auth's admin (secret); set together with basicAuth. */
  auth?: { username: string; password: string };
  startTimeoutSeconds: number;
  /** The hash of the provisioning the server runs on (HostProvisioning): a new one restarts it. */
  provisioned?: string;
}

export interface RemoteMlflowServerState extends RemoteMlflowServerArgs {
  supervisor: Supervisor;
  trackingUri: string;
  logFile: string;
}

export type RemoteServerHealth = "serving" | "not answering" | "gone";

export function remoteServerId(args: Pick<RemoteServerSpec, "publicHost" | "port">): string {
  return `${args.publicHost}:${args.port}`;
}

export function trackingUriOf(args: Pick<RemoteServerSpec, "publicHost" | "port">): string {
  return httpUrlOf(args.publicHost, args.port);
}

/** Prints `running` when the supervisor runs (unit active, or the pidfile's process is our loop). */
export function supervisorRunningScript(spec: RemoteServerSpec, supervisor: Supervisor): string {
  const paths = remotePaths(spec.layout);
  return serviceRunningScript(supervisor, {
    unit: UNIT_NAME,
    pidFile: paths.supervisorPid,
    commandLine: paths.supervisor,
  });
}

/** One /health probe on the host itself: prints the HTTP status (000 when nothing answers). */
export function healthProbeScript(port: number): string {
  return `curl -s -o /dev/null -m 5 -w '%{http_code}' http://127.0.0.1:${port}/health || true`;
}

/** PostgreSQL on the host: the cluster started, the service user's role and database created (peer auth). */
export function postgresSetupScript(spec: RemoteServerSpec, supervisor: Supervisor): string {
  if (spec.backendStore.kind !== "postgresql-local") {
    return "";
  }
  const role = shQuote(spec.layout.serviceUser);
  const db = shQuote(spec.backendStore.database);
  const sql = (q: string) => `runuser -u postgres -- psql -XtAc ${shQuote(q)}`;
  return [
    "set -e",
    "command -v pg_lsclusters >/dev/null || { echo 'PostgreSQL is not installed: provision with postgresql: true' >&2; exit 3; }",
    supervisor === "systemd"
      ? "systemctl enable --now postgresql"
      : 'pg_lsclusters -h | while read -r ver name _port status _rest; do [ "$status" = online ] || pg_ctlcluster "$ver" "$name" start; done',
    `${sql(`SELECT 1 FROM pg_roles WHERE rolname = '${spec.layout.serviceUser}'`)} | grep -q 1 || runuser -u postgres -- createuser ${role}`,
    `${sql(`SELECT 1 FROM pg_database WHERE datname = '${spec.backendStore.database}'`)} | grep -q 1 || runuser -u postgres -- createdb -O ${role} ${db}`,
  ].join("\n");
}

/** Starts the server under its supervisor; a running supervisor with the same command is left alone,
 * anything else this layout started is stopped first, and a foreign listener on the port is refused. */
export function startScript(spec: RemoteServerSpec, supervisor: Supervisor): string {
  const paths = remotePaths(spec.layout);
  const user = shQuote(spec.layout.serviceUser);
  const dirs = [
    "set -e",
    `install -d -m 0750 -o ${user} -g ${user} ${shQuote(`${spec.layout.baseDir}/run`)} ${shQuote(`${spec.layout.baseDir}/log`)} ${shQuote(`${spec.layout.dataDir}/artifacts`)}`,
  ];
  if (supervisor === "systemd") {
    return [
      ...dirs,
      "systemctl daemon-reload",
      // A changed unit file restarts it; an unchanged one is left running.
      `if [ "$(cat ${shQuote(`${paths.unitFile}.applied`)} 2>/dev/null)" != "$(sha256sum < ${shQuote(paths.unitFile)})" ]; then systemctl enable ${UNIT_NAME}; systemctl restart ${UNIT_NAME}; sha256sum < ${shQuote(paths.unitFile)} > ${shQuote(`${paths.unitFile}.applied`)}; else systemctl start ${UNIT_NAME}; fi`,
    ].join("\n");
  }
  return [
    ...dirs,
    `running=$(${supervisorRunningScript(spec, supervisor).split("\n").join("; ")})`,
    `applied=${shQuote(`${paths.supervisor}.applied`)}`,
    `if [ "$running" = running ] && [ "$(cat "$applied" 2>/dev/null)" = "$(sha256sum < ${shQuote(paths.supervisor)})" ]; then echo 'mlflow: already running'; exit 0; fi`,
    // Not ours as it should be (another command, or a dead loop that left its server running): stop
    // what this layout started, by pidfile and the service user's listeners on the port.
    stopProcessScript(spec),
    // Never start next to a foreign listener (it would answer /health in our place).
    `if ss -Hltn 'sport = :${spec.port}' | grep -q .; then echo 'port ${spec.port} is in use on the host by a process this server does not own' >&2; exit 1; fi`,
    `sha256sum < ${shQuote(paths.supervisor)} > "$applied"`,
    `setsid -f runuser -u ${user} -- sh ${shQuote(paths.supervisor)} >> ${shQuote(paths.log)} 2>&1 < /dev/null`,
    "echo 'mlflow: started'",
  ].join("\n");
}

/** TERM to the restart loop's process group, KILL after 20 s, KILL to the server's group; then the
 * pidfiles go. */
function stopProcessScript(spec: RemoteServerSpec): string {
  const paths = remotePaths(spec.layout);
  return [
    `pid=$(cat ${shQuote(paths.supervisorPid)} 2>/dev/null || true)`,
    'pgid=$( [ -n "$pid" ] && ps -o pgid= -p "$pid" | tr -d " " || true)',
    'if [ -n "$pgid" ]; then kill -TERM "-$pgid" 2>/dev/null || true; i=0; while kill -0 "-$pgid" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.5; i=$((i+1)); done; kill -KILL "-$pgid" 2>/dev/null || true; fi',
    // The server's own group, in case the loop was KILLed before it could stop it.
    `spid=$(cat ${shQuote(paths.serverPid)} 2>/dev/null || true)`,
    'if [ -n "$spid" ]; then kill -KILL "-$spid" 2>/dev/null || true; fi',
    // And any process of the service user still listening on the port (a worker that escaped).
    `for p in $(ss -Hltnp 'sport = :${spec.port}' | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do [ "$(ps -o user= -p "$p")" = ${shQuote(spec.layout.serviceUser)} ] && kill -KILL "$p" 2>/dev/null; done; true`,
    // KILL is asynchronous: wait (10 s at most) until the port is released.
    `i=0; while ss -Hltn 'sport = :${spec.port}' | grep -q . && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done`,
    `rm -f ${shQuote(paths.supervisorPid)} ${shQuote(paths.serverPid)}`,
  ].join("\n");
}

/** Stops the server (unit or process group) and waits until nothing listens on its port. */
export function stopScript(spec: RemoteServerSpec, supervisor: Supervisor): string {
  const paths = remotePaths(spec.layout);
  const stop =
    supervisor === "systemd"
      ? [
          `systemctl disable --now ${UNIT_NAME} 2>/dev/null || true`,
          `rm -f ${shQuote(paths.unitFile)} ${shQuote(`${paths.unitFile}.applied`)}`,
          "systemctl daemon-reload",
        ]
      : [stopProcessScript(spec), `rm -f ${shQuote(`${paths.supervisor}.applied`)}`];
  return [
    ...stop,
    `i=0; while ss -Hltn 'sport = :${spec.port}' | grep -q . && [ $i -lt 40 ]; do sleep 0.5; i=$((i+1)); done`,
    `if ss -Hltn 'sport = :${spec.port}' | grep -q .; then echo 'port ${spec.port} is still in use on the host' >&2; exit 1; fi`,
  ].join("\n");
}

async function remoteLogTail(
  ssh: SshSession,
  user: string,
  spec: RemoteServerSpec,
  supervisor: Supervisor,
) {
  const script =
    supervisor === "systemd"
      ? `journalctl -u ${UNIT_NAME} -n 30 --no-pager 2>&1 || true`
      : `tail -n 30 ${shQuote(remotePaths(spec.layout).log)} 2>&1 || true`;
  const out = await ssh.exec(buildCommand(user, { argv: ["sh", "-s"], asRoot: true }), {
    stdin: script,
  });
  return lastLines(out.stdout, 30);
}

async function waitHealthy(
  ssh: SshSession,
  args: RemoteMlflowServerArgs,
  supervisor: Supervisor,
  log: (msg: string) => void,
): Promise<void> {
  const user = args.connection.user;
  const deadline = Date.now() + args.startTimeoutSeconds * 1000;
  let lastReport = Date.now();
  for (;;) {
    const status = (await ssh.run(healthProbeScript(args.port))).stdout.trim();
    if (status === "200") {
      return;
    }
    if (Date.now() > deadline) {
      const tail = await remoteLogTail(ssh, user, args, supervisor);
      throw new Error(
        `MLflow server on ${ssh.target} did not answer /health on port ${args.port} within ` +
          `${args.startTimeoutSeconds} s (last status ${status}); last log lines:\n${tail}`,
      );
    }
    if (Date.now() - lastReport > 10_000) {
      log(`waiting for MLflow on ${ssh.target} (port ${args.port})`);
      lastReport = Date.now();
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** GET <trackingUri>/health from here: the output must work where `pulumi up` runs. */
async function reachableFromHere(trackingUri: string): Promise<number | string> {
  try {
    const res = await fetch(`${trackingUri}/health`, { signal: AbortSignal.timeout(10_000) });
    return res.status;
  } catch (err) {
    return (err as Error).message;
  }
}

export async function createRemoteMlflowServer(
  args: RemoteMlflowServerArgs,
  log: (msg: string) => void = () => undefined,
): Promise<RemoteMlflowServerState> {
  const user = args.connection.user;
  return withSsh(args.connection, async (ssh) => {
    const supervisor = (await ssh.run(DETECT_SUPERVISOR)).stdout.trim() as Supervisor;
    log(
      `MLflow server on ${ssh.target}: ${supervisor === "systemd" ? "systemd unit" : "supervised process (no systemd)"}`,
    );
    const paths = remotePaths(args.layout);
    if (args.backendStore.kind === "postgresql-local") {
      await runScriptAsRoot(
        ssh,
        user,
        postgresSetupScript(args, supervisor),
        "setting up PostgreSQL",
      );
    }
    if (args.backendStore.kind === "postgresql-dsn") {
      // The password only in the service user's 0600 pgpass file (written over stdin).
      const { pgpass } = splitDsn(args.backendStore.dsn);
      await writeRemoteFile(ssh, user, {
        path: paths.pgpass,
        content: pgpass === undefined ? "" : `${pgpass}\n`,
        mode: "0600",
        owner: `${args.layout.serviceUser}:${args.layout.serviceUser}`,
        asRoot: true,
      });
    }
    if (args.basicAuth) {
      if (args.auth === undefined) {
        throw new Error(
          `MLflow server on ${ssh.target}: basicAuth needs auth (the admin's credentials)`,
        );
      }
      // The admin's credentials only in the service user's 0600 ini (written over stdin).
      await writeRemoteFile(ssh, user, {
        path: paths.authIni,
        content: basicAuthIni(args.layout, args.auth),
        mode: "0600",
        owner: `${args.layout.serviceUser}:${args.layout.serviceUser}`,
        asRoot: true,
      });
      await runScriptAsRoot(
        ssh,
        user,
        flaskKeyScript(args.layout),
        "making the basic-auth CSRF key",
      );
    }
    if (supervisor === "systemd") {
      await writeRemoteFile(ssh, user, {
        path: paths.unitFile,
        content: systemdUnit(args),
        mode: "0644",
        asRoot: true,
      });
    } else {
      await writeRemoteFile(ssh, user, {
        path: paths.supervisor,
        content: supervisorScript(args),
        mode: "0755",
        asRoot: true,
      });
    }
    await runScriptAsRoot(ssh, user, startScript(args, supervisor), "starting the MLflow server");
    try {
      await waitHealthy(ssh, args, supervisor, log);
    } catch (err) {
      // Nothing half-started stays behind (a restart loop of a server that cannot start).
      await runScriptAsRoot(
        ssh,
        user,
        stopScript(args, supervisor),
        "stopping the MLflow server",
      ).catch(() => undefined);
      throw err;
    }
    const trackingUri = trackingUriOf(args);
    const fromHere = await reachableFromHere(trackingUri);
    if (fromHere !== 200) {
      throw new Error(
        `MLflow answers on ${ssh.target} (port ${args.port}) but not at ${trackingUri} from here (${fromHere}): ` +
          "check publicHost, the bind address and the host's firewall",
      );
    }
    if (args.auth !== undefined && !(await credentialsAccepted(trackingUri, args.auth))) {
      throw new Error(
        `MLflow on ${ssh.target} (port ${args.port}) refuses the stack's credentials for "${args.auth.username}": ` +
          `its user store (${args.layout.dataDir}/basic_auth.db) has this admin with another password; ` +
          "set mlflowPassword back, or change the password through MLflow's user API first",
      );
    }
    return {
      ...args,
      supervisor,
      trackingUri,
      logFile: supervisor === "systemd" ? `journalctl -u ${UNIT_NAME}` : paths.log,
    };
  });
}

export async function remoteServerHealth(
  state: RemoteMlflowServerState,
): Promise<RemoteServerHealth> {
  return withSsh(state.connection, async (ssh) => {
    const running = (
      await runScriptAsRoot(
        ssh,
        state.connection.user,
        supervisorRunningScript(state, state.supervisor),
        "checking the MLflow server",
      )
    ).stdout.trim();
    if (running !== "running") {
      return "gone";
    }
    const status = (await ssh.run(healthProbeScript(state.port))).stdout.trim();
    return status === "200" ? "serving" : "not answering";
  });
}

/** For `read`: the state while the server exists, undefined when it is gone (refresh drops it). */
export async function readRemoteMlflowServer(
  state: RemoteMlflowServerState,
  warn: (msg: string) => void = () => undefined,
): Promise<RemoteMlflowServerState | undefined> {
  const health = await remoteServerHealth(state);
  if (health === "not answering") {
    warn(`MLflow server ${remoteServerId(state)} runs but does not answer /health`);
  }
  return health === "gone" ? undefined : state;
}

/** Stops the server and frees its port; the data directory and database stay. */
export async function deleteRemoteMlflowServer(state: RemoteMlflowServerState): Promise<void> {
  await withSsh(state.connection, (ssh) =>
    runScriptAsRoot(
      ssh,
      state.connection.user,
      stopScript(state, state.supervisor),
      "stopping the MLflow server",
    ),
  );
}

/** The command line as the host runs it (for messages and tests; no secrets in it). */
export function remoteServerCommand(spec: RemoteServerSpec): string[] {
  return serverArgv(spec);
}

const REPLACE_KEYS = ["publicHost", "port", "bindHost", "layout", "backendStore"] as const;

/** diff: old outputs against new inputs (see the contract); unknown values are updates, never
 * replacements (`pulumi up` diffs the real values again). */
export function diffRemoteMlflowServer(
  olds: RemoteMlflowServerState,
  news: RemoteMlflowServerArgs,
): { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean } {
  const replaces: string[] = changedKeys(olds, news, REPLACE_KEYS).filter(
    (k) => !containsUnknown(news[k]),
  );
  const target = (c: SshConnection | undefined) => JSON.stringify([c?.host, c?.port]);
  if (!containsUnknown(news.connection) && target(olds.connection) !== target(news.connection)) {
    replaces.push("connection");
  }
  const updates = changedKeys(olds, news, [
    "connection",
    "startTimeoutSeconds",
    "provisioned",
    "basicAuth",
    "auth",
  ]);
  return {
    changes: replaces.length > 0 || updates.length > 0,
    replaces,
    deleteBeforeReplace: true,
  };
}

/** update: a new provisioning restarts the server (stop, then create); anything else adopts it. */
export async function updateRemoteMlflowServer(
  olds: RemoteMlflowServerState,
  news: RemoteMlflowServerArgs,
  log: (msg: string) => void = () => undefined,
): Promise<RemoteMlflowServerState> {
  if ((olds.provisioned ?? null) !== (news.provisioned ?? null)) {
    log(`MLflow server ${remoteServerId(news)}: the host was provisioned anew, restarting it`);
    await deleteRemoteMlflowServer({ ...olds, connection: news.connection });
  }
  return createRemoteMlflowServer(news, log);
}
