/* eslint-disable @typescript-eslint/no-explicit-any -- recorded inputs and Engine API payloads are untyped JSON */
/**
 * The StandaloneScorer's recorded Docker inputs, performed on a real Docker engine (scripts/dockerd.sh):
 * a real MLflow server registers the demo iris model, the real ModelExport core exports it into a build
 * context, the component is declared under mocks (its ModelExport answers with that real context), and
 * the recorded RemoteImage and Container inputs are replayed (test/replay/dockerReplay.ts). The container
 * is then scored with the endpoint's generated curl and python commands.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { promisify } from "util";
import * as pulumi from "@pulumi/pulumi";
import type { MlflowServerState } from "../../providers/mlflowServerCore";
import type { ModelExportOutputs } from "../../providers/modelExport";
import {
  demoModel,
  mlflowBin,
  mlflowMissingReason,
  skipReason,
  tempDir,
  tryReservePort,
} from "../support/env";
import { startTestServer, stopTestServer } from "../support/mlflowServer";
import { mockRecorder, value } from "../support/mockRecorder";
import { dockerCli, dockerEnv, dockerMissingReason, scorerBaseImage } from "./dockerEnv";
import { OTHER_MLFLOW_VERSION, otherMlflowModel } from "./otherMlflowModel";
import { registerAndExport as registerAndExportVersion } from "./registeredExport";
import {
  buildArgv,
  containerLogs,
  engine,
  inspectContainer,
  removeContainer,
  replayContainer,
  replayImage,
  waitHealthy,
} from "./dockerReplay";

jest.mock("../../providers/modelExport", () =>
  jest.requireActual("../support/dynamicStandIns").modelExportModule(),
);

const { record, settle, one } = mockRecorder();
/** The real build contexts, by registered model name: what the ModelExport stand-in answers with. */
const realExports: Record<string, ModelExportOutputs> = {};
pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const state: Record<string, any> = { ...args.inputs };
      if (args.type === "pulumi-nodejs:dynamic/modelserving:ModelExport") {
        const real = realExports[args.inputs.modelName];
        Object.assign(state, {
          contextDir: real.contextDir,
          contextHash: real.contextHash,
          modelUri: real.modelUri,
        });
      }
      if (args.type === "docker:index/remoteImage:RemoteImage") {
        state.imageId = `sha256:${"0".repeat(64)}`; // replaced by the real id below
      }
      return { id: `${args.name}-id`, state };
    },
    call: () => ({}),
  },
  "model-serving",
  "replay",
  false,
);

import { StandaloneScorer } from "../../components/standaloneScorer";
import { standaloneCsvCurlCommand, standaloneSnippets } from "../../components/snippets/standalone";

const sh = promisify(execFile);
const COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
const ROWS = [
  [5.1, 3.5, 1.4, 0.2],
  [6.0, 2.9, 4.5, 1.5],
  [6.7, 3.0, 5.2, 2.3],
];
const RECORDS = ROWS.map((r) => Object.fromEntries(COLUMNS.map((c, i) => [c, r[i]])));
const SAMPLE = { dataframe_split: { columns: COLUMNS, data: ROWS } };

const why = skipReason(mlflowMissingReason() ?? dockerMissingReason());
const describeReal = why ? describe.skip : describe;

/** A port from 13000-14999 (this suite's range), reserved like test/support's freePort, and bindable. */
async function replayPort(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = 13000 + Math.floor(Math.random() * 2000);
    if (tryReservePort(port) && (await bindable(port))) {
      return port;
    }
  }
  throw new Error("no free port in 13000-14999");
}
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen({ port, host: "127.0.0.1", exclusive: true }, () => s.close(() => resolve(true)));
  });
}

const docker = (args: string[]) =>
  sh(dockerCli(), args, { env: { ...process.env, ...dockerEnv() }, maxBuffer: 16 * 1024 * 1024 });
const bash = (command: string) => sh("bash", ["-c", command], { timeout: 90_000 });

describeReal("StandaloneScorer replayed on a real Docker engine", () => {
  let server: MlflowServerState | undefined;
  let tmp: string;
  let endpoint: { url: string; curl: string; python: string; modelUri: string };
  let image: any;
  let container: any;
  let imageId: string;
  const started: string[] = [];
  const images: string[] = [];
  const timings: Record<string, number> = {};

  /** Registers `source` as version 1 of `name` on the test server and exports it for real. */
  async function registerAndExport(name: string, source: string): Promise<void> {
    realExports[name] = await registerAndExportVersion(
      server!,
      name,
      source,
      path.join(tmp, "contexts"),
    );
  }

  beforeAll(async () => {
    tmp = tempDir("replay-docker");
    server = await startTestServer();
    await registerAndExport("iris", demoModel(1.0));

    const caBundle = process.env.SSL_CERT_FILE;
    const scorer = new StandaloneScorer("iris-replay", {
      modelName: "iris",
      modelVersion: "1",
      trackingUri: server.trackingUri,
      mlflowBin,
      sampleBody: SAMPLE,
      docker: {
        port: await replayPort(),
        containerName: `modelserving-replay-${process.pid}`,
        memoryMb: 1024,
        cpus: 1,
        baseImage: scorerBaseImage(),
        // This machine's package index is reached through a TLS-inspecting proxy.
        ...(caBundle ? { caBundleFile: caBundle, buildxBuilder: "default" } : {}),
        env: { MLFLOW_LOGGING_LEVEL: "INFO" },
      },
    });
    endpoint = (await value(scorer.endpoint)) as typeof endpoint;
    await settle();
    image = one("iris-replay", "docker:index/remoteImage:RemoteImage").inputs;
    container = one("iris-replay", "docker:index/container:Container").inputs;

    let t = Date.now();
    images.push(image.name);
    imageId = (await replayImage(image)).imageId;
    timings.buildSeconds = (Date.now() - t) / 1000;
    // The container runs the image by id, as the provider passes RemoteImage.imageId.
    t = Date.now();
    started.push(container.name);
    await replayContainer({ ...container, image: imageId });
    timings.healthySeconds = (Date.now() - t) / 1000;
    process.stderr.write(
      `replay: image built in ${timings.buildSeconds}s, container healthy in ${timings.healthySeconds}s\n`,
    );
  }, 25 * 60_000);

  afterAll(async () => {
    for (const name of started) {
      await removeContainer(name).catch(() => undefined);
    }
    for (const name of images) {
      await docker(["image", "rm", "-f", name]).catch(() => undefined);
    }
    await stopTestServer(server);
    if (tmp) {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);

  test("the container runs as recorded: port, restart policy, limits, env, non-root, healthy", async () => {
    const info = await inspectContainer(container.name);
    expect(info.Image).toBe(imageId);
    expect(info.HostConfig.PortBindings).toEqual({
      "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: String(container.ports[0].external) }],
    });
    expect(info.HostConfig.RestartPolicy.Name).toBe("unless-stopped");
    expect(info.HostConfig.Memory).toBe(1024 * 1024 * 1024);
    expect(info.HostConfig.NanoCpus).toBe(1e9);
    expect(info.Config.Env).toContain("MLFLOW_LOGGING_LEVEL=INFO");
    expect(info.Config.User).toBe("10001:10001");
    expect(info.Config.Healthcheck.Test).toEqual(["CMD", "python", "/opt/scorer/serve.py", "ping"]);
    expect(info.State.Health.Status).toBe("healthy");
    // Workers default to the CPUs the container may use: its 1-CPU quota, not the host's count.
    expect(await containerLogs(container.name)).toContain(
      "with 1 workers, keep-alive 300s, body limit 6291456 bytes, timeout 55s",
    );
  });

  test("the endpoint's own curl and python commands score it", async () => {
    expect(endpoint.url).toBe(`http://127.0.0.1:${container.ports[0].external}/invocations`);
    const expected = { predictions: [0, 1, 2] };
    expect(JSON.parse((await bash(endpoint.curl)).stdout)).toEqual(expected);
    expect(JSON.parse((await bash(endpoint.python)).stdout)).toEqual(expected);
  });

  test.each([
    ["dataframe_records", { dataframe_records: RECORDS }],
    ["instances", { instances: RECORDS }],
  ])("%s through the generated curl and python commands", async (_shape, body) => {
    const s = standaloneSnippets(endpoint.url, body);
    expect(JSON.parse((await bash(s.curl)).stdout)).toEqual({ predictions: [0, 1, 2] });
    expect(JSON.parse((await bash(s.python)).stdout)).toEqual({ predictions: [0, 1, 2] });
  });

  test("CSV through the generated curl command", async () => {
    const csv = [COLUMNS.join(","), ...ROWS.map((r) => r.join(","))].join("\n") + "\n";
    const { stdout } = await bash(standaloneCsvCurlCommand(endpoint.url, csv));
    expect(JSON.parse(stdout)).toEqual({ predictions: [0, 1, 2] });
  });

  test("malformed input gets 4xx, and the python command fails on it", async () => {
    const post = (body: string, type?: string) =>
      fetch(endpoint.url, {
        method: "POST",
        body,
        headers: type ? { "Content-Type": type } : {},
      }).then((r) => r.status);
    expect(await post('{"dataframe_split": ', "application/json")).toBe(400);
    expect(await post('{"rows": [[1, 2, 3, 4]]}', "application/json")).toBe(400);
    expect(await post("<rows/>", "application/xml")).toBe(415);
    expect(await post("5.1,3.5,1.4,0.2")).toBe(415);
    expect(await post("x".repeat(6 * 1024 * 1024 + 1), "application/json")).toBe(413);
    const bad = standaloneSnippets(endpoint.url, { rows: [[1, 2, 3, 4]] });
    const failed = await bash(bad.python).then(
      () => "",
      (e: { stderr: string }) => e.stderr,
    );
    expect(failed).toContain("HTTP Error 400");
  });

  test("the CA bundle the build trusted is not in the image", async () => {
    expect(image.build.secrets ?? []).toEqual(
      process.env.SSL_CERT_FILE ? [{ id: "ca-bundle", src: process.env.SSL_CERT_FILE }] : [],
    );
    const { stdout: env } = await docker([
      "image",
      "inspect",
      "-f",
      "{{json .Config.Env}}",
      imageId,
    ]);
    expect(env).not.toMatch(/PIP_CERT|SSL_CERT_FILE|REQUESTS_CA_BUNDLE/);
    const { stdout } = await docker([
      "run",
      "--rm",
      "--entrypoint",
      "python",
      imageId,
      "-c",
      "import os; print(os.path.exists('/run/secrets/ca-bundle'), os.environ.get('PIP_CERT'))",
    ]);
    expect(stdout.trim()).toBe("False None");
  }, 60_000);

  test("killing the container's process: the restart policy brings it back, and it scores", async () => {
    const before = await inspectContainer(container.name);
    process.kill(before.State.Pid, "SIGKILL");
    const deadline = Date.now() + 60_000;
    for (;;) {
      const now = await inspectContainer(container.name);
      if (now.RestartCount >= 1 && now.State.Running && now.State.Pid !== before.State.Pid) {
        break;
      }
      if (Date.now() > deadline) {
        throw new Error(`not restarted within 60s: ${JSON.stringify(now.State)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    // Health restarts from "starting" after a restart; wait for the check to pass again.
    await waitHealthy(container.name, 180);
    expect(JSON.parse((await bash(endpoint.curl)).stdout)).toEqual({ predictions: [0, 1, 2] });
  }, 240_000);

  test("the same image's sagemaker target: `serve` as root on 8080, /ping and /invocations", async () => {
    const sagemaker = { ...image, name: `${image.name}-sagemaker`, build: { ...image.build } };
    sagemaker.build.target = "sagemaker";
    expect(buildArgv(sagemaker)).toContain("sagemaker");
    images.push(sagemaker.name);
    const t = Date.now();
    const built = await replayImage(sagemaker);
    process.stderr.write(
      `replay: sagemaker target built in ${(Date.now() - t) / 1000}s (cached layers)\n`,
    );
    const name = `modelserving-replay-sm-${process.pid}`;
    const port = await replayPort();
    started.push(name);
    // SageMaker runs `docker run <image> serve` and talks to port 8080.
    const created = await engine("POST", `/containers/create?name=${name}`, {
      Image: built.imageId,
      Cmd: ["serve"],
      ExposedPorts: { "8080/tcp": {} },
      HostConfig: {
        PortBindings: { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: String(port) }] },
      },
    });
    expect(created.status).toBe(201);
    expect((await engine("POST", `/containers/${created.body.Id}/start`)).status).toBe(204);
    const info = await inspectContainer(name);
    expect(info.Config.User).toBe("0");
    const deadline = Date.now() + 120_000;
    while (
      (await fetch(`http://127.0.0.1:${port}/ping`).then(
        (r) => r.status,
        () => 0,
      )) !== 200
    ) {
      if (Date.now() > deadline) {
        throw new Error(`sagemaker target: no /ping within 120s:\n${await containerLogs(name)}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const res = await fetch(`http://127.0.0.1:${port}/invocations`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(SAMPLE),
    });
    expect(await res.json()).toEqual({ predictions: [0, 1, 2] });
  }, 600_000);

  test(
    `a model logged with MLflow ${OTHER_MLFLOW_VERSION} builds and serves (its mlflow pin dropped)`,
    async () => {
      const source = otherMlflowModel();
      expect(fs.readFileSync(path.join(source, "requirements.txt"), "utf8")).toMatch(
        new RegExp(`^mlflow==${OTHER_MLFLOW_VERSION.replace(/\./g, "\\.")}$`, "m"),
      );
      await registerAndExport("iris-old-mlflow", source);
      const old = new StandaloneScorer("iris-old", {
        modelName: "iris-old-mlflow",
        modelVersion: "1",
        trackingUri: server!.trackingUri,
        mlflowBin,
        sampleBody: SAMPLE,
        docker: {
          port: await replayPort(),
          containerName: `modelserving-replay-old-${process.pid}`,
          baseImage: scorerBaseImage(),
          ...(process.env.SSL_CERT_FILE
            ? { caBundleFile: process.env.SSL_CERT_FILE, buildxBuilder: "default" }
            : {}),
        },
      });
      const oldEndpoint = (await value(old.endpoint)) as typeof endpoint;
      await settle();
      const oldImage = one("iris-old", "docker:index/remoteImage:RemoteImage").inputs;
      const oldContainer = one("iris-old", "docker:index/container:Container").inputs;
      images.push(oldImage.name);
      const t = Date.now();
      const built = await replayImage(oldImage);
      process.stderr.write(
        `replay: MLflow ${OTHER_MLFLOW_VERSION} model image built in ${(Date.now() - t) / 1000}s\n`,
      );
      // The model's own pins are installed; the MLflow that serves it is the image's.
      const { stdout: versions } = await docker([
        "run",
        "--rm",
        "--entrypoint",
        "python",
        built.imageId,
        "-c",
        "import sklearn, pandas, mlflow; print(sklearn.__version__, pandas.__version__, mlflow.__version__)",
      ]);
      expect(versions.trim()).toBe("1.5.2 2.2.3 3.17.2");
      started.push(oldContainer.name);
      await replayContainer({ ...oldContainer, image: built.imageId });
      expect(JSON.parse((await bash(oldEndpoint.curl)).stdout)).toEqual({ predictions: [0, 1, 2] });
    },
    15 * 60_000,
  );
});
