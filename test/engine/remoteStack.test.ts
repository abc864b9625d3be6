import { execFile, execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { demoModel, IRIS_ROW, postJson, tempDir } from "../support/env";
import { EngineStack, filesContaining, whyEngineCannotRun } from "../support/engineStack";
import { missingSshHost, SshTestHost, startSshHost } from "../support/sshHost";
import { loadLoop, score } from "../support/scoring";

// mlflow.mode remote + deployMode remote end to end on the real engine against the SSH test host (a
// container with its own filesystem, process table and address): one host, one stack lifecycle.
// up provisions the host (profile default), starts MLflow there as a supervised service, registers the
// demo model from here and serves it there; the output's curl and python commands score it; a killed
// model server is healed by refresh + up; a registration bump serves a new version on the same URL;
// destroy leaves no process and no listener on the host and keeps MLflow's data. The SSH key is
// passphrase-protected and both come from secret config: neither is in the checkpoint files, the
// outputs, the engine logs, or any process environment or command line on the host.
// Then the same stack moves to deploy mode agent: the provisioning installs the MLOps agent on the host
// (the package copied over SSH, run as the service user under the host's supervisor, the token in a
// 0600 file), the model moves from its `mlflow models serve` process to the agent's front (a second up
// changes nothing), a registration bump switches versions under a constant load with zero failed
// requests, a kill -9 of the agent is repaired by its supervisor (same versions, the backend adopted),
// and destroy leaves no agent, model server or listener on the host, keeping MLflow's and the agent's
// data.
const run = promisify(execFile);
const skip = whyEngineCannotRun() ?? missingSshHost();
const describeRemote = skip ? describe.skip : describe;
const PASSPHRASE = "e2e-Ssh-Passphrase-7f3";
const TOKEN = "e2e-remote-agent-token-5d1e8b20c4";

/** GET of the agent's API with the token. */
async function agentGet(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    headers: { Authorization: `Bearer ${TOKEN}` },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

interface Entry {
  url: string;
  version: string;
  modelUri: string;
  curl: string;
  python: string;
}

describeRemote("a remote MLflow host over SSH on the real engine", () => {
  let host: SshTestHost;
  let engine: EngineStack;
  let encryptedKey: string;

  beforeAll(async () => {
    // MLflow, deploy mode remote's model server, the agent's API and its one front port.
    host = await startSshHost({ ports: 4 });
    // The deploy user's key, encrypted with a passphrase (what a careful user hands over).
    const dir = tempDir("remote-key");
    const file = path.join(dir, "id");
    fs.writeFileSync(file, host.sudoUser.privateKey, { mode: 0o600 });
    execFileSync("ssh-keygen", ["-q", "-p", "-P", "", "-N", PASSPHRASE, "-f", file]);
    encryptedKey = fs.readFileSync(file, "utf8");
    fs.rmSync(dir, { recursive: true, force: true });
    engine = await EngineStack.create({
      prefix: "remote",
      mlflow: {
        mode: "remote",
        deployMode: "remote",
        port: host.ports[0],
        startTimeoutSeconds: 240,
        remote: {
          host: host.address,
          port: host.sshPort,
          user: "deploy",
          hostKey: host.hostKey,
          publicHost: host.address,
          portRangeStart: host.ports[1],
          // The preflight is a @pulumi/command remote.Command, whose plugin cannot be installed here;
          // its recorded script runs over real SSH in test/replay/remotePreflight.test.ts.
          preflight: false,
        },
      },
      models: [{ name: "iris", source: demoModel(1.0), sampleInput: IRIS_ROW }],
    });
    await engine.stack.setConfig("model-serving:sshPrivateKey", {
      value: encryptedKey,
      secret: true,
    });
    await engine.stack.setConfig("model-serving:sshPassphrase", {
      value: PASSPHRASE,
      secret: true,
    });
  }, 300_000);

  afterAll(async () => {
    await engine?.cleanup();
    await host?.stop();
  }, 600_000);

  const entry = async (): Promise<Entry> =>
    ((await engine.stack.outputs()).endpoints.value as Record<string, Entry>).iris;
  const scoreWith = async (cmd: string) =>
    JSON.parse((await run("bash", ["-c", cmd], { timeout: 60_000 })).stdout);
  const pgidOf = () => engine.resource("ModelDeployment")!.outputs!.pgid as number;
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    const result = await fn();
    process.stderr.write(`remote stack: ${what} in ${Math.round((Date.now() - t) / 1000)} s\n`);
    return result;
  };
  // A line of the key's base64 body: distinctive, and in nothing else.
  const keyLine = () => encryptedKey.split("\n")[2];

  it(
    "provisions, serves there, heals, rolls a version, moves to the agent, goes down keeping the data, no secret leaks",
    async () => {
      // 1. up: provisioning, MLflow on the host, registration from here, the model server there.
      const up = await timed("first up (provision + MLflow + register + serve)", () =>
        engine.stack.up(engine.opts()),
      );
      expect(up.outputs.mlflowTrackingUri.value).toBe(`http://127.0.0.1:${host.ports[0]}`);
      const first = await entry();
      expect(first).toMatchObject({
        url: `http://127.0.0.1:${host.ports[1]}/invocations`,
        modelUri: "models:/iris/1",
        version: "1",
      });
      // The servers run on the test host, as the service user.
      const ps = await host.inspect("ps -eo user=,args=");
      expect(ps.stdout).toMatch(/^mlflow\s+.*mlflow server --host 0\.0\.0\.0/m);
      expect(ps.stdout).toMatch(/^mlflow\s+.*models serve -m models:\/iris\/1/m);

      // 2. the output's commands score it.
      expect(await scoreWith(first.curl)).toEqual({ predictions: [0] });
      expect(await scoreWith(first.python)).toEqual({ predictions: [0] });

      // 3. a second up changes nothing.
      const again = await timed("unchanged up", () => engine.stack.up(engine.opts()));
      expect(Object.keys(again.summary.resourceChanges ?? {})).toEqual(["same"]);

      // 4. the model server killed on the host: refresh drops it, up brings it back on the same URL.
      const pgid = pgidOf();
      await host.inspect(`kill -KILL -${pgid}`);
      await timed("refresh", () => engine.stack.refresh(engine.opts()));
      expect(engine.resource("ModelDeployment")).toBeUndefined();
      const healed = await timed("healing up", () => engine.stack.up(engine.opts()));
      expect(healed.summary.resourceChanges).toMatchObject({ create: 1 });
      expect(pgidOf()).not.toBe(pgid);
      expect(await postJson(first.url, IRIS_ROW)).toEqual({
        status: 200,
        body: { predictions: [0] },
      });

      // 5. a registration bump: version 2, served on the same URL.
      await engine.setModels([
        { name: "iris", source: demoModel(1.0), sampleInput: IRIS_ROW, registration: 2 },
      ]);
      await timed("new version up", () => engine.stack.up(engine.opts()));
      const second = await entry();
      expect(second).toMatchObject({ url: first.url, modelUri: "models:/iris/2", version: "2" });
      expect(await scoreWith(second.curl)).toEqual({ predictions: [0] });

      // 6. no secret in the checkpoint files (as on disk), the outputs, the engine logs, or any
      // environment or command line on the host.
      expect(engine.logs.join("\n")).toContain("Resources:");
      for (const secret of [PASSPHRASE, keyLine()]) {
        expect(filesContaining(engine.backend, secret)).toEqual([]);
        expect(JSON.stringify(await engine.stack.outputs()).includes(secret)).toBe(false);
        expect(engine.logs.join("\n").includes(secret)).toBe(false);
      }
      // Each needle as a pattern that does not match itself ([e]2e...): the inspecting shell's own
      // command line holds the patterns.
      const unmatched = (needle: string) => `[${needle[0]}]${needle.slice(1)}`;
      const onHost = await host.inspect(
        `cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -c -e '${unmatched(PASSPHRASE)}' -e '${unmatched(keyLine())}' || true`,
      );
      expect(onHost.stdout.trim()).toBe("0");
      // The resources that hold the connection keep it encrypted in the state.
      for (const type of ["HostProvisioning", "RemoteMlflowServer", "ModelDeployment"]) {
        const r = engine.resource(type)!;
        expect(JSON.stringify(r.outputs)).not.toContain("privateKey");
      }

      // 7. deploy mode agent on the same stack: the agent installed on the host, the model moved
      // from its `mlflow models serve` process to the agent's front.
      const [, modelPort, agentPort, frontPort] = host.ports;
      const apiUrl = `http://127.0.0.1:${agentPort}`;
      const mlflowConfig = {
        mode: "remote",
        port: host.ports[0],
        startTimeoutSeconds: 240,
        remote: {
          host: host.address,
          port: host.sshPort,
          user: "deploy",
          hostKey: host.hostKey,
          publicHost: host.address,
          portRangeStart: modelPort,
          preflight: false,
        },
      };
      await engine.setMlflow({
        ...mlflowConfig,
        deployMode: "agent",
        agent: {
          port: agentPort,
          frontPorts: { first: frontPort, last: frontPort },
          backendWorkers: 1,
          startTimeoutSeconds: 240,
        },
      });
      await engine.stack.setConfig("model-serving:agentToken", { value: TOKEN, secret: true });
      const moved = await timed("move to deploy mode agent (install the agent + serve)", () =>
        engine.stack.up(engine.opts()),
      );
      expect(moved.summary.resourceChanges).toMatchObject({ create: 3, delete: 1 });
      expect(engine.resource("ModelDeployment")).toBeUndefined();
      expect(engine.resource("RemoteAgent")!.outputs).toMatchObject({
        url: apiUrl,
        supervisor: "process",
      });
      const onAgent = await entry();
      expect(onAgent).toMatchObject({
        url: `http://127.0.0.1:${frontPort}/invocations`,
        modelUri: "models:/iris/2",
        version: "2",
      });
      expect(await scoreWith(onAgent.curl)).toEqual({ predictions: [0] });
      const hostPs = await host.inspect("ps -eo user=,args=");
      expect(hostPs.stdout).toMatch(/^mlflow\s+.*-m model_serving_agent --config/m);
      expect(hostPs.stdout).toMatch(/^mlflow\s+.*models serve --model-uri models:\/iris\/2 /m);
      // The old model server is gone with its port.
      expect((await host.inspect(`ss -Hltn 'sport = :${modelPort}'`)).stdout).toBe("");
      const installed = await host.inspect(
        "stat -c '%U %a' /opt/model-serving/agent-token; cat /opt/model-serving/agent.sha256; ls /opt/model-serving/agent/model_serving_agent | wc -l",
      );
      expect(installed.stdout.split("\n")[0]).toBe("mlflow 600");
      const again2 = await timed("unchanged up on the agent", () => engine.stack.up(engine.opts()));
      expect(Object.keys(again2.summary.resourceChanges ?? {})).toEqual(["same"]);

      // 8. a registration bump under a constant load: zero failed requests.
      await engine.setModels([
        { name: "iris", source: demoModel(1.0), sampleInput: IRIS_ROW, registration: 3 },
      ]);
      const load = loadLoop(onAgent.url, 4);
      await timed("bump on the agent under load", () => engine.stack.up(engine.opts()));
      await new Promise((r) => setTimeout(r, 1_000));
      const results = await load.stop();
      process.stderr.write(
        `remote stack: bump under load ${results.ok} ok, ${results.failed} failed (${results.statuses.join(",")}), ` +
          `served ${[...results.uris].join(" then ")}\n`,
      );
      expect(results.failed).toBe(0);
      expect(results.ok).toBeGreaterThan(20);
      expect([...results.uris].sort()).toEqual(["models:/iris/2", "models:/iris/3"]);
      const third = await entry();
      expect(third).toMatchObject({ url: onAgent.url, modelUri: "models:/iris/3", version: "3" });

      // 9. kill -9 the agent: its supervisor starts it again, which adopts the backend (same pid)
      // and serves the same version on the same URL; refresh keeps everything.
      const before = await agentGet(`${apiUrl}/models/iris`);
      const backendPid = (before.body.backend as { pid: number }).pid;
      const agentPid = (await host.inspect("cat /opt/model-serving/run/agent.pid")).stdout.trim();
      expect(agentPid).toMatch(/^\d+$/);
      const killedAt = Date.now();
      await host.inspect(`kill -KILL ${agentPid}`);
      let revived = "";
      for (;;) {
        revived = (await host.inspect("cat /opt/model-serving/run/agent.pid")).stdout.trim();
        const health = await fetch(`${apiUrl}/health`, { signal: AbortSignal.timeout(5_000) })
          .then(async (r) => ((await r.json()) as { status: string }).status)
          .catch(() => "");
        if (revived !== agentPid && health === "ok") {
          break;
        }
        expect(Date.now() - killedAt).toBeLessThan(120_000);
        await new Promise((r) => setTimeout(r, 500));
      }
      process.stderr.write(
        `remote stack: agent back by its supervisor in ${((Date.now() - killedAt) / 1000).toFixed(1)} s\n`,
      );
      expect(await score(onAgent.url)).toEqual({ status: 200, uri: "models:/iris/3" });
      const after = await agentGet(`${apiUrl}/models/iris`);
      expect(after.body).toMatchObject({ model_uri: "models:/iris/3", status: "serving" });
      expect((after.body.backend as { pid: number }).pid).toBe(backendPid);
      await timed("refresh after the kill", () => engine.stack.refresh(engine.opts()));
      expect(engine.resource("RemoteAgent")).toBeDefined();
      expect(engine.resource("AgentDeployment")).toBeDefined();

      // 10. the token is nowhere in plaintext: checkpoint files, outputs, engine logs, any environment
      // or command line on the host.
      expect(filesContaining(engine.backend, TOKEN)).toEqual([]);
      expect(JSON.stringify(await engine.stack.outputs()).includes(TOKEN)).toBe(false);
      expect(engine.logs.join("\n").includes(TOKEN)).toBe(false);
      const tokenOnHost = await host.inspect(
        `cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline /etc/systemd/system/*.service /opt/model-serving/*.sh /opt/model-serving/agent.json 2>/dev/null | tr '\\0' '\\n' | grep -c -e '${unmatched(TOKEN)}' -e '${unmatched(PASSPHRASE)}' || true`,
      );
      expect(tokenOnHost.stdout.trim()).toBe("0");
      expect(JSON.stringify(engine.resource("RemoteAgent")!.outputs)).not.toContain("privateKey");

      // 11. destroy: no agent, model server or MLflow process and no listener left on the host;
      // MLflow's data and the agent's data dir stay, its token goes.
      await timed("destroy", () => engine.stack.destroy(engine.opts()));
      const left = await host.inspect(
        "ps -eo user=,args= | grep -E '[m]odels serve|[m]lflow server|[m]lflow-supervise|[m]odel_serving_agent|[a]gent-supervise' || true",
      );
      expect(left.stdout).toBe("");
      for (const port of host.ports) {
        expect((await host.inspect(`ss -Hltn 'sport = :${port}'`)).stdout).toBe("");
      }
      // Nothing listens on the host at all but sshd (the agent's loopback backends included).
      const listeners = await host.inspect(`ss -Hltn | grep -v ':${host.sshPort} ' || true`);
      expect(listeners.stdout).toBe("");
      const data = await host.inspect(
        "test -s /var/lib/model-serving/mlflow/mlflow.db && test -s /var/lib/model-serving/mlflow/agent/state.json && test ! -e /opt/model-serving/agent-token && find /var/lib/model-serving/mlflow/artifacts -name MLmodel | wc -l",
      );
      expect(data.code).toBe(0);
      expect(Number(data.stdout.trim())).toBeGreaterThanOrEqual(3);
      expect(filesContaining(engine.backend, PASSPHRASE)).toEqual([]);
      expect(filesContaining(engine.backend, TOKEN)).toEqual([]);
    },
    30 * 60_000,
  );
});
