import * as http from "http";
import { IRIS_ROW } from "./env";

/** Scoring the served iris model over HTTP, as the engine suites' clients do: one request, a count by
 * answering version, and a constant load that counts every failure. The version is the front's
 * X-Model-Uri answer header. */
export interface Score {
  status: number;
  uri?: string;
}

export function score(url: string, headers: Record<string, string> = {}): Promise<Score> {
  return new Promise((resolve) => {
    const body = JSON.stringify(IRIS_ROW);
    const req = http.request(
      url,
      {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(body),
          ...headers,
        },
        timeout: 30_000,
      },
      (res) => {
        res.resume();
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, uri: res.headers["x-model-uri"] as string }),
        );
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve({ status: 0 }));
    req.end(body);
  });
}

/** `count` scorings of `url`, 4 at a time: how many each model URI answered (failures as "failed"). */
export async function servedBy(
  url: string,
  count: number,
  headers: Record<string, string> = {},
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let left = count;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (left-- > 0) {
        const r = await score(url, headers);
        const key = r.status === 200 ? (r.uri ?? "no X-Model-Uri") : "failed";
        counts[key] = (counts[key] ?? 0) + 1;
      }
    }),
  );
  return counts;
}

/** Scores `url` with `concurrency` clients until `stop()` is called; counts every failure. */
export function loadLoop(url: string, concurrency: number) {
  let running = true;
  const results = { ok: 0, failed: 0, uris: new Set<string>(), statuses: [] as number[] };
  const clients = Array.from({ length: concurrency }, async () => {
    while (running) {
      const r = await score(url);
      if (r.status === 200) {
        results.ok += 1;
        if (r.uri) {
          results.uris.add(r.uri);
        }
      } else {
        results.failed += 1;
        results.statuses.push(r.status);
      }
    }
  });
  return {
    results,
    stop: async () => {
      running = false;
      await Promise.all(clients);
      return results;
    },
  };
}
