import * as pulumi from "@pulumi/pulumi";
import { AGENT_TOKEN_KEY } from "./agentConfig";
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

/** Reads and validates the `model-serving` config of the current stack. */
export function loadStackConfig(): StackConfig & {
  mlflowPassword?: pulumi.Output<string>;
  agentToken?: pulumi.Output<string>;
} {
  const config = new pulumi.Config("model-serving");
  const password = pulumi.runtime.getConfig(PASSWORD_KEY);
  const mlflowPassword: PasswordConfig | undefined =
    password === undefined ? undefined : { value: password, secret: isSecretKey(PASSWORD_KEY) };
  const token = pulumi.runtime.getConfig(AGENT_TOKEN_KEY);
  const agentToken: PasswordConfig | undefined =
    token === undefined ? undefined : { value: token, secret: isSecretKey(AGENT_TOKEN_KEY) };
  const parsed = parseStackConfig(
    {
      mlflow: config.getObject("mlflow"),
      models: config.getObject("models"),
      mlflowPassword,
      agentToken,
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
  };
}
