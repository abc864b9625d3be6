/* eslint-disable @typescript-eslint/no-explicit-any -- mock registrations and ARM payloads are untyped JSON */
import * as pulumi from "@pulumi/pulumi";
import { mockRecorder, value } from "../../support/mockRecorder";

// jest cannot run Pulumi's closure serializer (providerSerialization.test.ts proves the real provider
// serializes, in plain node); here AzureMlTraffic registers the same type and inputs without it.
jest.mock("../../../providers/azureMlTraffic", () => {
  const actual = jest.requireActual("../../../providers/azureMlTraffic");
  const { CustomResource } = jest.requireActual("@pulumi/pulumi");
  class AzureMlTraffic extends CustomResource {
    constructor(name: string, args: Record<string, unknown>, opts?: object) {
      const props = {
        ...args,
        armEndpoint: "https://management.azure.com",
        apiVersion: actual.AZUREML_API_VERSION,
        endpointId: undefined,
      };
      super("pulumi-nodejs:dynamic/modelserving:AzureMlTraffic", name, props, opts);
    }
  }
  return { ...actual, AzureMlTraffic };
});

jest.mock("../../../components/cloud/uniqueSuffix", () => {
  const actual = jest.requireActual("../../../components/cloud/uniqueSuffix");
  const { CustomResource } = jest.requireActual("@pulumi/pulumi");
  class UniqueSuffix extends CustomResource {
    constructor(name: string, args: Record<string, unknown>, opts?: object) {
      super(
        "pulumi-nodejs:dynamic/modelserving:UniqueSuffix",
        name,
        { ...args, suffix: undefined },
        opts,
      );
    }
  }
  return { ...actual, UniqueSuffix };
});

const { registrations, calls, record, recordCall, settle, of, named } = mockRecorder();
const SUB = "00000000-0000-0000-0000-000000000001";
const ACR_ID = `/subscriptions/${SUB}/resourceGroups/ml-rg/providers/Microsoft.ContainerRegistry/registries/irisacr`;
const image = (c: string) => `irisacr.azurecr.io/iris@sha256:${c.repeat(64)}`;

pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const state: Record<string, any> = { ...args.inputs };
      const id = `/subscriptions/${SUB}/resourceGroups/ml-rg/mock/${args.name}`;
      switch (args.type) {
        case "azure-native:machinelearningservices:Workspace":
          state.name = args.inputs.workspaceName;
          break;
        case "azure-native:machinelearningservices:OnlineEndpoint":
          state.name = args.inputs.endpointName;
          state.identity = { type: "SystemAssigned", principalId: "principal-of-endpoint" };
          state.properties = {
            ...args.inputs.properties,
            scoringUri: `https://${args.inputs.endpointName}.westeurope.inference.ml.azure.com/score`,
          };
          break;
        case "azure-native:machinelearningservices:EnvironmentVersion":
          return {
            id: `/ws/environments/${args.inputs.name}/versions/${args.inputs.version}`,
            state,
          };
        case "pulumi-nodejs:dynamic/modelserving:UniqueSuffix":
          // Drawn at creation; here a stand-in derived from the resource name.
          state.suffix = `s-${args.name.length}`;
          break;
        case "azure-native:managedidentity:UserAssignedIdentity":
          state.principalId = `principal-of-${args.name}`;
          break;
      }
      return { id, state };
    },
    call(args) {
      recordCall(args);
      switch (args.token) {
        case "azure-native:machinelearningservices:getWorkspace":
          return { name: args.inputs.workspaceName, id: "/ws" };
        case "azure-native:machinelearningservices:listOnlineEndpointKeys":
          return { primaryKey: "primary-key-123", secondaryKey: "secondary" };
        case "azure-native:authorization:getClientConfig":
          return { tenantId: "tenant-1", subscriptionId: SUB, clientId: "c", objectId: "o" };
      }
      throw new Error(`unexpected call ${args.token}`);
    },
  },
  "model-serving",
  "test",
  false,
);

/** Resource options as the engine receives them (the mocks' records carry only inputs). */
const registeredOptions = new Map<
  string,
  { replaceOnChanges: string[]; retainOnDelete: boolean; dependencies: string[] }
>();
{
  const monitor = pulumi.runtime.getMonitor() as any;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, callback: unknown) => {
    registeredOptions.set(req.getName(), {
      replaceOnChanges: req.getReplaceonchangesList(),
      retainOnDelete: req.getRetainondelete(),
      dependencies: req.getDependenciesList(),
    });
    return register(req, callback);
  };
}

import type * as az from "../../../components/azureMlEndpoint";
let mod: typeof az;
beforeAll(async () => {
  mod = await import("../../../components/azureMlEndpoint");
});

const base: az.AzureMlEndpointArgs = {
  subscriptionId: SUB,
  resourceGroupName: "ml-rg",
  location: "westeurope",
  workspaceName: "ml-ws",
  registryId: ACR_ID,
  modelName: "iris",
  deployments: [{ name: "blue", imageUri: image("a"), modelVersion: "3", trafficPercent: 100 }],
};

describe("AzureMlEndpoint graph", () => {
  test("blue/green on an existing workspace: environments with scorer routes, deployments, AcrPull, traffic, secret commands", async () => {
    const ep = new mod.AzureMlEndpoint("iris-az", {
      ...base,
      endpointName: "iris-prod",
      instanceType: "Standard_F2s_v2",
      requestSettings: { maxConcurrentRequestsPerInstance: 4, requestTimeoutMs: 3000 },
      scaling: { minInstances: 1, maxInstances: 4, targetCpuPercent: 70 },
      deployments: [
        { name: "blue", imageUri: image("a"), modelVersion: "3", trafficPercent: 90 },
        {
          name: "green",
          imageUri: image("b"),
          modelVersion: "4",
          trafficPercent: 10,
          instanceCount: 2,
        },
      ],
    });
    const entry = await value(ep.endpoint);
    await settle();

    expect(
      of("iris-az")
        .map((r) => `${r.type} ${r.name}`)
        .sort(),
    ).toEqual([
      "azure-native:authorization:RoleAssignment iris-az-acrpull",
      "azure-native:machinelearningservices:EnvironmentVersion iris-az-blue-env",
      "azure-native:machinelearningservices:EnvironmentVersion iris-az-green-env",
      "azure-native:machinelearningservices:OnlineDeployment iris-az-blue",
      "azure-native:machinelearningservices:OnlineDeployment iris-az-green",
      "azure-native:machinelearningservices:OnlineEndpoint iris-az-endpoint",
      "azure-native:monitor:AutoscaleSetting iris-az-blue-autoscale",
      "azure-native:monitor:AutoscaleSetting iris-az-green-autoscale",
      "pulumi-nodejs:dynamic/modelserving:AzureMlTraffic iris-az-traffic",
      "pulumi-nodejs:dynamic/modelserving:UniqueSuffix iris-az-blue-env-suffix",
      "pulumi-nodejs:dynamic/modelserving:UniqueSuffix iris-az-green-env-suffix",
    ]);
    expect(
      calls.find((c) => c.token === "azure-native:machinelearningservices:getWorkspace")!.inputs,
    ).toEqual({
      workspaceName: "ml-ws",
      resourceGroupName: "ml-rg",
    });

    const endpoint = named("iris-az-endpoint");
    expect(endpoint).toMatchObject({
      endpointName: "iris-prod",
      workspaceName: "ml-ws",
      identity: { type: "SystemAssigned" },
      properties: { authMode: "Key" },
    });
    expect(endpoint.properties.traffic).toBeUndefined(); // set by AzureMlTraffic once deployments exist

    expect(named("iris-az-acrpull")).toMatchObject({
      principalId: "principal-of-endpoint",
      principalType: "ServicePrincipal",
      roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d`,
      scope: ACR_ID,
    });

    const blueEnv = named("iris-az-blue-env");
    // The digest plus a suffix drawn when the properties change: a rollback to image a, or a
    // destroy-then-up, never collides with the version kept (retainOnDelete) from before.
    const blueSuffix = `s-${"iris-az-blue-env-suffix".length}`;
    expect(blueEnv.version).toBe(`sha256-${"a".repeat(16)}-${blueSuffix}`);
    // The suffix is redrawn whenever any of the version's declared properties change.
    // Kept in the workspace when replaced: versions can only be archived.
    expect(registeredOptions.get("iris-az-blue-env")!.retainOnDelete).toBe(true);
    expect(JSON.parse(named("iris-az-blue-env-suffix").keepers)).toEqual({
      image: image("a"),
      osType: "Linux",
      inferenceConfig: mod.SCORER_ROUTES,
      description: "scorer image for model version 3",
    });
    expect(blueEnv).toMatchObject({
      name: "iris-prod-blue",
      workspaceName: "ml-ws",
      properties: {
        image: image("a"),
        osType: "Linux",
        description: "scorer image for model version 3",
        inferenceConfig: {
          livenessRoute: { path: "/ping", port: 8080 },
          readinessRoute: { path: "/ping", port: 8080 },
          scoringRoute: { path: "/invocations", port: 8080 },
        },
      },
    });
    expect(named("iris-az-green-env").properties.image).toBe(image("b"));

    const blue = named("iris-az-blue");
    expect(blue).toMatchObject({
      deploymentName: "blue",
      endpointName: "iris-prod",
      sku: { name: "Default", capacity: 1 },
      properties: {
        endpointComputeType: "Managed",
        environmentId: `/ws/environments/iris-prod-blue/versions/sha256-${"a".repeat(16)}-${blueSuffix}`,
        instanceType: "Standard_F2s_v2",
        requestSettings: {
          maxConcurrentRequestsPerInstance: 4,
          requestTimeout: "PT3S",
          maxQueueWait: "PT0.5S",
        },
        livenessProbe: {
          initialDelay: "PT10S",
          period: "PT10S",
          timeout: "PT2S",
          failureThreshold: 30,
          successThreshold: 1,
        },
        readinessProbe: {
          initialDelay: "PT10S",
          period: "PT10S",
          timeout: "PT2S",
          failureThreshold: 30,
          successThreshold: 1,
        },
      },
    });
    expect(named("iris-az-green").sku).toEqual({ name: "Default", capacity: 2 });
    // No variables configured: the property stays unset (no diff for existing deployments).
    expect(blue.properties.environmentVariables).toBeUndefined();

    const autoscale = named("iris-az-green-autoscale");
    expect(autoscale.targetResourceUri).toBe(
      `/subscriptions/${SUB}/resourceGroups/ml-rg/mock/iris-az-green`,
    );
    expect(autoscale.profiles[0].capacity).toEqual({ minimum: "1", maximum: "4", default: "2" });
    expect(
      autoscale.profiles[0].rules.map((r: any) => [
        r.metricTrigger.metricName,
        r.metricTrigger.operator,
        r.metricTrigger.threshold,
        r.scaleAction.direction,
      ]),
    ).toEqual([
      ["CpuUtilizationPercentage", "GreaterThan", 70, "Increase"],
      ["CpuUtilizationPercentage", "LessThan", 35, "Decrease"],
    ]);

    expect(named("iris-az-traffic")).toMatchObject({
      subscriptionId: SUB,
      resourceGroupName: "ml-rg",
      workspaceName: "ml-ws",
      endpointName: "iris-prod",
      traffic: { blue: 90, green: 10 },
      armEndpoint: "https://management.azure.com",
      apiVersion: "2025-12-01",
    });

    expect(await value(ep.scoringUri)).toBe(
      "https://iris-prod.westeurope.inference.ml.azure.com/score",
    );
    expect(await pulumi.isSecret(ep.curl)).toBe(true);
    expect(await pulumi.isSecret(ep.python)).toBe(true);
    expect(await pulumi.isSecret(ep.endpoint)).toBe(true);
    expect(entry).toMatchObject({
      target: "azureml",
      url: "https://iris-prod.westeurope.inference.ml.azure.com/score",
      modelUri: "models:/iris/3",
      version: "3",
    });
    expect(
      entry.curl.startsWith(
        "KEY='primary-key-123'; curl -sS -X POST 'https://iris-prod.westeurope.inference.ml.azure.com/score'",
      ),
    ).toBe(true);
    expect(entry.python).toContain('key = "primary-key-123"');
  });

  test("aml_token auth with a created workspace: storage, key vault, logs, app insights; token fetched by az", async () => {
    const ep = new mod.AzureMlEndpoint("iris-new", {
      ...base,
      workspaceName: "iris-ws",
      createWorkspace: true,
      authMode: "aml_token",
    });
    const entry = await value(ep.endpoint);
    await settle();
    expect(
      of("iris-new")
        .map((r) => r.type)
        .sort(),
    ).toEqual([
      "azure-native:applicationinsights:Component",
      "azure-native:authorization:RoleAssignment",
      "azure-native:keyvault:Vault",
      "azure-native:machinelearningservices:EnvironmentVersion",
      "azure-native:machinelearningservices:OnlineDeployment",
      "azure-native:machinelearningservices:OnlineEndpoint",
      "azure-native:machinelearningservices:Workspace",
      "azure-native:operationalinsights:Workspace",
      "azure-native:storage:StorageAccount",
      "pulumi-nodejs:dynamic/modelserving:AzureMlTraffic",
      "pulumi-nodejs:dynamic/modelserving:UniqueSuffix",
    ]);
    const ws = named("iris-new-workspace");
    expect(ws).toMatchObject({
      workspaceName: "iris-ws",
      identity: { type: "SystemAssigned" },
      storageAccount: `/subscriptions/${SUB}/resourceGroups/ml-rg/mock/iris-new-storage`,
      keyVault: `/subscriptions/${SUB}/resourceGroups/ml-rg/mock/iris-new-kv`,
      applicationInsights: `/subscriptions/${SUB}/resourceGroups/ml-rg/mock/iris-new-appinsights`,
      containerRegistry: ACR_ID,
    });
    const unique = mod.workspaceResourceNames({
      project: "model-serving",
      stack: "test",
      workspaceName: "iris-ws",
      endpointName: "iris-new",
    });
    expect(named("iris-new-storage").accountName).toBe(unique.storageAccount);
    expect(named("iris-new-kv").vaultName).toBe(unique.keyVault);
    expect(named("iris-new-kv").properties).toMatchObject({
      tenantId: "tenant-1",
      enableRbacAuthorization: true,
    });
    expect(named("iris-new-appinsights")).toMatchObject({
      ingestionMode: "LogAnalytics",
      workspaceResourceId: `/subscriptions/${SUB}/resourceGroups/ml-rg/mock/iris-new-logs`,
    });
    expect(named("iris-new-endpoint").properties.authMode).toBe("AMLToken");
    expect(named("iris-new-traffic").traffic).toEqual({ blue: 100 });
    expect(
      calls.filter(
        (c) => c.token.endsWith("listOnlineEndpointKeys") && c.inputs.endpointName === "iris-new",
      ),
    ).toHaveLength(0);
    expect(entry.curl).toBe(
      `KEY="$('az' 'ml' 'online-endpoint' 'get-credentials' '--name' 'iris-new' '--resource-group' 'ml-rg' '--workspace-name' 'iris-ws' '--query' 'accessToken' '--output' 'tsv')"; ` +
        `curl -sS -X POST 'https://iris-new.westeurope.inference.ml.azure.com/score' -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' ` +
        `-d '{"dataframe_split":{"columns":[],"data":[]}}'`,
    );
  });

  const two = (a: number, b: number) => [
    { name: "blue", imageUri: image("a"), modelVersion: "3", trafficPercent: a },
    { name: "green", imageUri: image("b"), modelVersion: "4", trafficPercent: b },
  ];
  test.each([
    [
      { deployments: two(60, 30) },
      "AzureMlEndpoint: traffic must sum to 100, got 90 (blue=60, green=30)",
    ],
    [
      { deployments: [] },
      "AzureMlEndpoint: deployments must list 1 or 2 entries (blue/green), got 0",
    ],
    [
      {
        deployments: [
          ...two(50, 50),
          { name: "red", imageUri: image("c"), modelVersion: "5", trafficPercent: 0 },
        ],
      },
      "AzureMlEndpoint: deployments must list 1 or 2 entries (blue/green), got 3",
    ],
    [
      { deployments: [{ ...two(50, 50)[0] }, { ...two(50, 50)[0] }] },
      'AzureMlEndpoint: deployment names must be unique, got "blue" twice',
    ],
    [
      {
        deployments: [{ name: "b", imageUri: image("a"), modelVersion: "3", trafficPercent: 100 }],
      },
      'AzureMlEndpoint: deployment name must be 3-32 letters, digits or hyphens, start with a letter and not end with a hyphen, got "b"',
    ],
    [
      { deployments: two(101, -1) },
      "AzureMlEndpoint: traffic of blue must be an integer from 0 to 100, got 101",
    ],
    [
      { authMode: "aad" },
      'AzureMlEndpoint: authMode must be "key", "aml_token" or "aad_token", got "aad"',
    ],
    [
      { identity: "both" },
      'AzureMlEndpoint: identity must be "systemAssigned" or "userAssigned", got "both"',
    ],
    [
      { instanceCount: 5, scaling: { minInstances: 1, maxInstances: 3, targetCpuPercent: 70 } },
      "AzureMlEndpoint: instanceCount of blue (5) must be within scaling.minInstances..maxInstances (1..3): it is the autoscale default",
    ],
    [
      { scaling: { minInstances: 2, maxInstances: 3, targetCpuPercent: 70 } },
      "AzureMlEndpoint: instanceCount of blue (1) must be within scaling.minInstances..maxInstances (2..3): it is the autoscale default",
    ],
    [
      { endpointName: "iris_prod" },
      'AzureMlEndpoint: endpointName must be 3-32 letters, digits or hyphens, start with a letter and not end with a hyphen, got "iris_prod"',
    ],
    [
      { workspaceName: "w" },
      'AzureMlEndpoint: workspaceName must be 3-33 letters, digits, _ or -, got "w"',
    ],
    [{ instanceCount: 0 }, "AzureMlEndpoint: instanceCount of blue must be an integer >= 1, got 0"],
    [
      { scaling: { minInstances: 3, maxInstances: 1, targetCpuPercent: 70 } },
      "AzureMlEndpoint: scaling needs integers 1 <= minInstances <= maxInstances, got 3..1",
    ],
    [
      { scaling: { minInstances: 1, maxInstances: 3, targetCpuPercent: 100 } },
      "AzureMlEndpoint: scaling.targetCpuPercent must be between 0 and 100, got 100",
    ],
  ])("rejects %j", (bad, message) => {
    const before = registrations.length;
    expect(
      () =>
        new mod.AzureMlEndpoint("bad-endpoint", {
          ...base,
          ...(bad as object),
        } as az.AzureMlEndpointArgs),
    ).toThrow(new Error(message));
    expect(registrations.length).toBe(before);
  });

  test("user-assigned identity: created and granted AcrPull before the endpoint; Entra ID auth; env vars; per-deployment commands", async () => {
    const ep = new mod.AzureMlEndpoint("iris-uai", {
      ...base,
      endpointName: "iris-uai",
      identity: "userAssigned",
      authMode: "aad_token",
      environment: { WORKERS: "2" },
      sampleBody: { inputs: [[0.5]] },
      deployments: [
        {
          name: "blue",
          imageUri: image("a"),
          modelVersion: "3",
          trafficPercent: 100,
          environment: { MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: "30" },
        },
        { name: "green", imageUri: image("b"), modelVersion: "4", trafficPercent: 0 },
      ],
    });
    const entry = await value(ep.endpoint);
    await settle();
    const uaiAt = registrations.findIndex((r) => r.name === "iris-uai-identity");
    const grantAt = registrations.findIndex((r) => r.name === "iris-uai-acrpull");
    const endpointAt = registrations.findIndex((r) => r.name === "iris-uai-endpoint");
    expect(registrations[uaiAt].inputs).toMatchObject({
      resourceGroupName: "ml-rg",
      location: "westeurope",
    });
    // The grant is registered first and the endpoint waits for it (dependsOn).
    expect(uaiAt).toBeLessThan(grantAt);
    expect(grantAt).toBeLessThan(endpointAt);
    expect(
      registeredOptions
        .get("iris-uai-endpoint")!
        .dependencies.some((u) => u.endsWith("::iris-uai-acrpull")),
    ).toBe(true);
    expect(named("iris-uai-acrpull")).toMatchObject({
      principalId: "principal-of-iris-uai-identity",
      scope: ACR_ID,
    });
    const endpoint = named("iris-uai-endpoint");
    expect(endpoint.identity).toEqual({
      type: "UserAssigned",
      userAssignedIdentities: [`/subscriptions/${SUB}/resourceGroups/ml-rg/mock/iris-uai-identity`],
    });
    expect(endpoint.properties.authMode).toBe("AADToken");
    expect(named("iris-uai-blue").properties.environmentVariables).toEqual({
      WORKERS: "2",
      MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: "30",
    });
    expect(named("iris-uai-green").properties.environmentVariables).toEqual({ WORKERS: "2" });
    expect(named("iris-uai-traffic").endpointSpecHash).toBe(
      mod.endpointSpecHash({
        endpointName: "iris-uai",
        location: "westeurope",
        authMode: "AADToken",
        description: "model-serving endpoint iris-uai",
        identity: {
          type: "UserAssigned",
          userAssignedIdentities: [
            `/subscriptions/${SUB}/resourceGroups/ml-rg/mock/iris-uai-identity`,
          ],
        },
      }),
    );
    expect(entry.curl).toContain("'get-access-token' '--resource' 'https://ml.azure.com'");
    expect(entry.curl).toContain(`-d '{"inputs":[[0.5]]}'`);
    expect(Object.keys(entry.deploymentCurl)).toEqual(["blue", "green"]);
    expect(entry.deploymentCurl.green).toContain("-H 'azureml-model-deployment: green'");
    expect(await pulumi.isSecret(ep.deploymentCurls)).toBe(true);
  });

  test("the traffic resource's spec hash covers everything the endpoint PUT sends", () => {
    const spec = {
      endpointName: "iris",
      location: "westeurope",
      authMode: "Key",
      description: "model-serving endpoint iris",
      identity: { type: "SystemAssigned" },
    };
    const h = mod.endpointSpecHash(spec);
    expect(mod.endpointSpecHash({ ...spec, identity: { type: "SystemAssigned" } })).toBe(h);
    for (const changed of [
      { location: "northeurope" },
      { authMode: "AADToken" },
      { description: "other" },
      { identity: { type: "UserAssigned", userAssignedIdentities: ["/id"] } },
      { tags: { team: "ml" } },
    ]) {
      expect([changed, mod.endpointSpecHash({ ...spec, ...changed })]).not.toEqual([changed, h]);
    }
  });

  test("created workspace's key vault and storage names are unique per project, stack and generation", () => {
    const names = (stack: string, generation?: number) =>
      mod.workspaceResourceNames({
        project: "model-serving",
        stack,
        workspaceName: "iris-ws",
        endpointName: "iris",
        generation,
      });
    const prod = names("prod");
    expect(prod.keyVault).toMatch(/^irisws-kv-[0-9a-f]{8}$/);
    expect(prod.storageAccount).toMatch(/^iriswsst[0-9a-f]{8}$/);
    expect(names("prod")).toEqual(prod);
    expect(names("staging").keyVault).not.toBe(prod.keyVault);
    expect(names("prod", 1).keyVault).not.toBe(prod.keyVault);
    expect(names("prod", 1).storageAccount).not.toBe(prod.storageAccount);
  });

  test("a unique suffix is drawn at each creation and anew when its keepers change", async () => {
    const { uniqueSuffixProvider: p } = jest.requireActual(
      "../../../components/cloud/uniqueSuffix",
    );
    const a = await p.create({ keepers: "image-a" });
    const again = await p.create({ keepers: "image-a" });
    expect(a.outs.suffix).toMatch(/^[0-9a-f]{8}$/);
    // destroy-then-up draws another suffix for the same image
    expect(again.outs.suffix).not.toBe(a.outs.suffix);
    expect(await p.diff(a.id, a.outs, { keepers: "image-a" })).toEqual({
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
    // a rollback to an earlier image is a change of keepers: replaced, so a new version
    expect(await p.diff(a.id, a.outs, { keepers: "image-b" })).toEqual({
      changes: true,
      replaces: ["keepers"],
      deleteBeforeReplace: false,
    });
    expect(mod.environmentVersionFor(image("a"), "0a1b2c3d")).toBe(
      `sha256-${"a".repeat(16)}-0a1b2c3d`,
    );
  });

  test("environment versions need digest-pinned images", () => {
    expect(() => mod.environmentVersionFor("irisacr.azurecr.io/iris:latest")).toThrow(
      new Error(
        'AzureMlEndpoint: imageUri must be pinned by digest (repo@sha256:...), got "irisacr.azurecr.io/iris:latest"',
      ),
    );
  });
});
