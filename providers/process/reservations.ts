import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import * as lockfile from "proper-lockfile";
import { ProcessProbe } from "./identity";

/**
 * Port reservations and start intents, one directory per machine (`$MODEL_SERVING_CACHE/locks/ports`,
 * shared by every stack that uses this cache), so two stacks never pick the same automatic port.
 *
 * - A reservation is a JSON record `<host>-<port>.json`: who reserved it (the stack resource, `owner`),
 *   what is being started there (command, subject: the model URI or the data dir), the provider process
 *   that reserved it, and, as soon as it is spawned, the server's pid, group and start identity. It is
 *   written BEFORE the server is spawned and kept as long as the server is the stack's, so an `up` that
 *   was SIGKILLed mid-start leaves a record naming the orphan: the next create of the same resource
 *   adopts it or stops it and reuses the same port (see localHost.ts and mlflowServerCore.ts).
 * - Reading and writing records happens under one proper-lockfile lock of the directory (held for
 *   milliseconds; a lock left by a killed process is stale after 10 s and taken over).
 * - A record of another owner keeps its port while its server (pid + start identity) runs, or while the
 *   provider that reserved it runs and has not spawned yet. Otherwise it is stale and the port reusable.
 */
export interface ServerRecord {
  pid: number;
  pgid: number;
  startTicks: string;
}

export interface Reservation {
  v: 1;
  kind: "model-server" | "mlflow-server" | "mlops-agent";
  /** The stack resource, `<org>/<project>/<stack>/<resource name>`; "" when unknown (no recovery). */
  owner: string;
  host: string;
  port: number;
  /** The server's argv (no secrets on command lines). */
  command: string[];
  /** What it serves: the model URI, or the MLflow data directory. */
  subject: string;
  /** The provider process that reserved the port. */
  reservedBy: { pid: number; start: string };
  /** The server, recorded right after it is spawned. */
  server?: ServerRecord;
  updatedAt: string;
}

export type ReservationRequest = Omit<
  Reservation,
  "v" | "host" | "port" | "reservedBy" | "updatedAt"
>;

/** `$MODEL_SERVING_CACHE/locks/ports` (the cache as config computes it: XDG_CACHE_HOME, then ~/.cache). */
export function portLockDir(env: NodeJS.ProcessEnv = process.env): string {
  const cache =
    env.MODEL_SERVING_CACHE ??
    path.join(env.XDG_CACHE_HOME ?? path.join(env.HOME ?? os.homedir(), ".cache"), "model-serving");
  return path.join(cache, "locks", "ports");
}

/** Resolves true when nothing listens on host:port. */
export function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Runs `fn` holding the directory's lock. */
export async function withPortLock<T>(lockDir: string, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(lockDir, { recursive: true });
  const release = await lockfile.lock(lockDir, {
    lockfilePath: path.join(lockDir, ".lock"),
    realpath: false,
    stale: 10_000,
    update: 2_000,
    retries: { retries: 300, factor: 1.2, minTimeout: 20, maxTimeout: 250 },
    onCompromised: () => undefined, // the records are re-read under the next lock anyway
  });
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}

function recordPath(lockDir: string, host: string, port: number): string {
  return path.join(lockDir, `${host}-${port}.json`);
}

export function readReservations(lockDir: string): Reservation[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(lockDir).filter((n) => n.endsWith(".json"));
  } catch {
    return [];
  }
  const out: Reservation[] = [];
  for (const name of names) {
    try {
      const r = JSON.parse(fs.readFileSync(path.join(lockDir, name), "utf8")) as Reservation;
      if (r.v === 1 && typeof r.port === "number" && typeof r.host === "string") {
        out.push(r);
      }
    } catch {
      // half-written by a killed process (writes are atomic renames, so only a foreign file): ignore
    }
  }
  return out;
}

export function readReservation(
  lockDir: string,
  host: string,
  port: number,
): Reservation | undefined {
  return readReservations(lockDir).find((r) => r.host === host && r.port === port);
}

function writeRecord(lockDir: string, r: Reservation): void {
  const file = recordPath(lockDir, r.host, r.port);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(r, null, 2));
  fs.renameSync(tmp, file);
}

/** True while the reservation's server, or the provider still starting it, runs. */
export function reservationHeld(r: Reservation, probe: ProcessProbe): boolean {
  if (r.server) {
    const info = probe.info(r.server.pid);
    return info !== undefined && (r.server.startTicks === "" || info.start === r.server.startTicks);
  }
  const info = probe.info(r.reservedBy.pid);
  return info !== undefined && info.start === r.reservedBy.start;
}

function takenMessage(host: string, port: number): string {
  return (
    `port: ${port} on ${host} is already in use by a process this stack does not own; ` +
    "choose another port or stop that process"
  );
}

/**
 * Reserves a port for `request.owner` and writes its record: the requested port (which must be free and
 * not held by another owner's record), or else this owner's previous port when it is free again (a crashed
 * create: same URL), or else the first free, unheld port from `rangeStart`.
 */
export async function reservePort(options: {
  host: string;
  requested?: number;
  rangeStart: number;
  lockDir: string;
  request: ReservationRequest;
  probe: ProcessProbe;
}): Promise<number> {
  const { host, requested, rangeStart, lockDir, request, probe } = options;
  const me = probe.info(process.pid);
  const reservedBy = { pid: process.pid, start: me?.start ?? "" };
  return withPortLock(lockDir, async () => {
    const records = readReservations(lockDir).filter((r) => r.host === host);
    // Ours: the same owner's; for a requested port also an owner-less record this very process made
    // (createDeployment reserves, then start() claims the same port with the full record).
    const mine = (r: Reservation) => request.owner !== "" && r.owner === request.owner;
    const claimable = (r: Reservation) =>
      mine(r) ||
      (requested !== undefined && r.owner === request.owner && r.reservedBy.pid === process.pid);
    const heldByOther = (port: number) =>
      records.some((r) => r.port === port && !claimable(r) && reservationHeld(r, probe));
    const take = (port: number) => {
      for (const r of records.filter((x) => mine(x) && x.port !== port)) {
        fs.rmSync(recordPath(lockDir, host, r.port), { force: true }); // our own, superseded
      }
      writeRecord(lockDir, {
        v: 1,
        ...request,
        host,
        port,
        reservedBy,
        server: undefined,
        updatedAt: new Date().toISOString(),
      });
      return port;
    };
    if (requested !== undefined) {
      if (heldByOther(requested) || !(await isPortFree(host, requested))) {
        throw new Error(takenMessage(host, requested));
      }
      return take(requested);
    }
    const previous = records.filter(mine).map((r) => r.port);
    const last = Math.min(rangeStart + 999, 65535);
    const range = Array.from(
      { length: Math.max(0, last - rangeStart + 1) },
      (_, i) => rangeStart + i,
    );
    for (const port of [...previous, ...range.filter((p) => !previous.includes(p))]) {
      if (!heldByOther(port) && (await isPortFree(host, port))) {
        return take(port);
      }
    }
    throw new Error(`port: no free port on ${host} from ${rangeStart} to ${last}`);
  });
}

/** Records the spawned server in its reservation (right after spawn, before waiting for it). */
export async function recordServer(
  lockDir: string,
  host: string,
  port: number,
  server: ServerRecord,
  update: Partial<ReservationRequest> = {},
): Promise<void> {
  await withPortLock(lockDir, async () => {
    const r = readReservation(lockDir, host, port);
    if (r) {
      writeRecord(lockDir, { ...r, ...update, server, updatedAt: new Date().toISOString() });
    }
  });
}

/** Removes a reservation; with `owner`, only that owner's (a port since taken by another is kept). */
export async function releaseReservation(
  lockDir: string,
  host: string,
  port: number,
  owner?: string,
): Promise<void> {
  await withPortLock(lockDir, async () => {
    const r = readReservation(lockDir, host, port);
    if (r && (owner === undefined || owner === "" || r.owner === owner || r.owner === "")) {
      fs.rmSync(recordPath(lockDir, host, port), { force: true });
    }
  });
}

/** This owner's reservations whose server still runs: orphans of a create that never finished, or the
 * resource's own server. */
export function liveReservationsOf(
  lockDir: string,
  owner: string,
  probe: ProcessProbe,
): Reservation[] {
  if (owner === "") {
    return [];
  }
  return readReservations(lockDir).filter(
    (r) => r.owner === owner && r.server !== undefined && reservationHeld(r, probe),
  );
}
