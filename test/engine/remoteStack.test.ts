import { execFile, execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { demoModel, IRIS_ROW, postJson, tempDir } from "../support/env";
import { EngineStack, filesContaining, whyEngineCannotRun } from "../support/engineStack";
import { missingSshHost, SshTestHost, startSshHost } from "../support/sshHost";

// mlflow.mode remote + deployMode remote end to end on the real engine against the SSH test host (a
// container with its own filesystem, process table and address): one host, one stack lifecycle.
// up provisions the host (profile default), starts MLflow there as a supervised service, registers the
// demo model from here and serves it there; the output's curl and python commands score it; a killed
// model server is healed by refresh + up; a registration bump serves a new version on the same URL;
// destroy leaves no process and no listener on the host and keeps MLflow's data. The SSH key is
// passphrase-protected and both come from secret config: neither is in the checkpoint files, the
// outputs, the engine logs, or any process environment or command line on the host.
const run = promisify(execFile);
const skip = whyEngineCannotRun() ?? missingSshHost();
const describeRemote = skip ? describe.skip : describe;
const PASSPHRASE = "e2e-Ssh-Passphrase-7f3";

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
    host = await startSshHost({ ports: 2 });
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
    "provisions, serves there, heals, rolls a version, goes down keeping the data, no secret leaks",
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

      // 7. destroy: no process and no listener left on the host; MLflow's data stays.
      await timed("destroy", () => engine.stack.destroy(engine.opts()));
      const left = await host.inspect(
        "ps -eo user=,args= | grep -E '[m]odels serve|[m]lflow server|[m]lflow-supervise' || true",
      );
      expect(left.stdout).toBe("");
      for (const port of host.ports) {
        expect((await host.inspect(`ss -Hltn 'sport = :${port}'`)).stdout).toBe("");
      }
      const data = await host.inspect(
        "test -s /var/lib/model-serving/mlflow/mlflow.db && find /var/lib/model-serving/mlflow/artifacts -name MLmodel | wc -l",
      );
      expect(data.code).toBe(0);
      expect(Number(data.stdout.trim())).toBeGreaterThanOrEqual(2);
      expect(filesContaining(engine.backend, PASSPHRASE)).toEqual([]);
    },
    30 * 60_000,
  );
});
