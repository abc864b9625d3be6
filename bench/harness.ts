import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { isPortFree } from "../providers/process";
import { CliResult, EngineStack, runPulumi } from "../test/support/engineStack";
import { demoModel, freePort, mlflowBin, repoRoot, tempDir } from "../test/support/env";

/** Shared plumbing of the bench pairs: cleanup registry, timed commands, servers by hand. */

export interface BenchOptions {
  rounds: number;
  warmup: number;
  loadSeconds: number;
  concurrency: number;
}

const cleanups: (() => Promise<void>)[] = [];

/** Registers a cleanup; returns a function that runs it now (once) and unregisters it. */
export function onCleanup(fn: () => Promise<void>): () => Promise<void> {
  cleanups.push(fn);
  return async () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) {
      cleanups.splice(i, 1);
      await fn();
    }
  };
}

export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    await cleanups.pop()!().catch((err) => console.error(`cleanup failed: ${err}`));
  }
}

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export function seconds(ms: number): number {
  return ms / 1000;
}

/** Fails loudly with the tail of the output when a measured command did not succeed. */
export function ok(what: string, r: CliResult): CliResult {
  if (r.code !== 0) {
    const lines = `${r.stdout}\n${r.stderr}`.trim().split("\n");
    // The engine's diagnostics (which resource failed and why) come before the summary at the end.
    const errors = lines.filter((l) => /error:/i.test(l)).slice(0, 20);
    const tail = lines.slice(-25);
    throw new Error(
      `${what} failed (exit ${r.code ?? r.signal}):\n${[...errors, "...", ...tail].join("\n")}`,
    );
  }
  return r;
}

/** A dev-like stack: local MLflow server + the demo iris model registered and served. */
export async function devLikeStack(prefix: string, backend: string): Promise<EngineStack> {
  return EngineStack.create({
    prefix,
    backend,
    mlflow: { mode: "local", port: await freePort() },
    models: [
      {
        name: "iris",
        source: demoModel(1.0),
        aliases: ["champion"],
        tags: { owner: "bench" },
        serve: { port: await freePort() },
      },
    ],
  });
}

export function up(engine: EngineStack): Promise<CliResult> {
  return engine.cli(["up", "--yes", "--skip-preview"]).then((r) => ok(`up ${engine.stackName}`, r));
}

export function destroy(engine: EngineStack): Promise<CliResult> {
  return engine
    .cli(["destroy", "--yes", "--skip-preview"])
    .then((r) => ok(`destroy ${engine.stackName}`, r));
}

export async function httpOk(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).status === 200;
  } catch {
    return false;
  }
}

export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGTERM");
  } catch {
    return;
  }
}

/** SIGTERM the groups, SIGKILL what is left after 10 s, then wait for the ports to be free. */
export async function stopGroups(pgids: number[], ports: number[]): Promise<void> {
  pgids.forEach(killGroup);
  const alive = (g: number) => {
    try {
      process.kill(-g, 0);
      return true;
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + 10_000;
  while (pgids.some(alive) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const g of pgids.filter(alive)) {
    process.kill(-g, "SIGKILL");
  }
  for (const p of ports) {
    for (let i = 0; i < 100 && !(await isPortFree("127.0.0.1", p)); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** P1 B: bench/manual.sh (mlflow server, Python client registration, models serve, /ping), timed. */
export async function byHand(): Promise<number> {
  const dir = tempDir("bench-hand");
  const pids = path.join(dir, "pids");
  const [mlflowPort, servePort] = [await freePort(), await freePort()];
  const python = path.join(path.dirname(mlflowBin), "python");
  const stop = onCleanup(async () => {
    const groups = fs.existsSync(pids)
      ? fs.readFileSync(pids, "utf8").split("\n").filter(Boolean).map(Number)
      : [];
    await stopGroups(groups, [mlflowPort, servePort]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  try {
    const started = process.hrtime.bigint();
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(
        "bash",
        [
          path.join(repoRoot, "bench/manual.sh"),
          mlflowBin,
          python,
          path.join(dir, "data"),
          String(mlflowPort),
          String(servePort),
          demoModel(1.0),
          pids,
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      let err = "";
      child.stderr.on("data", (d) => (err += d));
      child.on("error", reject);
      child.on("close", (c) => (c === 0 ? resolve(c) : reject(new Error(`manual.sh: ${err}`))));
    });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (code !== 0 || !(await httpOk(`http://127.0.0.1:${servePort}/ping`))) {
      throw new Error("manual.sh finished but the model server does not answer /ping");
    }
    return ms;
  } finally {
    await stop();
  }
}

/** An empty TypeScript Pulumi program (same tsconfig as the dev program) in a temp project dir. */
export async function emptyProgram(backend: string, env: Record<string, string>) {
  const dir = tempDir("bench-empty");
  fs.writeFileSync(
    path.join(dir, "Pulumi.yaml"),
    "name: bench-empty\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n" +
      "    tsconfig: tsconfig.json\n",
  );
  fs.writeFileSync(
    path.join(dir, "package.json"),
    '{ "name": "bench-empty", "main": "index.ts" }\n',
  );
  fs.writeFileSync(
    path.join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: "es2022",
        module: "commonjs",
        moduleResolution: "node",
        noCheck: true,
      },
      files: ["index.ts"],
    }),
  );
  fs.writeFileSync(path.join(dir, "index.ts"), "export const ok = true;\n");
  fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"));
  const stackName = `e2ebenchempty${Date.now()}`;
  const envAll = { ...env, PULUMI_BACKEND_URL: `file://${backend}` };
  const cli = (args: string[]) =>
    runPulumi([...args, "--stack", stackName, "--non-interactive"], { cwd: dir, env: envAll });
  ok(
    "stack init (empty program)",
    await runPulumi(["stack", "init", stackName], { cwd: dir, env: envAll }),
  );
  const remove = onCleanup(async () => {
    await cli(["stack", "rm", "--yes", "--force"]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    up: () => cli(["up", "--yes", "--skip-preview"]).then((r) => ok("up (empty program)", r)),
    remove,
  };
}
