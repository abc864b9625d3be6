import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { createMlflowClient } from "../../providers/mlflow/client";
import { searchModelVersions } from "../../providers/mlflow/registry";
import { TAG_SOURCE_HASH } from "../../providers/modelVersionCore";
import { hashSource } from "../../providers/modelSource";
import { isPortFree } from "../../providers/process";
import {
  EngineStack,
  groupsUsing,
  ModelEntry,
  processGroupAlive,
  whyEngineCannotRun,
} from "../support/engineStack";
import { demoModel, freePort, IRIS_ROW, postJson } from "../support/env";

// Faults on the real engine (Pulumi CLI, file backend in a temp dir, real MLflow and model servers on
// loopback): dead servers, interrupted and concurrent updates, a foreign process on our port.
const skip = whyEngineCannotRun();
if (skip) {
  console.warn(`skipping the fault suite: ${skip}`);
}
const describeEngine = skip ? describe.skip : describe;

/** Every descendant of `root` (language host, program, provider plugins: Pulumi starts each plugin in a
 * process group of its own) except the processes of the groups in `keep` (the servers). */
function descendantsExcept(root: number, keep: number[]): number[] {
  const stat = (pid: string) => {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { pid: Number(pid), ppid: Number(f[1]), pgid: Number(f[2]) };
  };
  const all = fs
    .readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        return [stat(p)];
      } catch {
        return [];
      }
    });
  const found = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (found.has(p.ppid) && !found.has(p.pid)) {
        found.add(p.pid);
        grew = true;
      }
    }
  }
  return all
    .filter((p) => p.pid !== root && found.has(p.pid) && !keep.includes(p.pgid))
    .map((p) => p.pid);
}

describeEngine("faults on the real engine", () => {
  let engine: EngineStack;
  let mlflowPort: number;
  let modelPort: number;
  let url: string;
  const modelC1 = () => demoModel(1.0);
  const modelC2 = () => demoModel(0.01);

  const model = (source: string, extra: Partial<ModelEntry> = {}): ModelEntry => ({
    name: "iris",
    source,
    aliases: ["champion"],
    serve: { port: modelPort },
    ...extra,
  });
  const modelServers = () => groupsUsing(engine.cache, "models serve");
  const mlflowServers = () => groupsUsing(engine.cache, " server --host");
  const out = (r: { stdout: string; stderr: string }) => `${r.stdout}\n${r.stderr}`;

  async function expectServing(): Promise<void> {
    expect(await postJson(url, IRIS_ROW)).toEqual({ status: 200, body: { predictions: [0] } });
  }

  /** `up` again changes nothing: the stack converged. */
  async function expectConverged(): Promise<void> {
    const again = await engine.cli(["up", "--yes", "--skip-preview"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/\b\d+ unchanged\b/);
    expect(again.stdout).not.toMatch(/\b\d+ (created|updated|deleted|replaced)\b/);
  }

  /**
   * Set as the last statement of a test that ended with expectConverged on the config it leaves (so
   * the test passed, and its last `up` changed nothing); beforeEach hands it to the next test only.
   */
  let endedConverged = false;
  let startedConverged = false;
  beforeEach(() => {
    startedConverged = endedConverged;
    endedConverged = false;
  });

  /** Precondition of a test that must not inherit an earlier test's failure: `up --refresh`, unless
   * the test before passed and its last `up` (on this config) already changed nothing. */
  async function converge(): Promise<void> {
    if (startedConverged) {
      return;
    }
    const r = await engine.cli(["up", "--yes", "--skip-preview", "--refresh"]);
    expect({ code: r.code, tail: out(r).slice(-2000) }).toMatchObject({ code: 0 });
  }

  async function versionsInMlflow() {
    const client = createMlflowClient({ trackingUri: `http://127.0.0.1:${mlflowPort}` });
    return searchModelVersions(client, "iris");
  }

  beforeAll(async () => {
    modelC1();
    modelC2();
    mlflowPort = await freePort();
    modelPort = await freePort();
    url = `http://127.0.0.1:${modelPort}/invocations`;
    engine = await EngineStack.create({
      prefix: "fault",
      mlflow: { mode: "local", port: mlflowPort },
      models: [model(modelC1())],
    });
    const up = await engine.stack.up(engine.opts());
    expect(up.outputs.endpoints.value.iris.url).toBe(url);
  }, 300_000);

  afterAll(async () => {
    await engine?.cleanup();
    // Nothing this suite started may outlive it.
    expect(engine ? groupsUsing(engine.cache) : []).toEqual([]);
  }, 300_000);

  it("a killed model server: refresh reports it gone, up starts it again on the same URL", async () => {
    const [pgid] = modelServers();
    process.kill(-pgid, "SIGKILL");
    const refresh = await engine.cli(["refresh", "--yes", "--skip-preview"]);
    expect(refresh.code).toBe(0);
    expect(engine.resource("ModelDeployment")).toBeUndefined();
    const up = await engine.cli(["up", "--yes", "--skip-preview"]);
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/\b1 created\b/);
    expect(modelServers()).toHaveLength(1);
    expect(modelServers()).not.toContain(pgid);
    await expectServing();
  }, 300_000);

  it("two ups at once on the file backend: the second is refused by the stack lock", async () => {
    await engine.setModels([model(modelC1(), { tags: { round: "concurrent" } })]);
    const [a, b] = await Promise.all([
      engine.cli(["up", "--yes", "--skip-preview"]),
      new Promise((r) => setTimeout(r, 300)).then(() =>
        engine.cli(["up", "--yes", "--skip-preview"]),
      ),
    ]);
    // Exactly one wins; the other fails fast, naming the lock (the DIY backend locks stacks under
    // .pulumi/locks) instead of racing on the state.
    expect([a.code === 0, b.code === 0].sort()).toEqual([false, true]);
    const loser = a.code === 0 ? b : a;
    expect(out(loser)).toMatch(/the stack is currently locked by 1 lock\(s\)/);
    expect(engine.resource("ModelVersion")!.outputs!.tags).toEqual({ round: "concurrent" });
    expect(modelServers()).toHaveLength(1);
    await expectConverged();
    endedConverged = true;
  }, 300_000);

  it("SIGINT during a deploy: the CLI cancels, releases the lock, orphans nothing; a rerun converges", async () => {
    await converge();
    const [oldPgid] = modelServers();
    process.kill(-oldPgid, "SIGKILL");
    expect((await engine.cli(["refresh", "--yes", "--skip-preview"])).code).toBe(0);
    let signalled = false;
    const up = await engine.cli(["up", "--yes", "--skip-preview"], {
      onStdout: (text, pid) => {
        if (!signalled && /ModelDeployment iris-server creating/.test(text)) {
          signalled = true;
          process.kill(pid, "SIGINT");
        }
      },
    });
    expect(signalled).toBe(true);
    // Pulumi's first ^C cancels gracefully: no new steps, the one in flight runs to its end.
    expect(out(up)).toMatch(/cancel/i);
    expect(up.code).not.toBe(0);
    // No lock is left behind, no server is orphaned: at most the one the step finished starting.
    expect(engine.locks()).toEqual([]);
    expect(modelServers().length).toBeLessThanOrEqual(1);
    const rerun = await engine.cli(["up", "--yes", "--skip-preview"]);
    expect(rerun.code).toBe(0);
    expect(modelServers()).toHaveLength(1);
    expect(engine.resources().filter((r) => r.type.endsWith(":ModelDeployment"))).toHaveLength(1);
    await expectServing();
    await expectConverged();
    endedConverged = true;
  }, 300_000);

  it("MLflow killed while up registers a new version: clear error, refresh + up converge, no duplicate", async () => {
    await converge();
    await engine.setModels([model(modelC2())]);
    let killed = false;
    const up = await engine.cli(["up", "--yes", "--skip-preview"], {
      onStdout: (text) => {
        if (!killed && /ModelVersion iris-version creating/.test(text)) {
          killed = true;
          for (const g of mlflowServers()) {
            process.kill(-g, "SIGSTOP");
            process.kill(-g, "SIGKILL");
          }
        }
      },
    });
    expect(killed).toBe(true);
    expect(up.code).not.toBe(0);
    expect(out(up)).toMatch(
      new RegExp(`MLflow at http://127\\.0\\.0\\.1:${mlflowPort} is unreachable \\(ECONN\\w+\\)`),
    );
    // The old version keeps serving meanwhile.
    await expectServing();

    const rerun = await engine.cli(["up", "--yes", "--skip-preview", "--refresh"]);
    expect({ code: rerun.code, tail: out(rerun).slice(-2000) }).toMatchObject({ code: 0 });
    const versions = await versionsInMlflow();
    const newHash = hashSource(modelC2());
    const withNewSource = versions.filter((v) =>
      v.tags?.some((t) => t.key === TAG_SOURCE_HASH && t.value === newHash),
    );
    expect(withNewSource).toHaveLength(1);
    expect(versions).toHaveLength(1);
    expect(engine.resource("ModelVersion")!.outputs!.version).toBe(withNewSource[0].version);
    await expectServing();
    await expectConverged();
    endedConverged = true;
  }, 300_000);

  it("a foreign process on the model port: up fails naming the port, the endpoint stays up", async () => {
    await converge();
    const foreignPort = await freePort();
    const foreign = net.createServer().listen(foreignPort, "127.0.0.1");
    try {
      await new Promise((r) => foreign.once("listening", r));
      await engine.setModels([model(modelC2(), { serve: { port: foreignPort } })]);
      const up = await engine.cli(["up", "--yes", "--skip-preview"]);
      expect(up.code).not.toBe(0);
      expect(out(up)).toContain(
        `port: ${foreignPort} on 127.0.0.1 is already in use by a process this stack does not own`,
      );
      expect(engine.resource("ModelDeployment")!.outputs!.servedPort).toBe(modelPort);
      await expectServing();
    } finally {
      foreign.close();
      await engine.setModels([model(modelC2())]);
    }
    await expectConverged();
    endedConverged = true;
  }, 300_000);

  it("a model server too slow to answer /ping (SIGSTOP): refresh keeps it with a warning, no second server", async () => {
    await converge();
    const [pgid] = modelServers();
    const before = engine.resource("ModelDeployment")!.outputs!;
    process.kill(-pgid, "SIGSTOP");
    try {
      const refresh = await engine.cli(["refresh", "--yes", "--skip-preview"]);
      expect({ code: refresh.code, tail: out(refresh).slice(-2000) }).toMatchObject({ code: 0 });
      expect(out(refresh)).toContain(
        `warning: the server of ${before.modelUri} (pid ${before.pid}) runs but ` +
          `http://127.0.0.1:${modelPort}/ping did not answer; keeping it`,
      );
      expect(engine.resource("ModelDeployment")?.outputs?.pid).toBe(before.pid);
    } finally {
      process.kill(-pgid, "SIGCONT");
    }
    await expectServing();
    await expectConverged();
    expect(modelServers()).toEqual([pgid]);
    endedConverged = true;
  }, 300_000);

  it("pulumi SIGKILLed while the model server starts: cancel + up adopt it on the same port", async () => {
    await converge();
    // An automatic port, so a second server would show as another URL (the first free port from 5001).
    await engine.setModels([model(modelC2(), { serve: {} })]);
    const lockDir = path.join(engine.cache, "locks", "ports");
    const starting = () =>
      (fs.existsSync(lockDir) ? fs.readdirSync(lockDir) : [])
        .filter((f) => f.endsWith(".json"))
        .map((f) => JSON.parse(fs.readFileSync(path.join(lockDir, f), "utf8")))
        .find(
          (r) => r.kind === "model-server" && r.server && !r.command.includes(String(modelPort)),
        );
    let cliPid = 0;
    let orphan: { port: number; server: { pgid: number } } | undefined;
    const upRun = engine.cli(["up", "--yes", "--skip-preview"], {
      onStdout: (text, pid) => (cliPid = pid),
    });
    for (let i = 0; i < 1200 && !orphan; i++) {
      await new Promise((r) => setTimeout(r, 100));
      orphan = starting();
    }
    expect(orphan).toBeDefined();
    // The deploying side dies at once (a crash, a reboot of the deploying machine): the CLI (engine), the
    // language host and program, the provider plugins. The model server, in its own process group,
    // survives, unrecorded in the stack's state.
    const tree = descendantsExcept(cliPid, [orphan!.server.pgid]);
    expect(tree.length).toBeGreaterThanOrEqual(2);
    process.kill(cliPid, "SIGKILL");
    for (const pid of tree) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    const killed = await upRun;
    expect(killed.signal).toBe("SIGKILL");
    expect(processGroupAlive(orphan!.server.pgid)).toBe(true);
    // The state does not know the new server (the old deployment may stay as pendingReplacement).
    expect(engine.resource("ModelDeployment")?.outputs?.pid).not.toBe(orphan!.server.pgid);

    const cancel = await engine.cli(["cancel", "--yes"]);
    expect({ code: cancel.code, tail: out(cancel).slice(-2000) }).toMatchObject({ code: 0 });
    const up = await engine.cli(["up", "--yes", "--skip-preview"]);
    expect({ code: up.code, tail: out(up).slice(-3000) }).toMatchObject({ code: 0 });
    expect(out(up)).toContain("found this deployment's server from an interrupted create");
    const deployment = engine.resource("ModelDeployment")!.outputs!;
    expect(deployment.servedPort).toBe(orphan!.port);
    expect(modelServers()).toEqual([orphan!.server.pgid]);
    expect(await postJson(deployment.url as string, IRIS_ROW)).toMatchObject({ status: 200 });
    await expectConverged();
    await engine.setModels([model(modelC2())]);
  }, 600_000);

  it("destroy after the MLflow server was stopped by hand: clear error, then up --refresh + destroy", async () => {
    await converge();
    const mlflowPgids = mlflowServers();
    const modelPgids = modelServers();
    expect(mlflowPgids).toHaveLength(1);
    process.kill(-mlflowPgids[0], "SIGTERM");
    for (let i = 0; i < 100 && processGroupAlive(mlflowPgids[0]); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // The model server goes; the model version cannot be deleted while its registry is down, and the
    // error says so instead of forgetting the version (the data dir still holds it).
    const destroy = await engine.cli(["destroy", "--yes", "--skip-preview"]);
    expect(destroy.code).not.toBe(0);
    expect(out(destroy)).toMatch(
      new RegExp(
        `MLflow at http://127\\.0\\.0\\.1:${mlflowPort} is unreachable \\(ECONNREFUSED\\)`,
      ),
    );
    expect(modelPgids.some(processGroupAlive)).toBe(false);
    expect(engine.resource("ModelDeployment")).toBeUndefined();
    expect(engine.resource("ModelVersion")).toBeDefined();
    expect(engine.locks()).toEqual([]);

    // Recovery: refresh sees the server gone, up starts it on the same data, destroy then completes.
    const upAgain = await engine.cli(["up", "--yes", "--skip-preview", "--refresh"]);
    expect({ code: upAgain.code, tail: out(upAgain).slice(-2000) }).toMatchObject({ code: 0 });
    const destroyAgain = await engine.cli(["destroy", "--yes", "--skip-preview"]);
    expect({ code: destroyAgain.code, tail: out(destroyAgain).slice(-2000) }).toMatchObject({
      code: 0,
    });
    expect(engine.resources()).toEqual([]);
    expect(groupsUsing(engine.cache)).toEqual([]);
    expect(await isPortFree("127.0.0.1", modelPort)).toBe(true);
    expect(await isPortFree("127.0.0.1", mlflowPort)).toBe(true);
  }, 300_000);
});
