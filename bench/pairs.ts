import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { EngineStack } from "../test/support/engineStack";
import { demoModel, freePort, IRIS_ROW, mlflowBin, repoRoot, tempDir } from "../test/support/env";
import { startTestServer, stopTestServer } from "../test/support/mlflowServer";
import {
  BenchOptions,
  byHand,
  destroy,
  devLikeStack,
  emptyProgram,
  httpOk,
  log,
  onCleanup,
  seconds,
  stopGroups,
  up,
} from "./harness";
import type { LoadResult } from "./load";
import { Row } from "./stats";

/**
 * The pairs. Every figure is the wall time of a whole `pulumi` process (or of bench/manual.sh, or of a
 * load run in its own process) measured by this driver. Each round runs A and B back to back, the order
 * alternating from round to round; the first `warmup` rounds are discarded.
 */

/** Runs `rounds` alternating A/B rounds; returns the measured samples of each side. */
async function alternate(
  opts: BenchOptions,
  name: string,
  a: (measured: boolean) => Promise<void>,
  b: (measured: boolean) => Promise<void>,
): Promise<void> {
  for (let r = 0; r < opts.warmup + opts.rounds; r++) {
    const measured = r >= opts.warmup;
    log(`${name} round ${r + 1}/${opts.warmup + opts.rounds}${measured ? "" : " (warm-up)"}`);
    const sides = r % 2 === 0 ? [a, b] : [b, a];
    for (const side of sides) {
      await side(measured);
    }
  }
}

/** P1 cold `up` of a dev-like stack vs the same steps by hand; P5 `destroy` vs cold `up` (same runs). */
export async function p1p5(opts: BenchOptions, backend: string): Promise<Row[]> {
  const coldUp: number[] = [];
  const destroys: number[] = [];
  const manual: number[] = [];
  await alternate(
    opts,
    "P1/P5",
    async (measured) => {
      const engine = await devLikeStack("benchcold", backend);
      const remove = onCleanup(() => engine.cleanup());
      try {
        const u = await up(engine);
        const url = engine.resource("ModelDeployment")!.outputs!.baseUrl as string;
        if (!(await httpOk(`${url}/ping`))) {
          throw new Error(`after up, ${url}/ping does not answer`);
        }
        const d = await destroy(engine);
        log(`  cold up ${seconds(u.ms).toFixed(1)} s, destroy ${seconds(d.ms).toFixed(1)} s`);
        if (measured) {
          coldUp.push(seconds(u.ms));
          destroys.push(seconds(d.ms));
        }
      } finally {
        await remove();
      }
    },
    async (measured) => {
      const ms = await byHand();
      log(`  by hand ${seconds(ms).toFixed(1)} s`);
      if (measured) {
        manual.push(seconds(ms));
      }
    },
  );
  return [
    {
      pair: "P1",
      metric: "cold up → endpoint answers",
      unit: "s",
      better: "lower",
      a: { label: "pulumi up", samples: coldUp },
      b: { label: "by hand", samples: manual },
    },
    {
      pair: "P5",
      metric: "destroy vs cold up",
      unit: "s",
      better: "lower",
      a: { label: "pulumi destroy", samples: destroys },
      b: { label: "pulumi up", samples: coldUp },
    },
  ];
}

/** P2 no-op `up` of the dev-like stack vs `up` of an empty program; then P4 on the same stack. */
export async function p2p4(
  opts: BenchOptions,
  backend: string,
  pairs: Set<string>,
): Promise<Row[]> {
  const rows: Row[] = [];
  const engine = await devLikeStack("benchdev", backend);
  const remove = onCleanup(() => engine.cleanup());
  try {
    log("P2/P4: bringing the dev-like stack up (not measured)");
    await up(engine);
    if (pairs.has("P2")) {
      const empty = await emptyProgram(backend, engine.envVars);
      const noop: number[] = [];
      const bare: number[] = [];
      try {
        await alternate(
          opts,
          "P2",
          async (m) => {
            const r = await up(engine);
            if (
              !/\b\d+ unchanged\b/.test(r.stdout) ||
              /\b(created|updated|replaced)\b/.test(r.stdout)
            ) {
              throw new Error(`the no-op up changed something:\n${r.stdout}`);
            }
            if (m) {
              noop.push(seconds(r.ms));
            }
          },
          async (m) => {
            const r = await empty.up();
            if (m) {
              bare.push(seconds(r.ms));
            }
          },
        );
      } finally {
        await empty.remove();
      }
      rows.push({
        pair: "P2",
        metric: "no-op up",
        unit: "s",
        better: "lower",
        a: { label: "dev stack", samples: noop },
        b: { label: "empty program", samples: bare },
      });
    }
    if (pairs.has("P4")) {
      rows.push(...(await p4(opts, engine)));
    }
  } finally {
    await remove();
  }
  return rows;
}

async function p4(opts: BenchOptions, engine: EngineStack): Promise<Row[]> {
  const deployment = engine.resource("ModelDeployment")!.outputs!;
  const trackingUri = engine.resource("LocalMlflowServer")!.outputs!.trackingUri as string;
  const port = await freePort();
  const dir = tempDir("bench-bare");
  log(`P4: bare mlflow models serve of ${deployment.modelUri} on :${port}`);
  const child = spawn(
    mlflowBin,
    ["models", "serve", "-m", String(deployment.modelUri), "--env-manager", "local"].concat([
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
    ]),
    {
      detached: true,
      stdio: "ignore",
      cwd: dir,
      env: {
        ...process.env,
        MLFLOW_TRACKING_URI: trackingUri,
        PATH: `${path.dirname(mlflowBin)}:${process.env.PATH}`,
      },
    },
  );
  child.unref();
  const stop = onCleanup(async () => {
    await stopGroups([child.pid!], [port]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  try {
    const bareBase = `http://127.0.0.1:${port}`;
    for (let i = 0; !(await httpOk(`${bareBase}/ping`)); i++) {
      if (i > 600) {
        throw new Error("P4: the bare model server did not answer /ping within 120 s");
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const a: LoadResult[] = [];
    const b: LoadResult[] = [];
    await alternate(
      opts,
      "P4",
      async (m) => {
        const r = await loadRun(String(deployment.url), opts, m);
        if (m) {
          a.push(r);
        }
      },
      async (m) => {
        const r = await loadRun(`${bareBase}/invocations`, opts, m);
        if (m) {
          b.push(r);
        }
      },
    );
    const row = (
      metric: string,
      unit: string,
      better: "lower" | "higher",
      k: keyof LoadResult,
    ) => ({
      pair: "P4",
      metric: `${metric} (c=${opts.concurrency}, ${opts.loadSeconds}s)`,
      unit,
      better,
      a: { label: "deployed URL", samples: a.map((r) => r[k]) },
      b: { label: "bare serve", samples: b.map((r) => r[k]) },
    });
    return [
      row("latency p50", "ms", "lower", "p50Ms"),
      row("latency p99", "ms", "lower", "p99Ms"),
      row("throughput", "req/s", "higher", "rps"),
    ];
  } finally {
    await stop();
  }
}

/** One bounded load run in its own node process (so it does not share the driver's event loop). */
function loadRun(url: string, opts: BenchOptions, measured: boolean): Promise<LoadResult> {
  const secs = measured ? opts.loadSeconds : Math.min(3, opts.loadSeconds);
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["-r", "./bench/register.js", "bench/load.ts", url, JSON.stringify(IRIS_ROW)].concat([
        String(opts.concurrency),
        String(secs),
      ]),
      { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) {
        return reject(new Error(`load generator exited ${code}`));
      }
      const r = JSON.parse(out) as LoadResult;
      if (r.errors > 0 || r.requests === 0) {
        return reject(new Error(`load run on ${url}: ${r.errors} errors, ${r.requests} ok`));
      }
      resolve(r);
    });
  });
}

/** P3 `up` of a stack with 10 served models vs 1 (same existing MLflow server, cold model servers). */
export async function p3(opts: BenchOptions, backend: string): Promise<Row[]> {
  const server = await startTestServer();
  const stopServer = onCleanup(() => stopTestServer(server));
  const stackWith = async (prefix: string, names: string[]) =>
    EngineStack.create({
      prefix,
      backend,
      mlflow: { mode: "existing", trackingUri: server.trackingUri },
      models: await Promise.all(
        names.map(async (name) => ({
          name,
          source: demoModel(1.0),
          serve: { port: await freePort() },
        })),
      ),
    });
  const ten = await stackWith(
    "bench10",
    Array.from({ length: 10 }, (_, i) => `ten-${i}`),
  );
  const removeTen = onCleanup(() => ten.cleanup());
  const one = await stackWith("bench1", ["one"]);
  const removeOne = onCleanup(() => one.cleanup());
  const tens: number[] = [];
  const ones: number[] = [];
  try {
    const side = (engine: EngineStack, into: number[]) => async (measured: boolean) => {
      const r = await up(engine);
      await destroy(engine);
      log(`  ${engine.stackName}: up ${seconds(r.ms).toFixed(1)} s`);
      if (measured) {
        into.push(seconds(r.ms));
      }
    };
    await alternate(opts, "P3", side(ten, tens), side(one, ones));
  } finally {
    await removeOne();
    await removeTen();
    await stopServer();
  }
  return [
    {
      pair: "P3",
      metric: "up, 10 models vs 1 (existing MLflow)",
      unit: "s",
      better: "lower",
      a: { label: "10 models", samples: tens },
      b: { label: "1 model", samples: ones },
    },
  ];
}

/**
 * Before/after of a provider fix that honours an environment switch, interleaved like the pairs:
 * cold up + destroy of the dev-like stack as it is (A) and with `BENCH_FIX_ENV` (e.g.
 * MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true, the behaviour before the fix) in the engine's environment (B).
 */
export async function fix(opts: BenchOptions, backend: string, fixEnv: string): Promise<Row[]> {
  const [key, ...rest] = fixEnv.split("=");
  const samples = {
    aUp: [] as number[],
    aDown: [] as number[],
    bUp: [] as number[],
    bDown: [] as number[],
  };
  const side = (withEnv: boolean) => async (measured: boolean) => {
    const engine = await devLikeStack("benchfix", backend);
    if (withEnv) {
      engine.envVars[key] = rest.join("=");
    }
    const remove = onCleanup(() => engine.cleanup());
    try {
      const u = await up(engine);
      const d = await destroy(engine);
      log(
        `  ${withEnv ? fixEnv : "as is"}: cold up ${seconds(u.ms).toFixed(1)} s, destroy ${seconds(d.ms).toFixed(1)} s`,
      );
      if (measured) {
        (withEnv ? samples.bUp : samples.aUp).push(seconds(u.ms));
        (withEnv ? samples.bDown : samples.aDown).push(seconds(d.ms));
      }
    } finally {
      await remove();
    }
  };
  await alternate(opts, "FIX", side(false), side(true));
  const row = (metric: string, a: number[], b: number[]): Row => ({
    pair: "FIX",
    metric,
    unit: "s",
    better: "lower",
    a: { label: "as is", samples: a },
    b: { label: fixEnv, samples: b },
  });
  return [row("cold up", samples.aUp, samples.bUp), row("destroy", samples.aDown, samples.bDown)];
}
