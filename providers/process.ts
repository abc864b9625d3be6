import * as child_process from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import * as identity from "./process/identity";
import * as reservations from "./process/reservations";

/**
 * Process and port helpers for the servers the providers start on this machine. Process identity and
 * liveness go through one probe (./process/identity: /proc on Linux, `ps`/`lsof` elsewhere); port
 * reservations and start intents live in one lock directory per machine (./process/reservations).
 */

export interface ProcessHandle {
  pid: number;
  /** Process group id: the server and everything it forks (MLflow starts uvicorn/gunicorn workers). */
  pgid: number;
  /** Start identity of the process (kept under its first name for existing state): /proc start ticks on
   * Linux, `ps -o lstart` elsewhere; a recycled pid is never mistaken for our server. "" = unknown. */
  startTicks: string;
}

/** The probe of this platform (throws on Windows, see identity.ts). */
export function probe(): identity.ProcessProbe {
  return identity.processProbe();
}

/** Resolves true when nothing listens on host:port. */
export function isPortFree(host: string, port: number): Promise<boolean> {
  return reservations.isPortFree(host, port);
}

/** Starts a long-lived server in its own process group, detached from the caller, output to a log. */
export function spawnDetached(
  command: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; logFile: string; cwd?: string },
): ProcessHandle {
  fs.mkdirSync(path.dirname(options.logFile), { recursive: true });
  const out = fs.openSync(options.logFile, "a");
  try {
    const child = child_process.spawn(command, args, {
      detached: true,
      stdio: ["ignore", out, out],
      env: options.env,
      cwd: options.cwd,
    });
    if (child.pid === undefined) {
      throw new Error(`could not start ${command}: see ${options.logFile}`);
    }
    child.unref();
    return { pid: child.pid, pgid: child.pid, startTicks: processStartTicks(child.pid) ?? "" };
  } finally {
    fs.closeSync(out);
  }
}

/** The process's start identity, or undefined when it does not exist (or is a zombie). */
export function processStartTicks(
  pid: number,
  p: identity.ProcessProbe = probe(),
): string | undefined {
  return p.info(pid)?.start;
}

/** The process's command line, or "" when it is gone. */
export function processCommandLine(pid: number, p: identity.ProcessProbe = probe()): string {
  return p.commandLine(pid);
}

/** True when the exact process we started (same pid and start identity) is still running. */
export function isSameProcessAlive(
  handle: ProcessHandle,
  p: identity.ProcessProbe = probe(),
): boolean {
  const start = p.info(handle.pid)?.start;
  return start !== undefined && (handle.startTicks === "" || start === handle.startTicks);
}

/**
 * Whether the listener on `port` is a process of our server's group: true, false (another process holds
 * it), or undefined when the platform cannot tell (no /proc and no lsof).
 */
export function listenerIsOurs(
  handle: ProcessHandle,
  port: number,
  p: identity.ProcessProbe = probe(),
): { ours: boolean | undefined; pids: number[] } {
  const pids = p.listeners(port);
  if (pids === undefined || pids.length === 0) {
    // Nothing visible although something answered (another network namespace, unreadable tables).
    return { ours: undefined, pids: pids ?? [] };
  }
  return { ours: pids.some((pid) => p.info(pid)?.pgid === handle.pgid), pids };
}

function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops a whole process group: SIGTERM, then SIGKILL after `graceMs`. Resolves once it is gone. */
export async function killProcessGroup(handle: ProcessHandle, graceMs = 10_000): Promise<void> {
  if (!groupExists(handle.pgid)) {
    return;
  }
  // Only signal the group while its leader is the process we started (or already gone).
  const leaderTicks = processStartTicks(handle.pid);
  if (leaderTicks !== undefined && handle.startTicks !== "" && leaderTicks !== handle.startTicks) {
    return;
  }
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-handle.pgid, sig);
    } catch {
      // already gone
    }
  };
  signal("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (groupExists(handle.pgid) && Date.now() < deadline) {
    await sleep(100);
  }
  if (groupExists(handle.pgid)) {
    signal("SIGKILL");
    while (groupExists(handle.pgid) && Date.now() < deadline + 5_000) {
      await sleep(100);
    }
  }
}

/** Waits until nothing listens on host:port, or throws after `timeoutMs`. */
export async function waitForPortFree(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await isPortFree(host, port))) {
    if (Date.now() > deadline) {
      throw new Error(`port ${port} on ${host} was not released within ${timeoutMs / 1000}s`);
    }
    await sleep(200);
  }
}

/** One GET; resolves the status code, or 0 when nothing answered. */
export function httpStatus(url: string, timeoutMs = 2_000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

/**
 * Polls `url` until OUR server answers 200: the process we started (pid + start identity) is alive, the
 * URL answers 200, and the listener on the URL's port belongs to our server's process group. A 200 from
 * any other process (another stack's server, anything that took the port) is never taken for ours: it
 * fails at once, naming the port and that process. Fails early when our server dies, and after
 * `timeoutSeconds`, with the tail of its log, so the user sees why it did not come up. Where the platform
 * cannot tell who listens (no /proc, no lsof), "ours" rests on the port having been free when it was
 * reserved and our process being alive once it answers.
 */
export async function waitForHttpOk(
  url: string,
  handle: ProcessHandle,
  timeoutSeconds: number,
  logFile: string,
  progress: (msg: string) => void = () => undefined,
): Promise<void> {
  const started = Date.now();
  let lastReport = started;
  const { hostname, port } = new URL(url);
  for (;;) {
    const status = await httpStatus(url);
    if (!isSameProcessAlive(handle)) {
      throw new Error(
        `server for ${url} exited during start-up; last log lines:\n${tail(logFile)}`,
      );
    }
    if (status === 200) {
      const listener = listenerIsOurs(handle, Number(port));
      if (listener.ours !== false) {
        return;
      }
      throw new Error(
        `port: ${port} on ${hostname} is answered by a process this stack did not start ` +
          `(pid ${listener.pids.join(", ")}), not by its server (pid ${handle.pid}); ` +
          "stop that process or choose another port",
      );
    }
    const elapsed = Date.now() - started;
    if (elapsed > timeoutSeconds * 1000) {
      throw new Error(
        `timed out after ${timeoutSeconds}s waiting for ${url}; last log lines:\n${tail(logFile)}`,
      );
    }
    if (Date.now() - lastReport > 5_000) {
      progress(`waiting for ${url} (${Math.round(elapsed / 1000)}s)`);
      lastReport = Date.now();
    }
    await sleep(250);
  }
}

function tail(file: string, lines = 15): string {
  try {
    return logExcerpt(fs.readFileSync(file, "utf8"), lines);
  } catch {
    return "(no log)";
  }
}

/** A Python exception line, e.g. `ModuleNotFoundError: No module named 'x'`. */
const EXCEPTION_LINE = /^\s*([A-Za-z_][\w.]*(Error|Exception)|SystemExit|KeyboardInterrupt)(: |$)/;

/**
 * The last `lines` lines of a server log, and before them the last Python exception line when it
 * scrolled out of them: a model server whose workers fail to boot logs the cause (say a
 * ModuleNotFoundError) and then a screenful of its own shutdown.
 */
export function logExcerpt(text: string, lines = 15): string {
  const all = text.trimEnd().split("\n");
  const last = all.slice(-lines);
  const cause = all
    .slice(0, -lines)
    .reverse()
    .find((l) => EXCEPTION_LINE.test(l));
  return cause === undefined || last.some((l) => l.trim() === cause.trim())
    ? last.join("\n")
    : [cause.trim(), "...", ...last].join("\n");
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export type Reservation = reservations.Reservation;
export type ReservationRequest = reservations.ReservationRequest;

/** The machine's port lock directory, `$MODEL_SERVING_CACHE/locks/ports`. */
export function portLockDir(): string {
  return reservations.portLockDir(process.env);
}

/** Reserves a port machine-wide for `request.owner` (see ./process/reservations). */
export function reservePort(
  host: string,
  requested: number | undefined,
  rangeStart: number,
  request: ReservationRequest,
  lockDir: string = portLockDir(),
): Promise<number> {
  return reservations.reservePort({
    host,
    requested,
    rangeStart,
    lockDir,
    request,
    probe: probe(),
  });
}

/** Records the spawned server in the port's reservation: from here on, a killed `up` leaves a record
 * that names it. */
export function recordServer(
  host: string,
  port: number,
  handle: ProcessHandle,
  lockDir: string = portLockDir(),
): Promise<void> {
  const { pid, pgid, startTicks } = handle;
  return reservations.recordServer(lockDir, host, port, { pid, pgid, startTicks });
}

/** Removes the port's reservation (only `owner`'s, when given). */
export function releasePort(
  host: string,
  port: number,
  owner?: string,
  lockDir: string = portLockDir(),
): Promise<void> {
  return reservations.releaseReservation(lockDir, host, port, owner);
}

/** The running servers of `kind` that `owner` reserved on `host` (orphans of an interrupted create). */
export function ownLiveServers(
  owner: string | undefined,
  kind: Reservation["kind"],
  host: string,
  lockDir: string = portLockDir(),
): Reservation[] {
  return reservations
    .liveReservationsOf(lockDir, owner ?? "", probe())
    .filter((r) => r.kind === kind && r.host === host);
}

/** True when host:port is held by a running server that `owner` itself reserved (an orphan its create
 * will adopt or stop), so check() must not report the port as foreign. */
export function portHeldByOwnServer(
  owner: string | undefined,
  kind: Reservation["kind"],
  host: string,
  port: number,
  lockDir: string = portLockDir(),
): boolean {
  return ownLiveServers(owner, kind, host, lockDir).some((r) => r.port === port);
}
