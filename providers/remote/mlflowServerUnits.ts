import { basicAuthIniText } from "../mlflow/basicAuthIni";
import { shJoin, shQuote } from "../ssh/quote";
import { HostLayout, venvDir } from "./provisionScript";

/**
 * What the remote MLflow server is made of on the host, as text (pure, unit-tested): the `mlflow server`
 * argv, a systemd unit, and the restart loop used where systemd does not run. No secret is part of any
 * of them: the SQLite store needs none, a PostgreSQL on the host is reached by peer authentication
 * over its Unix socket as the service user. With basic auth, MLflow's basic-auth app reads the admin's
 * credentials from <baseDir>/basic_auth.ini (MLFLOW_AUTH_CONFIG_PATH names the file, 0600, the service
 * user's) and its CSRF key from <baseDir>/auth.env (0600, made on the host); neither value is here.
 */
export type BackendStore =
  | { kind: "sqlite" }
  | { kind: "postgresql-local"; database: string }
  /** An existing PostgreSQL: `postgresql://user:password@host:port/db`. Secret. Its password goes to a
   * 0600 pgpass file of the service user (PGPASSFILE), never on the command line or in the environment. */
  | { kind: "postgresql-dsn"; dsn: string };

/** A DSN split into the store URI MLflow gets (no password) and the pgpass line libpq reads. */
export function splitDsn(dsn: string): { uri: string; pgpass?: string } {
  let u: URL;
  try {
    u = new URL(dsn);
  } catch {
    throw new Error("backendStore dsn: not a URL like postgresql://user:password@host:5432/mlflow");
  }
  if (
    !/^postgres(ql)?(\+psycopg2)?:$/.test(u.protocol) ||
    u.hostname === "" ||
    u.pathname.length < 2
  ) {
    throw new Error(
      "backendStore dsn: must be postgresql://user:password@host:port/database (the scheme, host or database is missing)",
    );
  }
  const user = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  const db = decodeURIComponent(u.pathname.slice(1));
  const port = u.port === "" ? "5432" : u.port;
  const esc = (v: string) => v.replace(/([\\:])/g, "\\$1");
  const userPart = user === "" ? "" : `${encodeURIComponent(user)}@`;
  return {
    uri: `postgresql+psycopg2://${userPart}${u.host}${u.pathname}${u.search}`,
    pgpass: password === "" ? undefined : [u.hostname, port, db, user, password].map(esc).join(":"),
  };
}

export interface RemoteServerSpec {
  layout: HostLayout;
  /** Interface `mlflow server` binds on the host (0.0.0.0 unless it is only reached through a tunnel). */
  bindHost: string;
  port: number;
  /** The name clients use for the host (the tracking URI's host); allowed as a Host header. */
  publicHost: string;
  backendStore: BackendStore;
  /** MLflow's basic-auth app (`--app-name basic-auth`); the credentials are in the ini file. */
  basicAuth?: boolean;
}

export const UNIT_NAME = "model-serving-mlflow";

export function remotePaths(layout: HostLayout) {
  return {
    unitFile: `/etc/systemd/system/${UNIT_NAME}.service`,
    supervisor: `${layout.baseDir}/mlflow-supervise.sh`,
    supervisorPid: `${layout.baseDir}/run/mlflow-supervisor.pid`,
    serverPid: `${layout.baseDir}/run/mlflow-server.pid`,
    log: `${layout.baseDir}/log/mlflow-server.log`,
    profileEnv: `${layout.baseDir}/profile.env`,
    pgpass: `${layout.baseDir}/pgpass`,
    authIni: `${layout.baseDir}/basic_auth.ini`,
    authEnv: `${layout.baseDir}/auth.env`,
  };
}

export function backendStoreUri(spec: Pick<RemoteServerSpec, "layout" | "backendStore">): string {
  const store = spec.backendStore;
  if (store.kind === "sqlite") {
    return `sqlite:///${spec.layout.dataDir}/mlflow.db`;
  }
  if (store.kind === "postgresql-dsn") {
    return splitDsn(store.dsn).uri;
  }
  // Peer authentication over the local socket: the OS user is the database role, no password exists.
  // The driver is named: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, the profiles pin psycopg2.
  return `postgresql+psycopg2://${spec.layout.serviceUser}@/${store.database}?host=/var/run/postgresql`;
}

export function serverArgv(spec: RemoteServerSpec): string[] {
  const hosts = [spec.publicHost, "localhost", "127.0.0.1"].flatMap((h) => [
    h,
    `${h}:${spec.port}`,
  ]);
  return [
    `${venvDir(spec.layout)}/bin/mlflow`,
    "server",
    "--host",
    spec.bindHost,
    "--port",
    String(spec.port),
    "--backend-store-uri",
    backendStoreUri(spec),
    "--artifacts-destination",
    `${spec.layout.dataDir}/artifacts`,
    "--serve-artifacts",
    "--workers",
    "1",
    "--allowed-hosts",
    [...new Set(hosts)].join(","),
    ...(spec.basicAuth ? ["--app-name", "basic-auth"] : []),
  ];
}

/**
 * MLflow's basic-auth ini (providers/mlflow/basicAuthIni.ts): its user store in the host's data
 * directory, and the admin MLflow creates on its first start with basic auth (admin_password is read
 * only then; another password later is refused, see the core).
 */
export function basicAuthIni(
  layout: HostLayout,
  auth: { username: string; password: string },
): string {
  return basicAuthIniText(`${layout.dataDir}/basic_auth.db`, auth);
}

/** Makes the basic-auth app's CSRF key once (random, 0600, the service user's), kept across restarts. */
export function flaskKeyScript(layout: HostLayout): string {
  const f = shQuote(remotePaths(layout).authEnv);
  const user = shQuote(layout.serviceUser);
  return [
    "set -e",
    `if [ ! -s ${f} ]; then`,
    `  (umask 077; printf 'MLFLOW_FLASK_SERVER_SECRET_KEY=%s\\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \\n')" > ${f})`,
    "fi",
    `chown ${user}:${user} ${f} && chmod 0600 ${f}`,
  ].join("\n");
}

/** The basic-auth variables of the server's environment (names, and the ini's path; no secret). */
function authEnvLines(spec: RemoteServerSpec): string[] {
  return spec.basicAuth ? [`MLFLOW_AUTH_CONFIG_PATH=${remotePaths(spec.layout).authIni}`] : [];
}

/** systemd's own quoting for ExecStart (double quotes, backslash escapes). */
function systemdQuote(arg: string): string {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, "\\$1")}"`;
}

export function systemdUnit(spec: RemoteServerSpec): string {
  const paths = remotePaths(spec.layout);
  return [
    "[Unit]",
    "Description=MLflow tracking server (model-serving)",
    "After=network-online.target postgresql.service",
    "",
    "[Service]",
    `User=${spec.layout.serviceUser}`,
    `Group=${spec.layout.serviceUser}`,
    `WorkingDirectory=${spec.layout.dataDir}`,
    `EnvironmentFile=-${paths.profileEnv}`,
    // MLflow 3's job runner starts its workers in sessions of their own (start_new_session), which
    // outlive a stopped server; off, as for the local server (providers/mlflowServerCore.ts).
    "Environment=MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
    ...(spec.backendStore.kind === "postgresql-dsn"
      ? [`Environment=PGPASSFILE=${paths.pgpass}`]
      : []),
    ...authEnvLines(spec).map((l) => `Environment=${l}`),
    ...(spec.basicAuth ? [`EnvironmentFile=${paths.authEnv}`] : []),
    `ExecStart=${serverArgv(spec).map(systemdQuote).join(" ")}`,
    "Restart=always",
    "RestartSec=2",
    "KillMode=control-group",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/**
 * The supervised process where systemd does not run: started with `setsid` (its own session and process
 * group) as the service user, it restarts `mlflow server` (in a process group of its own, killed whole
 * when the server exits) 2 s after it exits, until it gets TERM; then it stops the server's group and
 * removes the pidfiles. Stopping = TERM to the loop's process group and to the server's.
 */
export function supervisorScript(spec: RemoteServerSpec): string {
  const paths = remotePaths(spec.layout);
  return [
    "#!/bin/sh",
    "# model-serving: keeps `mlflow server` running until this script gets TERM.",
    `echo $$ > ${shQuote(paths.supervisorPid)}`,
    `if [ -s ${shQuote(paths.profileEnv)} ]; then set -a; . ${shQuote(paths.profileEnv)}; set +a; fi`,
    ...(spec.basicAuth ? [`set -a; . ${shQuote(paths.authEnv)}; set +a`] : []),
    `cd ${shQuote(spec.layout.dataDir)}`,
    "child=",
    `trap 'kill -TERM -"$child" 2>/dev/null; wait "$child" 2>/dev/null; kill -KILL -"$child" 2>/dev/null; rm -f ${shQuote(paths.supervisorPid)} ${shQuote(paths.serverPid)}; exit 0' TERM INT`,
    "while :; do",
    '  echo "supervisor: starting mlflow server at $(date -u +%Y-%m-%dT%H:%M:%SZ)"',
    // Each server in its own process group: when `mlflow server` dies, its uvicorn workers would keep
    // the port (and answer /health) as orphans; the whole group goes before the restart.
    `  setsid env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false${spec.backendStore.kind === "postgresql-dsn" ? ` PGPASSFILE=${shQuote(paths.pgpass)}` : ""}${authEnvLines(
      spec,
    )
      .map((l) => ` ${shQuote(l)}`)
      .join("")} ${shJoin(serverArgv(spec))} &`,
    "  child=$!",
    `  echo "$child" > ${shQuote(paths.serverPid)}`,
    '  wait "$child"',
    "  code=$?",
    '  kill -KILL -"$child" 2>/dev/null',
    '  echo "supervisor: mlflow server exited ($code); restarting in 2 s"',
    "  sleep 2",
    "done",
    "",
  ].join("\n");
}
