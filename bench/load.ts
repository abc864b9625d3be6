import * as http from "http";

/**
 * A small bounded load generator (run as its own process): POSTs one JSON body to a loopback URL from
 * `concurrency` keep-alive connections for `seconds`, at most `maxRequests` requests in all.
 * Usage: node -r ./bench/register.js bench/load.ts URL BODY_JSON CONCURRENCY SECONDS [MAX_REQUESTS]
 * Prints one JSON line: requests, errors, seconds, rps, p50Ms, p99Ms, maxMs.
 */

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) {
    return NaN;
  }
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export async function load(
  url: string,
  body: string,
  concurrency: number,
  seconds: number,
  maxRequests = 200_000,
): Promise<LoadResult> {
  const target = new URL(url);
  if (!LOOPBACK.has(target.hostname)) {
    throw new Error(`load: refusing a non-loopback target ${target.hostname}`);
  }
  if (!(concurrency >= 1 && concurrency <= 64) || !(seconds > 0 && seconds <= 120)) {
    throw new Error("load: concurrency must be 1-64 and seconds 0-120");
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(seconds * 1e9));

  const once = () =>
    new Promise<void>((resolve) => {
      const t0 = process.hrtime.bigint();
      const req = http.request(
        target,
        {
          method: "POST",
          agent,
          headers: {
            "Content-Type": "application/json",
            "Content-Length": Buffer.byteLength(body),
          },
          timeout: 10_000,
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) {
              latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
            } else {
              errors++;
            }
            resolve();
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => {
        errors++;
        resolve();
      });
      req.end(body);
    });

  const worker = async () => {
    while (process.hrtime.bigint() < deadline && sent < maxRequests) {
      sent++;
      await once();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    seconds: elapsed,
    rps: latencies.length / elapsed,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? NaN,
  };
}

if (require.main === module) {
  const [url, body, concurrency, seconds, max] = process.argv.slice(2);
  load(url, body, Number(concurrency), Number(seconds), max ? Number(max) : undefined).then(
    (r) => console.log(JSON.stringify(r)),
    (err) => {
      console.error((err as Error).message);
      process.exit(1);
    },
  );
}
