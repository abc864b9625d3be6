import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { isPortFree } from "../../providers/process";
import { filesContaining, processGroupAlive, whyEngineCannotRun } from "../support/engineStack";
import {
  demoModel,
  freePort,
  postJson,
  IRIS_ROW,
  repoRoot,
  tempDir,
  venvPython,
} from "../support/env";

// The real thing: the project's Pulumi program run by the real Pulumi CLI (Automation API, file
// backend in a temp dir) against a real local MLflow server and real model servers.
const run = promisify(execFile);
const PASSWORD = "e2e-Secret-Pa55word";

// Skips (printing why) when the venv or CLI is missing; under CI=true that fails instead.
const skip = whyEngineCannotRun();
const describeEngine = skip ? describe.skip : describe;

interface StateResource {
  type: string;
  outputs?: Record<string, unknown>;
}

async function resourcesOf(stack: Stack): Promise<StateResource[]> {
  const state = await stack.exportStack();
  return (state.deployment as { resources: StateResource[] }).resources;
}

async function deploymentPid(stack: Stack): Promise<number> {
  const deployment = (await resourcesOf(stack)).find((r) => r.type.endsWith(":ModelDeployment"));
  return deployment!.outputs!.pgid as number;
}

describeEngine("the dev program on the real Pulumi engine", () => {
  const stackName = `e2e${Date.now()}`;
  const logs: string[] = [];
  const onOutput = (line: string) => logs.push(line);
  let stack: Stack;
  let mlflowPort: number;
  let modelPort: number;

  let backend: string;
  let cache: string;

  beforeAll(async () => {
    backend = tempDir("e2e-backend");
    cache = tempDir("e2e-cache");
    delete process.env.PULUMI_CONFIG_PASSPHRASE_FILE;
    stack = await LocalWorkspace.createOrSelectStack(
      { stackName, workDir: repoRoot },
      {
        envVars: {
          PULUMI_BACKEND_URL: `file://${backend}`,
          PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase",
          MODEL_SERVING_CACHE: cache,
        },
      },
    );
    mlflowPort = await freePort();
    modelPort = await freePort();
    await stack.setAllConfig({
      "model-serving:mlflow": {
        value: JSON.stringify({
          mode: "local",
          port: mlflowPort,
          dataDir: path.join(cache, "mlflow"),
        }),
      },
      "model-serving:mlflowPassword": { value: PASSWORD, secret: true },
    });
    await setModelSource(demoModel(1.0));
  }, 180_000);

  async function setModelSource(source: string) {
    await stack.setConfig("model-serving:models", {
      value: JSON.stringify([
        {
          name: "iris",
          source,
          aliases: ["champion"],
          tags: { owner: "e2e" },
          serve: { port: modelPort },
        },
      ]),
    });
  }

  afterAll(async () => {
    try {
      await stack?.destroy({ onOutput });
      await stack?.workspace.removeStack(stackName);
    } finally {
      fs.rmSync(path.join(repoRoot, `Pulumi.${stackName}.yaml`), { force: true });
      for (const dir of [backend, cache]) {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }, 300_000);

  it("goes up, scores, converges, heals, rolls a new version and goes down", async () => {
    // 1. up: MLflow server, registration, model server.
    const up = await stack.up({ onOutput });
    const endpoints = up.outputs.endpoints.value;
    expect(up.outputs.mlflowTrackingUri.value).toBe(`http://127.0.0.1:${mlflowPort}`);
    expect(endpoints.iris).toMatchObject({
      target: "mlflow",
      url: `http://127.0.0.1:${modelPort}/invocations`,
      modelUri: "models:/iris/1",
      version: "1",
    });

    // 2. the generated commands work when pasted.
    for (const cmd of [endpoints.iris.curl, endpoints.iris.python]) {
      const { stdout } = await run("bash", ["-c", cmd]);
      expect(JSON.parse(stdout)).toEqual({ predictions: [0] });
    }

    // 3. MLflow's own Python client sees the model with its alias.
    const { stdout: aliased } = await run(
      venvPython,
      [
        "-c",
        "from mlflow import MlflowClient; " +
          `print(MlflowClient("http://127.0.0.1:${mlflowPort}").get_model_version_by_alias("iris", "champion").version)`,
      ],
      {
        env: {
          ...process.env,
          MLFLOW_TRACKING_USERNAME: "admin",
          MLFLOW_TRACKING_PASSWORD: PASSWORD,
        },
      },
    );
    expect(aliased.trim()).toBe("1");

    // 4. a second up changes nothing.
    const again = await stack.up({ onOutput });
    expect(Object.keys(again.summary.resourceChanges ?? {})).toEqual(["same"]);

    // 5. the password is nowhere in the state files, outputs or engine logs. (The Automation API's
    // exportStack decrypts secrets, so read the backend's files as they are on disk.)
    expect(filesContaining(backend, PASSWORD)).toEqual([]);
    expect(filesContaining(backend, "e2e-Secret")).toEqual([]);
    expect(JSON.stringify(await stack.outputs()).includes(PASSWORD)).toBe(false);
    expect(logs.join("\n")).toContain("Resources:"); // the engine output really was captured
    expect(logs.join("\n").includes(PASSWORD)).toBe(false);

    // 6. kill the model server: refresh notices, up brings it back on the same URL.
    const pgid = await deploymentPid(stack);
    process.kill(-pgid, "SIGKILL");
    await stack.refresh({ onOutput });
    const healed = await stack.up({ onOutput });
    expect(healed.summary.resourceChanges).toMatchObject({ create: 1 });
    expect(await deploymentPid(stack)).not.toBe(pgid);
    expect(await postJson(endpoints.iris.url, IRIS_ROW)).toEqual({
      status: 200,
      body: { predictions: [0] },
    });

    // 7. a new model source registers version 2, served on the same URL.
    await setModelSource(demoModel(0.01));
    const rolled = await stack.up({ onOutput });
    expect(rolled.outputs.endpoints.value.iris).toMatchObject({
      url: endpoints.iris.url,
      modelUri: "models:/iris/2",
      version: "2",
    });
    expect((await postJson(endpoints.iris.url, IRIS_ROW)).status).toBe(200);

    // 8. destroy: no server process left, both ports free.
    const lastPgid = await deploymentPid(stack);
    const mlflowPgid = (await resourcesOf(stack)).find((r) =>
      r.type.endsWith(":LocalMlflowServer"),
    )!.outputs!.pgid as number;
    // processGroupAlive(undefined) is false too: make sure both groups were really recorded.
    expect([lastPgid, mlflowPgid].every((g) => Number.isInteger(g) && g > 1)).toBe(true);
    expect([processGroupAlive(lastPgid), processGroupAlive(mlflowPgid)]).toEqual([true, true]);
    await stack.destroy({ onOutput });
    expect(processGroupAlive(lastPgid)).toBe(false);
    expect(processGroupAlive(mlflowPgid)).toBe(false);
    expect(await isPortFree("127.0.0.1", modelPort)).toBe(true);
    expect(await isPortFree("127.0.0.1", mlflowPort)).toBe(true);
    expect(logs.join("\n").includes(PASSWORD)).toBe(false);
    expect(filesContaining(backend, PASSWORD)).toEqual([]);
  }, 900_000);
});
