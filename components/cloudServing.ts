import * as pulumi from "@pulumi/pulumi";
import { AzureMlEndpoint } from "./azureMlEndpoint";
import { azureMlArgsFromConfig, CloudTargetsConfig, sageMakerArgsFromConfig } from "./cloudTargets";
import { EndpointEntry } from "./endpoint";
import { ScorerImage } from "./scorerImage";
import { SageMakerEndpoint } from "./sagemakerEndpoint";

// Glue between a model's `targets` config and the cloud components. index.ts loads this module only
// when some model names a cloud target, so the AWS and Azure SDKs cost nothing otherwise.

export interface CloudServingArgs {
  /** Registered model name. */
  readonly modelName: string;
  /** The registered version the stack manages (deployments without a fixed version use it). */
  readonly version: pulumi.Output<string>;
  readonly trackingUri: pulumi.Input<string>;
  readonly mlflowBin: string;
  readonly targets: CloudTargetsConfig;
}

/** Marks "the version this stack registers" where the config mapping wants a plain string. */
const CURRENT = "current";

/** Declares the scorer images and endpoints of every cloud target; returns their endpoint entries by
 * target name. Children hang under `parent` (the model's RegisteredModel). */
export function serveOnCloudTargets(
  args: CloudServingArgs,
  parent: pulumi.Resource,
): Record<string, pulumi.Output<EndpointEntry>> {
  const name = args.modelName;
  const entries: Record<string, pulumi.Output<EndpointEntry>> = {};
  const imageArgs = { modelName: name, trackingUri: args.trackingUri, mlflowBin: args.mlflowBin };

  const sm = args.targets.sagemaker;
  if (sm) {
    const image = new ScorerImage(
      `${name}-sagemaker-image`,
      {
        ...imageArgs,
        modelVersion: args.version,
        registry: "ecr",
        region: sm.region,
        repositoryName: `${name.toLowerCase()}-scorer`,
      },
      { parent },
    );
    const endpoint = new SageMakerEndpoint(
      `${name}-sagemaker`,
      sageMakerArgsFromConfig(sm, {
        imageUri: image.imageUri,
        ecrRepositoryArn: image.registryResourceId,
        modelName: name,
        modelVersion: args.version,
      }),
      { parent },
    );
    entries.sagemaker = endpoint.endpoint;
  }

  const az = args.targets.azureml;
  if (az) {
    const images = new Map<string, ScorerImage>();
    const imageFor = (version: string) => {
      if (!images.has(version)) {
        images.set(
          version,
          new ScorerImage(
            `${name}-azureml-image-${version}`,
            {
              ...imageArgs,
              modelVersion: version === CURRENT ? args.version : version,
              registry: "acr",
              repositoryName: az.repositoryName ?? `${name.toLowerCase()}-scorer`,
              acr: {
                name: az.registry.name,
                resourceGroupName: az.registry.resourceGroup ?? az.resourceGroup,
                create: az.registry.create,
                location: az.location,
                sku: az.registry.sku,
              },
            },
            { parent },
          ),
        );
      }
      return images.get(version)!.imageUri;
    };
    const endpointArgs = azureMlArgsFromConfig(az, {
      registryId: pulumi.output(""),
      modelName: name,
      modelVersion: CURRENT,
      imageFor,
    });
    const registryId = images.values().next().value!.registryResourceId;
    const endpoint = new AzureMlEndpoint(
      `${name}-azureml`,
      {
        ...endpointArgs,
        registryId,
        deployments: endpointArgs.deployments.map((d) => ({
          ...d,
          modelVersion: d.modelVersion === CURRENT ? args.version : d.modelVersion,
        })),
      },
      { parent },
    );
    entries.azureml = endpoint.endpoint;
  }
  return entries;
}
