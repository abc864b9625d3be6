/**
 * UniqueSuffix: a random suffix drawn once per creation and kept in the state, drawn anew when its
 * `keepers` change (what random.RandomId does, without another provider plugin). Names built from
 * it are new at every replacement and after a destroy-then-up, yet stable across ordinary `up`s.
 *
 * Contract
 * - id and `suffix`: 8 random hex digits, drawn at create.
 * - diff: `keepers` changed -> replace (a new suffix); nothing else changes.
 * - update, read, delete: nothing outside the state.
 * Provider methods run in another process: they require crypto inside and capture nothing else.
 */
import * as pulumi from "@pulumi/pulumi";

export interface UniqueSuffixInputs {
  /** Any string; a new value draws a new suffix. */
  keepers: string;
}

export interface UniqueSuffixOutputs extends UniqueSuffixInputs {
  suffix: string;
}

export const uniqueSuffixProvider: pulumi.dynamic.ResourceProvider<
  UniqueSuffixInputs,
  UniqueSuffixOutputs
> = {
  async create(inputs) {
    const crypto: typeof import("crypto") = require("crypto");
    const suffix = crypto.randomBytes(4).toString("hex");
    return { id: suffix, outs: { keepers: inputs.keepers, suffix } };
  },
  async diff(_id, olds, news) {
    const changed = olds.keepers !== news.keepers;
    return { changes: changed, replaces: changed ? ["keepers"] : [], deleteBeforeReplace: false };
  },
  async update(_id, olds, news) {
    return { outs: { keepers: news.keepers, suffix: olds.suffix } };
  },
  async read(id, props) {
    return { id, props };
  },
  async delete() {
    // Nothing outside the state.
  },
};

export interface UniqueSuffixArgs {
  /** Any string; a new value draws a new suffix. */
  readonly keepers: pulumi.Input<string>;
}

export class UniqueSuffix extends pulumi.dynamic.Resource {
  declare public readonly suffix: pulumi.Output<string>;

  constructor(name: string, args: UniqueSuffixArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      uniqueSuffixProvider,
      name,
      { ...args, suffix: undefined },
      opts,
      "modelserving",
      "UniqueSuffix",
    );
  }
}
