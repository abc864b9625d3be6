/* eslint-disable @typescript-eslint/no-explicit-any -- API payloads are untyped JSON */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as https from "https";
import * as path from "path";
import { tempDir, tryReservePort } from "../support/env";

/**
 * A real Kubernetes API server on loopback for the replay tests: `kube-apiserver` built once from the
 * `k8s.io/kubernetes` Go module (a wrapper module that requires it and replaces each of its `./staging`
 * modules with the published v0.x version), cached under $MODEL_SERVING_CACHE/kube/bin, running against
 * Debian's `etcd` (etcd-server) with a token file. No controllers, no nodes: objects are stored,
 * validated, defaulted and admitted exactly as a cluster's API server does.
 */
// The build lives in scripts/kube-apiserver.js (plain node), which scripts/test.sh also starts in
// the background; here it is only waited for, or built when nothing started it.
const kubeBuild = require("../../scripts/kube-apiserver.js") as {
  KUBE_VERSION: string;
  apiserverBin: () => string;
  ensureApiserver: () => string;
};
export const KUBE_VERSION = kubeBuild.KUBE_VERSION;
export const apiserverBin = kubeBuild.apiserverBin();
export const ensureApiserver = kubeBuild.ensureApiserver;

/** Why the Kubernetes replay cannot run here, or undefined (the caller gates it with skipReason). */
export function kubeMissingReason(): string | undefined {
  for (const [bin, hint] of [
    ["etcd", "apt-get install etcd-server"],
    ["go", "install Go (kube-apiserver is built from its module)"],
  ]) {
    try {
      execFileSync("sh", ["-c", `command -v ${bin}`], { stdio: "pipe" });
    } catch {
      if (bin === "go" && fs.existsSync(apiserverBin)) {
        continue;
      }
      return `${bin} is not installed: ${hint}`;
    }
  }
  return undefined;
}

async function port(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const p = 13000 + Math.floor(Math.random() * 2000);
    if (tryReservePort(p)) {
      return p;
    }
  }
  throw new Error("no free port in 13000-14999");
}

export interface KubeApi {
  url: string;
  token: string;
  /** One API call; resolves status and parsed body. */
  request(method: string, urlPath: string, body?: unknown, contentType?: string): Promise<any>;
  stop(): Promise<void>;
  logs(): string;
}

/** Starts etcd and kube-apiserver on loopback; resolves once /readyz answers. */
export async function startKubeApi(): Promise<KubeApi> {
  const dir = tempDir("kube");
  const token = crypto.randomBytes(16).toString("hex");
  fs.writeFileSync(path.join(dir, "tokens.csv"), `${token},replay,replay,system:masters\n`);
  execFileSync("openssl", ["genrsa", "-out", path.join(dir, "sa.key"), "2048"], { stdio: "pipe" });
  const [etcdPort, etcdPeer, apiPort] = [await port(), await port(), await port()];
  let logs = "";
  const procs: ChildProcess[] = [];
  const track = (p: ChildProcess, label: string) => {
    p.stdout?.on("data", (d) => (logs += `[${label}] ${d}`));
    p.stderr?.on("data", (d) => (logs = (logs + `[${label}] ${d}`).slice(-200_000)));
    procs.push(p);
  };
  track(
    spawn("etcd", [
      "--data-dir",
      path.join(dir, "etcd"),
      "--listen-client-urls",
      `http://127.0.0.1:${etcdPort}`,
      "--advertise-client-urls",
      `http://127.0.0.1:${etcdPort}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${etcdPeer}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${etcdPeer}`,
      "--initial-cluster",
      `default=http://127.0.0.1:${etcdPeer}`,
    ]),
    "etcd",
  );
  track(
    spawn(ensureApiserver(), [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(dir, "certs")}`,
      `--token-auth-file=${path.join(dir, "tokens.csv")}`,
      "--authorization-mode=RBAC",
      `--service-account-key-file=${path.join(dir, "sa.key")}`,
      `--service-account-signing-key-file=${path.join(dir, "sa.key")}`,
      "--service-account-issuer=https://kubernetes.default.svc",
      "--service-cluster-ip-range=10.96.0.0/16",
      "--enable-priority-and-fairness=false",
      // No endpoints for the `kubernetes` Service: a loopback address is not a valid endpoint.
      "--endpoint-reconciler-type=none",
    ]),
    "apiserver",
  );
  const url = `https://127.0.0.1:${apiPort}`;
  const agent = new https.Agent({ rejectUnauthorized: false }); // self-signed serving cert
  const request = (method: string, urlPath: string, body?: unknown, contentType?: string) =>
    new Promise<any>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        `${url}${urlPath}`,
        {
          method,
          agent,
          headers: {
            Authorization: `Bearer ${token}`,
            ...(payload
              ? {
                  "Content-Type": contentType ?? "application/json",
                  "Content-Length": Buffer.byteLength(payload),
                }
              : {}),
          },
          timeout: 30_000,
        },
        (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => {
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // keep text
            }
            resolve({ status: res.statusCode, body: parsed });
          });
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  const stop = async () => {
    for (const p of procs.reverse()) {
      if (p.exitCode === null) {
        const exited = new Promise((r) => p.once("exit", r));
        p.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (p.exitCode === null) {
          p.kill("SIGKILL");
        }
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ready = await request("GET", "/readyz").then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) {
      break;
    }
    if (Date.now() > deadline || procs.some((p) => p.exitCode !== null)) {
      await stop();
      throw new Error(`kube-apiserver not ready within 120s:\n${logs.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { url, token, request, stop, logs: () => logs };
}
