import * as pulumi from "@pulumi/pulumi";

/**
 * Pulumi's closure serializer cannot run inside jest, so mock tests swap each dynamic resource class for
 * a CustomResource registered under the same type token with the same inputs. The real serialization is
 * proven by the engine tests (a real `pulumi up`).
 */
export function dynamicStandIn(typeName: string, outputs: string[]) {
  return class extends pulumi.CustomResource {
    constructor(name: string, args: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
      const props: Record<string, unknown> = { ...args };
      for (const o of outputs) {
        props[o] ??= undefined;
      }
      super(`pulumi-nodejs:dynamic/modelserving:${typeName}`, name, props, opts);
    }
  };
}
