import { z } from "zod";
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
const SAGEMAKER_NAME_RULE =
  "must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit";
const AZUREML_NAME_RULE =
  "must be 3-32 letters, digits or hyphens, start with a letter and not end with a hyphen";

export const sageMakerTargetSchema = z
  .object({
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must look like us-east-1"),
    endpointName: z.string().regex(SAGEMAKER_ENDPOINT_NAME, SAGEMAKER_NAME_RULE).optional(),
    repositoryName: z.string().min(1).optional(),
    instanceType: z.string().min(1).optional(),
    instanceCount: wholeNumber(1).optional(),
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
    endpointName: z.string().regex(AZUREML_NAME, AZUREML_NAME_RULE).optional(),
    repositoryName: z.string().min(1).optional(),
    registry: z
      .object({
        name: z.string().min(1),
        resourceGroup: z.string().min(1).optional(),
        create: z.boolean().optional(),
        sku: z.enum(["Basic", "Standard", "Premium"]).optional(),
      })
      .strict(),
    authMode: z.enum(["key", "aml_token"]).optional(),
    instanceType: z.string().min(1).optional(),
    instanceCount: wholeNumber(1).optional(),
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
