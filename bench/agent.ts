import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { EngineStack } from "../test/support/engineStack";
import { demoModel, freePort, repoRoot, reservePortBlock, venvPython } from "../test/support/env";
import { BenchOptions, destroy, log, onCleanup, seconds, up } from "./harness";
import { Row } from "./stats";

/**
 * Pair AG, deploy mode `agent`:
 * - requests/s and p50 through the agent's front vs a bare `mlflow models serve` of the same model with
 *   its defaults, same client and concurrency (8 and 16): agent/bench/throughput.py, one run per
 *   round (each run starts both servers: ~1 min);
 * - a cold `up` of a stack with 10 served models vs 1 with the agent (mlflow.agent.backend shared), and
 *   the PSS of the agent and its backends after each `up`.
 */
const TOKEN = "bench-agent-token-5c1f0e2d9a7b";

interface Throughput {
  requests_per_second: number;
  p50_ms: number;
}

async function throughput(
  concurrency: number,
  secs: number,
): Promise<{ front: Throughput; bare: Throughput }> {
  const { stdout } = await promisify(execFile)(
    venvPython,
    [
      path.join(repoRoot, "agent", "bench", "throughput.py"),
      "--concurrency",
      String(concurrency),
      "--seconds",
      String(secs),
    ],
    { cwd: repoRoot, timeout: 900_000, maxBuffer: 16 * 1024 * 1024 },
  );
  const last = JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
  const entries = Object.entries(last).filter(([, v]) => typeof v === "object") as [
    string,
    Throughput,
  ][];
  const front = entries.find(([k]) => k.startsWith("agent front"))![1];
  const bare = entries.find(([k]) => k.startsWith("bare"))![1];
  return { front, bare };
}

/** PSS (MiB) of every process that carries this agent's marker: the agent and its backends. */
function agentPssMiB(dataDir: string): number {
  const needle = `MODEL_SERVING_AGENT_HOME=${dataDir}\0`;
  let kib = 0;
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (!fs.readFileSync(`/proc/${pid}/environ`, "utf8").includes(needle)) {
        continue;
      }
      const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
      kib += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
    } catch {
      // gone, or not ours to read
    }
  }
  return kib / 1024;
}

async function agentStackUp(
  count: number,
  backend: string,
): Promise<{ upS: number; pssMiB: number }> {
  const mlflowPort = await freePort();
  const [agentPort] = reservePortBlock(1);
  const fronts = reservePortBlock(count, [agentPort]);
  const backends = reservePortBlock(4, [agentPort, ...fronts]);
  const engine = await EngineStack.create({
    prefix: `benchagent${count}`,
    backend,
    mlflow: {
      mode: "local",
      port: mlflowPort,
      deployMode: "agent",
      agent: {
        port: agentPort,
        frontPorts: { first: fronts[0], last: fronts.at(-1) },
        backendPorts: { first: backends[0], last: backends.at(-1) },
        backend: "shared",
        startTimeoutSeconds: 600,
      },
    },
    models: Array.from({ length: count }, (_, i) => ({
      name: `bench${i}`,
      source: demoModel(1.0),
    })),
  });
  await engine.stack.setConfig("model-serving:agentToken", { value: TOKEN, secret: true });
  const remove = onCleanup(() => engine.cleanup());
  try {
    const u = await up(engine);
    const dataDir = engine.resource("LocalAgent")!.outputs!.dataDir as string;
    const pssMiB = agentPssMiB(path.resolve(dataDir));
    await destroy(engine);
    return { upS: seconds(u.ms), pssMiB };
  } finally {
    await remove();
  }
}

export async function agentPair(opts: BenchOptions, backend: string): Promise<Row[]> {
  const rows: Row[] = [];
  for (const c of [8, 16]) {
    const front: Throughput[] = [];
    const bare: Throughput[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      log(`AG throughput at concurrency ${c}, round ${r + 1}/${opts.rounds}`);
      const t = await throughput(c, opts.loadSeconds);
      log(`AG c=${c}: front ${JSON.stringify(t.front)}, bare ${JSON.stringify(t.bare)}`);
      front.push(t.front);
      bare.push(t.bare);
    }
    rows.push({
      pair: "AG",
      metric: `req/s at concurrency ${c}, agent front vs bare mlflow models serve`,
      unit: "req/s",
      a: { label: "front", samples: front.map((t) => t.requests_per_second) },
      b: { label: "bare", samples: bare.map((t) => t.requests_per_second) },
      better: "higher",
    });
    rows.push({
      pair: "AG",
      metric: `p50 at concurrency ${c}, agent front vs bare`,
      unit: "ms",
      a: { label: "front", samples: front.map((t) => t.p50_ms) },
      b: { label: "bare", samples: bare.map((t) => t.p50_ms) },
      better: "lower",
    });
  }
  const ten: number[] = [];
  const one: number[] = [];
  const tenPss: number[] = [];
  const onePss: number[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    log(`AG up of 10 models vs 1 with the agent, round ${r + 1}/${opts.rounds}`);
    for (const [count, times, pss] of (r % 2 === 0
      ? [
          [10, ten, tenPss],
          [1, one, onePss],
        ]
      : [
          [1, one, onePss],
          [10, ten, tenPss],
        ]) as [number, number[], number[]][]) {
      const result = await agentStackUp(count, backend);
      log(
        `AG ${count} model(s): up ${result.upS.toFixed(1)} s, PSS ${result.pssMiB.toFixed(0)} MiB`,
      );
      times.push(result.upS);
      pss.push(result.pssMiB);
    }
  }
  rows.push({
    pair: "AG",
    metric: "cold up, 10 models vs 1 (agent, shared backend)",
    unit: "s",
    a: { label: "10 models", samples: ten },
    b: { label: "1 model", samples: one },
    better: "lower",
  });
  rows.push({
    pair: "AG",
    metric: "PSS of the agent and its backends, 10 models vs 1",
    unit: "MiB",
    a: { label: "10 models", samples: tenPss },
    b: { label: "1 model", samples: onePss },
    better: "lower",
  });
  return rows;
}
