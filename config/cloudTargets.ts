import { z } from "zod";
import { kubernetesTargetSchema, standaloneDockerSchema } from "./standaloneTargets";
import { errorMap, formatIssues, wholeNumber } from "./issues";

/**
 * Stack config of the cloud targets of one model entry (`targets.sagemaker`, `targets.azureml`): the
 * one schema that config validation and the cloud components (components/cloudServing.ts) both use.
 * Every object is strict; cross-field rules are issues on the key they concern, so every problem is
 * reported in the config's one format before anything is declared.
 */

const positive = z.number().positive();
const custom = (ctx: z.RefinementCtx, path: (string | number)[], message: string, got = true) =>
  ctx.addIssue({ code: z.ZodIssueCode.custom, path, message, params: { got } });

/** SageMaker endpoint names: 1-63 letters, digits or hyphens, starting and ending with a letter or digit. */
export const SAGEMAKER_ENDPOINT_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
export const SAGEMAKER_SERVERLESS_MEMORY_SIZES = [1024, 2048, 3072, 4096, 5120, 6144];
/** Azure ML endpoint and deployment names: 3-32 letters, digits or hyphens, starting with a letter. */
export const AZUREML_NAME = /^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$/;
/** ECR/ACR repository names: lowercase path components separated by . _ - and /. */
export const REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
/** Environment variable names passed to the scorer container. */
export const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The scorer's request timeout variable (scorer/serve.py); SageMaker cuts invocations at 60 s. */
export const SCORER_TIMEOUT_VARIABLE = "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT";
/** Every name scorer/serve.py reads the timeout from (the newer one wins when both are set). */
export const SCORER_TIMEOUT_VARIABLES = ["SCORER_TIMEOUT_SECONDS", SCORER_TIMEOUT_VARIABLE];
export const SAGEMAKER_INVOCATION_TIMEOUT_SECONDS = 60;
/** Default scorer timeout on SageMaker: below the 60 s invocation limit, so the scorer answers first. */
export const SAGEMAKER_DEFAULT_SCORER_TIMEOUT_SECONDS = 55;
/** How long the AWS provider waits for an endpoint update (it gives up after 60 minutes). */
export const SAGEMAKER_PROVIDER_UPDATE_WAIT_SECONDS = 3600;
/** Time counted for provisioning the new (green) fleet before the first traffic shift. */
export const SAGEMAKER_PROVISIONING_ALLOWANCE_SECONDS = 600;
const SAGEMAKER_NAME_RULE =
  "must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit";
const AZUREML_NAME_RULE =
  "must be 3-32 letters, digits or hyphens, start with a letter and not end with a hyphen";

const repositoryNameSchema = z
  .string()
  .regex(REPOSITORY_NAME, "must be lowercase letters, digits and . _ - / separators");
const environmentSchema = z.record(
  z.string().regex(ENV_VAR_NAME, "must be an environment variable name"),
  z.string(),
);
const tagsSchema = z.record(z.string().min(1).max(128), z.string().max(256));

/** A SageMaker blue/green policy, as both the config and SageMakerEndpoint take it. */
export interface BlueGreenPolicy {
  readonly mode?: "ALL_AT_ONCE" | "CANARY" | "LINEAR";
  readonly stepPercent?: number;
  readonly waitIntervalSeconds?: number;
  readonly terminationWaitSeconds?: number;
  readonly maximumExecutionTimeoutSeconds?: number;
}

/** One problem, on a key relative to the target, in the config's message style. */
export interface TargetIssue {
  path: (string | number)[];
  message: string;
}

/**
 * Baking periods of a blue/green update, counted conservatively: one after an all-at-once shift,
 * two for a canary (after the canary and after the rest), one after each linear step.
 */
export function blueGreenBakingPeriods(bg: BlueGreenPolicy): number {
  const mode = bg.mode ?? "ALL_AT_ONCE";
  if (mode === "CANARY") {
    return 2;
  }
  if (mode === "LINEAR") {
    return Math.ceil(100 / (bg.stepPercent ?? 100));
  }
  return 1;
}

/** Seconds a blue/green update takes at worst: provisioning, every baking period, the termination wait. */
export function blueGreenTotalSeconds(bg: BlueGreenPolicy): number {
  return (
    SAGEMAKER_PROVISIONING_ALLOWANCE_SECONDS +
    blueGreenBakingPeriods(bg) * (bg.waitIntervalSeconds ?? 300) +
    (bg.terminationWaitSeconds ?? 0)
  );
}

/**
 * What SageMaker's UpdateEndpoint and the AWS provider accept of a blue/green policy: canary steps
 * of at most 50%, linear steps of 10-50%, and a whole update within the provider's 60-minute wait.
 */
export function blueGreenIssues(bg: BlueGreenPolicy): TargetIssue[] {
  const issues: TargetIssue[] = [];
  const mode = bg.mode ?? "ALL_AT_ONCE";
  const step = bg.stepPercent;
  if (mode === "CANARY" && step !== undefined && (step < 1 || step > 50)) {
    issues.push({
      path: ["stepPercent"],
      message: `must be from 1 to 50 for CANARY (a canary is at most half the new fleet), got ${step}`,
    });
  }
  if (mode === "LINEAR" && step !== undefined && (step < 10 || step > 50)) {
    issues.push({
      path: ["stepPercent"],
      message: `must be from 10 to 50 for LINEAR, got ${step}`,
    });
  }
  const timeout = bg.maximumExecutionTimeoutSeconds;
  if (timeout !== undefined && timeout > SAGEMAKER_PROVIDER_UPDATE_WAIT_SECONDS) {
    issues.push({
      path: ["maximumExecutionTimeoutSeconds"],
      message: `must be at most ${SAGEMAKER_PROVIDER_UPDATE_WAIT_SECONDS}: the AWS provider stops waiting for an endpoint update after 60 minutes, got ${timeout}`,
    });
  }
  const total = blueGreenTotalSeconds(bg);
  if (issues.length === 0 && total > SAGEMAKER_PROVIDER_UPDATE_WAIT_SECONDS) {
    issues.push({
      path: ["waitIntervalSeconds"],
      message:
        `makes an update take up to ${total}s (${SAGEMAKER_PROVISIONING_ALLOWANCE_SECONDS}s provisioning + ` +
        `${blueGreenBakingPeriods(bg)} baking periods of ${bg.waitIntervalSeconds ?? 300}s + ` +
        `${bg.terminationWaitSeconds ?? 0}s termination wait), more than the ${SAGEMAKER_PROVIDER_UPDATE_WAIT_SECONDS}s ` +
        "the AWS provider waits for an endpoint update; shorten waitIntervalSeconds or terminationWaitSeconds" +
        (mode === "LINEAR" ? " or raise stepPercent" : ""),
    });
  }
  return issues;
}

/** The scorer timeout must let the scorer answer before SageMaker cuts the invocation at 60 s. */
export function sageMakerEnvironmentIssues(env: Record<string, string> | undefined): TargetIssue[] {
  const issues: TargetIssue[] = [];
  for (const name of SCORER_TIMEOUT_VARIABLES) {
    const timeout = env?.[name];
    if (timeout === undefined) {
      continue;
    }
    const seconds = Number(timeout);
    if (!/^\d+$/.test(timeout) || seconds < 1 || seconds >= SAGEMAKER_INVOCATION_TIMEOUT_SECONDS) {
      issues.push({
        path: [name],
        message: `must be whole seconds from 1 to ${SAGEMAKER_INVOCATION_TIMEOUT_SECONDS - 1} (SageMaker ends an invocation at ${SAGEMAKER_INVOCATION_TIMEOUT_SECONDS}s), got ${JSON.stringify(timeout)}`,
      });
    }
  }
  return issues;
}

export const sageMakerTargetSchema = z
  .object({
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must look like us-east-1"),
    endpointName: z.string().regex(SAGEMAKER_ENDPOINT_NAME, SAGEMAKER_NAME_RULE).optional(),
    repositoryName: repositoryNameSchema.optional(),
    instanceType: z.string().min(1).optional(),
    instanceCount: wholeNumber(1).optional(),
    environment: environmentSchema.optional(),
    containerStartupHealthCheckTimeoutSeconds: wholeNumber(60, 3600).optional(),
    vpc: z
      .object({
        subnetIds: z
          .array(z.string().regex(/^subnet-[0-9a-f]+$/, "must be a subnet id"))
          .min(1)
          .max(16),
        securityGroupIds: z
          .array(z.string().regex(/^sg-[0-9a-f]+$/, "must be a security group id"))
          .min(1)
          .max(5),
      })
      .strict()
      .optional(),
    enableNetworkIsolation: z.boolean().optional(),
    kmsKeyArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/.+$/, "must be a KMS key ARN")
      .optional(),
    tags: tagsSchema.optional(),
    serverless: z
      .object({
        memorySizeInMb: z
          .number()
          .refine(
            (n) => SAGEMAKER_SERVERLESS_MEMORY_SIZES.includes(n),
            `must be one of ${SAGEMAKER_SERVERLESS_MEMORY_SIZES.join(", ")}`,
          ),
        maxConcurrency: wholeNumber(1, 200),
      })
      .strict()
      .optional(),
    roleArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\//, "must be an IAM role ARN")
      .optional(),
    dataCaptureS3Uri: z
      .string()
      .regex(
        /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/,
        "must be an s3://bucket/prefix URI",
      )
      .optional(),
    dataCaptureSamplingPercentage: wholeNumber(1, 100).optional(),
    autoscaling: z
      .object({ min: wholeNumber(1), max: wholeNumber(1), targetInvocationsPerInstance: positive })
      .strict()
      .optional(),
    blueGreen: z
      .object({
        mode: z.enum(["ALL_AT_ONCE", "CANARY", "LINEAR"]).optional(),
        stepPercent: wholeNumber(1, 99).optional(),
        waitIntervalSeconds: wholeNumber(0, 3600).optional(),
        terminationWaitSeconds: wholeNumber(0, 3600).optional(),
        maximumExecutionTimeoutSeconds: wholeNumber(600, 14400).optional(),
        autoRollback: z
          .object({
            max5xxPerMinute: wholeNumber(1).optional(),
            maxModelLatencyMs: positive.optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.serverless) {
      if (t.instanceType !== undefined) {
        custom(ctx, ["serverless"], "set either instanceType or serverless, not both", false);
      }
      if (t.instanceCount !== undefined) {
        custom(ctx, ["instanceCount"], "applies to instanceType, not serverless");
      }
      if (t.autoscaling) {
        custom(
          ctx,
          ["autoscaling"],
          "needs instanceType (a serverless endpoint scales up to serverless.maxConcurrency)",
          false,
        );
      }
      if (t.dataCaptureS3Uri !== undefined) {
        custom(ctx, ["dataCaptureS3Uri"], "is not supported on serverless endpoints");
      }
    }
    if (t.autoscaling) {
      const { min, max } = t.autoscaling;
      if (min > max) {
        custom(ctx, ["autoscaling", "max"], `must be at least autoscaling.min (${min})`);
      }
      const count = t.instanceCount ?? 1;
      if (min <= max && (count < min || count > max)) {
        custom(
          ctx,
          ["instanceCount"],
          `must be within autoscaling.min..max (${min}..${max})`,
          t.instanceCount !== undefined,
        );
      }
    }
    const mode = t.blueGreen?.mode ?? "ALL_AT_ONCE";
    if (mode !== "ALL_AT_ONCE" && t.blueGreen?.stepPercent === undefined) {
      custom(ctx, ["blueGreen", "stepPercent"], `is required when blueGreen.mode is ${mode}`);
    }
    for (const issue of blueGreenIssues(t.blueGreen ?? {})) {
      custom(ctx, ["blueGreen", ...issue.path], issue.message, false);
    }
    for (const issue of sageMakerEnvironmentIssues(t.environment)) {
      custom(ctx, ["environment", ...issue.path], issue.message, false);
    }
  });

const azureDeploymentSchema = z
  .object({
    name: z.string().regex(AZUREML_NAME, AZUREML_NAME_RULE),
    version: z.string().regex(/^\d+$/, "must be a model version number").optional(),
    traffic: wholeNumber(0, 100),
    instanceType: z.string().min(1).optional(),
    instanceCount: wholeNumber(1).optional(),
  })
  .strict();

export const azureMlTargetSchema = z
  .object({
    subscriptionId: z.string().uuid(),
    resourceGroup: z.string().min(1),
    location: z.string().min(1),
    workspaceName: z
      .string()
      .regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$/, "must be 3-33 letters, digits, _ or -"),
    createWorkspace: z.boolean().optional(),
    /** Raise for new key vault and storage names of a created workspace (destroy-then-up, no purge). */
    workspaceGeneration: wholeNumber(0).optional(),
    endpointName: z.string().regex(AZUREML_NAME, AZUREML_NAME_RULE).optional(),
    repositoryName: repositoryNameSchema.optional(),
    registry: z
      .object({
        name: z.string().min(1),
        resourceGroup: z.string().min(1).optional(),
        create: z.boolean().optional(),
        sku: z.enum(["Basic", "Standard", "Premium"]).optional(),
        /** Push login: an Entra ID token exchange (default) or the registry's admin user. */
        login: z.enum(["entra", "admin"]).optional(),
      })
      .strict(),
    authMode: z.enum(["key", "aml_token", "aad_token"]).optional(),
    identity: z.enum(["systemAssigned", "userAssigned"]).optional(),
    instanceType: z.string().min(1).optional(),
    instanceCount: wholeNumber(1).optional(),
    environment: environmentSchema.optional(),
    requestSettings: z
      .object({
        maxConcurrentRequestsPerInstance: wholeNumber(1).optional(),
        requestTimeoutMs: wholeNumber(1, 180000).optional(),
        maxQueueWaitMs: wholeNumber(1).optional(),
      })
      .strict()
      .optional(),
    scaling: z
      .object({
        min: wholeNumber(1),
        max: wholeNumber(1),
        targetCpuPercent: z.number().gt(0).lt(100),
      })
      .strict()
      .optional(),
    deployments: z.array(azureDeploymentSchema).min(1).max(2).optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    const deployments = t.deployments ?? [];
    const seen = new Map<string, number>();
    deployments.forEach((d, i) => {
      if (seen.has(d.name)) {
        custom(ctx, ["deployments", i, "name"], `is used by deployments[${seen.get(d.name)}] too`);
      }
      seen.set(d.name, i);
    });
    const sum = deployments.reduce((s, d) => s + d.traffic, 0);
    if (deployments.length > 0 && sum !== 100) {
      custom(
        ctx,
        ["deployments"],
        `traffic must sum to 100, got ${sum} (${deployments.map((d) => `${d.name}=${d.traffic}`).join(", ")})`,
        false,
      );
    }
    if (t.scaling && t.scaling.min > t.scaling.max) {
      custom(ctx, ["scaling", "max"], `must be at least scaling.min (${t.scaling.min})`);
    }
    if (t.scaling && t.scaling.min <= t.scaling.max) {
      // Each deployment's instance count is its autoscale profile's default capacity.
      const { min, max } = t.scaling;
      const rule = `must be within scaling.min..max (${min}..${max}): it is the autoscale default`;
      const outside = (n: number) => n < min || n > max;
      const inherited =
        deployments.length === 0 || deployments.some((d) => d.instanceCount === undefined);
      if (inherited && outside(t.instanceCount ?? 1)) {
        custom(ctx, ["instanceCount"], rule, t.instanceCount !== undefined);
      }
      deployments.forEach((d, i) => {
        if (d.instanceCount !== undefined && outside(d.instanceCount)) {
          custom(ctx, ["deployments", i, "instanceCount"], rule);
        }
      });
    }
    const versions = new Set(deployments.map((d) => d.version ?? "current"));
    if (t.registry.create && versions.size > 1) {
      // One ScorerImage per version; each would try to create the same registry.
      custom(
        ctx,
        ["registry", "create"],
        "works with one model version; create the registry once, then use it by name for blue/green",
      );
    }
  });

export const cloudTargetsSchema = z
  .object({
    sagemaker: sageMakerTargetSchema.optional(),
    azureml: azureMlTargetSchema.optional(),
    /** A scorer container on a Docker host (config/standaloneTargets.ts). */
    docker: standaloneDockerSchema.optional(),
    /** A scorer Deployment on a Kubernetes cluster, its image pushed to a registry (same file). */
    kubernetes: kubernetesTargetSchema.optional(),
  })
  .strict();

export type SageMakerTargetConfig = z.infer<typeof sageMakerTargetSchema>;
export type AzureMlTargetConfig = z.infer<typeof azureMlTargetSchema>;
export type CloudTargetsConfig = z.infer<typeof cloudTargetsSchema>;

/** Component names the targets derive from the model name (their default endpoint names). */
export const cloudTargetNames = (modelName: string) => ({
  sagemaker: `${modelName}-sagemaker`,
  azureml: `${modelName}-azureml`,
});

/** Problems of the default endpoint names (derived from the model name) when none is set. */
export function defaultEndpointNameIssues(
  modelName: string,
  targets: CloudTargetsConfig,
  ctx: z.RefinementCtx,
  base: (string | number)[],
): void {
  const names = cloudTargetNames(modelName);
  const check = (target: "sagemaker" | "azureml", pattern: RegExp, rule: string) => {
    if (
      targets[target] &&
      targets[target].endpointName === undefined &&
      !pattern.test(names[target])
    ) {
      custom(
        ctx,
        [...base, target, "endpointName"],
        `is required because the default ${JSON.stringify(names[target])} (from the model name) is invalid: it ${rule}`,
        false,
      );
    }
  };
  check("sagemaker", SAGEMAKER_ENDPOINT_NAME, SAGEMAKER_NAME_RULE);
  check("azureml", AZUREML_NAME, AZUREML_NAME_RULE);
}

/** Parses one model's `targets` outside the stack config (components), in the config's one format. */
export function parseCloudTargets(raw: unknown, where: string): CloudTargetsConfig {
  const result = cloudTargetsSchema.safeParse(raw, { errorMap });
  if (!result.success) {
    throw new Error(formatIssues(result.error, raw, cloudTargetsSchema, `${where}.`).join("\n"));
  }
  return result.data;
}
