import * as child_process from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as path from "path";

/** Process and port helpers for the servers the providers start on this machine. */

export interface ProcessHandle {
  pid: number;
  /** Process group id: the server and everything it forks (MLflow starts uvicorn/gunicorn workers). */
  pgid: number;
  /** Start time from /proc/<pid>/stat, so a recycled pid is never mistaken for our server. */
  startTicks: string;
}

/** Resolves true when nothing listens on host:port. */
export function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Reserves a port: the requested one (which must be free), or the first free one from `rangeStart`.
 * A lock file in `lockDir`, naming the reserving process, keeps parallel deployments from picking the
 * same port until its server has bound it; a lock whose process is gone (a crashed `up`) is stale and
 * taken over. Once the server listens, the bound port itself keeps others away.
 */
export async function reservePort(
  host: string,
  requested: number | undefined,
  rangeStart: number,
  lockDir: string,
): Promise<number> {
  fs.mkdirSync(lockDir, { recursive: true });
  const tryLock = (port: number, retry = true): boolean => {
    const lock = path.join(lockDir, `port-${host}-${port}.lock`);
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
      return true;
    } catch {
      let owner = process.pid;
      try {
        owner = Number(fs.readFileSync(lock, "utf8"));
      } catch {
        return retry && tryLock(port, false); // released meanwhile
      }
      if (retry && owner !== process.pid && processStartTicks(owner) === undefined) {
        fs.rmSync(lock, { force: true });
        return tryLock(port, false);
      }
      return false;
    }
  };
  if (requested !== undefined) {
    if (!(await isPortFree(host, requested))) {
      throw new Error(
        `port: ${requested} on ${host} is already in use by a process this stack does not own; ` +
          "choose another port or stop that process",
      );
    }
    releasePort(host, requested, lockDir);
    tryLock(requested);
    return requested;
  }
  for (let port = rangeStart; port < rangeStart + 1000 && port <= 65535; port++) {
    if (await isPortFree(host, port)) {
      if (tryLock(port)) {
        if (await isPortFree(host, port)) {
          return port;
        }
        releasePort(host, port, lockDir);
      }
    }
  }
  throw new Error(`port: no free port on ${host} from ${rangeStart} to ${rangeStart + 999}`);
}

export function releasePort(host: string, port: number, lockDir: string): void {
  fs.rmSync(path.join(lockDir, `port-${host}-${port}.lock`), { force: true });
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

/** Field 22 of /proc/<pid>/stat, or undefined when the process does not exist (or is a zombie). */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") {
      return undefined;
    }
    return fields[19];
  } catch {
    return undefined;
  }
}

/** The process's command line, or "" when it is gone. */
export function processCommandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

/** True when the exact process we started (same pid and start time) is still running. */
export function isSameProcessAlive(handle: ProcessHandle): boolean {
  const ticks = processStartTicks(handle.pid);
  return ticks !== undefined && (handle.startTicks === "" || ticks === handle.startTicks);
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
 * Polls `url` until it answers 200. Fails early when the server process dies, and after `timeoutSeconds`
 * with the tail of its log, so the user sees why it did not come up.
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
  for (;;) {
    if ((await httpStatus(url)) === 200) {
      return;
    }
    if (!isSameProcessAlive(handle)) {
      throw new Error(
        `server for ${url} exited during start-up; last log lines:\n${tail(logFile)}`,
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
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
