import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import { loadProfile } from "../config/provisioningProfile";
import { resolveKeyFile } from "../config/remoteHost";
import { AzureKeyVaultSecretRef, azureKeyVaultSecret } from "./azureKeyVaultKey";
import { hostPreflight } from "./hostPreflight";
import type { RemoteServingArgs } from "../providers/deployment/types";
import { HostProvisioning } from "../providers/hostProvisioning";
import { RemoteMlflowServer } from "../providers/remoteMlflowServer";
import { DEFAULT_LAYOUT, HostLayout } from "../providers/remote/provisionScript";
import type { SshConnection } from "../providers/ssh/connection";

/** The private key: its text (a secret), a file on the deploying machine read into a secret, a
 * secret of AWS Secrets Manager (read with the official data source, aws.secretsmanager) or of Azure
 * Key Vault (read with the Key Vault SDK: azure-native's getSecret never returns the value). */
export type SshKeySource =
  | {
      readonly privateKey: pulumi.Input<string>;
      readonly privateKeyFile?: undefined;
      readonly awsSecretsManager?: undefined;
      readonly azureKeyVault?: undefined;
    }
  | {
      readonly privateKeyFile: string;
      readonly privateKey?: undefined;
      readonly awsSecretsManager?: undefined;
      readonly azureKeyVault?: undefined;
    }
  | {
      /** The secret's id or ARN; its SecretString is the key text. */
      readonly awsSecretsManager: { readonly secretId: pulumi.Input<string> };
      readonly privateKey?: undefined;
      readonly privateKeyFile?: undefined;
      readonly azureKeyVault?: undefined;
    }
  | {
      /** The vault URL, the secret's name and optionally its version; its value is the key text. */
      readonly azureKeyVault: pulumi.Input<AzureKeyVaultSecretRef>;
      readonly privateKey?: undefined;
      readonly privateKeyFile?: undefined;
      readonly awsSecretsManager?: undefined;
    };

/** The MLflow host's backend store: SQLite in the data directory, or PostgreSQL installed on the host. */
export type RemoteBackendStore =
  | { readonly kind: "sqlite" }
  | {
      readonly kind: "postgresql";
      /** Database name (default "mlflow"). */
      readonly database?: string;
    }
  /** An existing PostgreSQL: `postgresql://user:password@host:port/db`, a secret. */
  | { readonly kind: "dsn"; readonly dsn: pulumi.Input<string> };

export type RemoteHostArgs = SshKeySource & {
  /** Address the deploying machine reaches the host on. */
  readonly host: pulumi.Input<string>;
  /** SSH port (default 22). */
  readonly sshPort?: pulumi.Input<number>;
  /** root, or a user with passwordless sudo. */
  readonly user: pulumi.Input<string>;
  /** Passphrase of the private key (secret). */
  readonly passphrase?: pulumi.Input<string | undefined>;
  /** The host's public key line or SHA256 fingerprint; any other key is refused. */
  readonly hostKey: pulumi.Input<string>;
  /** Provisioning profile name, provisioning/profiles/<name>.yaml (default "default"). */
  readonly profile?: string;
  /** Debian packages installed besides the profile's. */
  readonly extraApt?: pulumi.Input<pulumi.Input<string>[]>;
  /** pip requirements installed into the venv besides the profile's. */
  readonly extraPip?: pulumi.Input<pulumi.Input<string>[]>;
  /** Backend store (default SQLite). */
  readonly backendStore?: RemoteBackendStore;
  /** Interface MLflow binds on the host (default 0.0.0.0). */
  readonly bindHost?: pulumi.Input<string>;
  /** Host name in the tracking URI (default `host`). */
  readonly publicHost?: pulumi.Input<string>;
  /** Service user and directories on the host (default mlflow, /opt/model-serving, /var/lib/...). */
  readonly layout?: Partial<HostLayout>;
  /** Deadline of one provisioning run, seconds (default 1800). */
  readonly provisionTimeoutSeconds?: pulumi.Input<number>;
  /** Check the host first with a one-shot remote.Command (needs the command plugin; default true). */
  readonly preflight?: boolean;
};

/** The SecretString of an AWS Secrets Manager secret (the AWS SDK is loaded only for this). */
function awsSecretKey(secretId: pulumi.Input<string>, parent: pulumi.Resource) {
  const aws = require("@pulumi/aws") as typeof import("@pulumi/aws");
  return pulumi.secret(
    aws.secretsmanager.getSecretVersionOutput({ secretId }, { parent }).secretString,
  );
}

export interface RemoteMlflowHost {
  trackingUri: pulumi.Output<string>;
  registryId: pulumi.Output<string>;
  /** What deploy mode remote needs (secret: the connection has the key). */
  serving: pulumi.Output<RemoteServingArgs>;
  /** The host's provisioning hash (a new one means a new venv). */
  provisioned: pulumi.Output<string>;
}

/** Provisions the host and runs `mlflow server` there (children of `parent`, named `${name}-…`). */
export function remoteMlflowHost(
  name: string,
  args: RemoteHostArgs,
  port: pulumi.Input<number>,
  startTimeoutSeconds: pulumi.Input<number>,
  auth: pulumi.Output<{ username: string; password: string }> | undefined,
  parent: pulumi.Resource,
): RemoteMlflowHost {
  const sources = [
    args.privateKey,
    args.privateKeyFile,
    args.awsSecretsManager,
    args.azureKeyVault,
  ];
  if (sources.filter((s) => s !== undefined).length !== 1) {
    throw new Error(
      "MlflowServer: remote needs exactly one of privateKey, privateKeyFile, awsSecretsManager and azureKeyVault",
    );
  }
  const backendStore = args.backendStore ?? { kind: "sqlite" };
  if (!["sqlite", "postgresql", "dsn"].includes(backendStore.kind)) {
    throw new Error(
      `MlflowServer: remote.backendStore.kind must be "sqlite", "postgresql" or "dsn", got "${(backendStore as { kind: string }).kind}"`,
    );
  }
  const profile = loadProfile(args.profile ?? "default");
  const layout: HostLayout = { ...DEFAULT_LAYOUT, ...args.layout };
  const privateKey =
    args.privateKeyFile !== undefined
      ? pulumi.secret(fs.readFileSync(resolveKeyFile(args.privateKeyFile, process.cwd()), "utf8"))
      : args.awsSecretsManager !== undefined
        ? awsSecretKey(args.awsSecretsManager.secretId, parent)
        : args.azureKeyVault !== undefined
          ? azureKeyVaultSecret(args.azureKeyVault)
          : pulumi.secret(args.privateKey!);
  const connection: pulumi.Output<SshConnection> = pulumi.secret(
    pulumi
      .all([args.host, args.sshPort ?? 22, args.user, privateKey, args.passphrase, args.hostKey])
      .apply(([host, sshPort, user, key, passphrase, hostKey]) => ({
        host,
        port: sshPort,
        user,
        privateKey: key,
        ...(passphrase === undefined ? {} : { passphrase }),
        hostKey,
      })),
  );
  // Fails early, before anything is installed, on a host that cannot work (one-shot remote.Command).
  const preflight =
    (args.preflight ?? true)
      ? hostPreflight(
          name,
          connection,
          args.hostKey,
          { profile, mlflowPort: port, serviceUser: layout.serviceUser },
          parent,
        )
      : undefined;
  const provisioning = new HostProvisioning(
    `${name}-host`,
    {
      connection,
      profile,
      layout,
      extraApt: args.extraApt ?? [],
      extraPip: args.extraPip ?? [],
      postgresql: backendStore.kind === "postgresql",
      postgresqlClient: backendStore.kind === "dsn",
      timeoutSeconds: args.provisionTimeoutSeconds ?? 1800,
    },
    { parent, dependsOn: preflight === undefined ? [] : [preflight] },
  );
  const publicHost = pulumi.output(args.publicHost ?? args.host);
  const bindHost = pulumi.output(args.bindHost ?? "0.0.0.0");
  const server = new RemoteMlflowServer(
    `${name}-server`,
    {
      connection,
      layout,
      bindHost,
      port,
      publicHost,
      backendStore:
        backendStore.kind === "sqlite"
          ? { kind: "sqlite" }
          : backendStore.kind === "postgresql"
            ? { kind: "postgresql-local", database: backendStore.database ?? "mlflow" }
            : pulumi.secret(
                pulumi
                  .output(backendStore.dsn)
                  .apply((dsn) => ({ kind: "postgresql-dsn" as const, dsn })),
              ),
      startTimeoutSeconds,
      provisioned: provisioning.hash,
      ...(auth === undefined ? {} : { basicAuth: true, auth }),
    },
    { parent },
  );
  // Known in preview (from publicHost and port) and still waiting for the server (its urn).
  const trackingUri = pulumi
    .all([publicHost, port, server.urn])
    .apply(([h, p]) => `http://${h.includes(":") ? `[${h}]` : h}:${p}`);
  const serving = pulumi.secret(
    pulumi
      .all([connection, publicHost, bindHost, port, server.urn])
      .apply(([conn, pub, bind, p]) => ({
        connection: conn,
        layout,
        publicHost: pub,
        // The host reaches its own MLflow on loopback unless MLflow binds one address only.
        hostTrackingUri: `http://${bind === "0.0.0.0" || bind === "::" ? "127.0.0.1" : bind}:${p}`,
      })),
  );
  return {
    trackingUri,
    registryId: pulumi
      .all([publicHost, port])
      .apply(([h, p]) => `remote:${h}:${p}${layout.dataDir}`),
    serving,
    provisioned: provisioning.hash,
  };
}
