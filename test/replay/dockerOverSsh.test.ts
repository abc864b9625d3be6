/* eslint-disable @typescript-eslint/no-explicit-any -- recorded inputs and Engine API payloads are untyped JSON */
/**
 * A StandaloneScorer on a Docker host reached over `ssh://`: the component is declared under mocks with
 * `docker.host: ssh://root@<test host>` and the `sshOpts` that pin its key; the recorded docker.Provider
 * inputs become the transport the Docker client uses for such a host (test/replay/sshDockerTunnel.ts:
 * `ssh <sshOpts> ... docker system dial-stdio` per connection, to the SSH test host of
 * test/support/sshHost.ts, which has the private engine's socket and CLI mounted), and the recorded
 * RemoteImage and Container are performed through it. The container is then scored with the endpoint's
 * generated curl. What is real: the build context, the Engine API and BuildKit session all travel over
 * sshd on a second host; the engine behind it is this machine's private one.
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
  mlflowMissingReason,
  skipReason,
  tempDir,
  tryReservePort,
} from "../support/env";
import { startTestServer, stopTestServer } from "../support/mlflowServer";
import { mockRecorder, value } from "../support/mockRecorder";
import { missingSshHost, startSshHost, type SshTestHost } from "../support/sshHost";
import { dockerCli, dockerMissingReason, scorerBaseImage } from "./dockerEnv";
import { removeContainer, replayContainer, replayImage } from "./dockerReplay";
import { registerAndExport } from "./registeredExport";
import { sshDockerTunnel } from "./sshDockerTunnel";

jest.mock("../../providers/modelExport", () =>
  jest.requireActual("../support/dynamicStandIns").modelExportModule(),
);

const { record, settle, one } = mockRecorder();
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
      if (args.type === "docker:index/remoteImage:RemoteImage") {
        state.imageId = `sha256:${"0".repeat(64)}`; // replaced by the real id below
      }
      return { id: `${args.name}-id`, state };
    },
    call: () => ({}),
  },
  "model-serving",
  "replay-ssh",
  false,
);

import { StandaloneScorer } from "../../components/standaloneScorer";

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

const why = skipReason(mlflowMissingReason() ?? dockerMissingReason()) ?? missingSshHost();
const describeReal = why ? describe.skip : describe;

function reservedPort(from: number): number {
  for (let port = from; port < from + 200; port++) {
    if (tryReservePort(port)) {
      return port;
    }
  }
  throw new Error(`no free port in ${from}-${from + 199}`);
}

describeReal("StandaloneScorer on a Docker host over ssh://", () => {
  let tmp: string;
  let server: MlflowServerState | undefined;
  let host: SshTestHost | undefined;
  let tunnel: Awaited<ReturnType<typeof sshDockerTunnel>> | undefined;
  let provider: any;
  let image: any;
  let container: any;
  let endpoint: { url: string; curl: string };
  const savedDockerHost = process.env.DOCKER_HOST;

  beforeAll(async () => {
    tmp = tempDir("replay-ssh-docker");
    server = await startTestServer();
    realExport = await registerAndExport(
      server,
      "iris",
      demoModel(1.0),
      path.join(tmp, "contexts"),
    );
    host = await startSshHost({ dockerEngine: true });

    // The deploying side's key and the host's pinned key, as a user would hand them to ssh.
    const keyFile = path.join(tmp, "id_ed25519");
    fs.writeFileSync(keyFile, host.root.privateKey, { mode: 0o600 });
    const knownHosts = path.join(tmp, "known_hosts");
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${host.sshPort} ${host.hostKey}\n`);
    const caBundle = process.env.SSL_CERT_FILE;
    const scorer = new StandaloneScorer("iris-ssh", {
      modelName: "iris",
      modelVersion: "1",
      trackingUri: server.trackingUri,
      mlflowBin: "/unused/mlflow",
      sampleBody: SAMPLE,
      docker: {
        host: `ssh://root@127.0.0.1:${host.sshPort}`,
        sshOpts: [
          "-i",
          keyFile,
          "-o",
          `UserKnownHostsFile=${knownHosts}`,
          "-o",
          "StrictHostKeyChecking=yes",
          "-o",
          "IdentitiesOnly=yes",
        ],
        port: reservedPort(18600),
        containerName: `modelserving-replay-ssh-${process.pid}`,
        memoryMb: 1024,
        baseImage: scorerBaseImage(),
        // This machine's package index is reached through a TLS-inspecting proxy.
        ...(caBundle ? { caBundleFile: caBundle, buildxBuilder: "default" } : {}),
      },
    });
    endpoint = (await value(scorer.endpoint)) as typeof endpoint;
    await settle();
    provider = one("iris-ssh", "pulumi:providers:docker").inputs;
    image = one("iris-ssh", "docker:index/remoteImage:RemoteImage").inputs;
    container = one("iris-ssh", "docker:index/container:Container").inputs;

    // Everything below talks to the engine only through the recorded provider's transport.
    tunnel = await sshDockerTunnel(
      { host: provider.host, sshOpts: JSON.parse(provider.sshOpts ?? "null") ?? undefined },
      tmp,
    );
    process.env.DOCKER_HOST = `unix://${tunnel.socket}`;
    const t = Date.now();
    const { imageId } = await replayImage(image);
    await replayContainer({ ...container, image: imageId });
    process.stderr.write(`replay over ssh: built and healthy in ${(Date.now() - t) / 1000}s\n`);
  }, 30 * 60_000);

  afterAll(async () => {
    if (container) {
      await removeContainer(container.name).catch(() => undefined);
    }
    if (image) {
      await sh(dockerCli(), ["image", "rm", "-f", image.name], { env: process.env }).catch(
        () => undefined,
      );
    }
    await tunnel?.close();
    process.env.DOCKER_HOST = savedDockerHost;
    await host?.stop();
    await stopTestServer(server);
    if (tmp) {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);

  test("the recorded provider is the ssh:// host with the options that pin its key", () => {
    expect(provider.host).toBe(`ssh://root@127.0.0.1:${host!.sshPort}`);
    expect(JSON.parse(provider.sshOpts)).toContain("StrictHostKeyChecking=yes");
  });

  test("build and container went over ssh (one dial-stdio session per engine connection), and the container scores", async () => {
    expect(tunnel!.sessions()).toBeGreaterThan(2);
    const { stdout } = await sh("bash", ["-c", endpoint.curl], { timeout: 60_000 });
    expect(JSON.parse(stdout)).toEqual({ predictions: [0, 2] });
    expect(endpoint.url).toBe(`http://127.0.0.1:${container.ports[0].external}/invocations`);
  });

  test("a host key that is not the pinned one is refused before anything reaches the engine", async () => {
    // Another host's key in known_hosts: ssh must refuse (StrictHostKeyChecking=yes), never ask.
    const otherKey = path.join(tmp, "other_host_key");
    await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", otherKey]);
    const wrongKnownHosts = path.join(tmp, "known_hosts_wrong");
    fs.writeFileSync(
      wrongKnownHosts,
      `[127.0.0.1]:${host!.sshPort} ${fs.readFileSync(`${otherKey}.pub`, "utf8").trim()}\n`,
    );
    const opts = JSON.parse(provider.sshOpts).map((o: string) =>
      o.startsWith("UserKnownHostsFile=") ? `UserKnownHostsFile=${wrongKnownHosts}` : o,
    );
    const wrongDir = path.join(tmp, "wrong");
    fs.mkdirSync(wrongDir);
    const wrong = await sshDockerTunnel({ host: provider.host, sshOpts: opts }, wrongDir);
    try {
      await expect(
        sh(dockerCli(), ["version", "--format", "{{.Server.Version}}"], {
          env: { ...process.env, DOCKER_HOST: `unix://${wrong.socket}` },
          timeout: 60_000,
        }),
      ).rejects.toThrow();
      expect(wrong.lastError()).toBe("Host key verification failed.");
    } finally {
      await wrong.close();
    }
  });
});
