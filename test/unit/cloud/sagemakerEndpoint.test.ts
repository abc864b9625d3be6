/* eslint-disable @typescript-eslint/no-explicit-any -- the mock monitor's requests are untyped */
import * as pulumi from "@pulumi/pulumi";
import { mockRecorder, value } from "../../support/mockRecorder";

// jest cannot run Pulumi's closure serializer (providerSerialization.test.ts proves the real provider
// serializes, in plain node); here the guard registers the same type and inputs without it.
jest.mock("../../../components/cloud/sagemakerVariantGuard", () => {
  const actual = jest.requireActual("../../../components/cloud/sagemakerVariantGuard");
  const { CustomResource } = jest.requireActual("@pulumi/pulumi");
  class SageMakerVariantGuard extends CustomResource {
    constructor(name: string, args: Record<string, unknown>, opts?: object) {
      super("pulumi-nodejs:dynamic/modelserving:SageMakerVariantGuard", name, args, opts);
    }
  }
  return { ...actual, SageMakerVariantGuard };
});
jest.mock("../../../components/cloud/sagemakerCapacity", () => {
  const actual = jest.requireActual("../../../components/cloud/sagemakerCapacity");
  const { CustomResource } = jest.requireActual("@pulumi/pulumi");
  class SageMakerCapacity extends CustomResource {
    constructor(name: string, args: Record<string, unknown>, opts?: object) {
      super(
        "pulumi-nodejs:dynamic/modelserving:SageMakerCapacity",
        name,
        { instanceCount: undefined, ...args },
        opts,
      );
    }
  }
  return { ...actual, SageMakerCapacity };
});
/** The count the capacity stand-in "reads" from a live endpoint that autoscaling grew. */
const LIVE_COUNT = 5;

const { registrations, record, settle, of, one } = mockRecorder();
const DIGEST = "a".repeat(64);
const IMAGE = `123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris@sha256:${DIGEST}`;
const REPO_ARN = "arn:aws:ecr:eu-west-1:123456789012:repository/iris";

pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const name = args.inputs.name ?? `${args.name}-0a1b2c3`;
      const read =
        args.type === "pulumi-nodejs:dynamic/modelserving:SageMakerCapacity"
          ? { instanceCount: LIVE_COUNT, source: "endpoint" }
          : {};
      return {
        id: `${args.name}-id`,
        state: { ...args.inputs, name, arn: `arn:aws:mock:::${name}`, ...read },
      };
    },
    call(args) {
      if (args.token === "aws:index/getCallerIdentity:getCallerIdentity") {
        return {
          accountId: "123456789012",
          arn: "arn:aws:iam::123456789012:user/me",
          userId: "me",
        };
      }
      if (args.token === "aws:index/getPartition:getPartition") {
        return { partition: "aws", dnsSuffix: "amazonaws.com" };
      }
      throw new Error(`unexpected call ${args.token}`);
    },
  },
  "model-serving",
  "test",
  false,
);

/** Resource options as the engine receives them (the mocks' records carry only inputs). */
const registeredOptions = new Map<
  string,
  { replaceOnChanges: string[]; retainOnDelete: boolean; dependencies: string[] }
>();
{
  const monitor = pulumi.runtime.getMonitor() as any;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, callback: unknown) => {
    registeredOptions.set(req.getName(), {
      replaceOnChanges: req.getReplaceonchangesList(),
      retainOnDelete: req.getRetainondelete(),
      dependencies: req.getDependenciesList(),
    });
    return register(req, callback);
  };
}

import type * as sm from "../../../components/sagemakerEndpoint";
let mod: typeof sm;
beforeAll(async () => {
  mod = await import("../../../components/sagemakerEndpoint");
});

const base = {
  imageUri: IMAGE,
  ecrRepositoryArn: REPO_ARN,
  region: "eu-west-1",
  modelName: "iris",
  modelVersion: "3",
};

describe("SageMakerEndpoint graph", () => {
  test("real-time endpoint: role, least-privilege policy, model, config, blue/green endpoint, autoscaling", async () => {
    const ep = new mod.SageMakerEndpoint("iris-rt", {
      ...base,
      instanceType: "ml.c5.large",
      instanceCount: 2,
      dataCapture: { s3Uri: "s3://captures/iris", samplingPercentage: 20 },
      autoscaling: { minInstances: 2, maxInstances: 6, targetInvocationsPerInstance: 500 },
      blueGreen: {
        mode: "CANARY",
        stepPercent: 10,
        waitIntervalSeconds: 600,
        autoRollback: { maxModelLatencyMs: 250 },
      },
    });
    const entry = await value(ep.endpoint);
    await settle();

    expect(
      of("iris-rt")
        .map((r) => `${r.type} ${r.name}`)
        .sort(),
    ).toEqual([
      "aws:appautoscaling/policy:Policy iris-rt-invocations",
      "aws:appautoscaling/target:Target iris-rt-scaling",
      "aws:cloudwatch/metricAlarm:MetricAlarm iris-rt-5xx",
      "aws:cloudwatch/metricAlarm:MetricAlarm iris-rt-latency",
      "aws:iam/role:Role iris-rt-role",
      "aws:iam/rolePolicy:RolePolicy iris-rt-policy",
      "aws:sagemaker/endpoint:Endpoint iris-rt-endpoint",
      "aws:sagemaker/endpointConfiguration:EndpointConfiguration iris-rt-config",
      "aws:sagemaker/model:Model iris-rt-model",
      "pulumi-nodejs:dynamic/modelserving:SageMakerCapacity iris-rt-capacity",
      "pulumi-nodejs:dynamic/modelserving:SageMakerVariantGuard iris-rt-guard",
    ]);
    // The autoscaled variant's configuration starts at the live count, read when a roll is due.
    const capacity = one("iris-rt", "pulumi-nodejs:dynamic/modelserving:SageMakerCapacity").inputs;
    expect({ ...capacity, rollKey: JSON.parse(capacity.rollKey) }).toEqual({
      region: "eu-west-1",
      endpointName: "iris-rt",
      variantName: "AllTraffic",
      initialCount: 2,
      minInstances: 2,
      maxInstances: 6,
      rollKey: {
        model: "iris-rt-model-0a1b2c3",
        instanceType: "ml.c5.large",
        startupTimeout: null,
        kmsKeyArn: null,
        dataCapture: { s3Uri: "s3://captures/iris", samplingPercentage: 20 },
      },
    });
    expect(
      one("iris-rt", "pulumi-nodejs:dynamic/modelserving:SageMakerVariantGuard").inputs,
    ).toEqual({ endpointName: "iris-rt", instanceType: "ml.c5.large", autoscaled: true });

    const role = one("iris-rt", "aws:iam/role:Role");
    expect(JSON.parse(role.inputs.assumeRolePolicy).Statement).toEqual([
      {
        Effect: "Allow",
        Principal: { Service: "sagemaker.amazonaws.com" },
        Action: "sts:AssumeRole",
      },
    ]);
    const policy = JSON.parse(one("iris-rt", "aws:iam/rolePolicy:RolePolicy").inputs.policy);
    expect(policy.Statement).toEqual([
      {
        Sid: "PullScorerImage",
        Effect: "Allow",
        Action: [
          "ecr:BatchCheckLayerAvailability",
          "ecr:BatchGetImage",
          "ecr:GetDownloadUrlForLayer",
        ],
        Resource: REPO_ARN,
      },
      { Sid: "EcrLogin", Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
      {
        Sid: "EndpointLogs",
        Effect: "Allow",
        Action: [
          "logs:CreateLogGroup",
          "logs:CreateLogStream",
          "logs:DescribeLogStreams",
          "logs:PutLogEvents",
        ],
        Resource: [
          "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/iris-rt",
          "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/iris-rt:log-stream:*",
        ],
      },
      {
        Sid: "DataCapture",
        Effect: "Allow",
        Action: "s3:PutObject",
        Resource: "arn:aws:s3:::captures/iris/*",
      },
      // Auto-rollback: SageMaker reads the alarms with the execution role during the update.
      {
        Sid: "ReadRollbackAlarms",
        Effect: "Allow",
        Action: "cloudwatch:DescribeAlarms",
        Resource: [
          "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:iris-rt-5xx-0a1b2c3",
          "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:iris-rt-latency-0a1b2c3",
        ],
      },
    ]);

    const model = one("iris-rt", "aws:sagemaker/model:Model");
    expect(model.inputs.name).toBeUndefined(); // auto-named: a new image replaces it
    expect(model.inputs.region).toBe("eu-west-1");
    expect(model.inputs.executionRoleArn).toBe("arn:aws:mock:::iris-rt-role-0a1b2c3");
    expect(model.inputs.primaryContainer).toEqual({
      image: IMAGE,
      mode: "SingleModel",
      environment: { MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: "55" },
    });

    const config = one("iris-rt", "aws:sagemaker/endpointConfiguration:EndpointConfiguration");
    expect(config.inputs.name).toBeUndefined();
    expect(config.inputs.productionVariants).toEqual([
      {
        variantName: "AllTraffic",
        modelName: "iris-rt-model-0a1b2c3",
        instanceType: "ml.c5.large",
        initialInstanceCount: LIVE_COUNT,
      },
    ]);
    expect(config.inputs.dataCaptureConfig).toEqual({
      enableCapture: true,
      destinationS3Uri: "s3://captures/iris",
      initialSamplingPercentage: 20,
      captureOptions: [{ captureMode: "Input" }, { captureMode: "Output" }],
      captureContentTypeHeader: {
        jsonContentTypes: ["application/json"],
        csvContentTypes: ["text/csv"],
      },
    });

    const endpoint = one("iris-rt", "aws:sagemaker/endpoint:Endpoint");
    expect(endpoint.inputs.name).toBe("iris-rt");
    expect(endpoint.inputs.endpointConfigName).toBe("iris-rt-config-0a1b2c3");
    expect(endpoint.inputs.deploymentConfig).toEqual({
      blueGreenUpdatePolicy: {
        trafficRoutingConfiguration: {
          type: "CANARY",
          waitIntervalInSeconds: 600,
          canarySize: { type: "CAPACITY_PERCENT", value: 10 },
        },
        terminationWaitInSeconds: 0,
      },
      autoRollbackConfiguration: {
        alarms: [{ alarmName: "iris-rt-5xx-0a1b2c3" }, { alarmName: "iris-rt-latency-0a1b2c3" }],
      },
    });
    const latency = registrations.find((r) => r.name === "iris-rt-latency")!;
    expect(latency.inputs).toMatchObject({
      namespace: "AWS/SageMaker",
      metricName: "ModelLatency",
      dimensions: { EndpointName: "iris-rt", VariantName: "AllTraffic" },
      extendedStatistic: "p99",
      threshold: 250000,
    });
    expect(registrations.find((r) => r.name === "iris-rt-5xx")!.inputs).toMatchObject({
      metricName: "Invocation5XXErrors",
      threshold: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
    });

    expect(one("iris-rt", "aws:appautoscaling/target:Target").inputs).toMatchObject({
      serviceNamespace: "sagemaker",
      resourceId: "endpoint/iris-rt/variant/AllTraffic",
      scalableDimension: "sagemaker:variant:DesiredInstanceCount",
      minCapacity: 2,
      maxCapacity: 6,
    });
    expect(one("iris-rt", "aws:appautoscaling/policy:Policy").inputs).toMatchObject({
      policyType: "TargetTrackingScaling",
      targetTrackingScalingPolicyConfiguration: {
        targetValue: 500,
        predefinedMetricSpecification: {
          predefinedMetricType: "SageMakerVariantInvocationsPerInstance",
        },
      },
    });

    expect(entry.target).toBe("sagemaker");
    expect(entry.url).toBe(
      "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/iris-rt/invocations",
    );
    expect(entry.modelUri).toBe("models:/iris/3");
    expect(entry.version).toBe("3");
    expect(entry.curl).toContain("--aws-sigv4 'aws:amz:eu-west-1:sagemaker'");
    expect(entry.awsCli).toContain("--endpoint-name 'iris-rt'");
    expect(await value(ep.invocationUrl)).toBe(entry.url);
  });

  test("serverless endpoint with a given role creates no role and no scaling", async () => {
    const ep = new mod.SageMakerEndpoint("iris-sl", {
      ...base,
      endpointName: "iris-serverless",
      roleArn: "arn:aws:iam::123456789012:role/existing",
      serverless: { memorySizeInMb: 2048, maxConcurrency: 5 },
    });
    await value(ep.endpoint);
    await settle();
    expect(
      of("iris-sl")
        .map((r) => r.type)
        .sort(),
    ).toEqual([
      "aws:sagemaker/endpoint:Endpoint",
      "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
      "aws:sagemaker/model:Model",
      "pulumi-nodejs:dynamic/modelserving:SageMakerVariantGuard",
    ]);
    expect(
      one("iris-sl", "pulumi-nodejs:dynamic/modelserving:SageMakerVariantGuard").inputs,
    ).toEqual({ endpointName: "iris-serverless", instanceType: "serverless", autoscaled: false });
    expect(one("iris-sl", "aws:sagemaker/model:Model").inputs.executionRoleArn).toBe(
      "arn:aws:iam::123456789012:role/existing",
    );
    expect(
      one("iris-sl", "aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs
        .productionVariants,
    ).toEqual([
      {
        variantName: "AllTraffic",
        modelName: "iris-sl-model-0a1b2c3",
        serverlessConfig: { memorySizeInMb: 2048, maxConcurrency: 5 },
      },
    ]);
    const endpoint = one("iris-sl", "aws:sagemaker/endpoint:Endpoint");
    expect(endpoint.inputs.name).toBe("iris-serverless");
    expect(endpoint.inputs.deploymentConfig).toEqual({
      blueGreenUpdatePolicy: {
        trafficRoutingConfiguration: { type: "ALL_AT_ONCE", waitIntervalInSeconds: 300 },
        terminationWaitInSeconds: 0,
      },
    });
    expect(await value(ep.roleArn)).toBe("arn:aws:iam::123456789012:role/existing");
  });

  test("a new image digest changes only the auto-named Model/EndpointConfiguration inputs, not the Endpoint's", async () => {
    const a = new mod.SageMakerEndpoint("roll-a", { ...base, endpointName: "iris-roll" });
    const b = new mod.SageMakerEndpoint("roll-b", {
      ...base,
      endpointName: "iris-roll",
      imageUri: IMAGE.replace(DIGEST, "b".repeat(64)),
    });
    await Promise.all([value(a.endpoint), value(b.endpoint)]);
    await settle();
    const endpointA = one("roll-a", "aws:sagemaker/endpoint:Endpoint").inputs;
    const endpointB = one("roll-b", "aws:sagemaker/endpoint:Endpoint").inputs;
    expect(endpointA.name).toBe(endpointB.name);
    expect(one("roll-a", "aws:sagemaker/model:Model").inputs.primaryContainer.image).not.toBe(
      one("roll-b", "aws:sagemaker/model:Model").inputs.primaryContainer.image,
    );
  });

  test("container environment (scorer timeout default below 60 s), startup health check, VPC, isolation, KMS and tags", async () => {
    const tags = { team: "ml", cost: "serving" };
    const ep = new mod.SageMakerEndpoint("iris-net", {
      ...base,
      environment: { WORKERS: "4", SCORER_KEEPALIVE: "75" },
      containerStartupHealthCheckTimeoutSeconds: 900,
      vpcConfig: { subnetIds: ["subnet-0a1"], securityGroupIds: ["sg-0b2"] },
      enableNetworkIsolation: true,
      kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:key/k-1",
      tags,
      sampleBody: { inputs: [[1, 2]] },
    });
    const entry = await value(ep.endpoint);
    await settle();
    const model = one("iris-net", "aws:sagemaker/model:Model").inputs;
    expect(model.primaryContainer.environment).toEqual({
      MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: "55",
      WORKERS: "4",
      SCORER_KEEPALIVE: "75",
    });
    expect(model.enableNetworkIsolation).toBe(true);
    expect(model.vpcConfig).toEqual({ subnets: ["subnet-0a1"], securityGroupIds: ["sg-0b2"] });
    const config = one("iris-net", "aws:sagemaker/endpointConfiguration:EndpointConfiguration");
    expect(config.inputs.kmsKeyArn).toBe("arn:aws:kms:eu-west-1:123456789012:key/k-1");
    expect(config.inputs.productionVariants[0].containerStartupHealthCheckTimeoutInSeconds).toBe(
      900,
    );
    for (const type of [
      "aws:iam/role:Role",
      "aws:sagemaker/model:Model",
      "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
      "aws:sagemaker/endpoint:Endpoint",
    ]) {
      expect([type, one("iris-net", type).inputs.tags]).toEqual([type, tags]);
    }
    const policy = JSON.parse(one("iris-net", "aws:iam/rolePolicy:RolePolicy").inputs.policy);
    expect(policy.Statement.map((st: { Sid: string }) => st.Sid)).toEqual([
      "PullScorerImage",
      "EcrLogin",
      "EndpointLogs",
      "VpcNetworkInterfaces",
      "VolumeKey",
    ]);
    expect(policy.Statement.at(-1)).toEqual({
      Sid: "VolumeKey",
      Effect: "Allow",
      Action: ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
      Resource: "arn:aws:kms:eu-west-1:123456789012:key/k-1",
    });
    // The commands send the sample they were given, not a fixed row.
    expect(entry.awsCli).toContain(`--body '{"inputs":[[1,2]]}'`);
  });

  test("a caller's scorer timeout wins over the default; no rollback alarms, no DescribeAlarms", async () => {
    const ep = new mod.SageMakerEndpoint("iris-env", {
      ...base,
      environment: { MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: "30" },
    });
    await value(ep.endpoint);
    await settle();
    expect(
      one("iris-env", "aws:sagemaker/model:Model").inputs.primaryContainer.environment,
    ).toEqual({ MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: "30" });
    const policy = JSON.parse(one("iris-env", "aws:iam/rolePolicy:RolePolicy").inputs.policy);
    expect(policy.Statement.map((st: { Sid: string }) => st.Sid)).toEqual([
      "PullScorerImage",
      "EcrLogin",
      "EndpointLogs",
    ]);
  });

  test("an instance-type change of an autoscaled variant is refused before anything changes", async () => {
    const guard = await import("../../../components/cloud/sagemakerVariantGuard");
    const deployed = { endpointName: "iris", instanceType: "ml.c5.large", autoscaled: true };
    const refusal =
      "instanceType of iris cannot change from ml.c5.large to ml.c5.xlarge while its variant is registered with Application Auto Scaling " +
      "(SageMaker's UpdateEndpoint refuses it). Change it in three updates: remove autoscaling and `pulumi up`; " +
      "change instanceType and `pulumi up`; add autoscaling back and `pulumi up`";
    const bigger = { ...deployed, instanceType: "ml.c5.xlarge" };
    expect(await guard.variantGuardProvider.check!(deployed, bigger)).toEqual({
      inputs: bigger,
      failures: [{ property: "instanceType", reason: refusal }],
    });
    // Removing autoscaling in the same update does not help: the target is deregistered last.
    expect(guard.variantChangeProblem(deployed, { ...bigger, autoscaled: false })).toBe(refusal);
    // What works: same type, not autoscaled before, or a first deployment.
    expect(
      guard.variantChangeProblem(deployed, { ...deployed, autoscaled: false }),
    ).toBeUndefined();
    expect(
      guard.variantChangeProblem(
        { ...deployed, autoscaled: false },
        { ...bigger, autoscaled: true },
      ),
    ).toBeUndefined();
    expect(await guard.variantGuardProvider.check!(undefined as never, bigger)).toEqual({
      inputs: bigger,
    });
    expect(await guard.variantGuardProvider.diff!("iris", deployed, bigger)).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  test.each([
    [{ mode: "ALL_AT_ONCE" as const }, 900],
    [{ mode: "CANARY" as const, stepPercent: 50, waitIntervalSeconds: 600 }, 1800],
    [{ mode: "LINEAR" as const, stepPercent: 10, waitIntervalSeconds: 300 }, 3600],
    [{ mode: "LINEAR" as const, stepPercent: 30, terminationWaitSeconds: 60 }, 1860],
  ])("blue/green %j takes at most %d s, within the provider's wait", async (bg, seconds) => {
    const { blueGreenTotalSeconds, blueGreenIssues } = await import("../../../config/cloudTargets");
    expect(blueGreenTotalSeconds(bg)).toBe(seconds);
    expect(blueGreenIssues(bg)).toEqual([]);
  });

  test.each([
    [
      { instanceType: "ml.m5.large", serverless: { memorySizeInMb: 2048, maxConcurrency: 5 } },
      "SageMakerEndpoint: set either instanceType or serverless, not both",
    ],
    [{ region: "Europe" }, 'SageMakerEndpoint: region must look like us-east-1, got "Europe"'],
    [
      { endpointName: "iris_prod" },
      'SageMakerEndpoint: endpointName must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit, got "iris_prod"',
    ],
    [
      { imageUri: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:latest" },
      'SageMakerEndpoint: imageUri must be pinned by digest (repo@sha256:...), got "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:latest"',
    ],
    [{ instanceCount: 0 }, "SageMakerEndpoint: instanceCount must be an integer >= 1, got 0"],
    [
      { serverless: { memorySizeInMb: 1000, maxConcurrency: 5 } },
      "SageMakerEndpoint: serverless.memorySizeInMb must be one of 1024, 2048, 3072, 4096, 5120, 6144, got 1000",
    ],
    [
      { serverless: { memorySizeInMb: 1024, maxConcurrency: 500 } },
      "SageMakerEndpoint: serverless.maxConcurrency must be an integer from 1 to 200, got 500",
    ],
    [
      { serverless: { memorySizeInMb: 1024, maxConcurrency: 5 }, instanceCount: 2 },
      "SageMakerEndpoint: instanceCount applies to instanceType, not serverless",
    ],
    [
      {
        serverless: { memorySizeInMb: 1024, maxConcurrency: 5 },
        autoscaling: { minInstances: 1, maxInstances: 2, targetInvocationsPerInstance: 10 },
      },
      "SageMakerEndpoint: autoscaling needs instanceType (a serverless endpoint scales up to serverless.maxConcurrency)",
    ],
    [
      {
        serverless: { memorySizeInMb: 1024, maxConcurrency: 5 },
        dataCapture: { s3Uri: "s3://b/p" },
      },
      "SageMakerEndpoint: dataCapture is not supported on serverless endpoints",
    ],
    [
      { dataCapture: { s3Uri: "captures/iris" } },
      'SageMakerEndpoint: dataCapture.s3Uri must be an s3://bucket/prefix URI, got "captures/iris"',
    ],
    [
      { dataCapture: { s3Uri: "s3://captures/iris", samplingPercentage: 0 } },
      "SageMakerEndpoint: dataCapture.samplingPercentage must be an integer from 1 to 100, got 0",
    ],
    [
      { autoscaling: { minInstances: 3, maxInstances: 2, targetInvocationsPerInstance: 10 } },
      "SageMakerEndpoint: autoscaling needs integers 1 <= minInstances <= maxInstances, got 3..2",
    ],
    [
      { autoscaling: { minInstances: 2, maxInstances: 4, targetInvocationsPerInstance: 10 } },
      "SageMakerEndpoint: instanceCount (1) must be within autoscaling.minInstances..maxInstances (2..4)",
    ],
    [
      { autoscaling: { minInstances: 1, maxInstances: 4, targetInvocationsPerInstance: 0 } },
      "SageMakerEndpoint: autoscaling.targetInvocationsPerInstance must be > 0, got 0",
    ],
    [
      { blueGreen: { mode: "RANDOM" } },
      'SageMakerEndpoint: blueGreen.mode must be ALL_AT_ONCE, CANARY or LINEAR, got "RANDOM"',
    ],
    [
      { blueGreen: { mode: "LINEAR" } },
      "SageMakerEndpoint: blueGreen.stepPercent must be a whole number for LINEAR, got undefined",
    ],
    [
      { blueGreen: { maximumExecutionTimeoutSeconds: 60 } },
      "SageMakerEndpoint: blueGreen.maximumExecutionTimeoutSeconds must be at least 600, got 60",
    ],
    [
      { blueGreen: { mode: "CANARY", stepPercent: 60 } },
      "SageMakerEndpoint: blueGreen.stepPercent must be from 1 to 50 for CANARY (a canary is at most half the new fleet), got 60",
    ],
    [
      { blueGreen: { mode: "LINEAR", stepPercent: 5 } },
      "SageMakerEndpoint: blueGreen.stepPercent must be from 10 to 50 for LINEAR, got 5",
    ],
    [
      { blueGreen: { mode: "LINEAR", stepPercent: 60 } },
      "SageMakerEndpoint: blueGreen.stepPercent must be from 10 to 50 for LINEAR, got 60",
    ],
    [
      { blueGreen: { maximumExecutionTimeoutSeconds: 7200 } },
      "SageMakerEndpoint: blueGreen.maximumExecutionTimeoutSeconds must be at most 3600: the AWS provider stops waiting for an endpoint update after 60 minutes, got 7200",
    ],
    [
      { blueGreen: { mode: "LINEAR", stepPercent: 10, waitIntervalSeconds: 600 } },
      "SageMakerEndpoint: blueGreen.waitIntervalSeconds makes an update take up to 6600s (600s provisioning + 10 baking periods of 600s + 0s termination wait), " +
        "more than the 3600s the AWS provider waits for an endpoint update; shorten waitIntervalSeconds or terminationWaitSeconds or raise stepPercent",
    ],
    [
      { blueGreen: { waitIntervalSeconds: 1800, terminationWaitSeconds: 1800 } },
      "SageMakerEndpoint: blueGreen.waitIntervalSeconds makes an update take up to 4200s (600s provisioning + 1 baking periods of 1800s + 1800s termination wait), " +
        "more than the 3600s the AWS provider waits for an endpoint update; shorten waitIntervalSeconds or terminationWaitSeconds",
    ],
    [
      { environment: { MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: "60" } },
      'SageMakerEndpoint: environment.MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT must be whole seconds from 1 to 59 (SageMaker ends an invocation at 60s), got "60"',
    ],
    [
      { environment: { SCORER_TIMEOUT_SECONDS: "90" } },
      'SageMakerEndpoint: environment.SCORER_TIMEOUT_SECONDS must be whole seconds from 1 to 59 (SageMaker ends an invocation at 60s), got "90"',
    ],
    [
      {
        serverless: { memorySizeInMb: 1024, maxConcurrency: 5 },
        containerStartupHealthCheckTimeoutSeconds: 600,
      },
      "SageMakerEndpoint: containerStartupHealthCheckTimeoutSeconds applies to instanceType, not serverless",
    ],
    [
      { containerStartupHealthCheckTimeoutSeconds: 30 },
      "SageMakerEndpoint: containerStartupHealthCheckTimeoutSeconds must be a whole number from 60 to 3600, got 30",
    ],
  ])("rejects %j", (bad, message) => {
    const before = registrations.length;
    expect(
      () =>
        new mod.SageMakerEndpoint("bad", {
          ...base,
          ...(bad as object),
        } as sm.SageMakerEndpointArgs),
    ).toThrow(new Error(message));
    expect(registrations.length).toBe(before);
  });
});
