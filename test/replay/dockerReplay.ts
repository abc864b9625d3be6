/* eslint-disable @typescript-eslint/no-explicit-any -- Engine API payloads are untyped JSON */
/**
 * Replays recorded `docker` resource inputs on a real Docker engine: what the Docker provider would do
 * with them, performed here because its plugin cannot be installed on this machine.
 *
 * - RemoteImage: `docker build` with the recorded build (context, dockerfile, target, build args,
 *   platform, labels, secrets) under BuildKit. The one deviation: a recorded `builder` (buildx) is
 *   served by the engine's own BuildKit (DOCKER_BUILDKIT=1), since buildx is not installed here.
 * - Container: the Engine API's create + start with the recorded name, image, env, labels, ports,
 *   restart policy, memory/CPU limits and health check, then the provider's `wait` for healthy.
 * Every recorded key must be one the replayer maps: an input it does not know fails the replay, so a
 * new component input is never silently left out.
 */
import { execFile } from "child_process";
import * as http from "http";
import { promisify } from "util";
import type { MockInputs } from "../support/mockRecorder";
import { dockerCli, dockerEnv, dockerSocket } from "./dockerEnv";

const run = promisify(execFile);

function onlyKnownKeys(what: string, inputs: MockInputs, known: string[]): void {
  const unknown = Object.keys(inputs).filter((k) => inputs[k] !== undefined && !known.includes(k));
  if (unknown.length > 0) {
    throw new Error(`replay of ${what}: no mapping for recorded input(s) ${unknown.join(", ")}`);
  }
}

/** The `docker build` argv of a recorded RemoteImage (build context last). */
export function buildArgv(image: MockInputs): string[] {
  onlyKnownKeys("RemoteImage", image, ["name", "build", "triggers", "keepLocally"]);
  const b = image.build;
  onlyKnownKeys("RemoteImage.build", b, [
    "context",
    "dockerfile",
    "target",
    "buildArgs",
    "platform",
    "label",
    "secrets",
    "builder",
  ]);
  const argv = [
    "build",
    "--progress=plain",
    "-t",
    image.name,
    "-f",
    `${b.context}/${b.dockerfile}`,
  ];
  if (b.target) {
    argv.push("--target", b.target);
  }
  for (const [k, v] of Object.entries<string>(b.buildArgs ?? {})) {
    argv.push("--build-arg", `${k}=${v}`);
  }
  if (b.platform) {
    argv.push("--platform", b.platform);
  }
  for (const [k, v] of Object.entries<string>(b.label ?? {})) {
    argv.push("--label", `${k}=${v}`);
  }
  for (const s of (b.secrets ?? []) as { id: string; src?: string; env?: string }[]) {
    argv.push("--secret", s.src ? `id=${s.id},src=${s.src}` : `id=${s.id},env=${s.env}`);
  }
  argv.push(b.context);
  return argv;
}

/** Builds the recorded image; resolves its id (sha256:...) and the build log. */
export async function replayImage(image: MockInputs): Promise<{ imageId: string; log: string }> {
  const env = { ...process.env, ...dockerEnv(), DOCKER_BUILDKIT: "1" };
  let log: string;
  try {
    const out = await run(dockerCli(), buildArgv(image), {
      env,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 20 * 60_000,
    });
    log = out.stdout + out.stderr;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const tail = (e.stderr ?? "").trim().split("\n").slice(-30).join("\n");
    throw new Error(`replay: docker build of ${image.name} failed:\n${tail || e.message}`);
  }
  const { stdout } = await run(dockerCli(), ["image", "inspect", "-f", "{{.Id}}", image.name], {
    env,
  });
  return { imageId: stdout.trim(), log };
}

/** Go duration strings as the provider takes them ("10s", "1m30s", "500ms") -> nanoseconds. */
export function durationNs(d: string): number {
  const units: Record<string, number> = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  const rest = d.replace(/(\d+(?:\.\d+)?)(ms|s|m|h)/g, (_, n: string, u: string) => {
    total += Number(n) * units[u];
    return "";
  });
  if (rest !== "" || d === "") {
    throw new Error(`replay: cannot read duration ${JSON.stringify(d)}`);
  }
  return total;
}

/** The Engine API create body of a recorded Container. */
export function containerCreateBody(c: MockInputs): Record<string, unknown> {
  onlyKnownKeys("Container", c, [
    "name",
    "image",
    "ports",
    "restart",
    "memory",
    "cpus",
    "envs",
    "healthcheck",
    "wait",
    "waitTimeout",
    "mustRun",
    "destroyGraceSeconds",
    "labels",
  ]);
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of (c.ports ?? []) as MockInputs[]) {
    const key = `${p.internal}/${p.protocol ?? "tcp"}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.ip ?? "", HostPort: String(p.external ?? "") });
  }
  const h = c.healthcheck;
  return {
    Image: c.image,
    Env: c.envs ?? [],
    Labels: Object.fromEntries(
      ((c.labels ?? []) as { label: string; value: string }[]).map((l) => [l.label, l.value]),
    ),
    ExposedPorts: exposed,
    StopTimeout: c.destroyGraceSeconds,
    Healthcheck: h && {
      Test: h.tests,
      Interval: h.interval ? durationNs(h.interval) : 0,
      Timeout: h.timeout ? durationNs(h.timeout) : 0,
      Retries: h.retries ?? 0,
      StartPeriod: h.startPeriod ? durationNs(h.startPeriod) : 0,
    },
    HostConfig: {
      PortBindings: bindings,
      RestartPolicy: { Name: c.restart ?? "no" },
      Memory: c.memory ? c.memory * 1024 * 1024 : 0,
      NanoCpus: c.cpus ? Math.round(Number(c.cpus) * 1e9) : 0,
    },
  };
}

/** One Engine API call over the unix socket; resolves status and parsed JSON (or text). */
export function engine(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        socketPath: dockerSocket(),
        path,
        method,
        headers: payload
          ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) }
          : {},
        timeout: 60_000,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // keep text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`replay: ${method} ${path} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

export async function inspectContainer(name: string): Promise<any> {
  const res = await engine("GET", `/containers/${encodeURIComponent(name)}/json`);
  if (res.status !== 200) {
    throw new Error(`replay: inspect ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

/** Waits until the container's health check reports healthy (the provider's `wait`). */
export async function waitHealthy(name: string, timeoutSeconds: number): Promise<any> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const info = await inspectContainer(name);
    const health = info.State?.Health?.Status;
    if (health === "healthy" && info.State.Running) {
      return info;
    }
    if (Date.now() > deadline) {
      const logs = await containerLogs(name);
      throw new Error(
        `replay: container ${name} not healthy after ${timeoutSeconds}s (state ${JSON.stringify(info.State)}):\n${logs}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function containerLogs(name: string): Promise<string> {
  const { stdout, stderr } = await run(dockerCli(), ["logs", "--tail", "60", name], {
    env: { ...process.env, ...dockerEnv() },
  }).catch((e) => ({ stdout: "", stderr: String(e) }));
  return stdout + stderr;
}

/** Creates and starts the recorded container (removing a leftover of the same name first). */
export async function replayContainer(c: MockInputs): Promise<any> {
  await removeContainer(c.name);
  const created = await engine(
    "POST",
    `/containers/create?name=${encodeURIComponent(c.name)}`,
    containerCreateBody(c),
  );
  if (created.status !== 201) {
    throw new Error(`replay: create ${c.name}: ${created.status} ${JSON.stringify(created.body)}`);
  }
  const started = await engine("POST", `/containers/${created.body.Id}/start`);
  if (started.status !== 204) {
    throw new Error(`replay: start ${c.name}: ${started.status} ${JSON.stringify(started.body)}`);
  }
  return c.wait ? waitHealthy(c.name, c.waitTimeout ?? 60) : inspectContainer(c.name);
}

/** Force-removes a container by name; a missing one is fine. */
export async function removeContainer(name: string): Promise<void> {
  const res = await engine("DELETE", `/containers/${encodeURIComponent(name)}?force=true`);
  if (res.status !== 204 && res.status !== 404) {
    throw new Error(`replay: remove ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  }
}

/**
 * Pushes a recorded RegistryImage as the provider does (`docker push <name>`) and resolves the digest
 * the registry stores it under (the provider's `sha256Digest`).
 */
export async function replayRegistryImage(pushed: MockInputs): Promise<{ sha256Digest: string }> {
  onlyKnownKeys("RegistryImage", pushed, [
    "name",
    "insecureSkipVerify",
    "keepRemotely",
    "triggers",
  ]);
  const env = { ...process.env, ...dockerEnv() };
  try {
    await run(dockerCli(), ["push", pushed.name], {
      env,
      maxBuffer: 16 * 1024 * 1024,
      timeout: 10 * 60_000,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `replay: docker push of ${pushed.name} failed: ${(e.stderr ?? e.message).trim()}`,
    );
  }
  const { stdout } = await run(
    dockerCli(),
    ["image", "inspect", "-f", "{{json .RepoDigests}}", pushed.name],
    { env },
  );
  const repository = pushed.name.slice(0, pushed.name.lastIndexOf(":"));
  const digest = (JSON.parse(stdout) as string[])
    .find((d) => d.startsWith(`${repository}@`))
    ?.split("@")[1];
  if (!digest) {
    throw new Error(
      `replay: no digest of ${repository} after the push (RepoDigests ${stdout.trim()})`,
    );
  }
  return { sha256Digest: digest };
}
