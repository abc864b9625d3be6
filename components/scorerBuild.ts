import * as path from "path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { cacheDirFrom } from "../config/stackConfig";
import type { KubernetesImageConfig } from "../config/standaloneTargets";
import type { MlflowAuth } from "../providers/mlflow/connection";
import { hashScorerFiles, ModelExport } from "../providers/modelExport";

/** The model version a scorer image is built from, and where its build context lives. */
export interface ScorerSourceArgs {
  /** Registered model name in MLflow. */
  readonly modelName: pulumi.Input<string>;
  /** Registered model version baked into the image. */
  readonly modelVersion: pulumi.Input<string>;
  /** MLflow tracking URI to download the model from (no credentials in it). */
  readonly trackingUri: pulumi.Input<string>;
  /** MLflow credentials (secret); without them MLFLOW_TRACKING_* of the provider process apply. */
  readonly auth?: pulumi.Input<MlflowAuth | undefined>;
  /** Path of the `mlflow` executable in the project's venv. */
  readonly mlflowBin: pulumi.Input<string>;
  /** Folder with the scorer build files; default the project's scorer/. */
  readonly scorerDir?: string;
  /** Folder for the build context; default <cache>/build-contexts/<component name>. */
  readonly contextRoot?: string;
}

/** How the image is built: the build settings shared by every host kind (config/standaloneTargets.ts). */
export type ScorerBuildSettings = Pick<
  KubernetesImageConfig,
  "baseImage" | "caBundleFile" | "buildxBuilder" | "platform"
>;

/**
 * The model version exported into a build context (ModelExport) and the `standalone` stage of
 * scorer/Dockerfile built from it on a Docker engine (RemoteImage, tagged `<repository>:v<version>-
 * <context hash>`). Children `${name}-export` and `${name}-image` of `parent`; the image's options
 * (e.g. a provider for another Docker host) in `imageOpts`.
 */
export function declareScorerBuild(
  name: string,
  args: ScorerSourceArgs & { readonly repository: pulumi.Input<string> },
  build: ScorerBuildSettings,
  parent: pulumi.Resource,
  imageOpts: pulumi.CustomResourceOptions,
): { exported: ModelExport; image: docker.RemoteImage } {
  const scorerDir = args.scorerDir ?? path.resolve(__dirname, "..", "scorer");
  const exported = new ModelExport(
    `${name}-export`,
    {
      modelName: args.modelName,
      modelVersion: args.modelVersion,
      trackingUri: args.trackingUri,
      auth: args.auth,
      mlflowBin: args.mlflowBin,
      scorerDir,
      scorerHash: hashScorerFiles(scorerDir),
      contextRoot: args.contextRoot ?? path.join(cacheDirFrom(process.env), "build-contexts", name),
    },
    // A changed scorer is a new context: replacing (not updating) deletes the old directory.
    { parent, replaceOnChanges: ["scorerHash"] },
  );

  const tag = exported.contextHash.apply((h) => h.slice(0, 12));
  const image = new docker.RemoteImage(
    `${name}-image`,
    {
      name: pulumi.interpolate`${args.repository}:v${args.modelVersion}-${tag}`,
      build: {
        context: exported.contextDir,
        dockerfile: "Dockerfile",
        target: "standalone",
        buildArgs: build.baseImage === undefined ? undefined : { BASE_IMAGE: build.baseImage },
        platform: build.platform,
        builder: build.buildxBuilder,
        secrets:
          build.caBundleFile === undefined
            ? undefined
            : [{ id: "ca-bundle", src: build.caBundleFile }],
        label: {
          "org.opencontainers.image.title": "model-serving scorer",
          "model-serving.model-uri": pulumi.interpolate`models:/${args.modelName}/${args.modelVersion}`,
        },
      },
      // A new context (model or scorer files) rebuilds; the old image is removed with the resource.
      triggers: { contextHash: exported.contextHash },
      keepLocally: false,
    },
    { ...imageOpts, parent },
  );
  return { exported, image };
}

/** A Docker provider for `host` (unix://, tcp:// or ssh://), or undefined for DOCKER_HOST. */
export function dockerHostProvider(
  name: string,
  settings: { host?: string; sshOpts?: string[] },
  parent: pulumi.Resource,
): docker.Provider | undefined {
  return settings.host === undefined
    ? undefined
    : new docker.Provider(
        `${name}-docker`,
        { host: settings.host, sshOpts: settings.sshOpts },
        { parent },
      );
}
