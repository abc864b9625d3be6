/* eslint-disable @typescript-eslint/no-explicit-any -- mock registrations are untyped JSON */
import * as pulumi from "@pulumi/pulumi";
import { mockRecorder, value } from "../support/mockRecorder";

// jest cannot run Pulumi's closure serializer; ModelExport registers the same type and inputs without it.
jest.mock("../../providers/modelExport", () =>
  jest.requireActual("../support/dynamicStandIns").modelExportModule(),
);

const { registrations, record, settle, of, one } = mockRecorder();
const HASH = "c".repeat(64);
const IMAGE_ID = `sha256:${"e".repeat(64)}`;

pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const state: Record<string, any> = { ...args.inputs };
      if (args.type === "pulumi-nodejs:dynamic/modelserving:ModelExport") {
        Object.assign(state, {
          contextDir: `/cache/build-contexts/iris-docker/${HASH}`,
          contextHash: HASH,
          modelUri: "models:/iris/3",
        });
      }
      if (args.type === "docker:index/remoteImage:RemoteImage") {
        state.imageId = IMAGE_ID;
      }
      return { id: `${args.name}-id`, state };
    },
    call: () => ({}),
  },
  "model-serving",
  "docker",
  false,
);

import { StandaloneScorer, scorerUrlHost } from "../../components/standaloneScorer";
import { parseStandaloneDocker } from "../../config/standaloneTargets";
import {
  standaloneCsvCurlCommand,
  standaloneInvocationsUrl,
  standaloneSnippets,
} from "../../components/snippets/standalone";

const BODY = {
  dataframe_split: {
    columns: ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    data: [[5.1, 3.5, 1.4, 0.2]],
  },
};
const base = {
  modelName: "iris",
  modelVersion: "3",
  trackingUri: "http://127.0.0.1:5000",
  mlflowBin: "/venv/bin/mlflow",
  sampleBody: BODY,
  scorerDir: require("path").resolve(__dirname, "../../scorer"),
  contextRoot: "/cache/build-contexts/iris-docker",
};

describe("StandaloneScorer on a Docker host (mocks)", () => {
  beforeEach(() => registrations.splice(0));

  test("declares export, image and container with exactly these inputs; no provider without host", async () => {
    const scorer = new StandaloneScorer("iris-docker", {
      ...base,
      docker: {
        port: 8089,
        memoryMb: 1024,
        cpus: 1.5,
        workers: 2,
        timeoutSeconds: 30,
        baseImage: "registry.example/python:3.11-slim",
        env: { LOG_LEVEL: "info", AAA: "1" },
      },
    });
    const endpoint = await value(scorer.endpoint);
    await settle();
    expect(of("iris-docker").map((r) => r.type)).toEqual([
      "pulumi-nodejs:dynamic/modelserving:ModelExport",
      "docker:index/remoteImage:RemoteImage",
      "docker:index/container:Container",
    ]);
    expect(
      one("iris-docker", "pulumi-nodejs:dynamic/modelserving:ModelExport").inputs,
    ).toMatchObject({
      modelName: "iris",
      modelVersion: "3",
      trackingUri: "http://127.0.0.1:5000",
      contextRoot: "/cache/build-contexts/iris-docker",
    });
    const image = one("iris-docker", "docker:index/remoteImage:RemoteImage").inputs;
    expect(image).toEqual({
      name: `modelserving/iris:v3-${HASH.slice(0, 12)}`,
      build: {
        context: `/cache/build-contexts/iris-docker/${HASH}`,
        dockerfile: "Dockerfile",
        target: "standalone",
        buildArgs: { BASE_IMAGE: "registry.example/python:3.11-slim" },
        label: {
          "org.opencontainers.image.title": "model-serving scorer",
          "model-serving.model-uri": "models:/iris/3",
        },
      },
      triggers: { contextHash: HASH },
      keepLocally: false,
    });
    const container = one("iris-docker", "docker:index/container:Container").inputs;
    expect(container).toEqual({
      name: "modelserving-iris-docker",
      image: IMAGE_ID,
      ports: [{ internal: 8080, external: 8089, ip: "127.0.0.1", protocol: "tcp" }],
      restart: "unless-stopped",
      memory: 1024,
      cpus: "1.5",
      envs: ["SCORER_WORKERS=2", "SCORER_TIMEOUT_SECONDS=30", "AAA=1", "LOG_LEVEL=info"],
      healthcheck: {
        tests: ["CMD", "python", "/opt/scorer/serve.py", "ping"],
        interval: "10s",
        timeout: "5s",
        retries: 3,
        startPeriod: "120s",
      },
      wait: true,
      waitTimeout: 300,
      mustRun: true,
      destroyGraceSeconds: 30,
      labels: [{ label: "model-serving.component", value: "iris-docker" }],
    });
    expect(endpoint).toEqual({
      target: "docker",
      url: "http://127.0.0.1:8089/invocations",
      modelUri: "models:/iris/3",
      version: "3",
      ...standaloneSnippets("http://127.0.0.1:8089/invocations", BODY),
    });
  });

  test("an ssh:// host gets its own docker provider; the build secret and builder are passed", async () => {
    const scorer = new StandaloneScorer("iris-remote", {
      ...base,
      docker: {
        host: "ssh://deploy@scorer-1.internal:2222",
        sshOpts: ["-o", "StrictHostKeyChecking=yes"],
        port: 9000,
        bindAddress: "0.0.0.0",
        restart: "always",
        caBundleFile: "/etc/ssl/certs/ca-certificates.crt",
        buildxBuilder: "remote-builder",
      },
    });
    const url = await value(scorer.url);
    await settle();
    const provider = registrations.find((r) => r.name === "iris-remote-docker")!;
    expect(provider.type).toBe("pulumi:providers:docker");
    expect(provider.inputs.host).toBe("ssh://deploy@scorer-1.internal:2222");
    expect(JSON.parse(provider.inputs.sshOpts)).toEqual(["-o", "StrictHostKeyChecking=yes"]);
    const image = one("iris-remote", "docker:index/remoteImage:RemoteImage").inputs;
    expect(image.build.secrets).toEqual([
      { id: "ca-bundle", src: "/etc/ssl/certs/ca-certificates.crt" },
    ]);
    expect(image.build.builder).toBe("remote-builder");
    const container = one("iris-remote", "docker:index/container:Container").inputs;
    expect(container.ports).toEqual([
      { internal: 8080, external: 9000, ip: "0.0.0.0", protocol: "tcp" },
    ]);
    expect(container.restart).toBe("always");
    expect(container.envs).toEqual([]);
    expect(url).toBe("http://scorer-1.internal:9000/invocations");
  });

  test("args are validated before anything is declared; each message names key and value", () => {
    const bad = (docker: unknown) => () =>
      new StandaloneScorer("bad", { ...base, docker: docker as any });
    expect(bad({ port: 0 })).toThrow(
      "StandaloneScorer bad: docker.port: must be a whole number from 1 to 65535 (got 0)",
    );
    expect(bad({ port: 8080, restart: "sometimes" })).toThrow(
      'StandaloneScorer bad: docker.restart: must be one of "no", "on-failure", "always", "unless-stopped" (got "sometimes")',
    );
    expect(bad({ port: 8080, host: "docker.example:2375" })).toThrow(
      'StandaloneScorer bad: docker.host: must be a unix://, tcp:// or ssh:// Docker host (got "docker.example:2375")',
    );
    expect(bad({ port: 8080, env: { PORT: "1" } })).toThrow(
      "StandaloneScorer bad: docker.env.PORT: is set by the scorer itself; use port (the container always listens on 8080)",
    );
    expect(bad({ port: 8080, sshOpts: ["-v"] })).toThrow(
      "StandaloneScorer bad: docker.sshOpts: applies only to an ssh:// host",
    );
    expect(bad({ port: 8080, caBundleFile: "/ca.pem" })).toThrow(
      'StandaloneScorer bad: docker.caBundleFile: needs buildxBuilder: the Docker provider passes build secrets only through buildx (got "/ca.pem")',
    );
    expect(bad({ port: 8080, memory: 512 })).toThrow(
      "StandaloneScorer bad: docker.memory: unknown key; expected one of host, sshOpts, port",
    );
    expect(bad({ port: 8080, bindAddress: "localhost" })).toThrow(
      'StandaloneScorer bad: docker.bindAddress: must be an IPv4 address such as 127.0.0.1 (got "localhost")',
    );
    expect(registrations.filter((r) => r.name.startsWith("bad"))).toEqual([]);
  });
});

describe("the example stack Pulumi.docker.yaml", () => {
  test("its targets.docker is valid StandaloneScorer settings, reached over ssh", async () => {
    const yaml = require("js-yaml");
    const fs = require("fs");
    const path = require("path");
    const stack = yaml.load(
      fs.readFileSync(path.resolve(__dirname, "../../Pulumi.docker.yaml"), "utf8"),
    );
    const model = stack.config["model-serving:models"][0];
    const scorer = new StandaloneScorer("iris-example", {
      ...base,
      docker: parseStandaloneDocker(model.targets.docker, "Pulumi.docker.yaml targets.docker"),
    });
    expect(await value(scorer.url)).toBe("http://scorer-1.internal.example.com:8089/invocations");
  });
});

describe("standalone snippets and URL host (pure)", () => {
  test.each([
    [{ port: 1 }, "127.0.0.1"],
    [{ port: 1, bindAddress: "10.0.0.5" }, "10.0.0.5"],
    [{ port: 1, bindAddress: "0.0.0.0", host: "ssh://u@box:22" }, "box"],
    [{ port: 1, bindAddress: "0.0.0.0", host: "unix:///var/run/docker.sock" }, "127.0.0.1"],
    [{ port: 1, bindAddress: "0.0.0.0", host: "tcp://[fd00::1]:2376" }, "fd00::1"],
    [{ port: 1, urlHost: "scorer.example.com", bindAddress: "0.0.0.0" }, "scorer.example.com"],
  ])("%j -> %s", (cfg, host) => {
    expect(scorerUrlHost(parseStandaloneDocker(cfg, "t"))).toBe(host);
  });

  test("exact commands", () => {
    expect(standaloneInvocationsUrl("fd00::1", 80)).toBe("http://[fd00::1]:80/invocations");
    const s = standaloneSnippets("http://127.0.0.1:8089/invocations", { instances: [[1, 2]] });
    expect(s.curl).toBe(
      `curl -sS -X POST 'http://127.0.0.1:8089/invocations' -H 'Content-Type: application/json' -d '{"instances":[[1,2]]}'`,
    );
    expect(s.python).toBe(
      `python3 -c 'import json, urllib.request; req = urllib.request.Request("http://127.0.0.1:8089/invocations", data=json.dumps(json.loads("{\\"instances\\":[[1,2]]}")).encode(), headers={"Content-Type": "application/json"}); print(urllib.request.urlopen(req, timeout=60).read().decode())'`,
    );
    expect(standaloneCsvCurlCommand("http://h:1/invocations", "a,b\n1,2\n")).toBe(
      "curl -sS -X POST 'http://h:1/invocations' -H 'Content-Type: text/csv' --data-binary 'a,b\n1,2\n'",
    );
  });
});
