import * as pulumi from "@pulumi/pulumi";
import { parseCloudTargets, type CloudTargetsConfig } from "../config/cloudTargets";
import type { MlflowAuth } from "../providers/mlflow/connection";
import { AzureMlEndpoint } from "./azureMlEndpoint";
import { azureMlArgsFromConfig, sageMakerArgsFromConfig } from "./cloudTargets";
import type { CloudEndpointEntry } from "./endpoint";
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
          repositoryName: sm.repositoryName ?? `${model.toLowerCase()}-scorer`,
        },
        childOpts,
      );
      const endpoint = new SageMakerEndpoint(
        `${model}-sagemaker`,
        sageMakerArgsFromConfig(sm, {
          imageUri: image.imageUri,
          ecrRepositoryArn: image.registryResourceId,
          modelName: model,
          modelVersion: args.version,
        }),
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
                repositoryName: az.repositoryName ?? `${model.toLowerCase()}-scorer`,
                acr: {
                  name: az.registry.name,
                  resourceGroupName: az.registry.resourceGroup ?? az.resourceGroup,
                  create: az.registry.create,
                  location: az.location,
                  sku: az.registry.sku,
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
      const registryId = images.values().next().value!.registryResourceId;
      const endpoint = new AzureMlEndpoint(
        `${model}-azureml`,
        {
          ...endpointArgs,
          registryId,
          deployments: endpointArgs.deployments.map((d) => ({
            ...d,
            modelVersion: d.modelVersion === CURRENT ? args.version : d.modelVersion,
          })),
        },
        childOpts,
      );
      entries.azureml = endpoint.endpoint;
    }

    this.endpoints = pulumi.all(entries);
    this.registerOutputs({ endpoints: this.endpoints });
  }
}
