import { capacityProvider, type CapacityInputs } from "../../../components/cloud/sagemakerCapacity";
import { fakeSageMaker } from "../../support/fakeSageMaker";

// SageMakerCapacity against SageMaker's DescribeEndpoint as the AWS SDK speaks it (a fake on loopback);
// providerSerialization.test.ts runs the same provider from its serialized text.
const inputs: CapacityInputs = {
  region: "eu-west-1",
  endpointName: "iris",
  variantName: "AllTraffic",
  initialCount: 2,
  minInstances: 2,
  maxInstances: 6,
  rollKey: "image-a",
};

let fake: Awaited<ReturnType<typeof fakeSageMaker>>;
const saved = { ...process.env };
beforeAll(async () => {
  fake = await fakeSageMaker({
    iris: {
      variants: [{ VariantName: "AllTraffic", DesiredInstanceCount: 5, CurrentInstanceCount: 4 }],
    },
    grown: { variants: [{ VariantName: "AllTraffic", CurrentInstanceCount: 9 }] },
    other: { variants: [{ VariantName: "Blue", DesiredInstanceCount: 3 }] },
    locked: {
      error: {
        type: "AccessDeniedException",
        message:
          "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: sagemaker:DescribeEndpoint",
      },
    },
  });
  process.env.AWS_ENDPOINT_URL_SAGEMAKER = fake.url;
  process.env.AWS_ACCESS_KEY_ID = "AKIDEXAMPLE";
  process.env.AWS_SECRET_ACCESS_KEY = "not-a-secret";
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  delete process.env.AWS_PROFILE;
});
afterAll(async () => {
  process.env = saved;
  await fake.close();
});

test("an image roll of a live autoscaled endpoint starts at the count autoscaling holds now", async () => {
  const created = await capacityProvider.create(inputs);
  expect(created).toEqual({
    id: "iris",
    outs: { ...inputs, instanceCount: 5, source: "endpoint" },
  });
  expect(fake.requests.at(-1)).toEqual({
    target: "SageMaker.DescribeEndpoint",
    body: { EndpointName: "iris" },
  });
});

test("the count is clamped to the autoscaling bounds; CurrentInstanceCount when no desired count", async () => {
  const grown = await capacityProvider.update!("grown", {} as never, {
    ...inputs,
    endpointName: "grown",
  });
  expect(grown.outs).toMatchObject({ instanceCount: 6, source: "endpoint" });
});

test("a first deployment (no endpoint yet) or a variant not there starts at the configured count", async () => {
  const first = await capacityProvider.create({ ...inputs, endpointName: "new-endpoint" });
  expect(first.outs).toMatchObject({ instanceCount: 2, source: "initial" });
  const other = await capacityProvider.create({ ...inputs, endpointName: "other" });
  expect(other.outs).toMatchObject({ instanceCount: 2, source: "initial" });
});

test("a read the credentials may not do fails before any configuration changes, naming the cause", async () => {
  await expect(capacityProvider.create({ ...inputs, endpointName: "locked" })).rejects.toThrow(
    "SageMakerCapacity: reading the instance count of endpoint locked in eu-west-1 failed " +
      "(AccessDeniedException: User: arn:aws:iam::123456789012:user/ci is not authorized to perform: " +
      "sagemaker:DescribeEndpoint); nothing was changed. The deploying credentials need " +
      "sagemaker:DescribeEndpoint on it",
  );
});

test("diff: only what makes a new configuration reads again; the count autoscaling moves is no diff", async () => {
  const outs = { ...inputs, instanceCount: 5, source: "endpoint" as const };
  expect(await capacityProvider.diff!("iris", outs, inputs)).toEqual({
    changes: false,
    replaces: [],
    deleteBeforeReplace: false,
  });
  for (const change of [{ rollKey: "image-b" }, { maxInstances: 8 }, { initialCount: 3 }]) {
    expect((await capacityProvider.diff!("iris", outs, { ...inputs, ...change })).changes).toBe(
      true,
    );
  }
});
