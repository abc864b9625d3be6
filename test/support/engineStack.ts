import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { mlflowMissingReason, repoRoot, skipReason, tempDir } from "./env";

/**
 * The dev program (repo root) on the real Pulumi CLI with a temp file backend, a temp MODEL_SERVING_CACHE
 * and stack config set per stack. Shared by the fault, bad-input and secrets suites and by bench/.
 * Stack names start with `e2e` so the Pulumi.<stack>.yaml the Automation API writes into the repo root
 * is git-ignored; cleanup() removes it anyway.
 */

/**
 * Why the real engine cannot run here, or undefined when it can; gated by skipReason, so under CI=true
 * a missing venv or CLI fails the suite instead of skipping it.
 */
export function whyEngineCannotRun(): string | undefined {
  return skipReason(engineMissingReason());
}

/** Why the real engine cannot run here, or undefined when it can (no CI gate). */
export function engineMissingReason(): string | undefined {
  const mlflow = mlflowMissingReason();
  if (mlflow) {
    return mlflow;
  }
  const onPath = (bin: string) =>
    (process.env.PATH ?? "").split(path.delimiter).some((d) => fs.existsSync(path.join(d, bin)));
  for (const bin of ["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"]) {
    if (!onPath(bin)) {
      return `${bin} is not on PATH: run \`source scripts/env.sh\` first (npm test does it)`;
    }
  }
  return undefined;
}

/** One `model-serving:models` entry, as in Pulumi.<stack>.yaml. */
/** `source` to register a version here, or `registered` to serve one the registry holds. */
export type ModelEntry = Record<string, unknown> & { name: string };

export interface EngineStackOptions {
  /** Stack name prefix after `e2e`, e.g. "fault" -> e2efault<time>. */
  prefix: string;
  /** `model-serving:mlflow` (besides a dataDir in the temp cache, which is always set). */
  mlflow?: Record<string, unknown>;
  models?: ModelEntry[];
  /** Set as the secret `model-serving:mlflowPassword`. */
  password?: string;
  /** Share a backend (another EngineStack's `backend`); by default a new temp dir. */
  backend?: string;
  /** Share a MODEL_SERVING_CACHE (another EngineStack's `cache`); by default a new temp dir. A stack that
   * shares one neither removes it nor kills the servers in it on cleanup: its owner does. */
  cache?: string;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time of the whole `pulumi` process, measured from outside. */
  ms: number;
  /** The `pulumi` process's pid. */
  pid: number;
}

export class EngineStack {
  /** Everything the engine writes or reads (state, cache, logs) goes to temp dirs. */
  readonly envVars: Record<string, string>;
  /** Captured onOutput/onError of every Automation API call made through `opts()`. */
  readonly logs: string[] = [];
  private readonly ownsBackend: boolean;
  private readonly ownsCache: boolean;

  private constructor(
    readonly stack: Stack,
    readonly stackName: string,
    readonly backend: string,
    readonly cache: string,
    owns: { backend: boolean; cache: boolean },
  ) {
    this.ownsBackend = owns.backend;
    this.ownsCache = owns.cache;
    this.envVars = envFor(backend, cache);
  }

  static async create(options: EngineStackOptions): Promise<EngineStack> {
    const backend = options.backend ?? tempDir(`${options.prefix}-backend`);
    const cache = options.cache ?? tempDir(`${options.prefix}-cache`);
    const stackName = `e2e${options.prefix}${Date.now()}${Math.floor(Math.random() * 1000)}`;
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName, workDir: repoRoot },
      { envVars: envFor(backend, cache) },
    );
    const engine = new EngineStack(stack, stackName, backend, cache, {
      backend: options.backend === undefined,
      cache: options.cache === undefined,
    });
    await engine.setMlflow(options.mlflow ?? {});
    await engine.setModels(options.models ?? []);
    if (options.password !== undefined) {
      await stack.setConfig("model-serving:mlflowPassword", {
        value: options.password,
        secret: true,
      });
    }
    return engine;
  }

  /**
   * Another stack on this one's backend and cache, with the same config (`options`: as given to create)
   * and this stack's current state (its URNs renamed): it records the same running resources, so a
   * run on it that fails before changing anything can go beside runs on this stack. Clean it up with
   * `cleanup({ destroy: false })` (a destroy would take this stack's servers with it).
   */
  async copy(options: EngineStackOptions): Promise<EngineStack> {
    const copy = await EngineStack.create({ ...options, backend: this.backend, cache: this.cache });
    const state = JSON.stringify(await this.stack.exportStack())
      .split(`urn:pulumi:${this.stackName}::`)
      .join(`urn:pulumi:${copy.stackName}::`)
      .split(`::model-serving-${this.stackName}"`)
      .join(`::model-serving-${copy.stackName}"`);
    await copy.stack.importStack(JSON.parse(state));
    return copy;
  }

  get dataDir(): string {
    return path.join(this.cache, "mlflow-data");
  }

  async setMlflow(mlflow: Record<string, unknown>): Promise<void> {
    await this.stack.setConfig("model-serving:mlflow", {
      value: JSON.stringify({ dataDir: this.dataDir, ...mlflow }),
    });
  }

  async setModels(models: ModelEntry[]): Promise<void> {
    await this.stack.setConfig("model-serving:models", { value: JSON.stringify(models) });
  }

  /** Options for an Automation API call that capture its engine output into `logs`. */
  opts<T extends object>(
    extra?: T,
  ): T & { onOutput: (s: string) => void; onError: (s: string) => void } {
    return {
      ...(extra ?? ({} as T)),
      onOutput: (s: string) => this.logs.push(s),
      onError: (s: string) => this.logs.push(s),
    };
  }

  /** Runs the `pulumi` CLI on this stack in the repo root, timed from outside. */
  cli(args: string[], options: Omit<RunOptions, "cwd" | "env"> = {}) {
    return runPulumi([...args, "--stack", this.stackName, "--non-interactive"], {
      cwd: repoRoot,
      env: this.envVars,
      ...options,
    });
  }

  /** Lock files of this stack on the file backend (`.pulumi/locks/.../<stack>/<id>.json`, relative to
   * `.pulumi/locks`; the `<id>.json.attrs` metadata sidecars are not locks). */
  locks(): string[] {
    const dir = path.join(this.backend, ".pulumi", "locks");
    return fs.existsSync(dir)
      ? filesUnder(dir).filter((f) => f.includes(this.stackName) && f.endsWith(".json"))
      : [];
  }

  /** The checkpoint as it is on disk (secrets stay encrypted, unlike exportStack()). */
  stateFile(): string {
    return path.join(this.backend, ".pulumi", "stacks", "model-serving", `${this.stackName}.json`);
  }

  /** Resources of the stack's current state (read from disk). */
  resources(): StateResource[] {
    const file = this.stateFile();
    if (!fs.existsSync(file)) {
      return [];
    }
    const state = JSON.parse(fs.readFileSync(file, "utf8"));
    return (state.checkpoint?.latest?.resources ?? []) as StateResource[];
  }

  resource(typeSuffix: string, name?: string): StateResource | undefined {
    return this.resources().find(
      (r) =>
        r.type.endsWith(`:${typeSuffix}`) && (name === undefined || r.urn.endsWith(`::${name}`)),
    );
  }

  /** Destroys (best effort, unless `strict`; skipped with `destroy: false`), removes the stack, its
   * Pulumi.<stack>.yaml and the temp dirs, and kills any server the stack's cache still has running. */
  async cleanup(options: { strict?: boolean; destroy?: boolean } = {}): Promise<void> {
    try {
      if (options.destroy ?? true) {
        await this.stack.cancel().catch(() => undefined);
        try {
          await this.stack.destroy(this.opts());
        } catch {
          // Once more after a refresh: the first attempt may have met a server stopped out of band.
          await this.stack.refresh(this.opts()).catch(() => undefined);
          await this.stack.destroy(this.opts()).catch((err: Error) => {
            if (options.strict) {
              throw err;
            }
            console.warn(`cleanup: destroy of ${this.stackName} failed: ${err.message}`);
          });
        }
      }
      if (this.ownsCache) {
        killStackProcesses(this);
      }
      await this.stack.workspace
        .removeStack(this.stackName, { force: true })
        .catch(() => undefined);
    } finally {
      fs.rmSync(path.join(repoRoot, `Pulumi.${this.stackName}.yaml`), { force: true });
      if (this.ownsCache) {
        fs.rmSync(this.cache, { recursive: true, force: true });
      }
      if (this.ownsBackend) {
        fs.rmSync(this.backend, { recursive: true, force: true });
      }
    }
  }
}

export interface StateResource {
  urn: string;
  type: string;
  id?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  pendingReplacement?: boolean;
}

function envFor(backend: string, cache: string): Record<string, string> {
  // The passphrase file env.sh may set would win over PULUMI_CONFIG_PASSPHRASE; drop it for our stacks.
  delete process.env.PULUMI_CONFIG_PASSPHRASE_FILE;
  return {
    PULUMI_BACKEND_URL: `file://${backend}`,
    PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase",
    MODEL_SERVING_CACHE: cache,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
}

/** Runs `pulumi <args>`; resolves (never rejects) with exit code, output and wall time. */
export interface RunOptions {
  cwd: string;
  env: Record<string, string>;
  /** SIGKILL after this long (default 15 min). */
  timeoutMs?: number;
  /** Called with each chunk of stdout as it arrives and the CLI's pid (e.g. to signal it mid-run). */
  onStdout?: (text: string, pid: number) => void;
}

export function runPulumi(args: string[], options: RunOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn("pulumi", args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
      options.onStdout?.(stdout, child.pid!);
    });
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 900_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      resolve({ code, signal, stdout, stderr, ms, pid: child.pid ?? 0 });
    });
  });
}

export function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Last resort after cleanup: SIGKILL every server group recorded in the state or the stack's cache. */
function killStackProcesses(engine: EngineStack): void {
  for (const r of engine.resources()) {
    // A deploy mode remote server's group is on another host: nothing here to kill.
    if (r.outputs?.mode === "remote") {
      continue;
    }
    const pgid = r.outputs?.pgid;
    if (typeof pgid === "number" && pgid > 1) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }
  for (const pgid of groupsUsing(engine.cache)) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** Process groups (other than ours) whose command line, environment or working directory mentions `dir`,
 * e.g. the servers a stack with that MODEL_SERVING_CACHE started; `match` filters on the command line. */
export function groupsUsing(dir: string, match?: string): number[] {
  const groups = new Set<number>();
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8");
      // Servers get an allow-listed environment (no MODEL_SERVING_CACHE): they run in a folder under it.
      let cwd = "";
      try {
        cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // not ours to read
      }
      const mentions =
        cmd.includes(dir) ||
        environ.includes(`MODEL_SERVING_CACHE=${dir}\0`) ||
        cwd === dir ||
        cwd.startsWith(`${dir}/`);
      if (mentions && (match === undefined || cmd.split("\0").join(" ").includes(match))) {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
        if (pgid > 1 && pgid !== ownPgid()) {
          groups.add(pgid);
        }
      }
    } catch {
      // gone or not ours to read
    }
  }
  return [...groups];
}

/** A process as /proc shows it, with its start time so a reused pid is not mistaken for it. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22). */
  started: number;
  argv: string[];
}

function processInfo(pid: number): ProcessInfo | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") {
      return undefined; // exited, not reaped yet
    }
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    return { pid, ppid: Number(fields[1]), started: Number(fields[19]), argv };
  } catch {
    return undefined;
  }
}

/** Every live descendant of `root` (children, their children, ...), read from /proc. */
export function descendantsOf(root: number): ProcessInfo[] {
  const all = fs
    .readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map((p) => processInfo(Number(p)))
    .filter((p): p is ProcessInfo => p !== undefined);
  const found: ProcessInfo[] = [];
  const parents = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        found.push(p);
        grew = true;
      }
    }
  }
  return found;
}

/** Whether that very process (same pid and start time) still runs; a zombie does not. */
export function stillRunning(p: ProcessInfo): boolean {
  return processInfo(p.pid)?.started === p.started;
}

function ownPgid(): number {
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}

/** Files under `dir` whose bytes contain `needle` (state, backups and history of a file backend). */
export function filesContaining(dir: string, needle: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .filter((f) => fs.readFileSync(f).includes(needle));
}

/** Every file under `dir`, relative paths (to show what a secrets scan covered). */
export function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

export { tempDir };
