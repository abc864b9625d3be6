import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { whyEngineCannotRun } from "../test/support/engineStack";
import { demoModel, mlflowBin, repoRoot, tempDir } from "../test/support/env";
import { agentPair } from "./agent";
import { BenchOptions, log, runCleanups } from "./harness";
import { fix, p1p5, p2p4, p3 } from "./pairs";
import { markdownTable, ratio, Row, summary } from "./stats";

// `npm run bench` (bench/run.sh): the side-by-side pairs, a markdown table on stdout, JSON and markdown
// in bench/results/.

function intEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  const v = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max} (got ${raw})`);
  }
  return v;
}

async function main(): Promise<void> {
  const skip = whyEngineCannotRun();
  if (skip) {
    throw new Error(`cannot run the bench: ${skip}`);
  }
  const opts: BenchOptions = {
    rounds: intEnv("BENCH_ROUNDS", 3, 1, 50),
    warmup: intEnv("BENCH_WARMUP", 1, 0, 5),
    loadSeconds: intEnv("BENCH_LOAD_SECONDS", 10, 1, 60),
    concurrency: intEnv("BENCH_CONCURRENCY", 8, 1, 64),
  };
  if (
    process.env.BENCH_PAIRS?.toUpperCase().includes("FIX") &&
    !process.env.BENCH_FIX_ENV?.includes("=")
  ) {
    throw new Error("BENCH_PAIRS=FIX needs BENCH_FIX_ENV=NAME=value");
  }
  const pairs = new Set(
    (process.env.BENCH_PAIRS ?? "P1,P2,P3,P4,P5,AG").split(",").map((p) => p.trim().toUpperCase()),
  );
  const machine = {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
    node: process.version,
    pulumi: execFileSync("pulumi", ["version"], { encoding: "utf8" }).trim(),
    mlflow: execFileSync(mlflowBin, ["--version"], { encoding: "utf8" }).trim(),
  };
  log(
    `${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB; pairs ${[...pairs]}; ` +
      `${opts.warmup} warm-up + ${opts.rounds} measured rounds`,
  );
  demoModel(1.0);
  const backend = tempDir("bench-backend");
  const started = Date.now();
  const rows: Row[] = [];
  try {
    if (pairs.has("P1") || pairs.has("P5")) {
      rows.push(...(await p1p5(opts, backend)).filter((r) => pairs.has(r.pair)));
    }
    if (pairs.has("P2") || pairs.has("P4")) {
      rows.push(...(await p2p4(opts, backend, pairs)));
    }
    if (pairs.has("P3")) {
      rows.push(...(await p3(opts, backend)));
    }
    if (pairs.has("AG")) {
      rows.push(...(await agentPair(opts, backend)));
    }
    if (pairs.has("FIX")) {
      rows.push(...(await fix(opts, backend, process.env.BENCH_FIX_ENV ?? "")));
    }
  } finally {
    await runCleanups();
    fs.rmSync(backend, { recursive: true, force: true });
  }
  rows.sort((a, b) => a.pair.localeCompare(b.pair));

  const date = new Date().toISOString();
  const table = markdownTable(rows);
  const header =
    `${date.slice(0, 10)} · ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB · ` +
    `pulumi ${machine.pulumi}, ${machine.mlflow}, node ${machine.node} · ${opts.warmup} warm-up + ` +
    `${opts.rounds} measured rounds, A/B alternating · total ${Math.round((Date.now() - started) / 1000)} s`;
  console.log(`\n${header}\n\n${table}\n`);
  const resultsDir = path.join(repoRoot, "bench", "results");
  fs.mkdirSync(resultsDir, { recursive: true });
  const stamp = date.replace(/[:.]/g, "-");
  const json = {
    date,
    machine,
    options: opts,
    seconds: (Date.now() - started) / 1000,
    rows: rows.map((r) => ({
      ...r,
      aSummary: summary(r.a.samples),
      bSummary: summary(r.b.samples),
      ratio: ratio(r),
    })),
  };
  fs.writeFileSync(path.join(resultsDir, `bench-${stamp}.json`), JSON.stringify(json, null, 2));
  fs.writeFileSync(path.join(resultsDir, `bench-${stamp}.md`), `${header}\n\n${table}\n`);
  log(`results: bench/results/bench-${stamp}.{json,md}`);
}

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (stopping) {
      process.exit(130);
    }
    stopping = true;
    log(`${sig}: cleaning up (again to force exit)`);
    runCleanups().finally(() => process.exit(130));
  });
}

main().catch(async (err) => {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  await runCleanups();
  process.exit(1);
});
