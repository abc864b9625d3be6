import * as applicationinsights from "@pulumi/azure-native/applicationinsights";
import * as authorization from "@pulumi/azure-native/authorization";
import * as keyvault from "@pulumi/azure-native/keyvault";
import * as managedidentity from "@pulumi/azure-native/managedidentity";
import * as ml from "@pulumi/azure-native/machinelearningservices";
import * as monitor from "@pulumi/azure-native/monitor";
import * as operationalinsights from "@pulumi/azure-native/operationalinsights";
import * as storage from "@pulumi/azure-native/storage";
import * as pulumi from "@pulumi/pulumi";
import { AzureMlTraffic } from "../providers/azureMlTraffic";
import type { CloudEndpointEntry } from "./endpoint";
import {
  endpointSpecHash,
  environmentVersionFor,
  isoDuration,
  nonEmpty,
  workspaceResourceNames,
} from "./cloud/azureMlNames";
import { UniqueSuffix } from "./cloud/uniqueSuffix";
import { EMPTY_SAMPLE } from "./sampleInput";
import { azureMlSnippets, type AzureMlSnippetAuth } from "./snippets/azureml";

export {
  endpointSpecHash,
  environmentVersionFor,
  isoDuration,
  workspaceResourceNames,
} from "./cloud/azureMlNames";

/** The endpoints output entry of an Azure ML target: the common keys plus per-deployment commands. */
export interface AzureMlEndpointEntry extends CloudEndpointEntry {
  /** Deployment name -> curl that scores that deployment only (`azureml-model-deployment`). */
  deploymentCurl: Record<string, string>;
}

/** Built-in AcrPull role definition id. */
export const ACR_PULL_ROLE_ID = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
/** The scorer image's serving contract, as Azure ML routes it. */
export const SCORER_ROUTES = {
  livenessRoute: { path: "/ping", port: 8080 },
  readinessRoute: { path: "/ping", port: 8080 },
  scoringRoute: { path: "/invocations", port: 8080 },
};

export interface AzureMlDeploymentArgs {
  /** Deployment name, e.g. blue or green (3-32 letters, digits, hyphens). */
  readonly name: string;
  /** Digest-pinned scorer image in ACR, e.g. ScorerImage.imageUri. */
  readonly imageUri: pulumi.Input<string>;
  /** Registered model version baked into this image. */
  readonly modelVersion: pulumi.Input<string>;
  /** Percent of traffic; all deployments sum to 100. */
  readonly trafficPercent: number;
  /** VM size; default the endpoint's instanceType. */
  readonly instanceType?: string;
  /** Instance count; default the endpoint's instanceCount. */
  readonly instanceCount?: number;
  /** Container environment of this deployment, on top of the endpoint's `environment`. */
  readonly environment?: Record<string, string>;
}

export interface AzureMlEndpointArgs {
  /** Azure subscription id (for ARM ids and the traffic call). */
  readonly subscriptionId: pulumi.Input<string>;
  /** Resource group of the workspace (and of created resources). */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Azure region, e.g. westeurope. */
  readonly location: pulumi.Input<string>;
  /** Workspace name; an existing one unless createWorkspace is true. */
  readonly workspaceName: string;
  /** Create the workspace with its storage account, key vault, Log Analytics and App Insights. */
  readonly createWorkspace?: boolean;
  /** Raise to give a created workspace's key vault and storage new names (destroy-then-up, no purge). */
  readonly workspaceGeneration?: number;
  /** Resource id of the ACR holding the images; the endpoint identity gets AcrPull on it. */
  readonly registryId: pulumi.Input<string>;
  /** Registered model name (for the endpoint entry). */
  readonly modelName: pulumi.Input<string>;
  /** Online endpoint name (3-32 characters, unique in the region); default the component name. */
  readonly endpointName?: string;
  /** Caller authentication: endpoint keys, Azure ML tokens or Entra ID tokens; default key. */
  readonly authMode?: AzureMlAuthMode;
  /**
   * Identity that pulls the images: "userAssigned" creates one and grants it AcrPull before the
   * endpoint exists (no race with the first pull); default "systemAssigned" (granted after creation).
   */
  readonly identity?: "systemAssigned" | "userAssigned";
  /** Container environment of every deployment (passed through to the scorer, e.g. WORKERS). */
  readonly environment?: Record<string, string>;
  /** Body the generated commands send: the model's own sample input; default an empty dataframe_split. */
  readonly sampleBody?: pulumi.Input<unknown>;
  /** One deployment, or two for blue/green, with their traffic split. */
  readonly deployments: AzureMlDeploymentArgs[];
  /** Default VM size of deployments; default Standard_DS3_v2. */
  readonly instanceType?: string;
  /** Default instance count of deployments; default 1. */
  readonly instanceCount?: number;
  /** Request handling per instance. */
  readonly requestSettings?: {
    readonly maxConcurrentRequestsPerInstance?: number;
    readonly requestTimeoutMs?: number;
    readonly maxQueueWaitMs?: number;
  };
  /** Azure Monitor autoscale on CPU: scale out above targetCpuPercent, in below half of it. */
  readonly scaling?: {
    readonly minInstances: number;
    readonly maxInstances: number;
    readonly targetCpuPercent: number;
  };
}

const NAME = /^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$/;
export type AzureMlAuthMode = "key" | "aml_token" | "aad_token";
/** ARM's names of the auth modes. */
export const ENDPOINT_AUTH_MODES: Record<AzureMlAuthMode, string> = {
  key: "Key",
  aml_token: "AMLToken",
  aad_token: "AADToken",
};

/** Throws the first problem with the args, naming the argument. */
export function validateAzureMlEndpointArgs(name: string, args: AzureMlEndpointArgs): void {
  const fail = (msg: string): never => {
    throw new Error(`AzureMlEndpoint: ${msg}`);
  };
  const endpointName = args.endpointName ?? name;
  if (!NAME.test(endpointName)) {
    fail(
      `endpointName must be 3-32 letters, digits or hyphens, start with a letter and not end with a hyphen, got ${JSON.stringify(endpointName)}`,
    );
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$/.test(args.workspaceName ?? "")) {
    fail(
      `workspaceName must be 3-33 letters, digits, _ or -, got ${JSON.stringify(args.workspaceName)}`,
    );
  }
  const authMode = args.authMode ?? "key";
  if (!Object.keys(ENDPOINT_AUTH_MODES).includes(authMode)) {
    fail(`authMode must be "key", "aml_token" or "aad_token", got ${JSON.stringify(authMode)}`);
  }
  const identity = args.identity ?? "systemAssigned";
  if (identity !== "systemAssigned" && identity !== "userAssigned") {
    fail(`identity must be "systemAssigned" or "userAssigned", got ${JSON.stringify(identity)}`);
  }
  const deployments = args.deployments ?? [];
  if (deployments.length < 1 || deployments.length > 2) {
    fail(`deployments must list 1 or 2 entries (blue/green), got ${deployments.length}`);
  }
  const seen = new Set<string>();
  for (const d of deployments) {
    if (!NAME.test(d.name)) {
      fail(
        `deployment name must be 3-32 letters, digits or hyphens, start with a letter and not end with a hyphen, got ${JSON.stringify(d.name)}`,
      );
    }
    if (seen.has(d.name)) {
      fail(`deployment names must be unique, got ${JSON.stringify(d.name)} twice`);
    }
    seen.add(d.name);
    if (!Number.isInteger(d.trafficPercent) || d.trafficPercent < 0 || d.trafficPercent > 100) {
      fail(`traffic of ${d.name} must be an integer from 0 to 100, got ${d.trafficPercent}`);
    }
    const count = d.instanceCount ?? args.instanceCount ?? 1;
    if (!Number.isInteger(count) || count < 1) {
      fail(`instanceCount of ${d.name} must be an integer >= 1, got ${count}`);
    }
  }
  const sum = deployments.reduce((s, d) => s + d.trafficPercent, 0);
  if (sum !== 100) {
    fail(
      `traffic must sum to 100, got ${sum} (${deployments.map((d) => `${d.name}=${d.trafficPercent}`).join(", ")})`,
    );
  }
  if (args.scaling) {
    const { minInstances: min, maxInstances: max, targetCpuPercent: cpu } = args.scaling;
    if (!Number.isInteger(min) || min < 1 || !Number.isInteger(max) || min > max) {
      fail(`scaling needs integers 1 <= minInstances <= maxInstances, got ${min}..${max}`);
    }
    if (!(cpu > 0 && cpu < 100)) {
      fail(`scaling.targetCpuPercent must be between 0 and 100, got ${cpu}`);
    }
    for (const d of deployments) {
      // The instance count is the autoscale profile's default capacity.
      const count = d.instanceCount ?? args.instanceCount ?? 1;
      if (count < min || count > max) {
        fail(
          `instanceCount of ${d.name} (${count}) must be within scaling.minInstances..maxInstances (${min}..${max}): it is the autoscale default`,
        );
      }
    }
  }
}

/**
 * An Azure ML managed online endpoint serving scorer images: environment versions with the scorer's
 * routes, one or two deployments, the traffic split (set after the deployments exist) and the
 * endpoint identity's AcrPull on the registry. Optionally creates the workspace.
 */
export class AzureMlEndpoint extends pulumi.ComponentResource {
  public readonly endpointName: pulumi.Output<string>;
  public readonly scoringUri: pulumi.Output<string>;
  public readonly workspaceName: pulumi.Output<string>;
  /** curl command with the credential (secret). */
  public readonly curl: pulumi.Output<string>;
  /** Python command with the credential (secret). */
  public readonly python: pulumi.Output<string>;
  /** Deployment name -> curl that scores that deployment only (secret in key mode). */
  public readonly deploymentCurls: pulumi.Output<Record<string, string>>;
  /** The entry for the stack's endpoints[model].azureml output (secret: it carries the key). */
  public readonly endpoint: pulumi.Output<AzureMlEndpointEntry>;

  constructor(name: string, args: AzureMlEndpointArgs, opts?: pulumi.ComponentResourceOptions) {
    validateAzureMlEndpointArgs(name, args);
    super("modelserving:azure:AzureMlEndpoint", name, {}, opts);
    const endpointName = args.endpointName ?? name;
    const authMode = args.authMode ?? "key";
    const identityKind = args.identity ?? "systemAssigned";
    const rg = args.resourceGroupName;
    const location = args.location;

    let workspaceName: pulumi.Output<string>;
    if (args.createWorkspace) {
      const names = workspaceResourceNames({
        project: pulumi.getProject(),
        stack: pulumi.getStack(),
        workspaceName: args.workspaceName,
        endpointName,
        generation: args.workspaceGeneration,
      });
      const client = authorization.getClientConfigOutput({ parent: this });
      const sa = new storage.StorageAccount(
        `${name}-storage`,
        {
          accountName: names.storageAccount,
          resourceGroupName: rg,
          location,
          kind: "StorageV2",
          sku: { name: "Standard_LRS" },
          allowBlobPublicAccess: false,
          minimumTlsVersion: "TLS1_2",
        },
        { parent: this },
      );
      const kv = new keyvault.Vault(
        `${name}-kv`,
        {
          vaultName: names.keyVault,
          resourceGroupName: rg,
          location,
          properties: {
            tenantId: client.tenantId,
            sku: { family: "A", name: "standard" },
            enableRbacAuthorization: true,
          },
        },
        { parent: this },
      );
      const logs = new operationalinsights.Workspace(
        `${name}-logs`,
        { resourceGroupName: rg, location, sku: { name: "PerGB2018" }, retentionInDays: 30 },
        { parent: this },
      );
      const ai = new applicationinsights.Component(
        `${name}-appinsights`,
        {
          resourceGroupName: rg,
          location,
          kind: "web",
          applicationType: "web",
          ingestionMode: "LogAnalytics",
          workspaceResourceId: logs.id,
        },
        { parent: this },
      );
      const ws = new ml.Workspace(
        `${name}-workspace`,
        {
          workspaceName: args.workspaceName,
          resourceGroupName: rg,
          location,
          identity: { type: "SystemAssigned" },
          sku: { name: "Basic", tier: "Basic" },
          storageAccount: sa.id,
          keyVault: kv.id,
          applicationInsights: ai.id,
          containerRegistry: args.registryId,
        },
        { parent: this },
      );
      workspaceName = ws.name;
    } else {
      workspaceName = ml.getWorkspaceOutput(
        { workspaceName: args.workspaceName, resourceGroupName: rg },
        { parent: this },
      ).name;
    }

    const endpointAuth = ENDPOINT_AUTH_MODES[authMode];
    const acrPullRole = pulumi.interpolate`/subscriptions/${args.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${ACR_PULL_ROLE_ID}`;
    const description = `model-serving endpoint ${endpointName}`;
    let endpointIdentity: ml.OnlineEndpointArgs["identity"];
    let acrPull: authorization.RoleAssignment | undefined;
    let identitySpec: pulumi.Output<{ type: string; userAssignedIdentities?: string[] }>;
    if (identityKind === "userAssigned") {
      // Granted before the endpoint exists, so its first image pull is already allowed.
      const uai = new managedidentity.UserAssignedIdentity(
        `${name}-identity`,
        { resourceGroupName: rg, location },
        { parent: this },
      );
      acrPull = new authorization.RoleAssignment(
        `${name}-acrpull`,
        {
          principalId: uai.principalId,
          principalType: "ServicePrincipal",
          roleDefinitionId: acrPullRole,
          scope: args.registryId,
        },
        { parent: this },
      );
      identitySpec = uai.id.apply((id) => ({ type: "UserAssigned", userAssignedIdentities: [id] }));
      endpointIdentity = identitySpec;
    } else {
      identitySpec = pulumi.output({ type: "SystemAssigned" });
      endpointIdentity = { type: "SystemAssigned" };
    }
    const endpoint = new ml.OnlineEndpoint(
      `${name}-endpoint`,
      {
        endpointName,
        resourceGroupName: rg,
        workspaceName,
        location,
        identity: endpointIdentity,
        properties: { authMode: endpointAuth, description },
      },
      { parent: this, dependsOn: acrPull ? [acrPull] : [] },
    );
    if (!acrPull) {
      acrPull = new authorization.RoleAssignment(
        `${name}-acrpull`,
        {
          principalId: endpoint.identity.apply((i) => i?.principalId ?? ""),
          principalType: "ServicePrincipal",
          roleDefinitionId: acrPullRole,
          scope: args.registryId,
        },
        { parent: this },
      );
    }

    const probe = {
      initialDelay: "PT10S",
      period: "PT10S",
      timeout: "PT2S",
      failureThreshold: 30,
      successThreshold: 1,
    };
    const rs = args.requestSettings ?? {};
    const deployments = args.deployments.map((d) => {
      const envProperties = {
        image: d.imageUri,
        osType: "Linux",
        inferenceConfig: SCORER_ROUTES,
        description: pulumi.interpolate`scorer image for model version ${d.modelVersion}`,
      };
      // Versions cannot be deleted (only archived) and are immutable, so each set of properties gets
      // a version of its own that no earlier creation used: the image's digest plus a suffix drawn
      // when the properties change. A version derived from the digest alone would already exist
      // after a rollback to an earlier image or a destroy-then-up, and its creation would fail.
      const suffix = new UniqueSuffix(
        `${name}-${d.name}-env-suffix`,
        { keepers: pulumi.output(envProperties).apply((p) => JSON.stringify(p)) },
        { parent: this },
      );
      const env = new ml.EnvironmentVersion(
        `${name}-${d.name}-env`,
        {
          resourceGroupName: rg,
          workspaceName,
          name: `${endpointName}-${d.name}`,
          version: pulumi
            .all([d.imageUri, suffix.suffix])
            .apply(([uri, s]) => environmentVersionFor(uri, s)),
          properties: envProperties,
        },
        // A new version replaces the old one, which is kept in the workspace.
        { parent: this, retainOnDelete: true },
      );
      const instanceCount = d.instanceCount ?? args.instanceCount ?? 1;
      const deployment = new ml.OnlineDeployment(
        `${name}-${d.name}`,
        {
          deploymentName: d.name,
          endpointName: endpoint.name,
          resourceGroupName: rg,
          workspaceName,
          location,
          sku: { name: "Default", capacity: instanceCount },
          properties: {
            endpointComputeType: "Managed",
            environmentId: env.id,
            instanceType: d.instanceType ?? args.instanceType ?? "Standard_DS3_v2",
            appInsightsEnabled: true,
            // Unset when empty, so deployments without variables see no change.
            environmentVariables: nonEmpty({ ...args.environment, ...d.environment }),
            scaleSettings: { scaleType: "Default" },
            livenessProbe: probe,
            readinessProbe: probe,
            requestSettings: {
              maxConcurrentRequestsPerInstance: rs.maxConcurrentRequestsPerInstance ?? 1,
              requestTimeout: isoDuration(rs.requestTimeoutMs ?? 5000),
              maxQueueWait: isoDuration(rs.maxQueueWaitMs ?? 500),
            },
          },
        },
        { parent: this, dependsOn: [acrPull] },
      );
      if (args.scaling) {
        const cpuRule = (
          operator: "GreaterThan" | "LessThan",
          threshold: number,
          direction: "Increase" | "Decrease",
        ) => ({
          metricTrigger: {
            metricName: "CpuUtilizationPercentage",
            metricResourceUri: deployment.id,
            operator,
            statistic: "Average" as const,
            threshold,
            timeAggregation: "Average" as const,
            timeGrain: "PT1M",
            timeWindow: "PT5M",
          },
          scaleAction: { direction, type: "ChangeCount" as const, value: "1", cooldown: "PT5M" },
        });
        new monitor.AutoscaleSetting(
          `${name}-${d.name}-autoscale`,
          {
            resourceGroupName: rg,
            location,
            enabled: true,
            targetResourceUri: deployment.id,
            profiles: [
              {
                name: "cpu",
                capacity: {
                  minimum: String(args.scaling.minInstances),
                  maximum: String(args.scaling.maxInstances),
                  default: String(instanceCount),
                },
                rules: [
                  cpuRule("GreaterThan", args.scaling.targetCpuPercent, "Increase"),
                  cpuRule("LessThan", args.scaling.targetCpuPercent / 2, "Decrease"),
                ],
              },
            ],
          },
          { parent: this },
        );
      }
      return deployment;
    });

    new AzureMlTraffic(
      `${name}-traffic`,
      {
        subscriptionId: args.subscriptionId,
        resourceGroupName: rg,
        workspaceName,
        endpointName: endpoint.name,
        traffic: Object.fromEntries(args.deployments.map((d) => [d.name, d.trafficPercent])),
        endpointSpecHash: pulumi.all([location, identitySpec]).apply(([loc, identity]) =>
          endpointSpecHash({
            endpointName,
            location: loc,
            authMode: endpointAuth,
            description,
            identity,
          }),
        ),
      },
      { parent: this, dependsOn: deployments },
    );

    this.endpointName = endpoint.name;
    this.workspaceName = workspaceName;
    this.scoringUri = endpoint.properties.apply((p) => p.scoringUri ?? "");
    const auth: pulumi.Output<AzureMlSnippetAuth> =
      authMode === "key"
        ? ml
            .listOnlineEndpointKeysOutput(
              { endpointName: endpoint.name, resourceGroupName: rg, workspaceName },
              { parent: this },
            )
            .apply((k) => ({ mode: "key" as const, key: k.primaryKey ?? "" }))
        : authMode === "aad_token"
          ? pulumi.output({ mode: "aad_token" as const })
          : pulumi.all([endpoint.name, rg, workspaceName]).apply(([n, g, w]) => ({
              mode: "aml_token" as const,
              endpointName: n,
              resourceGroup: g,
              workspaceName: w,
            }));
    const body = pulumi.output(args.sampleBody ?? EMPTY_SAMPLE);
    const snippets = pulumi.secret(
      pulumi
        .all([this.scoringUri, auth, body])
        .apply(([scoringUri, a, b]) => azureMlSnippets({ scoringUri, auth: a, body: b })),
    );
    this.curl = snippets.curl;
    this.python = snippets.python;
    // One command per deployment, past the traffic split: the blue/green smoke test of green at 0%.
    this.deploymentCurls = pulumi.secret(
      pulumi
        .all([this.scoringUri, auth, body])
        .apply(([scoringUri, a, b]) =>
          Object.fromEntries(
            args.deployments.map((d) => [
              d.name,
              azureMlSnippets({ scoringUri, auth: a, body: b, deployment: d.name }).curl,
            ]),
          ),
        ),
    );
    const main = args.deployments.reduce((best, d) =>
      d.trafficPercent > best.trafficPercent ? d : best,
    );
    this.endpoint = pulumi
      .all([this.scoringUri, args.modelName, main.modelVersion, snippets, this.deploymentCurls])
      .apply(([url, modelName, version, s, perDeployment]) => ({
        target: "azureml" as const,
        url,
        modelUri: `models:/${modelName}/${version}`,
        version,
        curl: s.curl,
        python: s.python,
        deploymentCurl: perDeployment,
      }));
    this.registerOutputs({
      endpointName: this.endpointName,
      workspaceName: this.workspaceName,
      scoringUri: this.scoringUri,
      curl: this.curl,
      python: this.python,
      deploymentCurls: this.deploymentCurls,
      endpoint: this.endpoint,
    });
  }
}
