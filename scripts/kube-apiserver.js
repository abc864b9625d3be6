// kube-apiserver for the Kubernetes replay tests (test/replay/kubeEnv.ts), built once from the
// `k8s.io/kubernetes` Go module: a wrapper module requires it and replaces each of its `./staging`
// modules with the published v0.x version. The binary is cached under
// $MODEL_SERVING_CACHE/kube/bin; it takes ~13 min on 2 cores with a cold Go cache, so scripts/test.sh
// starts this build in the background (niced) while the first suites run, and the replay suite waits
// for it instead of building again.
//
//   node scripts/kube-apiserver.js build   builds it unless cached (or waits for a build in progress);
//                                          prints the binary's path
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const KUBE_VERSION = "1.34.2";
const STAGING_VERSION = "0.34.2";
const STAGING = [
  "api",
  "apiextensions-apiserver",
  "apimachinery",
  "apiserver",
  "cli-runtime",
  "client-go",
  "cloud-provider",
  "cluster-bootstrap",
  "code-generator",
  "component-base",
  "component-helpers",
  "controller-manager",
  "cri-api",
  "cri-client",
  "csi-translation-lib",
  "dynamic-resource-allocation",
  "endpointslice",
  "externaljwt",
  "kms",
  "kube-aggregator",
  "kube-controller-manager",
  "kube-proxy",
  "kube-scheduler",
  "kubectl",
  "kubelet",
  "metrics",
  "mount-utils",
  "pod-security-admission",
  "sample-apiserver",
  "sample-cli-plugin",
  "sample-controller",
];

function kubeDir(env = process.env) {
  const cache =
    env.MODEL_SERVING_CACHE ??
    path.join(env.XDG_CACHE_HOME ?? path.join(env.HOME ?? os.homedir(), ".cache"), "model-serving");
  return path.join(cache, "kube");
}

function apiserverBin(env = process.env) {
  return path.join(kubeDir(env), "bin", `kube-apiserver-v${KUBE_VERSION}`);
}

/** The wrapper module's go.mod. */
function wrapperGoMod() {
  return [
    "module modelserving.local/kube",
    "",
    "go 1.24",
    "",
    `require k8s.io/kubernetes v${KUBE_VERSION}`,
    "",
    "replace (",
    ...STAGING.map((m) => `\tk8s.io/${m} => k8s.io/${m} v${STAGING_VERSION}`),
    ")",
    "",
  ].join("\n");
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * The cached binary's path, built first when missing. A build already running (its pid in
 * `<bin>.building`) is waited for, up to `waitMs`, instead of starting a second one.
 */
function ensureApiserver({ waitMs = 45 * 60_000 } = {}) {
  const bin = apiserverBin();
  const lock = `${bin}.building`;
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (fs.existsSync(bin)) {
      return bin;
    }
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
      break; // ours to build
    } catch {
      const holder = Number(fs.readFileSync(lock, "utf8").trim() || "0");
      if (!holder || !alive(holder)) {
        fs.rmSync(lock, { force: true }); // a build that died
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `kube-apiserver: the build of pid ${holder} did not finish in ${waitMs / 60000} min`,
        );
      }
      sleep(2000);
    }
  }
  try {
    const build = path.join(kubeDir(), "build");
    fs.mkdirSync(build, { recursive: true });
    fs.writeFileSync(path.join(build, "go.mod"), wrapperGoMod());
    const tmp = `${bin}.tmp-${process.pid}`;
    execFileSync("go", ["build", "-o", tmp, "k8s.io/kubernetes/cmd/kube-apiserver"], {
      cwd: build,
      env: { ...process.env, GOFLAGS: "-mod=mod" },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 40 * 60_000,
    });
    fs.renameSync(tmp, bin);
    return bin;
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

module.exports = {
  KUBE_VERSION,
  STAGING_VERSION,
  STAGING,
  apiserverBin,
  wrapperGoMod,
  ensureApiserver,
};

if (require.main === module && process.argv[2] === "build") {
  const started = Date.now();
  const bin = ensureApiserver();
  process.stderr.write(
    `[kube-apiserver] ${bin} ready after ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
  console.log(bin);
}
