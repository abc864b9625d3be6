// The dynamic providers' code as a package, node_modules/@model-serving/code, compiled from providers/
// (and the config/modelSource.ts and config/serverEnv.ts they share with the config). The providers' serialized methods only
// `require("@model-serving/code/providers/<core>")`, so the state names the installed code instead of
// carrying a copy of it, the way a real provider's state names a plugin version.
//
//   node scripts/provider-code.js          builds it when its sources changed (the bootstrap runs this;
//                                          --quiet: say nothing when it is up to date)
//   node scripts/provider-code.js --check  exits 1 with the reason when it is missing or stale
//
// The build is keyed by a hash of its sources; the program refuses to run on a stale build
// (providers/providerCode.ts calls problem()).
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const PACKAGE = "@model-serving/code";
const ROOT = path.resolve(__dirname, "..");
/** The sources the build key covers, relative to the project root. */
const SOURCES = ["providers", "config/modelSource.ts", "config/serverEnv.ts"];
/** The cores the providers' methods load (providerCode("...") in providers/*.ts); the package holds
 * them and what they import. */
const ENTRIES = [
  "providers/modelVersionCore",
  "providers/modelReferenceCore",
  "providers/deployment/core",
  "providers/mlflowServerCore",
  "providers/agent/serverCore",
  "providers/agent/deploymentCore",
  "providers/agent/workflowCore",
  "providers/remote/hostProvisioningCore",
  "providers/remote/mlflowServerCore",
  "providers/remote/agentCore",
];

function sourceFiles(root) {
  const files = [];
  const walk = (rel) => {
    const abs = path.join(root, rel);
    if (fs.statSync(abs).isDirectory()) {
      for (const name of fs.readdirSync(abs).sort()) {
        walk(path.posix.join(rel, name));
      }
    } else if (rel.endsWith(".ts") && !rel.endsWith(".d.ts")) {
      files.push(rel);
    }
  };
  SOURCES.forEach(walk);
  return files;
}

/** sha256 over the sources' relative paths and bytes, and this script. */
function sourceKey(root = ROOT) {
  const hash = crypto.createHash("sha256");
  for (const file of sourceFiles(root).concat("scripts/provider-code.js")) {
    hash.update(`${file}\0`);
    hash.update(fs.readFileSync(path.join(root, file)));
    hash.update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

function packageDir(root = ROOT) {
  return path.join(root, "node_modules", ...PACKAGE.split("/"));
}

/** Why the installed package does not match the sources (a sentence), or undefined when it does. */
function problem(root = ROOT) {
  const fix = "run `npm run bootstrap` (or `node scripts/provider-code.js`)";
  let built;
  try {
    built = JSON.parse(fs.readFileSync(path.join(packageDir(root), "package.json"), "utf8"));
  } catch {
    return `the providers' code is not built (${packageDir(root)} is missing): ${fix}`;
  }
  const key = sourceKey(root);
  if (built.modelServingSourceKey !== key) {
    return (
      `the providers' code in ${packageDir(root)} is stale (built from sources ` +
      `${built.modelServingSourceKey}, the checkout has ${key}): ${fix}`
    );
  }
  return undefined;
}

/** Transpiles the entries and what they import (isolatedModules: one file at a time is exact). */
function build(root = ROOT) {
  const ts = require(require.resolve("typescript", { paths: [root] }));
  const key = sourceKey(root);
  const out = packageDir(root);
  const tmp = `${out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const sources = new Set(sourceFiles(root).map((f) => f.replace(/\.ts$/, "")));
  const todo = [...ENTRIES];
  const done = new Set();
  while (todo.length > 0) {
    const mod = todo.pop();
    if (done.has(mod)) {
      continue;
    }
    done.add(mod);
    const file = `${mod}.ts`;
    const { outputText } = ts.transpileModule(fs.readFileSync(path.join(root, file), "utf8"), {
      fileName: file,
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
        strict: true,
      },
    });
    // The package must be self-contained: a relative import out of it would fail at run time.
    for (const [, spec] of outputText.matchAll(/require\("(\.[^"]*)"\)/g)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
      const found = [target, `${target}/index`].find((t) => sources.has(t));
      if (!found) {
        throw new Error(`${file} imports "${spec}", which is not part of ${PACKAGE} (${SOURCES})`);
      }
      todo.push(found);
    }
    const dest = path.join(tmp, file.replace(/\.ts$/, ".js"));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, outputText);
  }
  fs.writeFileSync(
    path.join(tmp, "package.json"),
    JSON.stringify(
      {
        name: PACKAGE,
        version: `0.0.0-${key}`,
        private: true,
        description: "model-serving's dynamic-provider code, built by scripts/provider-code.js",
        modelServingSourceKey: key,
      },
      null,
      2,
    ) + "\n",
  );
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.renameSync(tmp, out);
  return key;
}

module.exports = { PACKAGE, SOURCES, ENTRIES, sourceKey, problem, build, packageDir };

if (require.main === module) {
  const why = problem();
  if (process.argv.includes("--check")) {
    if (why) {
      console.error(why);
      process.exit(1);
    }
  } else if (why) {
    console.log(`[bootstrap] building ${PACKAGE} ${build()} from ${SOURCES.join(", ")}`);
  } else if (!process.argv.includes("--quiet")) {
    console.log(`[bootstrap] ${PACKAGE} up to date`);
  }
}
