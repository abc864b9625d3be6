/* eslint-disable @typescript-eslint/no-explicit-any -- mock registrations and ARM payloads are untyped JSON */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { mockRecorder, value } from "../../support/mockRecorder";

// jest cannot run Pulumi's closure serializer (providerSerialization.test.ts proves the real provider
// serializes, in plain node); here ModelExport registers the same type and inputs without it.
jest.mock("../../../providers/modelExport", () => {
  const actual = jest.requireActual("../../../providers/modelExport");
  const { CustomResource } = jest.requireActual("@pulumi/pulumi");
  class ModelExport extends CustomResource {
    constructor(name: string, args: object, opts?: object) {
      super(
        "pulumi-nodejs:dynamic/modelserving:ModelExport",
        name,
        { ...args, contextDir: undefined, contextHash: undefined, modelUri: undefined },
        opts,
      );
    }
  }
  return { ...actual, ModelExport };
});

const { registrations, calls, record, recordCall, settle, of, one } = mockRecorder();
const HASH = "c".repeat(64);
const DIGEST = "d".repeat(64);

pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const state: Record<string, any> = { ...args.inputs };
      switch (args.type) {
        case "pulumi-nodejs:dynamic/modelserving:ModelExport":
          Object.assign(state, {
            contextDir: `/cache/build-contexts/${HASH}`,
            contextHash: HASH,
            modelUri: "models:/iris/3",
          });
          break;
        case "aws:ecr/repository:Repository":
          Object.assign(state, {
            registryId: "123456789012",
            arn: `arn:aws:ecr:eu-west-1:123456789012:repository/${args.inputs.name}`,
            repositoryUrl: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/${args.inputs.name}`,
          });
          break;
        case "azure-native:containerregistry:Registry":
          Object.assign(state, {
            name: args.inputs.registryName,
            loginServer: `${args.inputs.registryName.toLowerCase()}.azurecr.io`,
            id: `/subscriptions/s/resourceGroups/${args.inputs.resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/${args.inputs.registryName}`,
          });
          break;
        case "docker:index/image:Image":
          state.repoDigest = `${args.inputs.imageName.split(":").slice(0, -1).join(":")}@sha256:${DIGEST}`;
          break;
      }
      return { id: `${args.name}-id`, state };
    },
    call(args) {
      recordCall(args);
      switch (args.token) {
        case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
          return {
            userName: "AWS",
            password: "ecr-password",
            proxyEndpoint: "https://x",
            authorizationToken: "t",
            expiresAt: "",
            id: "x",
            region: "eu-west-1",
          };
        case "azure-native:containerregistry:getRegistry":
          return {
            name: args.inputs.registryName,
            loginServer: "existingacr.azurecr.io",
            id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/existingacr",
          };
        case "azure-native:containerregistry:listRegistryCredentials":
          return {
            username: args.inputs.registryName,
            passwords: [{ name: "password", value: "acr-password" }],
          };
        case "azure-native:authorization:getClientConfig":
          return { tenantId: "tenant-1", subscriptionId: "s", clientId: "c", objectId: "o" };
        case "azure-native:authorization:getClientToken":
          return { token: "entra-access-token" };
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

import type * as si from "../../../components/scorerImage";
let mod: typeof si;
beforeAll(async () => {
  mod = await import("../../../components/scorerImage");
});

const model = {
  modelName: "iris",
  modelVersion: "3",
  trackingUri: "http://127.0.0.1:5000",
  mlflowBin: "/venv/bin/mlflow",
  contextRoot: "/cache/build-contexts",
};

describe("ScorerImage graph", () => {
  test("ecr: export -> scanned repository with lifecycle -> image pushed with ECR token, digest-pinned", async () => {
    const img = new mod.ScorerImage("iris", {
      ...model,
      registry: "ecr",
      region: "eu-west-1",
      keepImages: 5,
    });
    const uri = await value(img.imageUri);
    await settle();
    expect(
      of("iris")
        .map((r) => `${r.type} ${r.name}`)
        .sort(),
    ).toEqual([
      "aws:ecr/lifecyclePolicy:LifecyclePolicy iris-lifecycle",
      "aws:ecr/repository:Repository iris-repo",
      "docker:index/image:Image iris-image",
      "pulumi-nodejs:dynamic/modelserving:ModelExport iris-export",
    ]);
    expect(uri).toBe(`123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris@sha256:${DIGEST}`);
    expect(await value(img.registryResourceId)).toBe(
      "arn:aws:ecr:eu-west-1:123456789012:repository/iris",
    );

    const exp = one("iris", "pulumi-nodejs:dynamic/modelserving:ModelExport").inputs;
    expect(exp).toMatchObject({ ...model, scorerDir: path.resolve(__dirname, "../../../scorer") });
    expect(exp.scorerHash).toMatch(/^[0-9a-f]{64}$/);

    expect(one("iris", "aws:ecr/repository:Repository").inputs).toMatchObject({
      name: "iris",
      region: "eu-west-1",
      imageScanningConfiguration: { scanOnPush: true },
      // destroy succeeds with images present
      forceDelete: true,
    });
    const lifecycle = JSON.parse(
      one("iris", "aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs.policy,
    );
    expect(
      lifecycle.rules.map((r: any) => [
        r.rulePriority,
        r.selection.tagStatus,
        r.selection.countType,
        r.selection.countNumber,
      ]),
    ).toEqual([
      [1, "tagged", "imageCountMoreThan", 1],
      [2, "untagged", "sinceImagePushed", 7],
      [3, "any", "imageCountMoreThan", 5],
    ]);
    // Rule 1 selects the image the endpoint runs, so no lower rule may expire it.
    expect(lifecycle.rules[0].selection.tagPrefixList).toEqual([`v3-${HASH.slice(0, 12)}`]);
    const image = one("iris", "docker:index/image:Image").inputs;
    expect(image.imageName).toBe(
      `123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:v3-${HASH.slice(0, 12)}`,
    );
    expect(image.build).toEqual({
      context: `/cache/build-contexts/${HASH}`,
      dockerfile: `/cache/build-contexts/${HASH}/Dockerfile`,
      platform: "linux/amd64",
      // SageMaker's stage of scorer/Dockerfile (root), built with BuildKit (it mounts a secret).
      target: "sagemaker",
      builderVersion: "BuilderBuildKit",
    });
    // The registry block reaches the engine as a secret (the password is pulumi.secret).
    expect(image.registry).toEqual({
      [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig,
      value: {
        server: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris",
        username: "AWS",
        password: "ecr-password",
      },
    });
    expect(
      calls.find((c) => c.token === "aws:ecr/getAuthorizationToken:getAuthorizationToken")!.inputs,
    ).toMatchObject({ registryId: "123456789012", region: "eu-west-1" });
  });

  test("each image has a build-context folder of its own (no other image's delete removes it)", async () => {
    const a = new mod.ScorerImage("ctx-a", { ...model, contextRoot: undefined, registry: "ecr" });
    const b = new mod.ScorerImage("ctx-b", { ...model, contextRoot: undefined, registry: "ecr" });
    await Promise.all([value(a.imageUri), value(b.imageUri)]);
    await settle();
    const root = (n: string) =>
      one(n, "pulumi-nodejs:dynamic/modelserving:ModelExport").inputs.contextRoot;
    expect(root("ctx-a")).toBe(path.join(mod.defaultContextRoot(), "ctx-a"));
    expect(root("ctx-b")).toBe(path.join(mod.defaultContextRoot(), "ctx-b"));
    // A scorer change replaces the export: the new context is made, then the old one's delete
    // removes its folder (an update would leave it behind).
    expect(registeredOptions.get("ctx-a-export")!.replaceOnChanges).toEqual(["scorerHash"]);
  });

  test("the lifecycle policy keeps the live image out of every expiring rule", () => {
    const rules = JSON.parse(mod.ecrLifecyclePolicy(2, "v4-0123456789ab")).rules;
    expect(rules[0]).toEqual({
      rulePriority: 1,
      description: "never expire v4-0123456789ab, the image the endpoint runs",
      selection: {
        tagStatus: "tagged",
        tagPrefixList: ["v4-0123456789ab"],
        countType: "imageCountMoreThan",
        countNumber: 1,
      },
      action: { type: "expire" },
    });
    expect(rules.map((r: any) => r.rulePriority)).toEqual([1, 2, 3]);
  });

  test("acr with Entra ID: the provider's token is exchanged for an ACR token; no admin user", async () => {
    const seen: { url: string; body: string }[] = [];
    const fetchSpy = jest.spyOn(global, "fetch").mockImplementation(async (url, init) => {
      seen.push({ url: String(url), body: String(init?.body) });
      return new Response(JSON.stringify({ refresh_token: "acr-refresh-token" }), { status: 200 });
    });
    try {
      const img = new mod.ScorerImage("iris-entra", {
        ...model,
        registry: "acr",
        repositoryName: "iris",
        acr: { name: "existingacr", resourceGroupName: "rg" },
      });
      expect(await value(img.imageUri)).toBe(`existingacr.azurecr.io/iris@sha256:${DIGEST}`);
      await settle();
      const image = one("iris-entra", "docker:index/image:Image").inputs;
      expect(image.registry).toEqual({
        [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig,
        value: {
          server: "existingacr.azurecr.io",
          username: "00000000-0000-0000-0000-000000000000",
          password: "acr-refresh-token",
        },
      });
      expect(seen).toEqual([
        {
          url: "https://existingacr.azurecr.io/oauth2/exchange",
          body: "grant_type=access_token&service=existingacr.azurecr.io&tenant=tenant-1&access_token=entra-access-token",
        },
      ]);
      expect(
        calls.filter(
          (c) =>
            c.token === "azure-native:containerregistry:listRegistryCredentials" &&
            c.inputs.registryName === "existingacr" &&
            c.inputs.resourceGroupName === "rg",
        ),
      ).toHaveLength(0);
    } finally {
      fetchSpy.mockRestore();
    }
  });

  test("acr create with Entra ID login: the admin user stays disabled", async () => {
    const fetchSpy = jest
      .spyOn(global, "fetch")
      .mockResolvedValue(new Response('{"refresh_token":"r"}', { status: 200 }));
    try {
      const img = new mod.ScorerImage("iris-entra-new", {
        ...model,
        registry: "acr",
        acr: {
          name: "entrascorers",
          resourceGroupName: "ml-rg",
          create: true,
          location: "westeurope",
        },
      });
      await value(img.imageUri);
      expect(
        one("iris-entra-new", "azure-native:containerregistry:Registry").inputs.adminUserEnabled,
      ).toBe(false);
    } finally {
      fetchSpy.mockRestore();
    }
  });

  test("acr existing: looked up by name/resource group, pushed with its admin credentials", async () => {
    const img = new mod.ScorerImage("iris-az", {
      ...model,
      registry: "acr",
      repositoryName: "iris",
      acr: { name: "existingacr", resourceGroupName: "rg", login: "admin" },
    });
    expect(await value(img.imageUri)).toBe(`existingacr.azurecr.io/iris@sha256:${DIGEST}`);
    await settle();
    expect(
      of("iris-az")
        .map((r) => r.type)
        .sort(),
    ).toEqual(["docker:index/image:Image", "pulumi-nodejs:dynamic/modelserving:ModelExport"]);
    expect(
      calls.find((c) => c.token === "azure-native:containerregistry:getRegistry")!.inputs,
    ).toEqual({ registryName: "existingacr", resourceGroupName: "rg" });
    const image = one("iris-az", "docker:index/image:Image").inputs;
    // Azure ML runs the non-root stage.
    expect(image.build.target).toBe("standalone");
    expect(image.registry).toEqual({
      [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig,
      value: {
        server: "existingacr.azurecr.io",
        username: "existingacr",
        password: "acr-password",
      },
    });
    expect(await value(img.registryResourceId)).toBe(
      "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/existingacr",
    );
  });

  test("acr create: a registry with the admin user for the push", async () => {
    const img = new mod.ScorerImage("iris-new", {
      ...model,
      registry: "acr",
      acr: {
        name: "irisscorers",
        resourceGroupName: "ml-rg",
        create: true,
        location: "westeurope",
        sku: "Premium",
        login: "admin",
      },
    });
    expect(await value(img.imageUri)).toBe(`irisscorers.azurecr.io/iris-new@sha256:${DIGEST}`);
    expect(one("iris-new", "azure-native:containerregistry:Registry").inputs).toMatchObject({
      registryName: "irisscorers",
      resourceGroupName: "ml-rg",
      location: "westeurope",
      sku: { name: "Premium" },
      adminUserEnabled: true,
    });
  });

  test.each([
    [{ registry: "gcr" }, 'ScorerImage: registry must be "ecr" or "acr", got "gcr"'],
    [
      { registry: "ecr", repositoryName: "Iris Model" },
      'ScorerImage: repositoryName must be lowercase letters, digits and . _ - / separators, got "Iris Model"',
    ],
    [{ registry: "ecr", keepImages: 0 }, "ScorerImage: keepImages must be an integer >= 1, got 0"],
    [{ registry: "acr" }, 'ScorerImage: registry "acr" needs acr.name and acr.resourceGroupName'],
    [
      { registry: "acr", acr: { name: "my-reg", resourceGroupName: "rg" } },
      'ScorerImage: acr.name must be 5-50 letters or digits, got "my-reg"',
    ],
    [
      { registry: "ecr", target: "lambda" },
      'ScorerImage: target must be "sagemaker" or "standalone", got "lambda"',
    ],
    [
      { registry: "acr", acr: { name: "myregistry", resourceGroupName: "rg", login: "token" } },
      'ScorerImage: acr.login must be "entra" or "admin", got "token"',
    ],
    [
      { registry: "acr", acr: { name: "myregistry", resourceGroupName: "rg", create: true } },
      "ScorerImage: acr.create needs acr.location",
    ],
  ])("rejects %j", (bad, message) => {
    const before = registrations.length;
    expect(
      () => new mod.ScorerImage("bad", { ...model, ...(bad as object) } as si.ScorerImageArgs),
    ).toThrow(new Error(message));
    expect(registrations.length).toBe(before);
  });
});
