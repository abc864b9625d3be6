import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig, StackConfig } from "./stackConfig";

/** Reads and validates the `model-serving` config of the current stack. */
export function loadStackConfig(): StackConfig & { mlflowPassword?: pulumi.Output<string> } {
  const config = new pulumi.Config("model-serving");
  const parsed = parseStackConfig(
    { mlflow: config.getObject("mlflow"), models: config.getObject("models") },
    { projectDir: process.cwd(), stack: pulumi.getStack() },
  );
  return { ...parsed, mlflowPassword: config.getSecret("mlflowPassword") };
}
