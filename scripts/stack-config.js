// The machine's copy of a stack's settings: `node scripts/stack-config.js <stack>` prints the path of
// $MODEL_SERVING_CACHE/stacks/Pulumi.<stack>.yaml after bringing it up to date with the committed
// Pulumi.<stack>.yaml. Every script passes that file to Pulumi (`--config-file`), so what belongs to
// this machine (the passphrase's `encryptionsalt`, secrets set with `pulumi config set --secret`, other
// keys set with `npm run pulumi -- config set`) never lands in the committed file.
//
// Merge, key by key under `config:` (a three-way merge against the committed file as last synced,
// kept next to the copy as Pulumi.<stack>.committed.yaml):
// - a key the machine changed or added since the last sync keeps the machine's value;
// - every other key follows the committed file (added, changed or removed there);
// - secrets providers' settings (encryptionsalt, secretsprovider, encryptedkey) are the machine's; a
//   salt found in the committed file (written there by older versions of the scripts) moves over once.
// The copy is rewritten only when its content changes.
const fs = require("fs");
const path = require("path");
const yaml = require("js-yaml");

const MACHINE_KEYS = ["encryptionsalt", "secretsprovider", "encryptedkey"];

function read(file) {
  if (!fs.existsSync(file)) {
    return undefined;
  }
  const doc = yaml.load(fs.readFileSync(file, "utf8"));
  return doc && typeof doc === "object" ? doc : {};
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** The machine's settings for `stack`, merged from the committed file; returns the new document. */
function merge(committed, machine, base) {
  const out = { ...committed };
  delete out.config;
  for (const key of MACHINE_KEYS) {
    delete out[key];
    const value = machine?.[key] ?? committed[key];
    if (value !== undefined) {
      out[key] = value;
    }
  }
  const c = committed.config ?? {};
  const m = machine?.config ?? {};
  const b = base?.config ?? {};
  const config = {};
  for (const key of new Set([...Object.keys(c), ...Object.keys(m)])) {
    const changedHere = machine !== undefined && key in m && !(key in b && same(m[key], b[key]));
    if (changedHere) {
      config[key] = m[key];
    } else if (key in c) {
      config[key] = c[key];
    }
  }
  if (Object.keys(config).length > 0) {
    out.config = config;
  }
  return out;
}

function sync({ root, cache, stack }) {
  const dir = path.join(cache, "stacks");
  const committedFile = path.join(root, `Pulumi.${stack}.yaml`);
  const machineFile = path.join(dir, `Pulumi.${stack}.yaml`);
  const baseFile = path.join(dir, `Pulumi.${stack}.committed.yaml`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // `pulumi stack init` run in this folder writes the new stack's salt into the machine's copy.
  fs.copyFileSync(path.join(root, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));

  const committedText = fs.existsSync(committedFile) ? fs.readFileSync(committedFile, "utf8") : "";
  const committed = read(committedFile) ?? {};
  const merged = merge(committed, read(machineFile), read(baseFile));
  const text = yaml.dump(merged, { lineWidth: -1 });
  if (!fs.existsSync(machineFile) || fs.readFileSync(machineFile, "utf8") !== text) {
    fs.writeFileSync(machineFile, text, { mode: 0o600 });
  }
  // A salt older scripts wrote into the committed file now lives in the machine's copy: drop the line,
  // so the checkout is clean again (the rest of the file is left byte for byte).
  let baseText = committedText;
  if (
    committed.encryptionsalt !== undefined &&
    merged.encryptionsalt === committed.encryptionsalt
  ) {
    baseText = committedText.replace(/^encryptionsalt:.*\r?\n?/m, "");
    fs.writeFileSync(committedFile, baseText);
    process.stderr.write(
      `[stack-config] moved the encryptionsalt of ${path.basename(committedFile)} to ${machineFile}\n`,
    );
  }
  if (!fs.existsSync(baseFile) || fs.readFileSync(baseFile, "utf8") !== baseText) {
    fs.writeFileSync(baseFile, baseText, { mode: 0o600 });
  }
  return machineFile;
}

module.exports = { merge, sync };

if (require.main === module) {
  const stack = process.argv[2];
  const root = process.env.MODEL_SERVING_ROOT;
  const cache = process.env.MODEL_SERVING_CACHE;
  if (!stack || !root || !cache) {
    console.error(
      "usage: MODEL_SERVING_ROOT=... MODEL_SERVING_CACHE=... node scripts/stack-config.js <stack>",
    );
    process.exit(2);
  }
  process.stdout.write(`${sync({ root, cache, stack })}\n`);
}
