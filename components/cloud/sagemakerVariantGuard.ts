/**
 * SageMakerVariantGuard: refuses, before anything changes, an update that SageMaker's UpdateEndpoint
 * would reject halfway: a new instance type for a variant registered with Application Auto Scaling.
 * (The new Model and EndpointConfiguration would be created, then the endpoint update would fail.)
 *
 * Contract
 * - id: the endpoint name (natural, stable).
 * - check: fails when the recorded inputs say the variant was autoscaled and the instance type changes,
 *   with the steps that do work; otherwise passes the inputs through.
 * - create/update/delete/read: nothing outside the state (it only remembers what was deployed).
 * - diff: any input change is an update (so the state always holds the deployed instance type).
 * Provider methods run in another process: they capture only the pure function below.
 */
import * as pulumi from "@pulumi/pulumi";

export interface VariantGuardInputs {
  /** The SageMaker endpoint name. */
  endpointName: string;
  /** The variant's instance type ("serverless" for a serverless variant). */
  instanceType: string;
  /** Whether the variant is registered with Application Auto Scaling. */
  autoscaled: boolean;
}

/** Why the change from `olds` (deployed) to `news` cannot be applied in one update, or undefined. */
export function variantChangeProblem(
  olds: Partial<VariantGuardInputs> | undefined,
  news: VariantGuardInputs,
): string | undefined {
  if (!olds || !olds.autoscaled || olds.instanceType === undefined) {
    return undefined;
  }
  if (olds.instanceType === news.instanceType) {
    return undefined;
  }
  return (
    `instanceType of ${news.endpointName} cannot change from ${olds.instanceType} to ${news.instanceType} ` +
    "while its variant is registered with Application Auto Scaling (SageMaker's UpdateEndpoint refuses it). " +
    "Change it in three updates: remove autoscaling and `pulumi up`; change instanceType and `pulumi up`; " +
    "add autoscaling back and `pulumi up`"
  );
}

export const variantGuardProvider: pulumi.dynamic.ResourceProvider<
  VariantGuardInputs,
  VariantGuardInputs
> = {
  async check(olds, news) {
    const problem = variantChangeProblem(olds, news);
    return problem
      ? { inputs: news, failures: [{ property: "instanceType", reason: problem }] }
      : { inputs: news };
  },
  async diff(_id, olds, news) {
    const changed = (["endpointName", "instanceType", "autoscaled"] as const).some(
      (k) => olds[k] !== news[k],
    );
    return { changes: changed, replaces: [], deleteBeforeReplace: false };
  },
  async create(inputs) {
    return { id: inputs.endpointName, outs: inputs };
  },
  async update(_id, _olds, news) {
    return { outs: news };
  },
  async read(id, props) {
    return { id, props };
  },
  async delete() {
    // Nothing outside the state.
  },
};

export interface SageMakerVariantGuardArgs {
  /** The SageMaker endpoint name. */
  readonly endpointName: pulumi.Input<string>;
  /** The variant's instance type ("serverless" for a serverless variant). */
  readonly instanceType: pulumi.Input<string>;
  /** Whether the variant is registered with Application Auto Scaling. */
  readonly autoscaled: pulumi.Input<boolean>;
}

export class SageMakerVariantGuard extends pulumi.dynamic.Resource {
  constructor(name: string, args: SageMakerVariantGuardArgs, opts?: pulumi.CustomResourceOptions) {
    super(variantGuardProvider, name, { ...args }, opts, "modelserving", "SageMakerVariantGuard");
  }
}
