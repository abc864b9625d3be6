import * as pulumi from "@pulumi/pulumi";

// config/load.ts tells a secret `mlflowPassword` (pulumi config set --secret) from a plain one by the
// secret keys the language host passes (PULUMI_CONFIG_SECRET_KEYS), as the engine does.
pulumi.runtime.setMocks(
  {
    newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }),
    call: (args) => args.inputs,
  },
  "model-serving",
  "loadtest",
  false,
);
process.env.MODEL_SERVING_CACHE = "/cache";

const config = (secretKeys: string[]) =>
  pulumi.runtime.setAllConfig(
    {
      "model-serving:mlflow": JSON.stringify({ port: 5100, dataDir: "/data/mlflow" }),
      "model-serving:mlflowPassword": "a-long-enough-password",
    },
    secretKeys,
  );

describe("loadStackConfig", () => {
  it("takes mlflowPassword as secret config", async () => {
    config(["model-serving:mlflowPassword"]);
    const { loadStackConfig } = await import("../../config/load");
    const cfg = loadStackConfig();
    expect(cfg.mlflow.port).toBe(5100);
    expect(await (cfg.mlflowPassword as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(
      true,
    );
  });

  it("rejects mlflowPassword set as plain config, without showing it", async () => {
    config([]);
    const { loadStackConfig } = await import("../../config/load");
    expect(() => loadStackConfig()).toThrow(
      new Error(
        "invalid stack configuration:\n  model-serving:mlflowPassword: must be secret config, not plain text; set it again with: pulumi config set --secret mlflowPassword",
      ),
    );
  });
});
