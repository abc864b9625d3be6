import * as os from "os";
import * as path from "path";
import * as aws from "@pulumi/aws";
import * as authorization from "@pulumi/azure-native/authorization";
import * as containerregistry from "@pulumi/azure-native/containerregistry";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { hashScorerFiles, ModelExport } from "../providers/modelExport";
import { ACR_TOKEN_USER, exchangeAcrRefreshToken } from "./cloud/acrToken";
import type { ScorerSourceArgs } from "./scorerBuild";

/** Where the scorer image goes. */
export type RegistryKind = "ecr" | "acr";

export interface AcrRegistryArgs {
  /** Registry name (5-50 letters or digits); an existing one unless create is true. */
  readonly name: string;
  /** Resource group of the registry. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Create the registry instead of using an existing one. */
  readonly create?: boolean;
  /**
   * How docker logs in to push: "entra" (default) exchanges the Entra ID token of the identity
   * running pulumi (it needs AcrPush) for an ACR token; "admin" uses the registry's admin user.
   */
  readonly login?: "entra" | "admin";
  /** Azure region for a created registry. */
  readonly location?: pulumi.Input<string>;
  /** SKU for a created registry; default Standard. */
  readonly sku?: "Basic" | "Standard" | "Premium";
}

/** The model version and its build context (components/scorerBuild.ts), then where the image goes. */
export interface ScorerImageArgs extends ScorerSourceArgs {
  /** Registry kind: "ecr" (AWS) or "acr" (Azure). */
  readonly registry: RegistryKind;
  /** Repository name inside the registry; default the component name. */
  readonly repositoryName?: string;
  /** ECR only: AWS region of the repository (default: the provider's). */
  readonly region?: pulumi.Input<string>;
  /** ECR only: how many images the lifecycle policy keeps; default 10. */
  readonly keepImages?: number;
  /** ACR only: the registry to push to. */
  readonly acr?: AcrRegistryArgs;
  /**
   * Stage of scorer/Dockerfile to build: "sagemaker" (runs as root, SageMaker's container contract)
   * or "standalone" (uid 10001); default "sagemaker" for ECR, "standalone" for ACR.
   */
  readonly target?: "sagemaker" | "standalone";
  /** Target platform of the build; default linux/amd64 (SageMaker and AzureML run amd64). */
  readonly platform?: pulumi.Input<string>;
  /**
   * Folder for this image's build contexts; default $XDG_CACHE_HOME/model-serving/build-contexts/
   * <component name>, so no other image's delete removes the context this one builds from.
   */
  readonly contextRoot?: string;
  /** ECR only: tags of the repository. */
  readonly tags?: Record<string, string>;
}

const REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/** Throws the first problem with the args, naming the argument. */
export function validateScorerImageArgs(name: string, args: ScorerImageArgs): void {
  const registry = args.registry as string;
  if (registry !== "ecr" && registry !== "acr") {
    throw new Error(
      `ScorerImage: registry must be "ecr" or "acr", got ${JSON.stringify(registry)}`,
    );
  }
  const repositoryName = args.repositoryName ?? name;
  if (!REPOSITORY_NAME.test(repositoryName)) {
    throw new Error(
      `ScorerImage: repositoryName must be lowercase letters, digits and . _ - / separators, got ${JSON.stringify(repositoryName)}`,
    );
  }
  const target = args.target as string | undefined;
  if (target !== undefined && target !== "sagemaker" && target !== "standalone") {
    throw new Error(
      `ScorerImage: target must be "sagemaker" or "standalone", got ${JSON.stringify(target)}`,
    );
  }
  if (
    args.keepImages !== undefined &&
    !(Number.isInteger(args.keepImages) && args.keepImages >= 1)
  ) {
    throw new Error(`ScorerImage: keepImages must be an integer >= 1, got ${args.keepImages}`);
  }
  if (registry === "acr") {
    if (!args.acr) {
      throw new Error(`ScorerImage: registry "acr" needs acr.name and acr.resourceGroupName`);
    }
    if (!/^[a-zA-Z0-9]{5,50}$/.test(args.acr.name)) {
      throw new Error(
        `ScorerImage: acr.name must be 5-50 letters or digits, got ${JSON.stringify(args.acr.name)}`,
      );
    }
    if (args.acr.create && args.acr.location === undefined) {
      throw new Error(`ScorerImage: acr.create needs acr.location`);
    }
    const login = args.acr.login ?? "entra";
    if (login !== "entra" && login !== "admin") {
      throw new Error(
        `ScorerImage: acr.login must be "entra" or "admin", got ${JSON.stringify(login)}`,
      );
    }
  }
}

export function defaultContextRoot(): string {
  return path.join(
    process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"),
    "model-serving",
    "build-contexts",
  );
}

/**
 * The ECR lifecycle policy. Rule 1 selects the image the endpoint runs (its tag, `liveTag`) and can
 * never expire it (one image per tag, "more than 1" never holds); ECR lets no lower-priority rule
 * expire an image a higher one selected. Then untagged images expire after 7 days and only the
 * newest `keep` images stay.
 */
export function ecrLifecyclePolicy(keep: number, liveTag?: string): string {
  const protect = liveTag
    ? [
        {
          rulePriority: 1,
          description: `never expire ${liveTag}, the image the endpoint runs`,
          selection: {
            tagStatus: "tagged",
            tagPrefixList: [liveTag],
            countType: "imageCountMoreThan",
            countNumber: 1,
          },
          action: { type: "expire" },
        },
      ]
    : [];
  const offset = protect.length;
  return JSON.stringify({
    rules: [
      ...protect,
      {
        rulePriority: 1 + offset,
        description: "expire untagged images after 7 days",
        selection: {
          tagStatus: "untagged",
          countType: "sinceImagePushed",
          countUnit: "days",
          countNumber: 7,
        },
        action: { type: "expire" },
      },
      {
        rulePriority: 2 + offset,
        description: `keep the newest ${keep} images`,
        selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: keep },
        action: { type: "expire" },
      },
    ],
  });
}

/**
 * Exports a registered MLflow model version into a build context, builds the scorer image from it and
 * pushes it to ECR or ACR. `imageUri` is pinned by digest, so anything consuming it rolls when the
 * image changes.
 */
export class ScorerImage extends pulumi.ComponentResource {
  /** Digest-pinned image reference: <registry>/<repository>@sha256:<digest>. */
  public readonly imageUri: pulumi.Output<string>;
  /** Repository URL without tag or digest. */
  public readonly repositoryUrl: pulumi.Output<string>;
  /** ECR repository ARN or ACR registry resource id (for pull permissions). */
  public readonly registryResourceId: pulumi.Output<string>;
  /** Content hash of the build context (scorer files + model). */
  public readonly contextHash: pulumi.Output<string>;
  /** The build context on this machine (holds the exported model under model/). */
  public readonly contextDir: pulumi.Output<string>;

  constructor(name: string, args: ScorerImageArgs, opts?: pulumi.ComponentResourceOptions) {
    validateScorerImageArgs(name, args);
    super("modelserving:image:ScorerImage", name, {}, opts);
    const repositoryName = args.repositoryName ?? name;
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
        contextRoot: args.contextRoot ?? path.join(defaultContextRoot(), name),
      },
      // A changed scorer is a new context: replacing (not updating) deletes the old directory.
      { parent: this, replaceOnChanges: ["scorerHash"] },
    );
    const tag = exported.contextHash.apply((h) => h.slice(0, 12));
    const imageTag = pulumi.interpolate`v${args.modelVersion}-${tag}`;

    let repositoryUrl: pulumi.Output<string>;
    let registryResourceId: pulumi.Output<string>;
    let registry: docker.types.input.Registry;
    if (args.registry === "ecr") {
      const repo = new aws.ecr.Repository(
        `${name}-repo`,
        {
          name: repositoryName,
          region: args.region,
          imageScanningConfiguration: { scanOnPush: true },
          // destroy must succeed with images still in the repository.
          forceDelete: true,
          tags: args.tags,
        },
        { parent: this },
      );
      new aws.ecr.LifecyclePolicy(
        `${name}-lifecycle`,
        {
          repository: repo.name,
          region: args.region,
          policy: imageTag.apply((t) => ecrLifecyclePolicy(args.keepImages ?? 10, t)),
        },
        { parent: this },
      );
      const token = aws.ecr.getAuthorizationTokenOutput(
        { registryId: repo.registryId, region: args.region },
        { parent: this },
      );
      repositoryUrl = repo.repositoryUrl;
      registryResourceId = repo.arn;
      registry = {
        server: repo.repositoryUrl,
        username: token.userName,
        password: pulumi.secret(token.password),
      };
    } else {
      const acr = args.acr!;
      const login = acr.login ?? "entra";
      let loginServer: pulumi.Output<string>;
      let registryName: pulumi.Output<string>;
      if (acr.create) {
        const created = new containerregistry.Registry(
          `${name}-acr`,
          {
            registryName: acr.name,
            resourceGroupName: acr.resourceGroupName,
            location: acr.location,
            sku: { name: acr.sku ?? "Standard" },
            adminUserEnabled: login === "admin",
          },
          { parent: this },
        );
        loginServer = created.loginServer;
        registryName = created.name;
        registryResourceId = created.id;
      } else {
        const existing = containerregistry.getRegistryOutput(
          { registryName: acr.name, resourceGroupName: acr.resourceGroupName },
          { parent: this },
        );
        loginServer = existing.loginServer;
        registryName = existing.name;
        registryResourceId = existing.id;
      }
      repositoryUrl = pulumi.interpolate`${loginServer}/${repositoryName}`;
      if (login === "admin") {
        const creds = containerregistry.listRegistryCredentialsOutput(
          { registryName, resourceGroupName: acr.resourceGroupName },
          { parent: this },
        );
        registry = {
          server: loginServer,
          username: creds.apply((c) => c.username ?? ""),
          password: pulumi.secret(creds.apply((c) => c.passwords?.[0]?.value ?? "")),
        };
      } else {
        // The azure-native provider's own credentials (az login, service principal, managed
        // identity), exchanged for an ACR token at push time; a preview pushes nothing.
        const client = authorization.getClientConfigOutput({ parent: this });
        const entra = authorization.getClientTokenOutput({}, { parent: this });
        registry = {
          server: loginServer,
          username: ACR_TOKEN_USER,
          password: pulumi.secret(
            pulumi
              .all([loginServer, client.tenantId, pulumi.secret(entra.token)])
              .apply(([server, tenantId, accessToken]) =>
                pulumi.runtime.isDryRun()
                  ? ""
                  : exchangeAcrRefreshToken({ loginServer: server, tenantId, accessToken }),
              ),
          ),
        };
      }
    }

    const image = new docker.Image(
      `${name}-image`,
      {
        imageName: pulumi.interpolate`${repositoryUrl}:${imageTag}`,
        build: {
          context: exported.contextDir,
          dockerfile: pulumi.interpolate`${exported.contextDir}/Dockerfile`,
          platform: args.platform ?? "linux/amd64",
          target: args.target ?? (args.registry === "ecr" ? "sagemaker" : "standalone"),
          // scorer/Dockerfile mounts a build secret (RUN --mount): BuildKit only.
          builderVersion: "BuilderBuildKit",
        },
        registry,
      },
      { parent: this },
    );

    this.imageUri = image.repoDigest;
    this.repositoryUrl = repositoryUrl;
    this.registryResourceId = registryResourceId;
    this.contextHash = exported.contextHash;
    this.contextDir = exported.contextDir;
    this.registerOutputs({
      contextDir: this.contextDir,
      imageUri: this.imageUri,
      repositoryUrl: this.repositoryUrl,
      registryResourceId: this.registryResourceId,
      contextHash: this.contextHash,
    });
  }
}
