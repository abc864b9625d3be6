import { execFileSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { cacheDirFrom } from "../../config/stackConfig";

/** Where the bootstrap put things; tests that need them explain exactly what is missing. */
export const repoRoot = path.resolve(__dirname, "../..");
export const cacheDir = cacheDirFrom(process.env);
export const venvDir = process.env.MODEL_SERVING_VENV ?? path.join(cacheDir, "venv");
export const mlflowBin = path.join(venvDir, "bin", "mlflow");
export const venvPython = path.join(venvDir, "bin", "python");

/** Why the real-MLflow tests cannot run here, or undefined when they can (no CI gate: see missingMlflow). */
export function mlflowMissingReason(): string | undefined {
  return fs.existsSync(mlflowBin)
    ? undefined
    : `no MLflow venv at ${venvDir}: run \`npm run bootstrap\` (or npm test, which runs it) first`;
}

/**
 * Why the real-MLflow tests cannot run here, or undefined when they can; gated by skipReason, so under
 * CI=true a missing venv fails the suite instead of skipping it.
 */
export function missingMlflow(): string | undefined {
  return skipReason(mlflowMissingReason());
}

/** True when this is a CI run: `CI=true` (or `1`), as GitHub Actions, GitLab CI, CircleCI … set it. */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(true|1)$/i.test(env.CI ?? "");
}

const gateFailures = new Set<string>();

/**
 * The one gate of every suite that needs an environment a machine may lack (the MLflow venv, the Pulumi
 * CLI, …). `why` says what is missing (undefined: nothing is, the suite runs).
 *
 * - Outside CI it prints `skipping <test file>: <why>` and returns `why`: the suite skips
 *   (`const describeX = skip ? describe.skip : describe`).
 * - Under CI=true a missing environment is a defect of the CI setup, never a silent skip: it registers a
 *   failing test `<test file> needs its environment under CI=true` whose error is `why`, and returns `why`
 *   so the suite's own tests still skip instead of failing for the same reason one by one.
 *   Outside a jest test file (bench/) it throws `why` instead.
 */
export function skipReason(why: string | undefined): string | undefined {
  if (why === undefined) {
    return undefined;
  }
  const file = currentTestFile();
  if (!inCI()) {
    // Straight to stderr: jest drops the console output of a suite whose tests all skip.
    process.stderr.write(`skipping ${file ?? "this run"}: ${why}\n`);
    return why;
  }
  const message = `CI=true and this suite's environment is missing (a skip is a failure in CI): ${why}`;
  if (file === undefined || typeof test !== "function") {
    throw new Error(message);
  }
  if (!gateFailures.has(why)) {
    gateFailures.add(why);
    test(`${file} needs its environment under CI=true`, () => {
      throw new Error(message);
    });
  }
  return why;
}

/** The running jest test file relative to the repo root, or undefined outside jest. */
function currentTestFile(): string | undefined {
  const state = (globalThis as { expect?: { getState?: () => { testPath?: string } } }).expect;
  const testPath = state?.getState?.().testPath;
  return testPath ? path.relative(repoRoot, testPath) : undefined;
}

/**
 * A loopback port reserved for the calling test process, free when it is returned.
 *
 * Check-then-bind cannot be made atomic when the port must be known before the server binds it (the
 * engine suites write it into stack config, `mlflow server --port` takes it on its command line). So:
 * - candidates come from 20000-32767, below Linux's ephemeral range (32768-60999), so no outgoing
 *   connection of any process is handed the port by the kernel between the check and the bind (the
 *   kernel's own pick, port 0, is always in that range), and away from the project's defaults (MLflow
 *   5000, model servers from 5001);
 * - each port is reserved across processes with an exclusive file in `$TMPDIR/model-serving-test-ports`
 *   (`O_EXCL` create, holder pid inside, taken over when that pid is gone), so parallel jest workers,
 *   suites and other checkouts on this machine never get the same port during a run; a reservation
 *   stays until its process is gone (jest gives test code no exit hook that runs) and is taken over
 *   when picked after that;
 * - the port is checked bindable on 127.0.0.1 before it is returned.
 * Every fixed test range is below the ephemeral range for the same reason: 13000-14999 the Docker and
 * Kubernetes replays, 16000-16999 the agent's pytest suite (agent/tests/support.py, no reservation
 * files: it runs beside the jest projects), 17000-17999 reservePortBlock, 18000-18999 the SSH test
 * hosts, 19600-19999 the registry replay; 15001-15999 is left to the agent's default backends.
 * What remains: a process that does not use this reservation and binds a fixed port in 20000-32767
 * between the check and the server's bind. Where the server can bind port 0 itself (a test's own
 * net.Server), use listenOnFreePort instead; startTestServer retries on a fresh port when MLflow's
 * server finds its port taken.
 */
export async function freePort(): Promise<number> {
  fs.mkdirSync(portLockDir, { recursive: true });
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN + 1));
    if (!tryReservePort(port)) {
      continue;
    }
    if (await bindable(port)) {
      return port;
    }
    releaseReservation(port); // in use by something that does not reserve: leave it alone
  }
  throw new Error(`freePort: no free port in ${PORT_MIN}-${PORT_MAX} after 200 attempts`);
}

const PORT_MIN = 20000;
const PORT_MAX = 32767;
const portLockDir = path.join(os.tmpdir(), "model-serving-test-ports");

/** Reserves `port` for this process unless a live process holds it; false when one does. */
export function tryReservePort(port: number): boolean {
  fs.mkdirSync(portLockDir, { recursive: true });
  const file = path.join(portLockDir, `${port}.pid`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: "wx" });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw err;
      }
      const holder = Number(readOr(file, ""));
      const valid = Number.isInteger(holder) && holder > 0;
      if (valid ? pidAlive(holder) : ageMs(file) < 10_000) {
        return false; // held; or just created and not written yet
      }
      // The holder is gone (or never wrote its pid): remove its stale reservation once, then retry.
      fs.rmSync(file, { force: true });
    }
  }
  return false;
}

/** `count` consecutive ports in `first`-`last` (default 17000-17999, this suite's range for the
 * agent's port ranges), each reserved through tryReservePort; `avoid` are never picked. */
export function reservePortBlock(
  count: number,
  avoid: number[] = [],
  first = 17000,
  last = 17999,
): number[] {
  for (let attempt = 0; attempt < 200; attempt++) {
    const start = first + Math.floor(Math.random() * (last - first + 2 - count));
    const ports = Array.from({ length: count }, (_, i) => start + i);
    if (ports.some((p) => avoid.includes(p))) {
      continue;
    }
    const got: number[] = [];
    for (const p of ports) {
      if (!tryReservePort(p)) {
        break;
      }
      got.push(p);
    }
    if (got.length === count) {
      return ports;
    }
    got.forEach(releaseReservation);
  }
  throw new Error(`reservePortBlock: no ${count} consecutive free ports in ${first}-${last}`);
}

function releaseReservation(port: number): void {
  fs.rmSync(path.join(portLockDir, `${port}.pid`), { force: true });
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return fallback;
  }
}

function ageMs(file: string): number {
  try {
    return Date.now() - fs.statSync(file).mtimeMs;
  } catch {
    return Infinity; // gone meanwhile
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen({ port, host: "127.0.0.1", exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * Starts `server` listening on a loopback port the kernel picks (port 0, no race) and resolves that
 * port: for servers the test itself runs (a foreign port holder, a scripted MLflow).
 */
export function listenOnFreePort(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `model-serving-${prefix}-`));
}

/**
 * The demo iris model trained with regularization C, cached under the model-serving cache so the
 * suites train each variant once per machine (training is deterministic; ~20 s each).
 */
export function demoModel(regularization = 1.0): string {
  const dir = path.join(cacheDir, "test-models", `iris-C${regularization}`);
  if (!fs.existsSync(path.join(dir, "MLmodel"))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    execFileSync(
      venvPython,
      [
        path.join(repoRoot, "python/demo/train_iris.py"),
        tmp,
        "--regularization",
        String(regularization),
      ],
      { stdio: "pipe" },
    );
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  }
  return dir;
}

/** Posts JSON to a URL; resolves status and parsed body. */
export async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, body: parsed };
}

export const IRIS_ROW = {
  dataframe_split: {
    columns: ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    data: [[5.1, 3.5, 1.4, 0.2]],
  },
};
