import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { z } from "zod";
import { problem, wholeNumber } from "./issues";
import { aptPackage, pipRequirement, profileNames } from "./provisioningProfile";

/**
 * `model-serving:mlflow.remote`: the MLflow host reached over SSH (mlflow.mode `remote`, and the host of
 * deploy mode `remote`). The private key comes from the secret config `model-serving:sshPrivateKey`
 * (`pulumi config set --secret sshPrivateKey < key`) or from `privateKeyFile`, never from plain config;
 * an optional passphrase from the secret `model-serving:sshPassphrase`. The host key is pinned: its
 * public key line or SHA256 fingerprint. This module imports nothing of components/ or providers/.
 */
export const SSH_PRIVATE_KEY_KEY = "model-serving:sshPrivateKey";
export const SSH_PASSPHRASE_KEY = "model-serving:sshPassphrase";
/** backendStore dsn: `postgresql://user:password@host:port/db` of an existing database, secret. */
export const BACKEND_DSN_KEY = "model-serving:mlflowBackendStoreDsn";

const port = wholeNumber(1, 65535);
const HOST_KEY_LINE =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
const POSIX_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const ABSOLUTE = /^\/[A-Za-z0-9._/-]*$/;

const secretOnly = (key: string) =>
  z
    .never({
      errorMap: () => ({
        message: `must not be plain config; set it as a secret: pulumi config set --secret ${key.split(":")[1]}`,
      }),
    })
    .optional();

export const remoteHostSchema = z
  .object({
    /** Address (name or IP) the deploying machine reaches the host on. */
    host: z.string().regex(/^[A-Za-z0-9.:_-]+$/, "must be a host name or IP address"),
    port: port.default(22),
    /** root, or a user with passwordless sudo (`sudo -n`). */
    user: z.string().regex(POSIX_NAME, "must be a POSIX user name"),
    /** The host's public key line (`ssh-ed25519 AAAA…`) or its fingerprint (`SHA256:…`). */
    hostKey: z
      .string()
      .refine(
        (v) => HOST_KEY_LINE.test(v.trim()) || FINGERPRINT.test(v.trim()),
        "must be the host's public key line (ssh-ed25519 AAAA…, from /etc/ssh/ssh_host_ed25519_key.pub) or its SHA256:… fingerprint (ssh-keygen -lf)",
      ),
    /** A private key file on the deploying machine (~ and relative paths allowed); else the secret
     * sshPrivateKey. */
    privateKeyFile: z.string().min(1).optional(),
    /** The id or ARN of an AWS Secrets Manager secret whose SecretString is the private key. */
    privateKeyAwsSecret: z.string().min(1).optional(),
    /** A secret of Azure Key Vault whose value is the private key (read with the Key Vault SDK). */
    privateKeyAzureSecret: z
      .object({
        /** https://<vault>.vault.azure.net */
        vaultUrl: z
          .string()
          .regex(/^https:\/\/[A-Za-z0-9.-]+(:\d+)?\/?$/, "must be the vault's https:// URL"),
        name: z
          .string()
          .regex(/^[0-9A-Za-z-]{1,127}$/, "must be a Key Vault secret name (letters, digits, -)"),
        version: z
          .string()
          .regex(/^[0-9A-Za-z]{1,64}$/, "must be a Key Vault secret version")
          .optional(),
      })
      .strict()
      .optional(),
    privateKey: secretOnly(SSH_PRIVATE_KEY_KEY),
    passphrase: secretOnly(SSH_PASSPHRASE_KEY),
    /** A provisioning profile of provisioning/profiles/. */
    profile: z
      .string()
      .refine(
        (p) => profileNames().includes(p),
        () => ({ message: `must be one of ${profileNames().join(", ")}` }),
      )
      .default("default"),
    extraApt: z.array(aptPackage).default([]),
    extraPip: z.array(pipRequirement).default([]),
    /** sqlite (in the data directory), postgresql (installed on the host by the profile) or dsn (an
     * existing PostgreSQL, the secret mlflowBackendStoreDsn). */
    backendStore: z.enum(["sqlite", "postgresql", "dsn"]).default("sqlite"),
    /** The PostgreSQL database of backendStore postgresql. */
    database: z.string().regex(POSIX_NAME, "must be a PostgreSQL database name").default("mlflow"),
    /** Interface MLflow and the model servers bind on the host. */
    bindHost: z.string().min(1).default("0.0.0.0"),
    /** The host name in the tracking URI and endpoint URLs (default: host). */
    publicHost: z.string().min(1).optional(),
    /** First port tried for model servers on the host (the admin guide's range starts at 5001). */
    portRangeStart: port.default(5001),
    serviceUser: z.string().regex(POSIX_NAME, "must be a POSIX user name").default("mlflow"),
    baseDir: z.string().regex(ABSOLUTE, "must be an absolute path").default("/opt/model-serving"),
    /** MLflow's backend store and artifacts; kept by destroy. */
    dataDir: z
      .string()
      .regex(ABSOLUTE, "must be an absolute path")
      .default("/var/lib/model-serving/mlflow"),
    provisionTimeoutSeconds: wholeNumber(60, 7200).default(1800),
    /** The one-shot preflight check of the host (a @pulumi/command remote.Command) before provisioning. */
    preflight: z.boolean().default(true),
  })
  .strict();

export type RemoteHostConfig = z.infer<typeof remoteHostSchema>;

/** A secret config value as the stack holds it. */
export interface SecretConfig {
  value: string;
  secret: boolean;
}

/** The key material of mlflow.remote, resolved: the key text (from the file or the secret config). */
export interface RemoteKeyMaterial {
  /** Undefined when the key is read from AWS Secrets Manager (privateKeyAwsSecret) or Azure Key Vault
   * (privateKeyAzureSecret) by the program. */
  privateKey?: string;
  passphrase?: string;
  /** backendStore dsn: the secret DSN. */
  dsn?: string;
}

/** `~/x` and relative paths (against the project folder) to an absolute path. */
export function resolveKeyFile(file: string, projectDir: string): string {
  const expanded =
    file === "~" || file.startsWith("~/") ? path.join(os.homedir(), file.slice(1)) : file;
  return path.resolve(projectDir, expanded);
}

/**
 * The problems of the key settings (one line each, naming the key, never a secret), or the key
 * material. Exactly one of privateKeyFile and the secret sshPrivateKey; both secrets must be secret
 * config; the file must be readable.
 */
export function remoteKeyMaterial(
  remote: RemoteHostConfig,
  secrets: { privateKey?: SecretConfig; passphrase?: SecretConfig; dsn?: SecretConfig },
  projectDir: string,
  prefix: string,
): { problems: string[]; material?: RemoteKeyMaterial } {
  const problems: string[] = [];
  for (const [key, s] of [
    [SSH_PRIVATE_KEY_KEY, secrets.privateKey],
    [SSH_PASSPHRASE_KEY, secrets.passphrase],
    [BACKEND_DSN_KEY, secrets.dsn],
  ] as const) {
    if (s !== undefined && !s.secret) {
      problems.push(
        `${key}: must be secret config, not plain text; set it again with: pulumi config set --secret ${key.split(":")[1]}`,
      );
    }
  }
  const file = remote.privateKeyFile;
  const azure = remote.privateKeyAzureSecret;
  if (azure !== undefined) {
    const others = [
      file === undefined ? undefined : "privateKeyFile",
      remote.privateKeyAwsSecret === undefined ? undefined : "privateKeyAwsSecret",
      secrets.privateKey === undefined ? undefined : `the secret ${SSH_PRIVATE_KEY_KEY}`,
    ].filter((o) => o !== undefined);
    if (others.length > 0) {
      problems.push(
        problem(
          prefix,
          ["mlflow", "remote", "privateKeyAzureSecret"],
          `cannot be combined with ${others.join(" or ")}; keep one`,
          `${azure.vaultUrl} ${azure.name}`,
        ),
      );
    }
  } else if (file !== undefined && remote.privateKeyAwsSecret !== undefined) {
    problems.push(
      problem(
        prefix,
        ["mlflow", "remote", "privateKeyAwsSecret"],
        "cannot be combined with privateKeyFile; keep one",
        remote.privateKeyAwsSecret,
      ),
    );
  } else if (remote.privateKeyAwsSecret !== undefined) {
    if (secrets.privateKey !== undefined) {
      problems.push(
        problem(
          prefix,
          ["mlflow", "remote", "privateKeyAwsSecret"],
          `cannot be combined with the secret ${SSH_PRIVATE_KEY_KEY}; keep one`,
          remote.privateKeyAwsSecret,
        ),
      );
    }
  } else if ((file === undefined) === (secrets.privateKey === undefined)) {
    problems.push(
      problem(
        prefix,
        ["mlflow", "remote", "privateKeyFile"],
        file === undefined
          ? `is required unless the key is the secret ${SSH_PRIVATE_KEY_KEY} (pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519)`
          : `cannot be combined with the secret ${SSH_PRIVATE_KEY_KEY}; keep one`,
        file,
      ),
    );
  }
  if ((remote.backendStore === "dsn") !== (secrets.dsn !== undefined)) {
    problems.push(
      remote.backendStore === "dsn"
        ? problem(
            prefix,
            ["mlflow", "remote", "backendStore"],
            `needs the secret ${BACKEND_DSN_KEY} (pulumi config set --secret mlflowBackendStoreDsn 'postgresql://user:password@host:5432/mlflow')`,
            "dsn",
          )
        : `${BACKEND_DSN_KEY}: is only used with mlflow.remote.backendStore "dsn"`,
    );
  } else if (
    secrets.dsn !== undefined &&
    !/^postgres(ql)?:\/\/[^/]+\/[^/?]+/.test(secrets.dsn.value)
  ) {
    problems.push(
      `${BACKEND_DSN_KEY}: must be postgresql://user:password@host:port/database (value not shown)`,
    );
  }
  if (problems.length > 0) {
    return { problems };
  }
  let privateKey = secrets.privateKey?.value;
  if (file !== undefined) {
    const abs = resolveKeyFile(file, projectDir);
    try {
      privateKey = fs.readFileSync(abs, "utf8");
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? "unreadable";
      return {
        problems: [
          problem(prefix, ["mlflow", "remote", "privateKeyFile"], `cannot be read (${why})`, abs),
        ],
      };
    }
  }
  return {
    problems,
    material: {
      privateKey,
      passphrase: secrets.passphrase?.value,
      ...(secrets.dsn === undefined ? {} : { dsn: secrets.dsn.value }),
    },
  };
}
