import { pickTestHost, requestedTestHost } from "../support/sshHost";

// MODEL_SERVING_TEST_HOST picks the remote suites' test host (test/support/sshHost.ts).
describe("MODEL_SERVING_TEST_HOST", () => {
  test.each([
    [undefined, "auto"],
    ["auto", "auto"],
    ["docker", "docker"],
    ["netns", "netns"],
  ])("%s is %s", (value, kind) => {
    expect(requestedTestHost(value === undefined ? {} : { MODEL_SERVING_TEST_HOST: value })).toBe(
      kind,
    );
  });

  test("anything else is an error naming the variable and the value", () => {
    expect(() => requestedTestHost({ MODEL_SERVING_TEST_HOST: "Docker" })).toThrow(
      'MODEL_SERVING_TEST_HOST must be docker, netns or auto, got "Docker"',
    );
  });
});

describe("the test host kind", () => {
  const ok = () => undefined;
  const noEngine = () => "no Docker engine socket at /x/docker.sock";
  const notRoot = () => "the netns test host needs root (ip netns, mount, unshare)";
  test.each([
    ["auto", ok, ok, { kind: "docker" }],
    [
      "auto",
      noEngine,
      ok,
      { kind: "netns", noDocker: "no Docker engine socket at /x/docker.sock" },
    ],
    [
      "auto",
      noEngine,
      notRoot,
      {
        why: "no Docker engine socket at /x/docker.sock; and no netns fallback: the netns test host needs root (ip netns, mount, unshare)",
      },
    ],
    ["docker", noEngine, ok, { why: "no Docker engine socket at /x/docker.sock" }],
    ["netns", ok, notRoot, { why: "the netns test host needs root (ip netns, mount, unshare)" }],
    ["netns", noEngine, ok, { kind: "netns" }],
  ] as const)("%s, docker %p, netns %p", (requested, docker, netns, expected) => {
    expect(pickTestHost(requested, { docker, netns })).toEqual(expected);
  });
});
