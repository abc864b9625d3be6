import * as fs from "fs";
import * as path from "path";

// Data flows one way: config -> components -> providers. config/ must import neither components/ nor
// providers/, not even lazily (require) or through a module it imports.
const root = path.resolve(__dirname, "../..");

/** Every module specifier of a TypeScript file: import/export ... from, import(), require(). */
export function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'";]*?\sfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\b(?:require|import)\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of source.matchAll(re)) {
      found.push(m[1]);
    }
  }
  return found;
}

function resolveLocal(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) {
    return undefined; // a package
  }
  const base = path.resolve(path.dirname(from), spec);
  return [`${base}.ts`, path.join(base, "index.ts"), base].find(
    (f) => fs.existsSync(f) && fs.statSync(f).isFile(),
  );
}

/** The project files `entry` reaches through relative imports, with the import that reached each. */
function reachable(entry: string): Map<string, string> {
  const seen = new Map<string, string>([[entry, "(entry)"]]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const spec of specifiers(fs.readFileSync(file, "utf8"))) {
      const target = resolveLocal(file, spec);
      if (target && !seen.has(target)) {
        seen.set(target, `${path.relative(root, file)} imports "${spec}"`);
        queue.push(target);
      }
    }
  }
  return seen;
}

test("the scanner finds every kind of import", () => {
  expect(
    specifiers(
      [
        'import { a } from "./a";',
        'import type { B } from "../components/b";',
        'export { c } from "../providers/c";',
        'import "./side-effect";',
        'const { d } = require("../components/d");',
        'const e = await import("../providers/e");',
        "import * as f from 'f';",
      ].join("\n"),
    ).sort(),
  ).toEqual(
    [
      "./a",
      "../components/b",
      "../providers/c",
      "./side-effect",
      "../components/d",
      "../providers/e",
      "f",
    ].sort(),
  );
});

test("config/ imports nothing of components/ or providers/", () => {
  const configDir = path.join(root, "config");
  const files = fs.readdirSync(configDir).filter((f) => f.endsWith(".ts"));
  expect(files.length).toBeGreaterThan(2);
  const violations: string[] = [];
  for (const f of files) {
    for (const [file, via] of reachable(path.join(configDir, f))) {
      const rel = path.relative(root, file);
      if (rel.startsWith(`components${path.sep}`) || rel.startsWith(`providers${path.sep}`)) {
        violations.push(`config/${f} reaches ${rel}: ${via}`);
      }
    }
  }
  expect(violations).toEqual([]);
});
