import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig, type PasswordConfig } from "../../config/stackConfig";
import { diffRemoteAgent, type RemoteAgentState } from "../../providers/remote/agentCore";
import {
  agentStartScript,
  agentStopScript,
  agentRunningScript,
} from "../../providers/remote/agentCore";
import {
  agentPackage,
  agentPaths,
  agentRevision,
  agentSupervisorScript,
  agentSystemdUnit,
  remoteAgentConfig,
  requirementsScript,
  runtimePins,
  unpackArgv,
  type RemoteAgentSpec,
} from "../../providers/remote/agentUnits";
import { withHost } from "../../providers/agent/deploymentCore";
import { DEFAULT_LAYOUT } from "../../providers/remote/provisionScript";
import { UNKNOWN } from "../../providers/diffKeys";
import { mockRecorder, value } from "../support/mockRecorder";
import { repoRoot, tempDir } from "../support/env";

jest.mock("../../providers/hostProvisioning", () =>
  jest.requireActual("../support/dynamicStandIns").hostProvisioningModule(),
);
jest.mock("../../providers/remoteMlflowServer", () =>
  jest.requireActual("../support/dynamicStandIns").remoteMlflowServerModule(),
);
jest.mock("../../providers/remoteAgent", () =>
  jest.requireActual("../support/dynamicStandIns").remoteAgentModule(),
);
jest.mock("../../providers/agentDeployment", () =>
  jest.requireActual("../support/dynamicStandIns").agentDeploymentModule(),
);
jest.mock("../../providers/modelVersion", () =>
  jest.requireActual("../support/dynamicStandIns").modelVersionModule(),
);

// Deploy mode `agent` with mode `remote`: the agent the remote provisioning installs on the MLflow
// host. The config that accepts it (and every message it shows, verbatim), what is rendered onto the
// host (package, config, unit, loop, scripts: no token in any), the provider's diff, and the graph the
// program declares.
const { registrations, record, settle, named } = mockRecorder();
pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const outs: Record<string, unknown> = { ...args.inputs };
      if (args.type.endsWith(":HostProvisioning")) {
        outs.hash = "h1";
      }
      if (args.type.endsWith(":ModelVersion")) {
        outs.modelUri = "models:/iris/1";
        outs.version = "1";
      }
      if (args.type.endsWith(":AgentDeployment")) {
        outs.url = `http://${args.inputs.publicHost}:5001/invocations`;
      }
      return { id: `${args.name}-id`, state: outs };
    },
    call: (args) => args.inputs,
  },
  "model-serving",
  "mockstack",
  false,
);
const { MlflowServer } =
  require("../../components/mlflowServer") as typeof import("../../components/mlflowServer");
const { MlflowAgent } =
  require("../../components/mlflowAgent") as typeof import("../../components/mlflowAgent");
const { RegisteredModel } =
  require("../../components/registeredModel") as typeof import("../../components/registeredModel");

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEm0Q2mlxMxhBGPS1hVpYIZbvzYi2KQTjn6ZsutbaqdF";
const KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n";
const TOKEN: PasswordConfig = { value: "a-token-of-24-characters", secret: true };
const projectDir = tempDir("remote-agent-config");
fs.mkdirSync(path.join(projectDir, "models/iris"), { recursive: true });
fs.writeFileSync(path.join(projectDir, "models/iris/MLmodel"), "flavors: {}\n");
fs.writeFileSync(path.join(projectDir, "id_test"), KEY);
const ctx = { projectDir, stack: "dev", env: { MODEL_SERVING_CACHE: "/cache", HOME: "/home/u" } };
const invalid = (...lines: string[]) => `invalid stack configuration:\n  ${lines.join("\n  ")}`;
const remote = {
  host: "mlflow.internal",
  user: "deploy",
  hostKey: HOST_KEY,
  privateKeyFile: "id_test",
};
const parse = (mlflow: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  parseStackConfig(
    {
      mlflow: { mode: "remote", deployMode: "agent", remote, ...mlflow },
      models: [{ name: "iris", source: "models/iris", ...extra }],
      agentToken: TOKEN,
    },
    ctx,
  );

describe("deploy mode agent with mode remote in the stack config", () => {
  it("is accepted: the agent on the remote host, API port 5100, the admin guide's ranges", () => {
    const cfg = parse({});
    expect(cfg.agent).toEqual({
      mode: "remote",
      port: 5100,
      frontPorts: { first: 5001, last: 5099 },
      backendPorts: { first: 15001, last: 15999 },
      backendWorkers: undefined,
      startTimeoutSeconds: 180,
      backend: "dedicated",
    });
    expect(
      parse({
        agent: {
          port: 34002,
          frontPorts: { first: 34003, last: 34003 },
          backendWorkers: 1,
          startTimeoutSeconds: 240,
        },
      }).agent,
    ).toMatchObject({
      mode: "remote",
      port: 34002,
      frontPorts: { first: 34003, last: 34003 },
      backendWorkers: 1,
      startTimeoutSeconds: 240,
    });
    // An agent of one's own by url: nothing installed.
    expect(parse({ agent: { url: "http://mlflow.internal:5100" } }).agent).toMatchObject({
      mode: "existing",
    });
  });

  it.each<[string, () => unknown, string]>([
    [
      "an agent port below 1024",
      () => parse({ agent: { port: 80 } }),
      "model-serving:mlflow.agent.port: must be a whole number from 1024 to 65535 (got 80)",
    ],
    [
      "the agent port on MLflow's",
      () => parse({ port: 5200, agent: { port: 5200 } }),
      "model-serving:mlflow.agent.port: is MLflow's port on the remote host (mlflow.port 5200); choose another (got 5200)",
    ],
    [
      "MLflow on the agent's default port",
      () => parse({ port: 5100 }),
      "model-serving:mlflow.port: is the agent's default port on the remote host; set another mlflow.port or mlflow.agent.port (got 5100)",
    ],
    [
      "agent.host (the host's bindHost decides)",
      () => parse({ agent: { host: "0.0.0.0" } }),
      'model-serving:mlflow.agent.host: only applies to an agent started here; on the remote host the agent binds mlflow.remote.bindHost (got "0.0.0.0")',
    ],
    [
      "a fixed serving port outside the front range",
      () => parse({}, { serve: { port: 6001 } }),
      "model-serving:models[0].serve.port: must lie inside mlflow.agent.frontPorts 5001-5099 (the agent's front ports) (got 6001)",
    ],
  ])("refuses %s", (_what, fn, message) => {
    expect(fn).toThrow(invalid(message));
  });

  it("refuses MLflow basic auth (the agent does not hand credentials to its backends yet)", () => {
    expect(() =>
      parseStackConfig(
        {
          mlflow: { mode: "remote", deployMode: "agent", remote },
          models: [],
          agentToken: TOKEN,
          mlflowPassword: { value: "Str0ng-Passw0rd!", secret: true },
        },
        ctx,
      ),
    ).toThrow(
      invalid(
        'model-serving:mlflow.deployMode: the agent installed on the remote host does not hand MLflow credentials to its model servers yet; use deployMode "remote" with mlflowPassword, or MLflow without basic auth (got "agent")',
      ),
    );
  });
});

const spec: RemoteAgentSpec = {
  layout: DEFAULT_LAYOUT,
  bindHost: "0.0.0.0",
  port: 5100,
  frontPorts: { first: 5001, last: 5099 },
  backendPorts: { first: 15001, last: 15999 },
  hostTrackingUri: "http://127.0.0.1:5000",
  backendStartTimeoutSeconds: 180,
};
const agentDir = path.join(repoRoot, "agent");

describe("what is installed on the host", () => {
  it("copies model_serving_agent and its pinned requirements, no caches; the hash follows the bytes", () => {
    const pkg = agentPackage(agentDir);
    const names = Object.keys(pkg.files);
    expect(names).toContain("requirements.txt");
    expect(names).toContain("model_serving_agent/__main__.py");
    expect(names).toContain("model_serving_agent/workflows/service.py");
    expect(names.filter((n) => n.includes("__pycache__") || n.endsWith(".pyc"))).toEqual([]);
    expect(names.filter((n) => n.startsWith("tests/"))).toEqual([]);
    expect(pkg.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(agentPackage(agentDir).hash).toBe(pkg.hash);
    // Another byte in one file: another hash.
    const copy = tempDir("agent-copy");
    fs.cpSync(agentDir, copy, { recursive: true });
    fs.appendFileSync(path.join(copy, "model_serving_agent/config.py"), "\n");
    expect(agentPackage(copy).hash).not.toBe(pkg.hash);
  });

  it("checks the agent's runtime pins in the venv (MLflow's set brings them)", () => {
    const pins = runtimePins(fs.readFileSync(path.join(agentDir, "requirements.txt"), "utf8"));
    expect(Object.keys(pins).sort()).toEqual(["aiohttp", "pydantic"]);
    // The same pins as the project's full pin set, which the default profile installs.
    const constraints = fs.readFileSync(path.join(repoRoot, "python/constraints.txt"), "utf8");
    for (const [name, version] of Object.entries(pins)) {
      expect(constraints).toContain(`\n${name}==${version}\n`);
    }
    const script = requirementsScript(DEFAULT_LAYOUT, pins);
    expect(script).toContain("runuser -u mlflow -- /opt/model-serving/venv/bin/python -c");
    expect(script).toContain(`pins = ${JSON.stringify(pins)}`);
    expect(script).toContain("--constraint /opt/model-serving/constraints.txt");
    expect(() => runtimePins("mlflow==3.17.2\n")).toThrow(
      "agent/requirements.txt: no aiohttp==<version> pin",
    );
  });

  it("writes a config with the ports, the data dir's state and logs, the host's MLflow, no secret", () => {
    expect(remoteAgentConfig({ ...spec, backendWorkers: 2 })).toEqual({
      host: "0.0.0.0",
      port: 5100,
      front_ports: { first: 5001, last: 5099 },
      backend_ports: { first: 15001, last: 15999 },
      state_file: "/var/lib/model-serving/mlflow/agent/state.json",
      log_dir: "/var/lib/model-serving/mlflow/agent/logs",
      token_file: "/opt/model-serving/agent-token",
      mlflow_tracking_uri: "http://127.0.0.1:5000",
      python: "/opt/model-serving/venv/bin/python",
      backend_start_timeout_seconds: 180,
      backend_workers: 2,
    });
  });

  it("runs as the service user: a systemd unit (KillMode=process) or a restart loop", () => {
    expect(agentSystemdUnit(DEFAULT_LAYOUT)).toBe(
      [
        "[Unit]",
        "Description=model-serving MLOps agent",
        "After=network-online.target model-serving-mlflow.service",
        "",
        "[Service]",
        "Type=simple",
        "User=mlflow",
        "Group=mlflow",
        "WorkingDirectory=/var/lib/model-serving/mlflow/agent",
        "EnvironmentFile=-/opt/model-serving/profile.env",
        "Environment=PYTHONPATH=/opt/model-serving/agent",
        "Environment=MODEL_SERVING_AGENT_HOME=/var/lib/model-serving/mlflow/agent",
        "ExecStart=/opt/model-serving/venv/bin/python -m model_serving_agent --config /opt/model-serving/agent.json",
        "KillMode=process",
        "Restart=always",
        "RestartSec=2",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
      ].join("\n"),
    );
    // Without systemd: the script becomes the agent's own supervisor (the local agent's), its pid kept.
    expect(agentSupervisorScript(DEFAULT_LAYOUT).split("\n")).toEqual([
      "#!/bin/sh",
      "# model-serving: runs the MLOps agent under its supervisor until that gets TERM.",
      "echo $$ > /opt/model-serving/run/agent-supervisor.pid",
      "if [ -s /opt/model-serving/profile.env ]; then set -a; . /opt/model-serving/profile.env; set +a; fi",
      "cd /var/lib/model-serving/mlflow/agent",
      "exec env PYTHONPATH=/opt/model-serving/agent MODEL_SERVING_AGENT_HOME=/var/lib/model-serving/mlflow/agent /opt/model-serving/venv/bin/python -m model_serving_agent.supervise --config /opt/model-serving/agent.json --agent-pid-file /opt/model-serving/run/agent.pid",
      "",
    ]);
    // Running means the pidfile's process is that supervisor, not any process that reused the pid.
    expect(agentRunningScript(spec, "process")).toContain(
      "grep -qF '/opt/model-serving/venv/bin/python -m model_serving_agent.supervise --config /opt/model-serving/agent.json --agent-pid-file /opt/model-serving/run/agent.pid'",
    );
  });

  it("renders shell that parses, and no token in any of it", () => {
    const token = "a-token-of-24-characters";
    const scripts = [
      agentSupervisorScript(DEFAULT_LAYOUT),
      agentStartScript(spec, "process", "r1", false),
      agentStartScript(spec, "systemd", "r1", true),
      agentStopScript(spec, "process"),
      agentStopScript(spec, "systemd"),
      agentRunningScript(spec, "process"),
      requirementsScript(DEFAULT_LAYOUT, { aiohttp: "1", pydantic: "2" }),
    ];
    for (const s of scripts) {
      execFileSync("sh", ["-n"], { input: s });
      expect(s).not.toContain(token);
    }
    expect(agentStopScript(spec, "process")).toContain(
      "grep -qxF MODEL_SERVING_AGENT_HOME=/var/lib/model-serving/mlflow/agent",
    );
    expect(agentStopScript(spec, "process")).toContain(
      "rm -f /opt/model-serving/agent-token /opt/model-serving/agent.json",
    );
    // The data dir (state, logs) is never removed.
    expect(agentStopScript(spec, "process")).not.toContain(
      agentPaths(DEFAULT_LAYOUT).dataDir + " ",
    );
    expect(unpackArgv(DEFAULT_LAYOUT, "abc").slice(-3)).toEqual([
      "/opt/model-serving/agent",
      "/opt/model-serving/agent.sha256",
      "abc",
    ]);
    // The revision follows what runs: package, config, unit.
    const r = agentRevision(spec, "p1", "process");
    expect(agentRevision(spec, "p1", "process")).toBe(r);
    expect(agentRevision(spec, "p2", "process")).not.toBe(r);
    expect(agentRevision({ ...spec, backendWorkers: 1 }, "p1", "process")).not.toBe(r);
    expect(agentRevision(spec, "p1", "systemd")).not.toBe(r);
  });

  it("shows the front URLs with the host's public name, not its bind address", () => {
    expect(withHost("http://127.0.0.1:5003/invocations", "mlflow.internal")).toBe(
      "http://mlflow.internal:5003/invocations",
    );
    expect(withHost("http://127.0.0.1:5003/invocations", undefined)).toBe(
      "http://127.0.0.1:5003/invocations",
    );
  });
});

describe("the RemoteAgent provider's diff", () => {
  const conn = { host: "h", port: 22, user: "deploy", privateKey: KEY, hostKey: HOST_KEY };
  const args = {
    ...spec,
    connection: conn,
    publicHost: "h",
    token: "t".repeat(24),
    agentDir,
    packageHash: "p1",
    provisioned: "h1",
    startTimeoutSeconds: 300,
  };
  const olds: RemoteAgentState = {
    ...args,
    supervisor: "process",
    url: "http://h:5100",
    logFile: "x",
  };
  it.each<[string, Record<string, unknown>, boolean, string[]]>([
    ["nothing", {}, false, []],
    ["a new package", { packageHash: "p2" }, true, []],
    ["a new venv", { provisioned: "h2" }, true, []],
    ["another token", { token: "u".repeat(24) }, true, []],
    ["other front ports", { frontPorts: { first: 6001, last: 6002 } }, true, []],
    ["another API port", { port: 5200 }, true, ["port"]],
    ["another host", { connection: { ...conn, host: "other" } }, true, ["connection"]],
    ["an unknown package hash (preview)", { packageHash: UNKNOWN }, true, []],
  ])("%s", (_what, change, changes, replaces) => {
    expect(diffRemoteAgent(olds, { ...args, ...change } as typeof args)).toEqual({
      changes,
      replaces,
      deleteBeforeReplace: true,
    });
  });
});

describe("MlflowAgent mode remote (mocks)", () => {
  it("installs the agent on the MLflow host and serves through it on the host's name", async () => {
    const mlflow = new MlflowServer("mlflow", {
      mode: "remote",
      port: 5000,
      remote: { host: "10.0.0.5", user: "deploy", hostKey: HOST_KEY, privateKey: KEY },
    });
    const agent = new MlflowAgent("agent", {
      mode: "remote",
      token: "a-token-of-24-characters",
      publicHost: "10.0.0.5",
      port: 5100,
      remote: mlflow.remote,
      provisioned: mlflow.remoteProvisioned,
    });
    const model = new RegisteredModel("iris", {
      trackingUri: mlflow.trackingUri,
      registryId: mlflow.registryId,
      modelName: "iris",
      source: path.join(projectDir, "models/iris"),
      serve: {
        mode: "agent",
        agentUrl: agent.url,
        token: agent.token,
        agentInstance: agent.instance,
        publicHost: agent.publicHost,
      },
    });
    expect(await value(agent.url)).toBe("http://10.0.0.5:5100");
    const entry = await value(model.endpoint);
    await settle();
    expect(registrations.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
      "command:remote:Command mlflow-preflight",
      "modelserving:mlflow:MlflowAgent agent",
      "modelserving:mlflow:MlflowServer mlflow",
      "modelserving:mlflow:RegisteredModel iris",
      "pulumi-nodejs:dynamic/modelserving:AgentDeployment iris-server",
      "pulumi-nodejs:dynamic/modelserving:HostProvisioning mlflow-host",
      "pulumi-nodejs:dynamic/modelserving:ModelVersion iris-version",
      "pulumi-nodejs:dynamic/modelserving:RemoteAgent agent-remote",
      "pulumi-nodejs:dynamic/modelserving:RemoteMlflowServer mlflow-server",
    ]);
    const inputs = named("agent-remote");
    expect(inputs).toMatchObject({
      layout: DEFAULT_LAYOUT,
      publicHost: "10.0.0.5",
      bindHost: "0.0.0.0",
      port: 5100,
      frontPorts: { first: 5001, last: 5099 },
      backendPorts: { first: 15001, last: 15999 },
      backendStartTimeoutSeconds: 180,
      agentDir,
      packageHash: agentPackage(agentDir).hash,
      provisioned: "h1",
      startTimeoutSeconds: 300,
    });
    // The token and the connection reach the engine as secrets only.
    expect(inputs.token).toMatchObject({ value: "a-token-of-24-characters" });
    expect(Object.keys(inputs.token as object)).toHaveLength(2);
    expect(inputs.connection).toMatchObject({ value: { host: "10.0.0.5", privateKey: KEY } });
    expect(Object.keys(inputs.connection as object)).toHaveLength(2);
    expect(named("iris-server")).toMatchObject({
      agentUrl: "http://10.0.0.5:5100",
      publicHost: "10.0.0.5",
      agentInstance: "",
    });
    expect(entry?.url).toBe("http://10.0.0.5:5001/invocations");
  });

  it("refuses mode remote without the host", () => {
    expect(() => new MlflowAgent("a", { mode: "remote", token: "x", publicHost: "h" })).toThrow(
      'MlflowAgent: remote is required when mode is "remote"',
    );
  });
});
