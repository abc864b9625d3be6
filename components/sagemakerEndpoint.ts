import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  blueGreenIssues,
  SAGEMAKER_DEFAULT_SCORER_TIMEOUT_SECONDS,
  sageMakerEnvironmentIssues,
  SCORER_TIMEOUT_VARIABLE,
  type BlueGreenPolicy,
} from "../config/cloudTargets";
import type { CloudEndpointEntry } from "./endpoint";
import { sageMakerExecutionPolicy } from "./cloud/sagemakerPolicy";
import { SageMakerCapacity } from "./cloud/sagemakerCapacity";
import { SageMakerVariantGuard } from "./cloud/sagemakerVariantGuard";
import { EMPTY_SAMPLE } from "./sampleInput";
import { sageMakerInvocationUrl, sageMakerSnippets } from "./snippets/sagemaker";

export { sageMakerExecutionPolicy, type ExecutionPolicyInput } from "./cloud/sagemakerPolicy";

/** The one production variant's name; blue/green updates need it unchanged across configurations. */
export const VARIANT_NAME = "AllTraffic";
export const SERVERLESS_MEMORY_SIZES = [1024, 2048, 3072, 4096, 5120, 6144];

export interface SageMakerBlueGreen extends BlueGreenPolicy {
  /** Traffic shifting: all at once, a canary step, or linear steps; default ALL_AT_ONCE. */
  readonly mode?: "ALL_AT_ONCE" | "CANARY" | "LINEAR";
  /** CANARY: percent of capacity of the canary (1-50); LINEAR: percent per step (10-50). */
  readonly stepPercent?: number;
  /** Baking period between steps, seconds; default 300. */
  readonly waitIntervalSeconds?: number;
  /** Seconds to keep the old fleet after the shift; default 0. */
  readonly terminationWaitSeconds?: number;
  /** Upper bound for the whole deployment, seconds (600-3600: the AWS provider waits 60 minutes). */
  readonly maximumExecutionTimeoutSeconds?: number;
  /** Create CloudWatch alarms and roll back automatically when they fire. */
  readonly autoRollback?: {
    readonly max5xxPerMinute?: number;
    readonly maxModelLatencyMs?: number;
  };
}

export interface SageMakerEndpointArgs {
  /** Digest-pinned scorer image in ECR (repo@sha256:...), e.g. ScorerImage.imageUri. */
  readonly imageUri: pulumi.Input<string>;
  /** ARN of the ECR repository holding the image; scopes the created role's pull permission. */
  readonly ecrRepositoryArn: pulumi.Input<string>;
  /** AWS region of the endpoint, e.g. us-east-1. */
  readonly region: string;
  /** Registered model name (for the endpoint entry). */
  readonly modelName: pulumi.Input<string>;
  /** Registered model version baked into the image (for the endpoint entry). */
  readonly modelVersion: pulumi.Input<string>;
  /** Endpoint name (stable URL); default the component name. */
  readonly endpointName?: string;
  /** Execution role to use instead of creating a least-privilege one. */
  readonly roleArn?: pulumi.Input<string>;
  /** Instance type of a real-time variant; default ml.m5.large when serverless is not set. */
  readonly instanceType?: string;
  /** Initial instance count; default 1. */
  readonly instanceCount?: number;
  /** Serverless variant instead of instances. */
  readonly serverless?: { readonly memorySizeInMb: number; readonly maxConcurrency: number };
  /** Capture requests and responses to S3. */
  readonly dataCapture?: { readonly s3Uri: string; readonly samplingPercentage?: number };
  /** Target tracking on SageMakerVariantInvocationsPerInstance. */
  readonly autoscaling?: {
    readonly minInstances: number;
    readonly maxInstances: number;
    readonly targetInvocationsPerInstance: number;
  };
  /** Blue/green update policy used when the image (and so the endpoint configuration) changes. */
  readonly blueGreen?: SageMakerBlueGreen;
  /**
   * Container environment, passed through to the scorer (e.g. WORKERS,
   * MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT, default 55: below SageMaker's 60 s invocation limit).
   */
  readonly environment?: Record<string, string>;
  /** Seconds SageMaker waits for /ping to pass after the container starts (60-3600; instances only). */
  readonly containerStartupHealthCheckTimeoutSeconds?: number;
  /** Run the model in your VPC; the created role gets the network-interface permissions this needs. */
  readonly vpcConfig?: {
    readonly subnetIds: string[];
    readonly securityGroupIds: string[];
  };
  /** No outbound network from the container (the scorer needs none at run time). */
  readonly enableNetworkIsolation?: boolean;
  /** KMS key encrypting the instances' storage volumes; the created role may use it. */
  readonly kmsKeyArn?: string;
  /** Tags on every resource the component creates. */
  readonly tags?: Record<string, string>;
  /** Body the generated commands send: the model's own sample input; default an empty dataframe_split. */
  readonly sampleBody?: pulumi.Input<unknown>;
}

const ENDPOINT_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** Throws the first problem with the args, naming the argument. */
export function validateSageMakerEndpointArgs(name: string, args: SageMakerEndpointArgs): void {
  const fail = (msg: string): never => {
    throw new Error(`SageMakerEndpoint: ${msg}`);
  };
  if (!REGION.test(args.region ?? "")) {
    fail(`region must look like us-east-1, got ${JSON.stringify(args.region)}`);
  }
  const endpointName = args.endpointName ?? name;
  if (!ENDPOINT_NAME.test(endpointName)) {
    fail(
      `endpointName must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit, got ${JSON.stringify(endpointName)}`,
    );
  }
  if (typeof args.imageUri === "string" && !/@sha256:[0-9a-f]{64}$/.test(args.imageUri)) {
    fail(
      `imageUri must be pinned by digest (repo@sha256:...), got ${JSON.stringify(args.imageUri)}`,
    );
  }
  if (args.instanceType !== undefined && args.serverless !== undefined) {
    fail("set either instanceType or serverless, not both");
  }
  if (args.serverless && args.instanceCount !== undefined) {
    fail("instanceCount applies to instanceType, not serverless");
  }
  const count = args.instanceCount ?? 1;
  if (!Number.isInteger(count) || count < 1) {
    fail(`instanceCount must be an integer >= 1, got ${args.instanceCount}`);
  }
  if (args.serverless) {
    if (!SERVERLESS_MEMORY_SIZES.includes(args.serverless.memorySizeInMb)) {
      fail(
        `serverless.memorySizeInMb must be one of ${SERVERLESS_MEMORY_SIZES.join(", ")}, got ${args.serverless.memorySizeInMb}`,
      );
    }
    const c = args.serverless.maxConcurrency;
    if (!Number.isInteger(c) || c < 1 || c > 200) {
      fail(`serverless.maxConcurrency must be an integer from 1 to 200, got ${c}`);
    }
    if (args.autoscaling) {
      fail(
        "autoscaling needs instanceType (a serverless endpoint scales up to serverless.maxConcurrency)",
      );
    }
    if (args.dataCapture) {
      fail("dataCapture is not supported on serverless endpoints");
    }
  }
  if (args.dataCapture) {
    if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(args.dataCapture.s3Uri)) {
      fail(
        `dataCapture.s3Uri must be an s3://bucket/prefix URI, got ${JSON.stringify(args.dataCapture.s3Uri)}`,
      );
    }
    const p = args.dataCapture.samplingPercentage ?? 100;
    if (!Number.isInteger(p) || p < 1 || p > 100) {
      fail(`dataCapture.samplingPercentage must be an integer from 1 to 100, got ${p}`);
    }
  }
  if (args.autoscaling) {
    const {
      minInstances: min,
      maxInstances: max,
      targetInvocationsPerInstance: target,
    } = args.autoscaling;
    if (!Number.isInteger(min) || min < 1 || !Number.isInteger(max) || min > max) {
      fail(`autoscaling needs integers 1 <= minInstances <= maxInstances, got ${min}..${max}`);
    }
    if (count < min || count > max) {
      fail(
        `instanceCount (${count}) must be within autoscaling.minInstances..maxInstances (${min}..${max})`,
      );
    }
    if (!(target > 0)) {
      fail(`autoscaling.targetInvocationsPerInstance must be > 0, got ${target}`);
    }
  }
  const mode = args.blueGreen?.mode ?? "ALL_AT_ONCE";
  if (!["ALL_AT_ONCE", "CANARY", "LINEAR"].includes(mode)) {
    fail(`blueGreen.mode must be ALL_AT_ONCE, CANARY or LINEAR, got ${JSON.stringify(mode)}`);
  }
  if (mode !== "ALL_AT_ONCE") {
    const step = args.blueGreen?.stepPercent;
    if (step === undefined || !Number.isInteger(step)) {
      fail(`blueGreen.stepPercent must be a whole number for ${mode}, got ${step}`);
    }
  }
  const timeout = args.blueGreen?.maximumExecutionTimeoutSeconds;
  if (timeout !== undefined && timeout < 600) {
    fail(`blueGreen.maximumExecutionTimeoutSeconds must be at least 600, got ${timeout}`);
  }
  for (const issue of blueGreenIssues(args.blueGreen ?? {})) {
    fail(`blueGreen.${issue.path.join(".")} ${issue.message}`);
  }
  for (const issue of sageMakerEnvironmentIssues(args.environment)) {
    fail(`environment.${issue.path.join(".")} ${issue.message}`);
  }
  const startup = args.containerStartupHealthCheckTimeoutSeconds;
  if (startup !== undefined) {
    if (args.serverless) {
      fail("containerStartupHealthCheckTimeoutSeconds applies to instanceType, not serverless");
    }
    if (!Number.isInteger(startup) || startup < 60 || startup > 3600) {
      fail(
        `containerStartupHealthCheckTimeoutSeconds must be a whole number from 60 to 3600, got ${startup}`,
      );
    }
  }
  if (
    args.vpcConfig &&
    (args.vpcConfig.subnetIds.length === 0 || args.vpcConfig.securityGroupIds.length === 0)
  ) {
    fail("vpcConfig needs at least one subnet id and one security group id");
  }
}

/** The container environment: the scorer's SageMaker defaults, then the caller's variables. */
export function sageMakerContainerEnvironment(
  environment: Record<string, string> | undefined,
): Record<string, string> {
  return {
    [SCORER_TIMEOUT_VARIABLE]: String(SAGEMAKER_DEFAULT_SCORER_TIMEOUT_SECONDS),
    ...environment,
  };
}

/**
 * A SageMaker real-time or serverless endpoint serving the scorer image. A new image creates a new
 * Model and EndpointConfiguration (auto-named, so they are replaced) and updates the Endpoint in place
 * with a blue/green deployment; the Endpoint itself (and its URL) is never replaced by an image change.
 */
export class SageMakerEndpoint extends pulumi.ComponentResource {
  public readonly endpointName: pulumi.Output<string>;
  public readonly endpointArn: pulumi.Output<string>;
  public readonly invocationUrl: pulumi.Output<string>;
  public readonly roleArn: pulumi.Output<string>;
  public readonly awsCli: pulumi.Output<string>;
  public readonly curl: pulumi.Output<string>;
  public readonly python: pulumi.Output<string>;
  /** The entry for the stack's endpoints[model].sagemaker output. */
  public readonly endpoint: pulumi.Output<CloudEndpointEntry>;

  constructor(name: string, args: SageMakerEndpointArgs, opts?: pulumi.ComponentResourceOptions) {
    validateSageMakerEndpointArgs(name, args);
    super("modelserving:aws:SageMakerEndpoint", name, {}, opts);
    const endpointName = args.endpointName ?? name;
    const region = args.region;
    const tags = args.tags;

    // Alarms first: the execution role must be allowed to read them (cloudwatch:DescribeAlarms).
    const bg = args.blueGreen ?? {};
    const alarms: aws.cloudwatch.MetricAlarm[] = [];
    if (bg.autoRollback) {
      const dimensions = { EndpointName: endpointName, VariantName: VARIANT_NAME };
      alarms.push(
        new aws.cloudwatch.MetricAlarm(
          `${name}-5xx`,
          {
            region,
            alarmDescription: `Roll back ${endpointName} on 5xx errors`,
            namespace: "AWS/SageMaker",
            metricName: "Invocation5XXErrors",
            dimensions,
            statistic: "Sum",
            period: 60,
            evaluationPeriods: 1,
            threshold: bg.autoRollback.max5xxPerMinute ?? 1,
            comparisonOperator: "GreaterThanOrEqualToThreshold",
            treatMissingData: "notBreaching",
            tags,
          },
          { parent: this },
        ),
      );
      if (bg.autoRollback.maxModelLatencyMs !== undefined) {
        alarms.push(
          new aws.cloudwatch.MetricAlarm(
            `${name}-latency`,
            {
              region,
              alarmDescription: `Roll back ${endpointName} on p99 model latency`,
              namespace: "AWS/SageMaker",
              metricName: "ModelLatency",
              dimensions,
              extendedStatistic: "p99",
              period: 60,
              evaluationPeriods: 3,
              threshold: bg.autoRollback.maxModelLatencyMs * 1000,
              comparisonOperator: "GreaterThanThreshold",
              treatMissingData: "notBreaching",
              tags,
            },
            { parent: this },
          ),
        );
      }
    }

    let roleArn: pulumi.Input<string>;
    const dependsOn: pulumi.Resource[] = [];
    if (args.roleArn !== undefined) {
      roleArn = args.roleArn;
    } else {
      const role = new aws.iam.Role(
        `${name}-role`,
        {
          description: `SageMaker execution role of endpoint ${endpointName}`,
          assumeRolePolicy: JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Effect: "Allow",
                Principal: { Service: "sagemaker.amazonaws.com" },
                Action: "sts:AssumeRole",
              },
            ],
          }),
          tags,
        },
        { parent: this },
      );
      const identity = aws.getCallerIdentityOutput({}, { parent: this });
      const partition = aws.getPartitionOutput({}, { parent: this });
      const policy = new aws.iam.RolePolicy(
        `${name}-policy`,
        {
          role: role.name,
          policy: pulumi
            .all([
              partition.partition,
              identity.accountId,
              args.ecrRepositoryArn,
              pulumi.all(alarms.map((a) => a.name)),
            ])
            .apply(([part, accountId, repoArn, alarmNames]) =>
              sageMakerExecutionPolicy({
                partition: part,
                region,
                accountId,
                endpointName,
                ecrRepositoryArn: repoArn,
                dataCaptureS3Uri: args.dataCapture?.s3Uri,
                rollbackAlarmNames: alarmNames,
                vpc: args.vpcConfig !== undefined,
                kmsKeyArn: args.kmsKeyArn,
              }),
            ),
        },
        { parent: this },
      );
      roleArn = role.arn;
      dependsOn.push(policy);
    }

    // Refuses an instance-type change of an autoscaled variant before anything is created for it.
    const guard = new SageMakerVariantGuard(
      `${name}-guard`,
      {
        endpointName,
        instanceType: args.serverless ? "serverless" : (args.instanceType ?? "ml.m5.large"),
        autoscaled: args.autoscaling !== undefined,
      },
      { parent: this },
    );
    dependsOn.push(guard);

    const model = new aws.sagemaker.Model(
      `${name}-model`,
      {
        region,
        executionRoleArn: roleArn,
        primaryContainer: {
          image: args.imageUri,
          mode: "SingleModel",
          environment: sageMakerContainerEnvironment(args.environment),
        },
        enableNetworkIsolation: args.enableNetworkIsolation,
        vpcConfig: args.vpcConfig && {
          subnets: args.vpcConfig.subnetIds,
          securityGroupIds: args.vpcConfig.securityGroupIds,
        },
        tags,
      },
      { parent: this, dependsOn },
    );

    // An autoscaled fleet keeps its size across an image roll: the new configuration starts at the
    // count autoscaling holds now (read when a new configuration is due), not at instanceCount.
    const initialInstanceCount: pulumi.Input<number> =
      args.autoscaling && !args.serverless
        ? new SageMakerCapacity(
            `${name}-capacity`,
            {
              region,
              endpointName,
              variantName: VARIANT_NAME,
              initialCount: args.instanceCount ?? 1,
              minInstances: args.autoscaling.minInstances,
              maxInstances: args.autoscaling.maxInstances,
              rollKey: pulumi.jsonStringify({
                model: model.name,
                instanceType: args.instanceType ?? "ml.m5.large",
                startupTimeout: args.containerStartupHealthCheckTimeoutSeconds ?? null,
                kmsKeyArn: args.kmsKeyArn ?? null,
                dataCapture: args.dataCapture ?? null,
              }),
            },
            { parent: this },
          ).instanceCount
        : (args.instanceCount ?? 1);

    const variant: aws.types.input.sagemaker.EndpointConfigurationProductionVariant =
      args.serverless
        ? {
            variantName: VARIANT_NAME,
            modelName: model.name,
            serverlessConfig: {
              memorySizeInMb: args.serverless.memorySizeInMb,
              maxConcurrency: args.serverless.maxConcurrency,
            },
          }
        : {
            variantName: VARIANT_NAME,
            modelName: model.name,
            instanceType: args.instanceType ?? "ml.m5.large",
            initialInstanceCount,
            containerStartupHealthCheckTimeoutInSeconds:
              args.containerStartupHealthCheckTimeoutSeconds,
          };
    const config = new aws.sagemaker.EndpointConfiguration(
      `${name}-config`,
      {
        region,
        productionVariants: [variant],
        kmsKeyArn: args.kmsKeyArn,
        dataCaptureConfig: args.dataCapture && {
          enableCapture: true,
          destinationS3Uri: args.dataCapture.s3Uri,
          initialSamplingPercentage: args.dataCapture.samplingPercentage ?? 100,
          captureOptions: [{ captureMode: "Input" }, { captureMode: "Output" }],
          captureContentTypeHeader: {
            jsonContentTypes: ["application/json"],
            csvContentTypes: ["text/csv"],
          },
        },
        tags,
      },
      { parent: this },
    );

    const mode = bg.mode ?? "ALL_AT_ONCE";
    const step =
      mode === "ALL_AT_ONCE"
        ? {}
        : {
            [mode === "CANARY" ? "canarySize" : "linearStepSize"]: {
              type: "CAPACITY_PERCENT",
              value: bg.stepPercent!,
            },
          };
    const endpoint = new aws.sagemaker.Endpoint(
      `${name}-endpoint`,
      {
        region,
        name: endpointName,
        endpointConfigName: config.name,
        deploymentConfig: {
          blueGreenUpdatePolicy: {
            trafficRoutingConfiguration: {
              type: mode,
              waitIntervalInSeconds: bg.waitIntervalSeconds ?? 300,
              ...step,
            },
            terminationWaitInSeconds: bg.terminationWaitSeconds ?? 0,
            maximumExecutionTimeoutInSeconds: bg.maximumExecutionTimeoutSeconds,
          },
          autoRollbackConfiguration:
            alarms.length > 0 ? { alarms: alarms.map((a) => ({ alarmName: a.name })) } : undefined,
        },
        tags,
      },
      { parent: this },
    );

    if (args.autoscaling) {
      const target = new aws.appautoscaling.Target(
        `${name}-scaling`,
        {
          region,
          serviceNamespace: "sagemaker",
          resourceId: pulumi.interpolate`endpoint/${endpoint.name}/variant/${VARIANT_NAME}`,
          scalableDimension: "sagemaker:variant:DesiredInstanceCount",
          minCapacity: args.autoscaling.minInstances,
          maxCapacity: args.autoscaling.maxInstances,
        },
        { parent: this },
      );
      new aws.appautoscaling.Policy(
        `${name}-invocations`,
        {
          region,
          policyType: "TargetTrackingScaling",
          serviceNamespace: target.serviceNamespace,
          resourceId: target.resourceId,
          scalableDimension: target.scalableDimension,
          targetTrackingScalingPolicyConfiguration: {
            targetValue: args.autoscaling.targetInvocationsPerInstance,
            predefinedMetricSpecification: {
              predefinedMetricType: "SageMakerVariantInvocationsPerInstance",
            },
            scaleInCooldown: 300,
            scaleOutCooldown: 60,
          },
        },
        { parent: this },
      );
    }

    const snippets = pulumi
      .all([endpoint.name, pulumi.output(args.sampleBody ?? EMPTY_SAMPLE)])
      .apply(([n, body]) => sageMakerSnippets({ region, endpointName: n, body }));
    this.endpointName = endpoint.name;
    this.endpointArn = endpoint.arn;
    this.invocationUrl = endpoint.name.apply((n) => sageMakerInvocationUrl(region, n));
    this.roleArn = pulumi.output(roleArn);
    this.awsCli = snippets.awsCli;
    this.curl = snippets.curl;
    this.python = snippets.python;
    this.endpoint = pulumi
      .all([this.invocationUrl, args.modelName, args.modelVersion, snippets])
      .apply(([url, modelName, version, s]) => ({
        target: "sagemaker" as const,
        url,
        modelUri: `models:/${modelName}/${version}`,
        version,
        curl: s.curl,
        python: s.python,
        awsCli: s.awsCli,
      }));
    this.registerOutputs({
      endpointName: this.endpointName,
      endpointArn: this.endpointArn,
      invocationUrl: this.invocationUrl,
      roleArn: this.roleArn,
      awsCli: this.awsCli,
      curl: this.curl,
      python: this.python,
      endpoint: this.endpoint,
    });
  }
}
