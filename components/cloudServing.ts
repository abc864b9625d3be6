import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parseCloudTargets, type CloudTargetsConfig } from "../config/cloudTargets";
import type { MlflowAuth } from "../providers/mlflow/connection";
import { AzureMlEndpoint } from "./azureMlEndpoint";
import { azureMlArgsFromConfig, sageMakerArgsFromConfig } from "./cloudTargets";
import type { CloudEndpointEntry } from "./endpoint";
import { EMPTY_SAMPLE, sampleRequestBody } from "./sampleInput";
import { ScorerImage } from "./scorerImage";
import { SageMakerEndpoint } from "./sagemakerEndpoint";

// index.ts loads this module only when some model names a cloud target, so the AWS and Azure SDKs
// cost nothing otherwise.

export interface CloudServingArgs {
  /** Registered model name; the children are named `<modelName>-sagemaker...`, `<modelName>-azureml...`. */
  readonly modelName: string;
  /** The registered version the stack manages (deployments without a fixed version use it). */
  readonly version: pulumi.Input<string>;
  /** Tracking server the scorer images export the model from. */
  readonly trackingUri: pulumi.Input<string>;
  /** The stack's MLflow credentials (secret), for the model export. */
  readonly auth?: pulumi.Input<MlflowAuth | undefined>;
  /** The `mlflow` executable used to export the model. */
  readonly mlflowBin: string;
  /** The model's `targets` config (schema: config/cloudTargets.ts). */
  readonly targets: CloudTargetsConfig;
  /** The model's configured `sampleInput`: the body the generated commands send. */
  readonly sampleInput?: Record<string, unknown>;
  /** The model's local source folder (its serving_input_example.json is the sample otherwise). */
  readonly source?: string;
}

/**
 * Default repository name, unique per project and stack so two stacks in one account or registry
 * never push to (or expire images of) the same repository.
 */
export function defaultRepositoryName(project: string, stack: string, model: string): string {
  return `${project}-${stack}-${model}-scorer`
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/[._-]{2,}/g, "-")
    .replace(/^[._-]+|[._-]+$/g, "");
}

/**
 * The body the cloud commands send: the configured sample or the source's input example; else the
 * input example MLflow logged with the exported model (in the image's build context).
 */
export function cloudSampleBody(
  args: Pick<CloudServingArgs, "sampleInput" | "source">,
  contextDir: pulumi.Input<string>,
): pulumi.Output<unknown> {
  const configured = sampleRequestBody(args.source ?? "", args.sampleInput);
  if (configured !== EMPTY_SAMPLE) {
    return pulumi.output(configured);
  }
  // A URI source, or a folder without an example: the downloaded model may still carry one.
  return pulumi.output(contextDir).apply((dir) => sampleRequestBody(path.join(dir, "model")));
}

/** Marks "the version this stack registers" where the config mapping wants a plain string. */
const CURRENT = "current";

/**
 * The cloud serving of one registered model: per target a scorer image and an endpoint (SageMaker,
 * Azure ML), all children of this component. `endpoints` maps each configured target to its entry.
 */
export class CloudServing extends pulumi.ComponentResource {
  /** Target name (`sagemaker`, `azureml`) -> how to score it. */
  public readonly endpoints: pulumi.Output<Record<string, CloudEndpointEntry>>;

  constructor(name: string, args: CloudServingArgs, opts?: pulumi.ComponentResourceOptions) {
    // The same schema the stack config is validated with.
    const targets = parseCloudTargets(args.targets, `CloudServing ${name}: targets`);
    super("modelserving:cloud:CloudServing", name, {}, opts);
    const model = args.modelName;
    // Released stacks had these children under the model's RegisteredModel: keep their URNs.
    const childOpts: pulumi.CustomResourceOptions = {
      parent: this,
      aliases: [{ parent: pulumi.createUrn(model, "modelserving:mlflow:RegisteredModel") }],
    };
    const entries: Record<string, pulumi.Output<CloudEndpointEntry>> = {};
    const repositoryName = defaultRepositoryName(pulumi.getProject(), pulumi.getStack(), model);
    const imageArgs = {
      modelName: model,
      trackingUri: args.trackingUri,
      auth: args.auth,
      mlflowBin: args.mlflowBin,
    };

    const sm = targets.sagemaker;
    if (sm) {
      const image = new ScorerImage(
        `${model}-sagemaker-image`,
        {
          ...imageArgs,
          modelVersion: args.version,
          registry: "ecr",
          region: sm.region,
          repositoryName: sm.repositoryName ?? repositoryName,
          tags: sm.tags,
        },
        childOpts,
      );
      const endpoint = new SageMakerEndpoint(
        `${model}-sagemaker`,
        {
          ...sageMakerArgsFromConfig(sm, {
            imageUri: image.imageUri,
            ecrRepositoryArn: image.registryResourceId,
            modelName: model,
            modelVersion: args.version,
          }),
          sampleBody: cloudSampleBody(args, image.contextDir),
        },
        childOpts,
      );
      entries.sagemaker = endpoint.endpoint;
    }

    const az = targets.azureml;
    if (az) {
      const images = new Map<string, ScorerImage>();
      const imageFor = (version: string) => {
        if (!images.has(version)) {
          images.set(
            version,
            new ScorerImage(
              `${model}-azureml-image-${version}`,
              {
                ...imageArgs,
                modelVersion: version === CURRENT ? args.version : version,
                registry: "acr",
                repositoryName: az.repositoryName ?? repositoryName,
                acr: {
                  name: az.registry.name,
                  resourceGroupName: az.registry.resourceGroup ?? az.resourceGroup,
                  create: az.registry.create,
                  location: az.location,
                  sku: az.registry.sku,
                  login: az.registry.login,
                },
              },
              childOpts,
            ),
          );
        }
        return images.get(version)!.imageUri;
      };
      const endpointArgs = azureMlArgsFromConfig(az, {
        registryId: pulumi.output(""),
        modelName: model,
        modelVersion: CURRENT,
        imageFor,
      });
      const first = images.values().next().value!;
      const registryId = first.registryResourceId;
      const endpoint = new AzureMlEndpoint(
        `${model}-azureml`,
        {
          ...endpointArgs,
          registryId,
          deployments: endpointArgs.deployments.map((d) => ({
            ...d,
            modelVersion: d.modelVersion === CURRENT ? args.version : d.modelVersion,
          })),
          sampleBody: cloudSampleBody(args, first.contextDir),
        },
        childOpts,
      );
      entries.azureml = endpoint.endpoint;
    }

    this.endpoints = pulumi.all(entries);
    this.registerOutputs({ endpoints: this.endpoints });
  }
}
