import * as net from "net";
import { checkDeployment } from "../../providers/deployment/core";
import { DeploymentArgs } from "../../providers/deployment/types";
import { toMlflowError } from "../../providers/mlflow/client";
import { checkMlflowServer, serverEnv } from "../../providers/mlflowServerCore";
import { passEnvProblem, serverEnvironment } from "../../providers/process/env";

// Fixes the fault and bench suites found: a taken port fails in check() (before a replacement stops the
// running server), and the local MLflow server runs without MLflow 3's job runner unless asked to.

function listen(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () => new Promise((r) => server.close(() => r())),
      }),
    );
  });
}

describe("port checks in check()", () => {
  let taken: { port: number; close: () => Promise<void> };
  beforeAll(async () => {
    taken = await listen();
  });
  afterAll(() => taken.close());

  const server = (port: number) => ({
    mlflowBin: "/venv/bin/mlflow",
    host: "127.0.0.1",
    port,
    dataDir: "/data",
    startTimeoutSeconds: 120,
  });
  const deployment = (port?: number): DeploymentArgs => ({
    mode: "local",
    modelUri: "models:/iris/1",
    trackingUri: "http://127.0.0.1:5000",
    host: "127.0.0.1",
    port,
    portRangeStart: 5001,
    mlflowBin: "/venv/bin/mlflow",
    runDir: "/run",
    startTimeoutSeconds: 300,
  });

  it("MLflow server: a new or moved port held by another process fails, naming the port", async () => {
    const failure = [
      {
        property: "port",
        reason: `mlflow.port: ${taken.port} on 127.0.0.1 is already in use by a process this stack does not own; stop it or choose another port`,
      },
    ];
    expect(await checkMlflowServer({}, server(taken.port))).toEqual(failure);
    expect(await checkMlflowServer(server(1), server(taken.port))).toEqual(failure);
    // Its own port (unchanged) is never probed; unknown values (preview) are not checked.
    expect(await checkMlflowServer(server(taken.port), server(taken.port))).toEqual([]);
    expect(await checkMlflowServer({}, { ...server(taken.port), port: undefined })).toEqual([]);
  });

  it("model deployment: same rule for a fixed port; automatic ports are picked at create", async () => {
    expect(await checkDeployment(deployment(1), deployment(taken.port))).toEqual([
      {
        property: "port",
        reason: `port: ${taken.port} on 127.0.0.1 is already in use by a process this stack does not own; choose another port or stop that process`,
      },
    ]);
    expect(await checkDeployment(deployment(taken.port), deployment(taken.port))).toEqual([]);
    expect(await checkDeployment({}, deployment(undefined))).toEqual([]);
    const free = await listen();
    await free.close();
    expect(await checkDeployment({}, deployment(free.port))).toEqual([]);
  });
});

describe("server environments: an allow-list, never the deploying environment", () => {
  const deploying = {
    PATH: "/usr/bin:/bin",
    HOME: "/home/op",
    LANG: "C.UTF-8",
    LC_ALL: "C.UTF-8",
    TZ: "UTC",
    TMPDIR: "/tmp/op",
    USER_FLAG: "pass-me",
    PULUMI_CONFIG_PASSPHRASE: "canary-passphrase",
    PULUMI_ACCESS_TOKEN: "pul-canary",
    AWS_SECRET_ACCESS_KEY: "aws-canary",
    AWS_ACCESS_KEY_ID: "AKIACANARY",
    AZURE_CLIENT_SECRET: "azure-canary",
    ARM_CLIENT_SECRET: "arm-canary",
    GOOGLE_APPLICATION_CREDENTIALS: "/secret/gcp.json",
    GITHUB_TOKEN: "gh-canary",
    MLFLOW_TRACKING_URI: "http://elsewhere",
    MLFLOW_TRACKING_PASSWORD: "operator-password",
    MODEL_SERVING_CACHE: "/cache",
  };

  it("builds exactly PATH (venv first), HOME, LANG, LC_*, TZ, TMPDIR, passEnv and what the server needs", () => {
    expect(
      serverEnvironment({
        base: deploying,
        mlflowBin: "/venv/bin/mlflow",
        passEnv: ["USER_FLAG", "NOT_SET"],
        set: { MLFLOW_TRACKING_URI: "http://127.0.0.1:5000", MLFLOW_TRACKING_PASSWORD: undefined },
      }),
    ).toEqual({
      PATH: "/venv/bin:/usr/bin:/bin",
      HOME: "/home/op",
      LANG: "C.UTF-8",
      LC_ALL: "C.UTF-8",
      TZ: "UTC",
      TMPDIR: "/tmp/op",
      USER_FLAG: "pass-me",
      MLFLOW_TRACKING_URI: "http://127.0.0.1:5000",
    });
  });

  it("passEnv cannot smuggle in a variable the provider sets itself", () => {
    const env = serverEnvironment({
      base: deploying,
      mlflowBin: "/venv/bin/mlflow",
      passEnv: ["MLFLOW_TRACKING_PASSWORD", "PATH"],
    });
    expect(env.MLFLOW_TRACKING_PASSWORD).toBeUndefined();
    expect(env.PATH).toBe("/venv/bin:/usr/bin:/bin");
    expect(passEnvProblem(["MLFLOW_TRACKING_PASSWORD"])).toBe(
      "passEnv: MLFLOW_TRACKING_PASSWORD is set by model-serving itself and cannot be passed through",
    );
    expect(passEnvProblem(["AWS-KEY"])).toBe(
      'passEnv: "AWS-KEY" is not an environment variable name',
    );
    expect(passEnvProblem("AWS_REGION")).toBe(
      'passEnv: must be a list of environment variable names (got "AWS_REGION")',
    );
    expect(passEnvProblem(["AWS_REGION"])).toBeUndefined();
    expect(passEnvProblem(undefined)).toBeUndefined();
  });

  it("MLflow server: job runner off unless the caller set it, no MLFLOW_TRACKING_URI, no secrets", () => {
    expect(serverEnv("/venv/bin/mlflow", deploying)).toEqual({
      MLFLOW_SERVER_ENABLE_JOB_EXECUTION: "false",
      PATH: "/venv/bin:/usr/bin:/bin",
      HOME: "/home/op",
      LANG: "C.UTF-8",
      LC_ALL: "C.UTF-8",
      TZ: "UTC",
      TMPDIR: "/tmp/op",
    });
    expect(
      serverEnv("/venv/bin/mlflow", {
        PATH: "/usr/bin",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION: "true",
      }).MLFLOW_SERVER_ENABLE_JOB_EXECUTION,
    ).toBe("true");
    expect(
      serverEnv("/venv/bin/mlflow", deploying, ["USER_FLAG"], {
        MLFLOW_AUTH_CONFIG_PATH: "/data/basic_auth.ini",
      }),
    ).toMatchObject({ USER_FLAG: "pass-me", MLFLOW_AUTH_CONFIG_PATH: "/data/basic_auth.ini" });
  });

  it("check() names a bad passEnv entry", async () => {
    expect(await checkDeployment({}, { passEnv: ["PATH"] })).toEqual([
      {
        property: "passEnv",
        reason: "passEnv: PATH is set by model-serving itself and cannot be passed through",
      },
    ]);
    expect(await checkMlflowServer({}, { passEnv: ["A B"] })).toEqual([
      { property: "passEnv", reason: 'mlflow.passEnv: "A B" is not an environment variable name' },
    ]);
  });
});

// That MlflowError keeps its message inside a dynamic provider (Pulumi's closure serializer rewrites the
// class) is proven on the real engine: test/faults/faults.test.ts expects "MLflow at ... is unreachable"
// in the output of `pulumi up` (before the fix it said "error: undefined").
describe("MLflow errors", () => {
  it("name the credential settings on a 401", () => {
    const err = toMlflowError(
      {
        isAxiosError: true,
        message: "Request failed with status code 401",
        response: { status: 401, data: "You are not authenticated." },
      },
      "http://127.0.0.1:5000",
      "GET",
      "/api/2.0/mlflow/registered-models/get",
    );
    expect(err.message).toBe(
      "MLflow GET /api/2.0/mlflow/registered-models/get failed with 401 UNAUTHENTICATED: You are not " +
        "authenticated.; check the MLflow credentials (secret config model-serving:mlflowPassword and " +
        "model-serving:mlflow.username, or MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN)",
    );
  });
});
