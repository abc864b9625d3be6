/* eslint-disable @typescript-eslint/no-explicit-any -- recorded inputs and API payloads are untyped JSON */
/**
 * `targets.kubernetes` end to end on real engines: the PushedScorerImage + StandaloneScorerKubernetes
 * pair that index.ts declares (test/unit/programKubernetes.test.ts) is declared under mocks with a real
 * build context (a real MLflow server, the real ModelExport core); the recorded RemoteImage is built on
 * the private Docker engine, the recorded RegistryImage pushed to a real registry on loopback (Debian's
 * docker-registry), and the recorded Deployment, with the digest the registry returned, applied to a
 * real kube-apiserver. Then what a kubelet would do: the local tag is removed, the image pulled by that
 * digest from the registry (the engine may still hold the layer blobs, so the pull checks the manifest
 * by digest rather than moving every byte again) and run with the Deployment's container env, scored.
 */
import { execFile } from "child_process";
import * as fs from "fs";
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
import { replayImage, replayRegistryImage } from "./dockerReplay";
import { kubeMissingReason, startKubeApi, type KubeApi } from "./kubeEnv";
import { createObject, manifest, readObject } from "./kubeReplay";
import { registerAndExport } from "./registeredExport";
import {
  registryManifest,
  registryMissingReason,
  startRegistry,
  type TestRegistry,
} from "./registryEnv";

jest.mock("../../providers/modelExport", () =>
  jest.requireActual("../support/dynamicStandIns").modelExportModule(),
);

const MOCK_DIGEST = `sha256:${"0".repeat(64)}`;
const { registrations, record, settle, one } = mockRecorder();
let realExport: ModelExportOutputs;
pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const state: Record<string, any> = { ...args.inputs };
      if (args.type === "pulumi-nodejs:dynamic/modelserving:ModelExport") {
        Object.assign(state, {
          contextDir: realExport.contextDir,
          contextHash: realExport.contextHash,
          modelUri: realExport.modelUri,
        });
      }
      if (args.type === "docker:index/registryImage:RegistryImage") {
        state.sha256Digest = MOCK_DIGEST; // the replay answers with the registry's real digest
      }
      return { id: `${args.name}-id`, state };
    },
    call: () => ({}),
  },
  "model-serving",
  "replay-push",
  false,
);

import { PushedScorerImage } from "../../components/pushedScorerImage";
import { StandaloneScorerKubernetes } from "../../components/standaloneScorerKubernetes";

const sh = promisify(execFile);
const SAMPLE = {
  dataframe_split: {
    columns: ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    data: [
      [5.1, 3.5, 1.4, 0.2],
      [6.7, 3.0, 5.2, 2.3],
    ],
  },
};

const why = skipReason(
  mlflowMissingReason() ?? dockerMissingReason() ?? registryMissingReason() ?? kubeMissingReason(),
);
const describeReal = why ? describe.skip : describe;

function reservedPort(from: number): number {
  for (let port = from; port < from + 200; port++) {
    if (tryReservePort(port)) {
      return port;
    }
  }
  throw new Error(`no free port in ${from}-${from + 199}`);
}
const docker = (args: string[]) =>
  sh(dockerCli(), args, {
    env: { ...process.env, ...dockerEnv() },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 10 * 60_000,
  });

describeReal("targets.kubernetes: build, push to a real registry, deploy by digest", () => {
  let tmp: string;
  let server: MlflowServerState | undefined;
  let registry: TestRegistry | undefined;
  let api: KubeApi | undefined;
  let built: any;
  let pushed: any;
  let digest: string;
  let deployment: any;
  const containers: string[] = [];
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    tmp = tempDir("replay-push");
    server = await startTestServer();
    realExport = await registerAndExport(
      server,
      "iris",
      demoModel(1.0),
      path.join(tmp, "contexts"),
    );
    registry = await startRegistry(reservedPort(19600), path.join(tmp, "registry"));
    api = await startKubeApi();

    // As index.ts declares a model's `targets.kubernetes` (image pushed, Deployment by digest).
    const caBundle = process.env.SSL_CERT_FILE;
    const image = new PushedScorerImage("iris-kubernetes-image", {
      modelName: "iris",
      modelVersion: "1",
      trackingUri: server.trackingUri,
      mlflowBin,
      image: {
        repository: `${registry.address}/ml/iris-scorer`,
        baseImage: scorerBaseImage(),
        // This machine's package index is reached through a TLS-inspecting proxy.
        ...(caBundle ? { caBundleFile: caBundle, buildxBuilder: "default" } : {}),
      },
    });
    new StandaloneScorerKubernetes("iris-kubernetes", {
      image: image.imageUri,
      modelUri: "models:/iris/1",
      modelVersion: "1",
      sampleBody: SAMPLE,
      kubernetes: { namespace: "default", replicas: 2, workers: 1 },
    });
    await value(image.imageUri);
    await settle();
    built = one("iris-kubernetes-image", "docker:index/remoteImage:RemoteImage").inputs;
    pushed = one("iris-kubernetes-image", "docker:index/registryImage:RegistryImage").inputs;
    deployment = manifest(
      registrations.find((r) => r.type === "kubernetes:apps/v1:Deployment")!.inputs,
    );

    let t = Date.now();
    await replayImage(built);
    timings.buildSeconds = (Date.now() - t) / 1000;
    t = Date.now();
    digest = (await replayRegistryImage(pushed)).sha256Digest;
    timings.pushSeconds = (Date.now() - t) / 1000;
    process.stderr.write(
      `replay push: built in ${timings.buildSeconds}s, pushed in ${timings.pushSeconds}s\n`,
    );
  }, 45 * 60_000);

  afterAll(async () => {
    for (const name of containers) {
      await docker(["rm", "-f", name]).catch(() => undefined);
    }
    if (built) {
      await docker(["image", "rm", "-f", built.name]).catch(() => undefined);
    }
    if (registry && digest) {
      await docker(["image", "rm", "-f", `${registry.address}/ml/iris-scorer@${digest}`]).catch(
        () => undefined,
      );
    }
    await api?.stop();
    await registry?.stop();
    await stopTestServer(server);
    if (tmp) {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);

  test("the pushed tag is the built one, and the registry serves it under the digest the push returned", async () => {
    expect(pushed.name).toBe(built.name);
    expect(built.name).toMatch(
      new RegExp(`^${registry!.address.replace(/\./g, "\\.")}/ml/iris-scorer:v1-[0-9a-f]{12}$`),
    );
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const tag = built.name.slice(built.name.lastIndexOf(":") + 1);
    expect(await registryManifest(registry!.address, "ml/iris-scorer", tag)).toEqual({
      status: 200,
      digest,
    });
    expect(await registryManifest(registry!.address, "ml/iris-scorer", digest)).toMatchObject({
      status: 200,
    });
  });

  test("the Deployment names the image by that digest and a real API server admits it", async () => {
    const container = deployment.spec.template.spec.containers[0];
    expect(container.image).toBe(`${registry!.address}/ml/iris-scorer@${MOCK_DIGEST}`);
    // The provider would pass RegistryImage.sha256Digest: the digest the registry returned.
    container.image = `${registry!.address}/ml/iris-scorer@${digest}`;
    const dry = await createObject(api!, deployment, true);
    expect([dry.status, dry.body?.message]).toEqual([201, undefined]);
    expect((await createObject(api!, deployment, false)).status).toBe(201);
    const stored = await readObject(api!, deployment);
    expect(stored.spec.template.spec.containers[0].image).toBe(container.image);
    expect(stored.spec.replicas).toBe(2);
  });

  test(
    "pulled by digest from the registry (the local tag gone) it runs with the Deployment's env and scores",
    async () => {
      const ref = `${registry!.address}/ml/iris-scorer@${digest}`;
      await docker(["image", "rm", "-f", built.name]);
      await expect(docker(["image", "inspect", ref])).rejects.toThrow();
      let t = Date.now();
      await docker(["pull", "-q", ref]);
      timings.pullSeconds = (Date.now() - t) / 1000;
      const spec = deployment.spec.template.spec.containers[0];
      const port = reservedPort(19800);
      const name = `modelserving-replay-pull-${process.pid}`;
      containers.push(name);
      const env = (spec.env as { name: string; value: string }[]).flatMap((e) => [
        "-e",
        `${e.name}=${e.value}`,
      ]);
      t = Date.now();
      await docker(["run", "-d", "--name", name, "-p", `127.0.0.1:${port}:8080`, ...env, ref]);
      const deadline = Date.now() + 180_000;
      for (;;) {
        const ping = await fetch(`http://127.0.0.1:${port}/ping`).catch(() => undefined);
        if (ping?.status === 200) {
          break;
        }
        if (Date.now() > deadline) {
          const { stdout, stderr } = await docker(["logs", "--tail", "30", name]);
          throw new Error(`the pulled scorer did not answer /ping:\n${stdout}${stderr}`);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      timings.readySeconds = (Date.now() - t) / 1000;
      const res = await fetch(`http://127.0.0.1:${port}/invocations`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(SAMPLE),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ predictions: [0, 2] });
      process.stderr.write(
        `replay push: pulled in ${timings.pullSeconds}s, serving in ${timings.readySeconds}s\n`,
      );
    },
    10 * 60_000,
  );
});
