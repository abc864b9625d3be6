import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig } from "../../config/stackConfig";
import {
  diffProvisioning,
  scriptHashOf,
  type HostProvisioningState,
} from "../../providers/remote/hostProvisioningCore";
import { diffRemoteMlflowServer } from "../../providers/remote/mlflowServerCore";
import { credentialsEnv } from "../../providers/deployment/remoteScripts";
import {
  basicAuthIni,
  backendStoreUri,
  splitDsn,
  supervisorScript,
  systemdUnit,
} from "../../providers/remote/mlflowServerUnits";
import { diffDeployment } from "../../providers/deployment/core";
import { DEFAULT_LAYOUT } from "../../providers/remote/provisionScript";
import { loadProfile } from "../../config/provisioningProfile";
import { UNKNOWN } from "../../providers/diffKeys";
import { mockRecorder, value } from "../support/mockRecorder";
import { tempDir } from "../support/env";
import * as azureKeyVaultKey from "../../components/azureKeyVaultKey";
import { fakeKeyVault } from "../support/fakeKeyVault";
import { preflightScript } from "../../components/hostPreflight";

jest.mock("../../providers/hostProvisioning", () =>
  jest.requireActual("../support/dynamicStandIns").hostProvisioningModule(),
);
jest.mock("../../providers/remoteMlflowServer", () =>
  jest.requireActual("../support/dynamicStandIns").remoteMlflowServerModule(),
);
jest.mock("../../providers/modelDeployment", () =>
  jest.requireActual("../support/dynamicStandIns").modelDeploymentModule(),
);
jest.mock("../../providers/modelVersion", () =>
  jest.requireActual("../support/dynamicStandIns").modelVersionModule(),
);

const { registrations, calls, record, recordCall, settle, named } = mockRecorder();
const AWS_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nfrom-secrets-manager\n-----END OPENSSH PRIVATE KEY-----\n";
pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const outs: Record<string, unknown> = { ...args.inputs };
      if (args.type.endsWith(":HostProvisioning")) {
        outs.hash = "h1";
      }
      if (args.type.endsWith(":ModelDeployment")) {
        outs.url = `http://${args.inputs.remote?.value?.publicHost}:5001/invocations`;
      }
      if (args.type.endsWith(":ModelVersion")) {
        outs.modelUri = "models:/iris/1";
        outs.version = "1";
      }
      return { id: `${args.name}-id`, state: outs };
    },
    call: (args) => {
      recordCall(args);
      return args.token === "aws:secretsmanager/getSecretVersion:getSecretVersion"
        ? { ...args.inputs, secretString: AWS_KEY, arn: "arn:aws:secretsmanager:x", id: "x" }
        : args.inputs;
    },
  },
  "model-serving",
  "mockstack",
  false,
);

const { MlflowServer } =
  require("../../components/mlflowServer") as typeof import("../../components/mlflowServer");
const { RegisteredModel } =
  require("../../components/registeredModel") as typeof import("../../components/registeredModel");

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEm0Q2mlxMxhBGPS1hVpYIZbvzYi2KQTjn6ZsutbaqdF";
const KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n";

const projectDir = tempDir("remote-config");
fs.mkdirSync(path.join(projectDir, "models/iris"), { recursive: true });
fs.writeFileSync(path.join(projectDir, "models/iris/MLmodel"), "flavors: {}\n");
fs.writeFileSync(path.join(projectDir, "id_test"), KEY);
const ctx = { projectDir, stack: "dev", env: { MODEL_SERVING_CACHE: "/cache", HOME: "/home/u" } };
const invalid = (...lines: string[]) => `invalid stack configuration:\n  ${lines.join("\n  ")}`;
const remote = (extra: Record<string, unknown> = {}) => ({
  host: "mlflow.internal",
  user: "deploy",
  hostKey: HOST_KEY,
  privateKeyFile: "id_test",
  ...extra,
});
const parse = (raw: Parameters<typeof parseStackConfig>[0]) => () => parseStackConfig(raw, ctx);

describe("mlflow.remote in stack config", () => {
  it("resolves defaults and reads the key file", () => {
    const cfg = parseStackConfig(
      { mlflow: { mode: "remote", deployMode: "remote", remote: remote() } },
      ctx,
    );
    expect(cfg.mlflow.remote).toEqual({
      host: "mlflow.internal",
      port: 22,
      user: "deploy",
      hostKey: HOST_KEY,
      privateKeyFile: "id_test",
      profile: "default",
      extraApt: [],
      extraPip: [],
      backendStore: "sqlite",
      database: "mlflow",
      bindHost: "0.0.0.0",
      portRangeStart: 5001,
      serviceUser: "mlflow",
      baseDir: "/opt/model-serving",
      dataDir: "/var/lib/model-serving/mlflow",
      provisionTimeoutSeconds: 1800,
      preflight: true,
    });
    expect(cfg.remoteKey).toEqual({ privateKey: KEY, passphrase: undefined });
  });

  it("takes the key and passphrase from secret config", () => {
    const cfg = parseStackConfig(
      {
        mlflow: {
          mode: "remote",
          deployMode: "remote",
          remote: remote({ privateKeyFile: undefined }),
        },
        sshPrivateKey: { value: KEY, secret: true },
        sshPassphrase: { value: "pp", secret: true },
      },
      ctx,
    );
    expect(cfg.remoteKey).toEqual({ privateKey: KEY, passphrase: "pp" });
  });

  const cases: [string, Parameters<typeof parseStackConfig>[0], string][] = [
    [
      "mode remote without the block",
      { mlflow: { mode: "remote", deployMode: "remote" } },
      invalid(
        'model-serving:mlflow.remote: is required when mode is "remote" (host, user, hostKey, the key)',
      ),
    ],
    [
      "deploy mode remote without mode remote",
      { mlflow: { deployMode: "remote" } },
      invalid(
        'model-serving:mlflow.deployMode: deploy mode "remote" serves on the MLflow host over SSH: it needs mode "remote" (got "remote")',
      ),
    ],
    [
      "mode remote with deploy mode local",
      { mlflow: { mode: "remote", remote: remote() } },
      invalid(
        'model-serving:mlflow.deployMode: must be "remote" when mode is "remote" (models are served on the MLflow host)',
      ),
    ],
    [
      "a private key in plain config",
      { mlflow: { mode: "remote", deployMode: "remote", remote: remote({ privateKey: KEY }) } },
      invalid(
        "model-serving:mlflow.remote.privateKey: must not be plain config; set it as a secret: pulumi config set --secret sshPrivateKey (got <hidden>)",
      ),
    ],
    [
      "a bad host key pin",
      { mlflow: { mode: "remote", deployMode: "remote", remote: remote({ hostKey: "abc" }) } },
      invalid(
        'model-serving:mlflow.remote.hostKey: must be the host\'s public key line (ssh-ed25519 AAAA…, from /etc/ssh/ssh_host_ed25519_key.pub) or its SHA256:… fingerprint (ssh-keygen -lf) (got "abc")',
      ),
    ],
    [
      "an unknown profile",
      { mlflow: { mode: "remote", deployMode: "remote", remote: remote({ profile: "nope" }) } },
      invalid(
        'model-serving:mlflow.remote.profile: must be one of default, sparkflows-compat (got "nope")',
      ),
    ],
    [
      "a bad extra apt package",
      {
        mlflow: { mode: "remote", deployMode: "remote", remote: remote({ extraApt: ["Bad Pkg"] }) },
      },
      invalid(
        'model-serving:mlflow.remote.extraApt[0]: must be a Debian package name (lowercase letters, digits, + - .) (got "Bad Pkg")',
      ),
    ],
    [
      "no key at all",
      {
        mlflow: {
          mode: "remote",
          deployMode: "remote",
          remote: remote({ privateKeyFile: undefined }),
        },
      },
      invalid(
        "model-serving:mlflow.remote.privateKeyFile: is required unless the key is the secret model-serving:sshPrivateKey (pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519)",
      ),
    ],
    [
      "both a key file and the secret key",
      {
        mlflow: { mode: "remote", deployMode: "remote", remote: remote() },
        sshPrivateKey: { value: KEY, secret: true },
      },
      invalid(
        'model-serving:mlflow.remote.privateKeyFile: cannot be combined with the secret model-serving:sshPrivateKey; keep one (got "id_test")',
      ),
    ],
    [
      "the key as plain config",
      {
        mlflow: {
          mode: "remote",
          deployMode: "remote",
          remote: remote({ privateKeyFile: undefined }),
        },
        sshPrivateKey: { value: KEY, secret: false },
      },
      invalid(
        "model-serving:sshPrivateKey: must be secret config, not plain text; set it again with: pulumi config set --secret sshPrivateKey",
      ),
    ],
    [
      "a missing key file",
      {
        mlflow: {
          mode: "remote",
          deployMode: "remote",
          remote: remote({ privateKeyFile: "missing" }),
        },
      },
      invalid(
        `model-serving:mlflow.remote.privateKeyFile: cannot be read (ENOENT) (got "${path.join(projectDir, "missing")}")`,
      ),
    ],
  ];
  it.each(cases)("%s", (_title, raw, message) => {
    expect(parse(raw)).toThrow(new Error(message));
  });

  it("never echoes the key", () => {
    expect(
      parse({
        mlflow: { mode: "remote", deployMode: "remote", remote: remote({ privateKey: KEY }) },
      }),
    ).toThrow(expect.objectContaining({ message: expect.not.stringContaining("not-a-real-key") }));
  });
});

describe("MlflowServer mode remote and deploy mode remote (mocks)", () => {
  it("provisions the host, runs MLflow there and serves on it, the key secret", async () => {
    const mlflow = new MlflowServer("mlflow", {
      mode: "remote",
      port: 5000,
      remote: {
        host: "10.0.0.5",
        user: "deploy",
        hostKey: HOST_KEY,
        privateKey: KEY,
        extraPip: ["xgboost==2.1.4"],
        backendStore: { kind: "postgresql" },
      },
    });
    const model = new RegisteredModel("iris", {
      trackingUri: mlflow.trackingUri,
      registryId: mlflow.registryId,
      modelName: "iris",
      source: path.join(projectDir, "models/iris"),
      serve: { mode: "remote", remote: mlflow.remote, portRangeStart: 5001 },
    });
    expect(await value(mlflow.trackingUri)).toBe("http://10.0.0.5:5000");
    expect(await value(mlflow.registryId)).toBe(
      "remote:10.0.0.5:5000/var/lib/model-serving/mlflow",
    );
    expect(await (mlflow.remote as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(true);
    const entry = await value(model.endpoint);
    await settle();
    expect(registrations.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
      "command:remote:Command mlflow-preflight",
      "modelserving:mlflow:MlflowServer mlflow",
      "modelserving:mlflow:RegisteredModel iris",
      "pulumi-nodejs:dynamic/modelserving:HostProvisioning mlflow-host",
      "pulumi-nodejs:dynamic/modelserving:ModelDeployment iris-server",
      "pulumi-nodejs:dynamic/modelserving:ModelVersion iris-version",
      "pulumi-nodejs:dynamic/modelserving:RemoteMlflowServer mlflow-server",
    ]);
    // A secret as the engine receives it: Pulumi's secret signature around the value.
    const connection = {
      [SECRET_SIG]: SECRET_VALUE,
      value: { host: "10.0.0.5", port: 22, user: "deploy", privateKey: KEY, hostKey: HOST_KEY },
    };
    expect(named("mlflow-host")).toMatchObject({
      connection,
      profile: { name: "default" },
      layout: DEFAULT_LAYOUT,
      extraApt: [],
      extraPip: ["xgboost==2.1.4"],
      postgresql: true,
      timeoutSeconds: 1800,
    });
    expect(named("mlflow-server")).toMatchObject({
      connection,
      layout: DEFAULT_LAYOUT,
      bindHost: "0.0.0.0",
      port: 5000,
      publicHost: "10.0.0.5",
      backendStore: { kind: "postgresql-local", database: "mlflow" },
      startTimeoutSeconds: 120,
      provisioned: "h1",
    });
    // The one-shot preflight: the script of the profile, port and service user; the connection secret,
    // in remote.Command's shape (the host key line pinned).
    const preflight = named("mlflow-preflight");
    expect(preflight).toEqual({
      connection: {
        [SECRET_SIG]: SECRET_VALUE,
        value: {
          host: "10.0.0.5",
          port: 22,
          user: "deploy",
          privateKey: KEY,
          hostKey: HOST_KEY,
          dialErrorLimit: 3,
          perDialTimeout: 20,
        },
      },
      create: preflightScript({
        profile: loadProfile("default"),
        mlflowPort: 5000,
        serviceUser: "mlflow",
      }),
      addPreviousOutputInEnv: false,
    });
    expect(preflight.create).toContain("  debian:12|debian:13|ubuntu:24.04) ;;");
    expect(preflight.create).toContain("sys.version_info >= (3, 11)");
    expect(preflight.create).toContain("port=5000");
    expect(preflight.create).toContain("svc=$(id -u mlflow 2>/dev/null || echo none)");
    expect(named("iris-server")).toMatchObject({
      mode: "remote",
      host: "0.0.0.0",
      portRangeStart: 5001,
      mlflowBin: "/opt/model-serving/venv/bin/mlflow",
      runDir: "/opt/model-serving/run/model-servers",
      passEnv: [],
      // The whole remote block is secret (it holds the connection).
      remote: {
        [SECRET_SIG]: SECRET_VALUE,
        value: {
          connection: connection.value,
          layout: DEFAULT_LAYOUT,
          publicHost: "10.0.0.5",
          hostTrackingUri: "http://127.0.0.1:5000",
        },
      },
    });
    expect(entry?.url).toBe("http://10.0.0.5:5001/invocations");
  });

  it("refuses a key given twice or not at all, and basic auth", () => {
    const base = { host: "h", user: "u", hostKey: HOST_KEY };
    expect(
      () =>
        new MlflowServer("a", {
          mode: "remote",
          remote: { ...base, privateKey: KEY, privateKeyFile: "k" } as never,
        }),
    ).toThrow(
      "MlflowServer: remote needs exactly one of privateKey, privateKeyFile, awsSecretsManager and azureKeyVault",
    );
    expect(() => new MlflowServer("b", { mode: "remote", remote: base as never })).toThrow(
      "MlflowServer: remote needs exactly one of privateKey, privateKeyFile, awsSecretsManager and azureKeyVault",
    );
  });

  it("basic auth: the remote server gets basicAuth and the admin's credentials as a secret", async () => {
    const mlflow = new MlflowServer("authed", {
      mode: "remote",
      password: "Remote-Adm1n-pass",
      remote: { host: "10.0.0.8", user: "deploy", hostKey: HOST_KEY, privateKey: KEY },
    });
    await value(mlflow.trackingUri);
    await settle();
    expect(named("authed-server")).toMatchObject({
      basicAuth: true,
      auth: {
        [SECRET_SIG]: SECRET_VALUE,
        value: { username: "admin", password: "Remote-Adm1n-pass" },
      },
    });
    expect(await value(mlflow.auth)).toEqual({ username: "admin", password: "Remote-Adm1n-pass" });
  });
});

describe("remote diffs", () => {
  const conn = { host: "h", port: 22, user: "u", privateKey: KEY, hostKey: HOST_KEY };
  const args = {
    connection: conn,
    profile: loadProfile("default"),
    layout: DEFAULT_LAYOUT,
    extraApt: [],
    extraPip: [],
    postgresql: false,
    timeoutSeconds: 1800,
  };
  const state: HostProvisioningState = { ...args, hash: scriptHashOf(args) };

  it("provisioning: same inputs no change, new extras update, another host replaces", () => {
    expect(diffProvisioning(state, args)).toEqual({
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
    expect(diffProvisioning(state, { ...args, extraPip: ["xgboost==2.1.4"] })).toMatchObject({
      changes: true,
      replaces: [],
    });
    expect(
      diffProvisioning(state, { ...args, connection: { ...conn, privateKey: "k2" } }),
    ).toMatchObject({
      changes: true,
      replaces: [],
    });
    expect(diffProvisioning(state, { ...args, connection: { ...conn, host: "h2" } })).toMatchObject(
      {
        changes: true,
        replaces: ["connection"],
      },
    );
    // Unknown in preview: an update at most, never a replacement.
    expect(diffProvisioning(state, { ...args, connection: UNKNOWN as never })).toMatchObject({
      changes: true,
      replaces: [],
    });
  });

  it("remote MLflow server: provisioning restarts, port or host replaces", () => {
    const server = {
      connection: conn,
      layout: DEFAULT_LAYOUT,
      bindHost: "0.0.0.0",
      port: 5000,
      publicHost: "h",
      backendStore: { kind: "sqlite" as const },
      startTimeoutSeconds: 120,
      provisioned: "h1",
    };
    const st = {
      ...server,
      supervisor: "process" as const,
      trackingUri: "http://h:5000",
      logFile: "l",
    };
    expect(diffRemoteMlflowServer(st, server)).toEqual({
      changes: false,
      replaces: [],
      deleteBeforeReplace: true,
    });
    expect(diffRemoteMlflowServer(st, { ...server, provisioned: "h2" })).toMatchObject({
      changes: true,
      replaces: [],
    });
    expect(diffRemoteMlflowServer(st, { ...server, port: 5050 })).toMatchObject({
      replaces: ["port"],
    });
    expect(
      diffRemoteMlflowServer(st, { ...server, connection: { ...conn, host: "other" } }),
    ).toMatchObject({ replaces: ["connection"] });
  });

  it("deployment: a rotated key is recorded, another host replaces", () => {
    const remoteArgs = {
      connection: conn,
      layout: DEFAULT_LAYOUT,
      publicHost: "h",
      hostTrackingUri: "http://127.0.0.1:5000",
    };
    const dep = {
      mode: "remote" as const,
      modelUri: "models:/iris/1",
      trackingUri: "http://h:5000",
      host: "0.0.0.0",
      portRangeStart: 5001,
      mlflowBin: "/opt/model-serving/venv/bin/mlflow",
      runDir: "/opt/model-serving/run/model-servers",
      startTimeoutSeconds: 300,
      passEnv: [],
      remote: remoteArgs,
    };
    const st = {
      ...dep,
      pid: 1,
      pgid: 1,
      startTicks: "1",
      servedPort: 5001,
      baseUrl: "http://h:5001",
      url: "http://h:5001/invocations",
      logFile: "l",
    };
    expect(diffDeployment(st, dep)).toMatchObject({ changes: false, replaces: [] });
    expect(
      diffDeployment(st, {
        ...dep,
        remote: { ...remoteArgs, connection: { ...conn, privateKey: "k2" } },
      }),
    ).toMatchObject({ changes: true, replaces: [] });
    expect(
      diffDeployment(st, { ...dep, remote: { ...remoteArgs, publicHost: "h2" } }),
    ).toMatchObject({ changes: true, replaces: ["remote"] });
  });
});

describe("an existing PostgreSQL by DSN", () => {
  it("splits the DSN: the URI without the password, the password in a pgpass line", () => {
    expect(splitDsn("postgresql://ml:p%3Aw%5Cd@db.internal:6543/mlflow?sslmode=require")).toEqual({
      uri: "postgresql+psycopg2://ml@db.internal:6543/mlflow?sslmode=require",
      pgpass: "db.internal:6543:mlflow:ml:p\\:w\\\\d",
    });
    expect(splitDsn("postgres://ml@db/mlflow")).toEqual({
      uri: "postgresql+psycopg2://ml@db/mlflow",
      pgpass: undefined,
    });
    expect(() => splitDsn("mysql://u:p@h/db")).toThrow(
      "backendStore dsn: must be postgresql://user:password@host:port/database (the scheme, host or database is missing)",
    );
  });

  it("gives the server PGPASSFILE, never the password", () => {
    const spec = {
      layout: DEFAULT_LAYOUT,
      bindHost: "0.0.0.0",
      port: 5000,
      publicHost: "h",
      backendStore: { kind: "postgresql-dsn" as const, dsn: "postgresql://ml:s3cret@db/mlflow" },
    };
    expect(backendStoreUri(spec)).toBe("postgresql+psycopg2://ml@db/mlflow");
    const unit = systemdUnit(spec);
    const loop = supervisorScript(spec);
    expect(unit).toContain("Environment=PGPASSFILE=/opt/model-serving/pgpass\n");
    expect(loop).toContain("PGPASSFILE=/opt/model-serving/pgpass ");
    expect(unit + loop).not.toContain("s3cret");
  });

  it("basic auth: the app, the ini's path and the CSRF key file, never the password", () => {
    const spec = {
      layout: DEFAULT_LAYOUT,
      bindHost: "0.0.0.0",
      port: 5000,
      publicHost: "h",
      backendStore: { kind: "sqlite" as const },
      basicAuth: true,
    };
    const unit = systemdUnit(spec);
    const loop = supervisorScript(spec);
    expect(unit).toContain(" --app-name basic-auth\n");
    expect(unit).toContain(
      "Environment=MLFLOW_AUTH_CONFIG_PATH=/opt/model-serving/basic_auth.ini\nEnvironmentFile=/opt/model-serving/auth.env\n",
    );
    expect(loop).toContain("set -a; . /opt/model-serving/auth.env; set +a\n");
    expect(loop).toContain(" MLFLOW_AUTH_CONFIG_PATH=/opt/model-serving/basic_auth.ini ");
    expect(basicAuthIni(DEFAULT_LAYOUT, { username: "admin", password: "50%-off'pass" })).toBe(
      [
        "[mlflow]",
        "default_permission = READ",
        "database_uri = sqlite:////var/lib/model-serving/mlflow/basic_auth.db",
        "admin_username = admin",
        "admin_password = 50%%-off'pass",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        "",
      ].join("\n"),
    );
    expect(credentialsEnv({ username: "admin", password: "it's" })).toBe(
      "MLFLOW_TRACKING_USERNAME=admin\nMLFLOW_TRACKING_PASSWORD='it'\\''s'\n",
    );
  });

  it("is config: backendStore dsn needs the secret mlflowBackendStoreDsn", () => {
    const base = { mode: "remote", deployMode: "remote", remote: remote({ backendStore: "dsn" }) };
    expect(parse({ mlflow: base })).toThrow(
      new Error(
        invalid(
          "model-serving:mlflow.remote.backendStore: needs the secret model-serving:mlflowBackendStoreDsn (pulumi config set --secret mlflowBackendStoreDsn 'postgresql://user:password@host:5432/mlflow') (got \"dsn\")",
        ),
      ),
    );
    expect(
      parse({ mlflow: base, backendStoreDsn: { value: "postgresql://u:pw@h/db", secret: false } }),
    ).toThrow(
      new Error(
        invalid(
          "model-serving:mlflowBackendStoreDsn: must be secret config, not plain text; set it again with: pulumi config set --secret mlflowBackendStoreDsn",
        ),
      ),
    );
    const cfg = parseStackConfig(
      { mlflow: base, backendStoreDsn: { value: "postgresql://u:pw@h/db", secret: true } },
      ctx,
    );
    expect(cfg.remoteKey?.dsn).toBe("postgresql://u:pw@h/db");
  });
});

describe("the key held in AWS Secrets Manager (mocks only: no AWS account here)", () => {
  it("reads it with aws.secretsmanager.getSecretVersion and passes it on as a secret", async () => {
    const mlflow = new MlflowServer("aws", {
      mode: "remote",
      remote: {
        host: "10.0.0.6",
        user: "deploy",
        hostKey: HOST_KEY,
        awsSecretsManager: { secretId: "prod/mlflow-host/ssh-key" },
      },
    });
    await value(mlflow.trackingUri);
    await settle();
    expect(
      calls
        .filter((c) => c.token.startsWith("aws:secretsmanager"))
        .map((c) => [c.token, c.inputs.secretId]),
    ).toEqual([
      ["aws:secretsmanager/getSecretVersion:getSecretVersion", "prod/mlflow-host/ssh-key"],
    ]);
    expect(named("aws-host").connection).toEqual({
      [SECRET_SIG]: SECRET_VALUE,
      value: { host: "10.0.0.6", port: 22, user: "deploy", privateKey: AWS_KEY, hostKey: HOST_KEY },
    });
  });

  it("is config: privateKeyAwsSecret instead of a key file or the secret key", () => {
    const cfg = parseStackConfig(
      {
        mlflow: {
          mode: "remote",
          deployMode: "remote",
          remote: remote({ privateKeyFile: undefined, privateKeyAwsSecret: "prod/ssh-key" }),
        },
      },
      ctx,
    );
    expect(cfg.mlflow.remote?.privateKeyAwsSecret).toBe("prod/ssh-key");
    expect(cfg.remoteKey?.privateKey).toBeUndefined();
    expect(
      parse({
        mlflow: {
          mode: "remote",
          deployMode: "remote",
          remote: remote({ privateKeyAwsSecret: "prod/ssh-key" }),
        },
      }),
    ).toThrow(
      new Error(
        invalid(
          'model-serving:mlflow.remote.privateKeyAwsSecret: cannot be combined with privateKeyFile; keep one (got "prod/ssh-key")',
        ),
      ),
    );
  });
});

describe("the key held in Azure Key Vault (the real SDK against a loopback vault)", () => {
  const AZURE_KEY =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nfrom-key-vault\n-----END OPENSSH PRIVATE KEY-----\n";
  const ENV = ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"];
  const saved: Record<string, string | undefined> = {};
  let vault: Awaited<ReturnType<typeof fakeKeyVault>>;
  beforeAll(async () => {
    vault = await fakeKeyVault({ "mlflow-host-key": { versions: { "9f8e7d": AZURE_KEY } } });
    for (const k of ENV) {
      saved[k] = process.env[k];
      delete process.env[k];
    }
    process.env.IDENTITY_ENDPOINT = vault.identityEndpoint;
    process.env.IDENTITY_HEADER = vault.identityHeader;
  });
  afterAll(async () => {
    for (const k of ENV) {
      if (saved[k] === undefined) {
        delete process.env[k];
      } else {
        process.env[k] = saved[k];
      }
    }
    jest.restoreAllMocks();
    await vault?.close();
  });

  it("reads it at program time with the Key Vault SDK and passes it on as a secret", async () => {
    // The component's own read, with the loopback vault's certificate trusted (nothing else changed).
    const real = azureKeyVaultKey.azureKeyVaultSecret;
    const read = jest.spyOn(azureKeyVaultKey, "azureKeyVaultSecret").mockImplementation((ref) =>
      real(ref, {
        clientOptions: { tlsOptions: { ca: vault.ca }, disableChallengeResourceVerification: true },
      }),
    );
    const mlflow = new MlflowServer("kv", {
      mode: "remote",
      remote: {
        host: "10.0.0.7",
        user: "deploy",
        hostKey: HOST_KEY,
        azureKeyVault: { vaultUrl: vault.vaultUrl, name: "mlflow-host-key" },
      },
    });
    await value(mlflow.trackingUri);
    await settle();
    expect(read).toHaveBeenCalledWith({ vaultUrl: vault.vaultUrl, name: "mlflow-host-key" });
    expect(vault.requests.filter((r) => r.authorized).map((r) => r.path)).toEqual([
      "/secrets/mlflow-host-key/",
    ]);
    expect(named("kv-host").connection).toEqual({
      [SECRET_SIG]: SECRET_VALUE,
      value: {
        host: "10.0.0.7",
        port: 22,
        user: "deploy",
        privateKey: AZURE_KEY,
        hostKey: HOST_KEY,
      },
    });
    expect(named("kv-server").connection[SECRET_SIG]).toBe(SECRET_VALUE);
  });

  it("is config: privateKeyAzureSecret, alone", () => {
    const kv = { vaultUrl: "https://ops-kv.vault.azure.net", name: "mlflow-host-key" };
    const cfg = parseStackConfig(
      {
        mlflow: {
          mode: "remote",
          deployMode: "remote",
          remote: remote({ privateKeyFile: undefined, privateKeyAzureSecret: kv }),
        },
      },
      ctx,
    );
    expect(cfg.mlflow.remote?.privateKeyAzureSecret).toEqual(kv);
    expect(cfg.remoteKey?.privateKey).toBeUndefined();
    expect(
      parse({
        mlflow: {
          mode: "remote",
          deployMode: "remote",
          remote: remote({ privateKeyAzureSecret: kv, privateKeyAwsSecret: "prod/ssh-key" }),
        },
      }),
    ).toThrow(
      new Error(
        invalid(
          'model-serving:mlflow.remote.privateKeyAzureSecret: cannot be combined with privateKeyFile or privateKeyAwsSecret; keep one (got "https://ops-kv.vault.azure.net mlflow-host-key")',
        ),
      ),
    );
    expect(
      parse({
        mlflow: {
          mode: "remote",
          deployMode: "remote",
          remote: remote({
            privateKeyFile: undefined,
            privateKeyAzureSecret: { vaultUrl: "http://ops-kv.vault.azure.net", name: "k_1" },
          }),
        },
      }),
    ).toThrow(
      new Error(
        invalid(
          'model-serving:mlflow.remote.privateKeyAzureSecret.vaultUrl: must be the vault\'s https:// URL (got "http://ops-kv.vault.azure.net")',
          'model-serving:mlflow.remote.privateKeyAzureSecret.name: must be a Key Vault secret name (letters, digits, -) (got "k_1")',
        ),
      ),
    );
  });
});
