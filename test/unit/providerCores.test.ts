import { deploymentId, diffDeployment, servingHostFor } from "../../providers/deployment/core";
import { DeploymentArgs, DeploymentState } from "../../providers/deployment/types";
import {
  basicAuthIni,
  diffMlflowServer,
  MlflowServerState,
  serverCommand,
  serverId,
} from "../../providers/mlflowServerCore";
import { UNKNOWN } from "../../providers/diffKeys";
import {
  claimOwner,
  diffModelVersion,
  ModelVersionArgs,
  ModelVersionState,
  modelVersionId,
} from "../../providers/modelVersionCore";

const versionArgs: ModelVersionArgs = {
  trackingUri: "http://127.0.0.1:5000",
  registryId: "local:/data/mlflow",
  owner: "model-serving/dev/iris-version",
  name: "iris",
  source: "/models/iris",
  sourceHash: "sha256:aaa",
  aliases: ["champion"],
  tags: { owner: "platform" },
  description: "demo",
  registration: 1,
  experimentName: "model-serving",
  readyTimeoutSeconds: 120,
};
const versionState: ModelVersionState = {
  ...versionArgs,
  version: "3",
  modelUri: "models:/iris/3",
  runId: "r1",
  storageSource: "mlflow-artifacts:/1/r1/artifacts/model",
};

describe("ModelVersion diff: old outputs against new inputs", () => {
  const cases: [string, Partial<ModelVersionArgs>, boolean, string[]][] = [
    ["nothing changed", {}, false, []],
    [
      "new model content registers a new version",
      { sourceHash: "sha256:bbb" },
      true,
      ["sourceHash"],
    ],
    ["registration counter re-registers", { registration: 2 }, true, ["registration"]],
    ["another model name", { name: "iris2" }, true, ["name"]],
    ["another registry (new data dir)", { registryId: "local:/data/new" }, true, ["registryId"]],
    [
      "another existing server",
      { trackingUri: "http://other:5000", registryId: "http://other:5000" },
      true,
      ["registryId"],
    ],
    [
      "the same registry at another URL updates",
      { trackingUri: "http://127.0.0.1:6000" },
      true,
      [],
    ],
    ["a tracking URI unknown in preview is a possible update", { trackingUri: UNKNOWN }, true, []],
    ["a registry unknown in preview is a possible update", { registryId: UNKNOWN }, true, []],
    [
      "unknown source hash and URL in preview still never replace",
      { sourceHash: UNKNOWN, trackingUri: UNKNOWN, name: UNKNOWN },
      true,
      [],
    ],
    ["a new owner (renamed stack) is not a change", { owner: "model-serving/prod/x" }, false, []],
    ["same content at another path updates", { source: "/elsewhere/iris" }, true, []],
    ["aliases update in place", { aliases: ["champion", "prod"] }, true, []],
    ["tags update in place", { tags: { owner: "ml" } }, true, []],
    ["description updates in place", { description: "new" }, true, []],
    ["credentials update in place", { auth: { username: "u", password: "p" } }, true, []],
  ];
  it.each(cases)("%s", (_t, change, changes, replaces) => {
    expect(diffModelVersion(versionState, { ...versionArgs, ...change })).toEqual({
      changes,
      replaces,
      deleteBeforeReplace: false,
    });
  });

  it("uses <name>/<version> as id", () => {
    expect(modelVersionId("iris", "3")).toBe("iris/3");
  });

  // States written before registryId existed: the same URL is the same registry.
  const legacy: ModelVersionState = { ...versionState, registryId: undefined };
  it.each([
    ["records the registry id in place at the same URL", {}, true, []],
    [
      "replaces at another URL",
      { trackingUri: "http://other:5000", registryId: "http://other:5000" },
      true,
      ["registryId"],
    ],
    ["records it in place while the URL is unknown", { trackingUri: UNKNOWN }, true, []],
  ] as [string, Partial<ModelVersionArgs>, boolean, string[]][])(
    "legacy state: %s",
    (_t, change, changes, replaces) => {
      expect(diffModelVersion(legacy, { ...versionArgs, ...change })).toEqual({
        changes,
        replaces,
        deleteBeforeReplace: false,
      });
    },
  );

  it("reads the owner out of a claim tag", () => {
    expect(claimOwner("model-serving/dev/iris-version 1b2c")).toBe(
      "model-serving/dev/iris-version",
    );
    expect(claimOwner("1b2c-3d4e")).toBeUndefined();
    expect(claimOwner(undefined)).toBeUndefined();
  });
});

const deployArgs: DeploymentArgs = {
  mode: "local",
  modelUri: "models:/iris/3",
  trackingUri: "http://127.0.0.1:5000",
  host: "127.0.0.1",
  portRangeStart: 5001,
  mlflowBin: "/venv/bin/mlflow",
  runDir: "/run",
  startTimeoutSeconds: 300,
};
const deployState: DeploymentState = {
  ...deployArgs,
  pid: 10,
  pgid: 10,
  startTicks: "99",
  servedPort: 5001,
  baseUrl: "http://127.0.0.1:5001",
  url: "http://127.0.0.1:5001/invocations",
  logFile: "/run/logs/x.log",
};

describe("ModelDeployment diff", () => {
  const cases: [string, Partial<DeploymentArgs>, boolean, string[]][] = [
    ["nothing changed", {}, false, []],
    ["a new version redeploys on the same URL", { modelUri: "models:/iris/4" }, true, []],
    ["a fixed port moves the endpoint", { port: 6000 }, true, ["port"]],
    ["another host moves the endpoint", { host: "0.0.0.0" }, true, ["host"]],
    ["another deploy mode replaces", { mode: "agent" }, true, ["mode"]],
    ["a longer start deadline is only recorded", { startTimeoutSeconds: 600 }, true, []],
    [
      "unknown tracking URI and model URI in preview: a possible update",
      { trackingUri: UNKNOWN, modelUri: UNKNOWN },
      true,
      [],
    ],
    ["a port unknown in preview is a possible update", { port: UNKNOWN as never }, true, []],
  ];
  it.each(cases)("%s", (_t, change, changes, replaces) => {
    expect(diffDeployment(deployState, { ...deployArgs, ...change })).toEqual({
      changes,
      replaces,
      deleteBeforeReplace: true,
    });
  });

  it("uses <host>:<port> as id", () => {
    expect(deploymentId(deployState)).toBe("127.0.0.1:5001");
  });

  it("names the modes that do not exist yet", () => {
    expect(() => servingHostFor("agent")).toThrow(
      'deployMode: "agent" is not available yet; supported: local, remote',
    );
  });
});

describe("LocalMlflowServer", () => {
  const args = {
    mlflowBin: "/venv/bin/mlflow",
    host: "127.0.0.1",
    port: 5000,
    dataDir: "/data",
    startTimeoutSeconds: 120,
  };
  const state: MlflowServerState = {
    ...args,
    pid: 1,
    pgid: 1,
    startTicks: "1",
    trackingUri: "http://127.0.0.1:5000",
    logFile: "/data/logs/x.log",
  };

  it("runs a SQLite-backed server with served artifacts", () => {
    expect(serverCommand(args)).toEqual([
      "server",
      "--host",
      "127.0.0.1",
      "--port",
      "5000",
      "--backend-store-uri",
      "sqlite:////data/mlflow.db",
      "--artifacts-destination",
      "/data/artifacts",
      "--serve-artifacts",
      "--workers",
      "1",
    ]);
    expect(serverCommand({ ...args, auth: { username: "a", password: "secret" } })).toEqual([
      ...serverCommand(args),
      "--app-name",
      "basic-auth",
    ]);
    expect(
      serverCommand({ ...args, auth: { username: "a", password: "secret" } }).join(" "),
    ).not.toContain("secret");
  });

  it("writes the admin account into MLflow's basic-auth ini", () => {
    expect(basicAuthIni("/data", { username: "admin", password: "pw" })).toBe(
      [
        "[mlflow]",
        "default_permission = READ",
        "database_uri = sqlite:////data/basic_auth.db",
        "admin_username = admin",
        "admin_password = pw",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        "",
      ].join("\n"),
    );
  });

  it("replaces on another port or data dir, restarts in place otherwise", () => {
    expect(diffMlflowServer(state, args)).toEqual({
      changes: false,
      replaces: [],
      deleteBeforeReplace: true,
    });
    expect(diffMlflowServer(state, { ...args, port: 5005 }).replaces).toEqual(["port"]);
    expect(diffMlflowServer(state, { ...args, dataDir: "/d2" }).replaces).toEqual(["dataDir"]);
    expect(diffMlflowServer(state, { ...args, mlflowBin: "/v2/bin/mlflow" })).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: true,
    });
    expect(serverId(args)).toBe("127.0.0.1:5000");
  });
});
