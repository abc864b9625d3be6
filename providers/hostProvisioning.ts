import * as pulumi from "@pulumi/pulumi";
import type * as core from "./remote/hostProvisioningCore";
import type { HostLayout, ProvisioningProfile } from "./remote/provisionScript";
import type { SshConnection } from "./ssh/connection";
import { assertProviderCodeCurrent, providerCode } from "./providerCode";

// Thin dynamic resource over ./remote/hostProvisioningCore (see the contract there), loaded from the
// installed provider code (./providerCode.ts). Progress lines go to the provider's stdout, which the
// engine shows as info messages during `pulumi up`.
type Core = typeof core;
const hostProvisioningProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    const c = providerCode<Core>("providers/remote/hostProvisioningCore");
    return { inputs: news, failures: c.checkProvisioning(news) };
  },
  async diff(id, olds, news) {
    return providerCode<Core>("providers/remote/hostProvisioningCore").diffProvisioning(olds, news);
  },
  async create(inputs) {
    const c = providerCode<Core>("providers/remote/hostProvisioningCore");
    const outs = await c.createProvisioning(inputs, (msg) => console.log(`provision: ${msg}`));
    return { id: c.provisioningId(outs), outs };
  },
  async update(id, olds, news) {
    const c = providerCode<Core>("providers/remote/hostProvisioningCore");
    return {
      outs: await c.updateProvisioning(olds, news, (msg) => console.log(`provision: ${msg}`)),
    };
  },
  async read(id, props) {
    const c = providerCode<Core>("providers/remote/hostProvisioningCore");
    const state = await c.readProvisioning(props);
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete() {
    await providerCode<Core>("providers/remote/hostProvisioningCore").deleteProvisioning();
  },
};

export interface HostProvisioningArgs {
  /** How to reach the host; secret (the private key). */
  connection: pulumi.Input<SshConnection>;
  /** The profile as loaded from provisioning/profiles/<name>.yaml (config/provisioningProfile.ts). */
  profile: pulumi.Input<ProvisioningProfile>;
  layout: pulumi.Input<HostLayout>;
  extraApt?: pulumi.Input<pulumi.Input<string>[]>;
  extraPip?: pulumi.Input<pulumi.Input<string>[]>;
  /** Install the profile's PostgreSQL packages (a PostgreSQL backend store on this host). */
  postgresql?: pulumi.Input<boolean>;
  /** Install the profile's PostgreSQL client packages only (an existing database by DSN). */
  postgresqlClient?: pulumi.Input<boolean>;
  /** Deadline of one provisioning run, seconds (default 1800). */
  timeoutSeconds?: pulumi.Input<number>;
}

/** A provisioning profile applied to a host over SSH (id `<host>:<sshPort><baseDir>`). */
export class HostProvisioning extends pulumi.dynamic.Resource {
  /** sha256 of the script the host ran (its stamp). */
  declare public readonly hash: pulumi.Output<string>;

  constructor(name: string, args: HostProvisioningArgs, opts?: pulumi.CustomResourceOptions) {
    assertProviderCodeCurrent();
    super(
      hostProvisioningProvider,
      name,
      {
        hash: undefined,
        ...args,
        extraApt: args.extraApt ?? [],
        extraPip: args.extraPip ?? [],
        postgresql: args.postgresql ?? false,
        postgresqlClient: args.postgresqlClient ?? false,
        timeoutSeconds: args.timeoutSeconds ?? 1800,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["connection"] }),
      "modelserving",
      "HostProvisioning",
    );
  }
}
