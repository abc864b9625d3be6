import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { parseKubernetesImage, type KubernetesImageConfig } from "../config/standaloneTargets";
import { declareScorerBuild, dockerHostProvider, type ScorerSourceArgs } from "./scorerBuild";

export interface PushedScorerImageArgs extends ScorerSourceArgs {
  /** Repository, Docker host and build settings (config/standaloneTargets.ts), validated here. */
  readonly image: KubernetesImageConfig;
}

/**
 * The scorer image of a model version, built on a Docker engine (as for a Docker host) and pushed to a
 * registry a cluster pulls from (`docker.RegistryImage`, i.e. `docker push`). `imageUri` names it by
 * digest, so a new image rolls the Deployment and a re-pushed tag never changes what runs. Old images
 * stay in the registry (`keepRemotely`): a rollback can pull them. Registry credentials are the Docker
 * client's own (`docker login`, a credential helper), never stack state.
 */
export class PushedScorerImage extends pulumi.ComponentResource {
  /** `<repository>@sha256:...` */
  public readonly imageUri: pulumi.Output<string>;
  /** `<repository>:v<version>-<context hash>` */
  public readonly taggedName: pulumi.Output<string>;

  constructor(name: string, args: PushedScorerImageArgs, opts?: pulumi.ComponentResourceOptions) {
    const cfg = parseKubernetesImage(args.image, `PushedScorerImage ${name}: image`);
    super("modelserving:docker:PushedScorerImage", name, {}, opts);
    const provider = dockerHostProvider(name, cfg, this);
    const childOpts: pulumi.CustomResourceOptions = provider
      ? { parent: this, provider }
      : { parent: this };
    const { exported, image } = declareScorerBuild(
      name,
      { ...args, repository: cfg.repository },
      cfg,
      this,
      childOpts,
    );
    const pushed = new docker.RegistryImage(
      `${name}-push`,
      {
        name: image.name,
        insecureSkipVerify: cfg.insecureSkipVerify,
        keepRemotely: true,
        // A new build context is a new tag; push it again.
        triggers: { contextHash: exported.contextHash },
      },
      { ...childOpts, dependsOn: [image] },
    );
    this.taggedName = image.name;
    this.imageUri = pulumi.interpolate`${cfg.repository}@${pushed.sha256Digest}`;
    this.registerOutputs({ imageUri: this.imageUri, taggedName: this.taggedName });
  }
}
