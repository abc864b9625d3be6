import { shJoin, shQuote } from "../ssh/quote";

/**
 * The shell side of deploy mode `remote` (pure, unit-tested): port locks, start, identity, stop, on the
 * model-serving host. A port lock is a directory `<locks>/<port>` (mkdir is atomic) holding `owner`,
 * `command` and, once started, `pid` and `start` (the /proc start ticks: a recycled pid is never
 * mistaken for our server). No secret is part of any script or command line. With MLflow basic auth
 * the credentials reach MLflow's own credentials file in the lock directory's `home/.mlflow/` (0700
 * dirs, a 0600 file, the service user's) over SSH stdin; the server runs with HOME there, so the
 * password is in no process environment, and the home is removed once the server answers (it has
 * fetched its model by then). A token has no such file in MLflow: it reaches `credentials.env`, which
 * the server's shell reads into MLFLOW_TRACKING_TOKEN and removes before exec.
 */
export interface RemoteServeSpec {
  /** <baseDir>/run/model-servers on the host. */
  locksDir: string;
  serviceUser: string;
  /** The venv's `mlflow`. */
  mlflowBin: string;
  /** The tracking URI as the host reaches it (usually http://127.0.0.1:<mlflow port>). */
  trackingUri: string;
  modelUri: string;
  bindHost: string;
  owner: string;
  /** Where the credentials were written: `file` MLflow's credentials file under <lockDir>/home
   * (basic auth), `env` <lockDir>/credentials.env (a token). */
  credentials?: "file" | "env";
}

/** credentials.env: the basic-auth credentials as sh assignments (shell-quoted). */
export function credentialsEnv(auth: {
  username?: string;
  password?: string;
  token?: string;
}): string {
  return (
    [
      ["MLFLOW_TRACKING_USERNAME", auth.username],
      ["MLFLOW_TRACKING_PASSWORD", auth.password],
      ["MLFLOW_TRACKING_TOKEN", auth.token],
    ] as const
  )
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${shQuote(v as string)}\n`)
    .join("");
}

export function credentialsPath(spec: Pick<RemoteServeSpec, "locksDir">, port: number): string {
  return `${lockDir(spec, port)}/credentials.env`;
}

/** The model server's HOME with MLflow basic auth: MLflow reads `.mlflow/credentials` there. */
export function credentialsHome(spec: Pick<RemoteServeSpec, "locksDir">, port: number): string {
  return `${lockDir(spec, port)}/home`;
}

export function serveArgv(spec: RemoteServeSpec, port: number): string[] {
  return [
    spec.mlflowBin,
    "models",
    "serve",
    "-m",
    spec.modelUri,
    "--env-manager",
    "local",
    "-h",
    spec.bindHost,
    "-p",
    String(port),
  ];
}

export function lockDir(spec: Pick<RemoteServeSpec, "locksDir">, port: number): string {
  return `${spec.locksDir}/${port}`;
}

/** Prints the reserved port: `fixed` or the first from `start` whose lock is free (or stale: no live
 * pid) and on which nothing listens. */
export function reservePortScript(spec: RemoteServeSpec, start: number, fixed?: number): string {
  const ports = fixed === undefined ? `$(seq ${start} ${start + 99})` : String(fixed);
  return [
    "set -e",
    `install -d -m 0755 ${shQuote(spec.locksDir)}`,
    `for p in ${ports}; do`,
    `  d=${shQuote(spec.locksDir)}/$p`,
    '  if [ -d "$d" ]; then',
    '    pid=$(cat "$d/pid" 2>/dev/null || true)',
    '    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then continue; fi',
    '    if [ -z "$pid" ] && [ "$(cat "$d/owner" 2>/dev/null)" != ' +
      shQuote(spec.owner) +
      " ]; then continue; fi",
    '    rm -rf "$d"',
    "  fi",
    '  if ss -Hltn "sport = :$p" | grep -q .; then continue; fi',
    '  mkdir "$d" 2>/dev/null || continue',
    `  printf '%s' ${shQuote(spec.owner)} > "$d/owner"`,
    '  echo "$p"',
    "  exit 0",
    "done",
    fixed === undefined
      ? `echo "no free port in ${start}-${start + 99} on this host" >&2`
      : `echo "port ${fixed} is in use on this host" >&2`,
    "exit 1",
  ].join("\n");
}

/** Starts `mlflow models serve` in its own session as the service user; prints `<pid> <pgid> <start>`. */
export function startScript(spec: RemoteServeSpec, port: number): string {
  const d = shQuote(lockDir(spec, port));
  // The venv first on PATH: `mlflow models serve` runs `uvicorn` by name.
  const venvBin = spec.mlflowBin.slice(0, spec.mlflowBin.lastIndexOf("/"));
  const creds = shQuote(credentialsPath(spec, port));
  const readCreds =
    spec.credentials === "env" ? `set -a; . ${creds}; set +a; rm -f ${creds}; ` : "";
  const home =
    spec.credentials === "file" ? ` ${shQuote(`HOME=${credentialsHome(spec, port)}`)}` : "";
  const inner = `echo $$ > ${lockDir(spec, port)}/pid; ${readCreds}exec env ${shQuote(`PATH=${venvBin}:/usr/local/bin:/usr/bin:/bin`)}${home} MLFLOW_TRACKING_URI=${shQuote(spec.trackingUri)} ${shJoin(serveArgv(spec, port))}`;
  return [
    "set -e",
    `printf '%s' ${shQuote(shJoin(serveArgv(spec, port)))} > ${d}/command`,
    `rm -f ${d}/pid`,
    `chown ${shQuote(spec.serviceUser)} ${d}`,
    ...(spec.credentials === "file"
      ? [`chown -R ${shQuote(spec.serviceUser)} ${shQuote(credentialsHome(spec, port))}`]
      : []),
    `cd ${d}`,
    `setsid -f runuser -u ${shQuote(spec.serviceUser)} -- sh -c ${shQuote(inner)} >> ${d}/log 2>&1 < /dev/null`,
    `i=0; while [ ! -s ${d}/pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done`,
    `pid=$(cat ${d}/pid)`,
    'start=$(cut -d" " -f22 /proc/"$pid"/stat)',
    `echo "$start" > ${d}/start`,
    'echo "$pid $(ps -o pgid= -p "$pid" | tr -d " ") $start"',
  ].join("\n");
}

/** Prints `alive` when `pid` is the process we started (same start ticks) serving `modelUri`. */
export function identityScript(pid: number, startTicks: string, modelUri: string): string {
  return [
    `[ "$(cut -d" " -f22 /proc/${pid}/stat 2>/dev/null)" = ${shQuote(startTicks)} ] || { echo gone; exit 0; }`,
    `tr '\\0' ' ' < /proc/${pid}/cmdline | grep -qF -- ${shQuote(modelUri)} && echo alive || echo gone`,
  ].join("\n");
}

/** One /ping on the host: the HTTP status, 000 when nothing answers. */
export function pingScript(port: number): string {
  return `curl -s -o /dev/null -m 5 -w '%{http_code}' http://127.0.0.1:${port}/ping || true`;
}

/** TERM to the process group, KILL after 15 s, then waits until the port is free; the lock goes unless kept. */
export function stopScript(
  spec: Pick<RemoteServeSpec, "locksDir">,
  port: number,
  pgid: number,
  keepLock: boolean,
): string {
  return [
    `if kill -0 -${pgid} 2>/dev/null; then kill -TERM -${pgid} 2>/dev/null || true; fi`,
    `i=0; while kill -0 -${pgid} 2>/dev/null && [ $i -lt 30 ]; do sleep 0.5; i=$((i+1)); done`,
    `kill -KILL -${pgid} 2>/dev/null || true`,
    `i=0; while ss -Hltn 'sport = :${port}' | grep -q . && [ $i -lt 30 ]; do sleep 0.5; i=$((i+1)); done`,
    `if ss -Hltn 'sport = :${port}' | grep -q .; then echo 'port ${port} is still in use on the host' >&2; exit 1; fi`,
    `rm -rf ${shQuote(credentialsHome(spec, port))}`,
    keepLock
      ? `rm -f ${shQuote(lockDir(spec, port))}/pid`
      : `rm -rf ${shQuote(lockDir(spec, port))}`,
  ].join("\n");
}

/** The last lines of a model server's log on the host. */
export function logTailScript(
  spec: Pick<RemoteServeSpec, "locksDir">,
  port: number,
  lines = 30,
): string {
  return `tail -n ${lines} ${shQuote(lockDir(spec, port))}/log 2>&1 || true`;
}
