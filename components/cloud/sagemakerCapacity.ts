/**
 * SageMakerCapacity: the instance count a new endpoint configuration of an autoscaled variant starts with.
 * The AWS provider updates an endpoint without RetainAllVariantProperties, so SageMaker starts the new
 * fleet at the configuration's initialInstanceCount: every image roll would drop a fleet that autoscaling
 * grew (say to 6) back to the configured count (say 1) until the scaling policy catches up. This resource
 * reads the variant's desired count whenever what goes into a new endpoint configuration changes, and
 * the configuration starts there.
 *
 * Contract
 * - id: the endpoint name (natural, stable).
 * - create/update: DescribeEndpoint; the variant's DesiredInstanceCount (else CurrentInstanceCount),
 *   clamped to minInstances..maxInstances, is `instanceCount`. An endpoint that does not exist yet (first
 *   deployment, or replaced) gives `initialCount`. Any other error fails the update before the new
 *   configuration exists, naming the endpoint and the cause (e.g. missing sagemaker:DescribeEndpoint).
 * - diff: a change of rollKey (hash of everything that makes a new configuration), endpoint, region,
 *   variant or bounds is an update (read again); otherwise nothing, so the count autoscaling moves later
 *   never shows as a diff and never rolls the endpoint by itself.
 * - read: the recorded decision as it is (it stands for nothing outside the state).
 * - delete: nothing.
 * - credentials: the AWS SDK's default chain in the provider process (environment, AWS_PROFILE, SSO,
 *   instance or container role), as the AWS provider without explicit keys; never an input.
 * Provider methods run in another process: every module is required inside the functions below.
 */
import * as pulumi from "@pulumi/pulumi";

export interface CapacityInputs {
  region: string;
  endpointName: string;
  variantName: string;
  /** The configured instanceCount: the count of a first deployment. */
  initialCount: number;
  minInstances: number;
  maxInstances: number;
  /** Changes whenever the next UpdateEndpoint would start a new fleet (image, environment, ...). */
  rollKey: string;
}

export interface CapacityOutputs extends CapacityInputs {
  /** The count the new endpoint configuration starts with. */
  instanceCount: number;
  /** Where it came from: "endpoint" (read) or "initial" (no endpoint yet). */
  source: "endpoint" | "initial";
}

const COMPARED: (keyof CapacityInputs)[] = [
  "region",
  "endpointName",
  "variantName",
  "initialCount",
  "minInstances",
  "maxInstances",
  "rollKey",
];

/** The variant's count from a DescribeEndpoint answer, clamped; undefined when the variant is absent. */
export function variantCount(
  described: {
    ProductionVariants?: {
      VariantName?: string;
      DesiredInstanceCount?: number;
      CurrentInstanceCount?: number;
    }[];
  },
  inputs: Pick<CapacityInputs, "variantName" | "minInstances" | "maxInstances">,
): number | undefined {
  const variant = (described.ProductionVariants ?? []).find(
    (v) => v.VariantName === inputs.variantName,
  );
  const count = variant?.DesiredInstanceCount ?? variant?.CurrentInstanceCount;
  if (count === undefined) {
    return undefined;
  }
  return Math.min(inputs.maxInstances, Math.max(inputs.minInstances, count));
}

/** DescribeEndpoint -> the count the next configuration starts with (see the contract). */
export async function readCapacity(news: CapacityInputs): Promise<CapacityOutputs> {
  const sdk = require("@aws-sdk/client-sagemaker") as typeof import("@aws-sdk/client-sagemaker");
  const client = new sdk.SageMakerClient({ region: news.region, maxAttempts: 5 });
  try {
    const described = await client.send(
      new sdk.DescribeEndpointCommand({ EndpointName: news.endpointName }),
      { abortSignal: AbortSignal.timeout(60_000) },
    );
    const count = variantCount(described, news);
    return count === undefined
      ? { ...news, instanceCount: news.initialCount, source: "initial" }
      : { ...news, instanceCount: count, source: "endpoint" };
  } catch (err) {
    const e = err as { name?: string; message?: string };
    // SageMaker answers a missing endpoint with ValidationException "Could not find endpoint ...".
    if (e.name === "ValidationException" && /could not find endpoint/i.test(e.message ?? "")) {
      return { ...news, instanceCount: news.initialCount, source: "initial" };
    }
    throw new Error(
      `SageMakerCapacity: reading the instance count of endpoint ${news.endpointName} in ${news.region} ` +
        `failed (${e.name ?? "Error"}: ${e.message ?? String(err)}); nothing was changed. The deploying ` +
        "credentials need sagemaker:DescribeEndpoint on it",
    );
  } finally {
    client.destroy();
  }
}

export const capacityProvider: pulumi.dynamic.ResourceProvider<CapacityInputs, CapacityOutputs> = {
  async diff(_id, olds, news) {
    const changed = COMPARED.some((k) => olds[k] !== news[k]);
    return { changes: changed, replaces: [], deleteBeforeReplace: false };
  },
  async create(inputs) {
    return { id: inputs.endpointName, outs: await readCapacity(inputs) };
  },
  async update(_id, _olds, news) {
    return { outs: await readCapacity(news) };
  },
  async read(id, props) {
    return { id, props };
  },
  async delete() {
    // Nothing outside the state.
  },
};

export interface SageMakerCapacityArgs {
  /** AWS region of the endpoint. */
  readonly region: string;
  /** The SageMaker endpoint name. */
  readonly endpointName: pulumi.Input<string>;
  /** The production variant's name. */
  readonly variantName: string;
  /** The configured instance count (used when the endpoint does not exist yet). */
  readonly initialCount: number;
  /** Autoscaling bounds the count is clamped to. */
  readonly minInstances: number;
  readonly maxInstances: number;
  /** A value that changes whenever a new endpoint configuration would be made. */
  readonly rollKey: pulumi.Input<string>;
}

export class SageMakerCapacity extends pulumi.dynamic.Resource {
  /** The count the endpoint configuration starts with. */
  declare public readonly instanceCount: pulumi.Output<number>;

  constructor(name: string, args: SageMakerCapacityArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      capacityProvider,
      name,
      { instanceCount: undefined, source: undefined, ...args },
      opts,
      "modelserving",
      "SageMakerCapacity",
    );
  }
}
