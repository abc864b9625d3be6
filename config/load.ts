import * as pulumi from "@pulumi/pulumi";
import { AGENT_TOKEN_KEY } from "./agentConfig";
import {
  BACKEND_DSN_KEY,
  SSH_PASSPHRASE_KEY,
  SSH_PRIVATE_KEY_KEY,
  type SecretConfig,
} from "./remoteHost";
import { parseStackConfig, PasswordConfig, StackConfig } from "./stackConfig";

const PASSWORD_KEY = "model-serving:mlflowPassword";

/**
 * Whether a config key was set as a secret (`pulumi config set --secret`): the language host lists the
 * secret keys in PULUMI_CONFIG_SECRET_KEYS, which the SDK keeps in its config store.
 */
function isSecretKey(key: string): boolean {
  // isConfigSecret is public in the SDK's JavaScript but left out of its typings.
  const runtimeConfig = require("@pulumi/pulumi/runtime/config") as {
    isConfigSecret?: (k: string) => boolean;
  };
  if (typeof runtimeConfig.isConfigSecret === "function") {
    return runtimeConfig.isConfigSecret(key);
  }
  const keys = JSON.parse(process.env.PULUMI_CONFIG_SECRET_KEYS ?? "[]") as unknown;
  return Array.isArray(keys) && keys.includes(key);
}

function secretConfig(key: string): SecretConfig | undefined {
  const value = pulumi.runtime.getConfig(key);
  return value === undefined ? undefined : { value, secret: isSecretKey(key) };
}

/** Reads and validates the `model-serving` config of the current stack. */
export function loadStackConfig(): Omit<StackConfig, "remoteKey"> & {
  mlflowPassword?: pulumi.Output<string>;
  agentToken?: pulumi.Output<string>;
  /** mlflow.mode remote: the SSH key and passphrase, as secrets. */
  remoteKey?: pulumi.Output<{ privateKey?: string; passphrase?: string; dsn?: string }>;
} {
  const config = new pulumi.Config("model-serving");
  const mlflowPassword: PasswordConfig | undefined = secretConfig(PASSWORD_KEY);
  const agentToken: PasswordConfig | undefined = secretConfig(AGENT_TOKEN_KEY);
  const { remoteKey, ...parsed } = parseStackConfig(
    {
      mlflow: config.getObject("mlflow"),
      models: config.getObject("models"),
      workflows: config.getObject("workflows"),
      mlflowPassword,
      agentToken,
      sshPrivateKey: secretConfig(SSH_PRIVATE_KEY_KEY),
      sshPassphrase: secretConfig(SSH_PASSPHRASE_KEY),
      backendStoreDsn: secretConfig(BACKEND_DSN_KEY),
    },
    { projectDir: process.cwd(), stack: pulumi.getStack() },
  );
  for (const notice of parsed.notices) {
    pulumi.log.warn(notice);
  }
  return {
    ...parsed,
    mlflowPassword: config.getSecret("mlflowPassword"),
    agentToken: config.getSecret("agentToken"),
    remoteKey: remoteKey === undefined ? undefined : pulumi.secret(remoteKey),
  };
}
