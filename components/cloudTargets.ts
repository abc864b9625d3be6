/**
 * Stack config of the cloud targets (`targets.sagemaker`, `targets.azureml` of a model entry) and the
 * endpoint entry every target exposes. The foundation's config schema merges `cloudTargetsSchema`
 * into each model entry; `parseCloudTargets` gives errors that name the key and the value.
 */
import { z } from "zod";
import type { EndpointEntry } from "./endpoint";
import { validateAzureMlEndpointArgs, type AzureMlEndpointArgs } from "./azureMlEndpoint";
import { validateSageMakerEndpointArgs, type SageMakerEndpointArgs } from "./sagemakerEndpoint";

/** One entry of the stack output endpoints["<model>/<target>"]: the MLflow target's keys, plus awsCli. */
export interface CloudEndpointEntry extends EndpointEntry {
  target: "sagemaker" | "azureml";
  /** SageMaker only: `aws sagemaker-runtime invoke-endpoint ...`. */
  awsCli?: string;
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);

export const sageMakerTargetSchema = z
  .object({
    region: z.string(),
    endpointName: z.string().optional(),
    repositoryName: z.string().optional(),
    instanceType: z.string().optional(),
    instanceCount: int(1).optional(),
    serverless: z
      .object({ memorySizeInMb: int(1024, 6144), maxConcurrency: int(1, 200) })
      .strict()
      .optional(),
    roleArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\//, "must be an IAM role ARN")
      .optional(),
    dataCaptureS3Uri: z.string().optional(),
    dataCaptureSamplingPercentage: int(1, 100).optional(),
    autoscaling: z
      .object({ min: int(1), max: int(1), targetInvocationsPerInstance: z.number().positive() })
      .strict()
      .optional(),
    blueGreen: z
      .object({
        mode: z.enum(["ALL_AT_ONCE", "CANARY", "LINEAR"]).optional(),
        stepPercent: int(1, 99).optional(),
        waitIntervalSeconds: int(0, 3600).optional(),
        terminationWaitSeconds: int(0, 3600).optional(),
        maximumExecutionTimeoutSeconds: int(600, 14400).optional(),
        autoRollback: z
          .object({
            max5xxPerMinute: int(1).optional(),
            maxModelLatencyMs: z.number().positive().optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const azureMlTargetSchema = z
  .object({
    subscriptionId: z.string().uuid(),
    resourceGroup: z.string().min(1),
    location: z.string().min(1),
    workspaceName: z.string(),
    createWorkspace: z.boolean().optional(),
    endpointName: z.string().optional(),
    repositoryName: z.string().optional(),
    registry: z
      .object({
        name: z.string(),
        resourceGroup: z.string().optional(),
        create: z.boolean().optional(),
        sku: z.enum(["Basic", "Standard", "Premium"]).optional(),
      })
      .strict(),
    authMode: z.enum(["key", "aml_token"]).optional(),
    instanceType: z.string().optional(),
    instanceCount: int(1).optional(),
    requestSettings: z
      .object({
        maxConcurrentRequestsPerInstance: int(1).optional(),
        requestTimeoutMs: int(1, 180000).optional(),
        maxQueueWaitMs: int(1).optional(),
      })
      .strict()
      .optional(),
    scaling: z
      .object({ min: int(1), max: int(1), targetCpuPercent: z.number().gt(0).lt(100) })
      .strict()
      .optional(),
    deployments: z
      .array(
        z
          .object({
            name: z.string(),
            version: z.string().regex(/^\d+$/, "must be a model version number").optional(),
            traffic: int(0, 100),
            instanceType: z.string().optional(),
            instanceCount: int(1).optional(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict();

export type SageMakerTargetConfig = z.infer<typeof sageMakerTargetSchema>;
export type AzureMlTargetConfig = z.infer<typeof azureMlTargetSchema>;

/** Maps a sagemaker target config onto SageMakerEndpoint args (the caller adds image and model). */
export function sageMakerArgsFromConfig(
  t: SageMakerTargetConfig,
  wiring: Pick<
    SageMakerEndpointArgs,
    "imageUri" | "ecrRepositoryArn" | "modelName" | "modelVersion"
  >,
): SageMakerEndpointArgs {
  return {
    ...wiring,
    region: t.region,
    endpointName: t.endpointName,
    roleArn: t.roleArn,
    instanceType: t.instanceType,
    instanceCount: t.instanceCount,
    serverless: t.serverless,
    dataCapture: t.dataCaptureS3Uri
      ? { s3Uri: t.dataCaptureS3Uri, samplingPercentage: t.dataCaptureSamplingPercentage }
      : undefined,
    autoscaling: t.autoscaling && {
      minInstances: t.autoscaling.min,
      maxInstances: t.autoscaling.max,
      targetInvocationsPerInstance: t.autoscaling.targetInvocationsPerInstance,
    },
    blueGreen: t.blueGreen,
  };
}

/** The deployments of an azureml target: default one "blue" deployment of the model's version. */
export function azureMlDeploymentsFromConfig(t: AzureMlTargetConfig, modelVersion: string) {
  return (t.deployments ?? [{ name: "blue", traffic: 100 }]).map((d) => ({
    name: d.name,
    version: d.version ?? modelVersion,
    trafficPercent: d.traffic,
    instanceType: d.instanceType,
    instanceCount: d.instanceCount,
  }));
}

/** Maps an azureml target config onto AzureMlEndpoint args; images are per model version. */
export function azureMlArgsFromConfig(
  t: AzureMlTargetConfig,
  wiring: Pick<AzureMlEndpointArgs, "registryId" | "modelName"> & {
    modelVersion: string;
    imageFor: (version: string) => AzureMlEndpointArgs["deployments"][number]["imageUri"];
  },
): AzureMlEndpointArgs {
  return {
    subscriptionId: t.subscriptionId,
    resourceGroupName: t.resourceGroup,
    location: t.location,
    workspaceName: t.workspaceName,
    createWorkspace: t.createWorkspace,
    registryId: wiring.registryId,
    modelName: wiring.modelName,
    endpointName: t.endpointName,
    authMode: t.authMode,
    instanceType: t.instanceType,
    instanceCount: t.instanceCount,
    requestSettings: t.requestSettings,
    scaling: t.scaling && {
      minInstances: t.scaling.min,
      maxInstances: t.scaling.max,
      targetCpuPercent: t.scaling.targetCpuPercent,
    },
    deployments: azureMlDeploymentsFromConfig(t, wiring.modelVersion).map((d) => ({
      name: d.name,
      modelVersion: d.version,
      imageUri: wiring.imageFor(d.version),
      trafficPercent: d.trafficPercent,
      instanceType: d.instanceType,
      instanceCount: d.instanceCount,
    })),
  };
}

/** `targets` of one model entry; cross-field rules are the components' own validators. */
const cloudTargetsShape = z.object({
  sagemaker: sageMakerTargetSchema.optional(),
  azureml: azureMlTargetSchema.optional(),
});

/**
 * `targets` of one model entry. The shape is checked first; only a well-formed value goes on to the
 * cross-field rules, which are the components' own validators (so each problem is reported once).
 */
export const cloudTargetsSchema = cloudTargetsShape.pipe(
  z.custom<z.infer<typeof cloudTargetsShape>>().superRefine((t, ctx) => {
    const check = (key: "sagemaker" | "azureml", run: () => void) => {
      try {
        run();
      } catch (err) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: (err as Error).message });
      }
    };
    if (t.sagemaker) {
      const s = t.sagemaker;
      check("sagemaker", () =>
        validateSageMakerEndpointArgs(
          "endpoint",
          sageMakerArgsFromConfig(s, {
            imageUri: undefined!,
            ecrRepositoryArn: "",
            modelName: "",
            modelVersion: "",
          }),
        ),
      );
    }
    if (t.azureml) {
      const a = t.azureml;
      const versions = new Set(azureMlDeploymentsFromConfig(a, "current").map((d) => d.version));
      if (a.registry.create && versions.size > 1) {
        // One ScorerImage per version; each would try to create the same registry.
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["azureml", "registry", "create"],
          message:
            "registry.create works with one model version; create the registry once, then use it by name for blue/green",
        });
      }
      check("azureml", () =>
        validateAzureMlEndpointArgs(
          "endpoint",
          azureMlArgsFromConfig(a, {
            registryId: "",
            modelName: "",
            modelVersion: "1",
            imageFor: () => "",
          }),
        ),
      );
    }
  }),
);

export type CloudTargetsConfig = z.infer<typeof cloudTargetsSchema>;

function valueAt(raw: unknown, path: (string | number)[]): unknown {
  return path.reduce<unknown>(
    (v, k) =>
      v !== null && typeof v === "object" ? (v as Record<string | number, unknown>)[k] : undefined,
    raw,
  );
}

/** Formats zod issues as `<where>.<key.path>: <message> (got <value>)`, one per line. */
export function formatIssues(error: z.ZodError, raw: unknown, where: string): string {
  return error.issues
    .map((issue) => {
      const key = [where, ...issue.path.map(String)].join(".");
      if (issue.code === z.ZodIssueCode.custom) {
        return `${key}: ${issue.message}`;
      }
      if (issue.code === z.ZodIssueCode.unrecognized_keys) {
        return `${key}: unknown key(s) ${issue.keys.join(", ")}`;
      }
      return `${key}: ${issue.message} (got ${JSON.stringify(valueAt(raw, issue.path)) ?? "nothing"})`;
    })
    .join("\n");
}

/** Parses one model's `targets`, throwing an error that names every bad key and its value. */
export function parseCloudTargets(raw: unknown, where: string): CloudTargetsConfig {
  const result = cloudTargetsSchema.safeParse(raw);
  if (!result.success) {
    throw new Error(formatIssues(result.error, raw, where));
  }
  return result.data;
}
