/** Summaries and the side-by-side table of the bench. */

export interface Series {
  label: string;
  samples: number[];
}

export interface Row {
  pair: string;
  metric: string;
  unit: string;
  a: Series;
  b: Series;
  /** Lower is better (times, latencies) or higher is better (throughput). */
  better: "lower" | "higher";
}

export function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  if (s.length === 0) {
    return NaN;
  }
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summary(xs: number[]) {
  return { n: xs.length, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

const fmt = (x: number) =>
  Math.abs(x) >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);

function cell(s: Series, unit: string): string {
  const { median: m, min, max } = summary(s.samples);
  return `${s.label}: **${fmt(m)} ${unit}** (${fmt(min)}–${fmt(max)})`;
}

export function ratio(row: Row): number {
  return median(row.a.samples) / median(row.b.samples);
}

export function markdownTable(rows: Row[]): string {
  const lines = [
    "| Pair | Metric | A: median (min–max) | B: median (min–max) | A/B |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.pair} | ${r.metric} | ${cell(r.a, r.unit)} | ${cell(r.b, r.unit)} | ${ratio(r).toFixed(2)}× |`,
    );
  }
  return lines.join("\n");
}
