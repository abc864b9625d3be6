import { diffDeployment, RESTART_KEYS, updateDeployment } from "../../providers/deployment/core";
import { DeploymentArgs, DeploymentState } from "../../providers/deployment/types";

// What restarts a model server (providers/deployment/core.ts contract): only what it serves, what runs
// it and its environment. The connection (trackingUri, auth) is bookkeeping once the model is loaded.
const args: DeploymentArgs = {
  mode: "local",
  modelUri: "models:/iris/1",
  trackingUri: "http://127.0.0.1:5000",
  auth: { username: "admin", password: "first-Pa55word" },
  host: "127.0.0.1",
  portRangeStart: 5001,
  mlflowBin: "/venv/bin/mlflow",
  runDir: "/run",
  startTimeoutSeconds: 120,
  passEnv: [],
};
// A process that is not running: a restart would fail, so these tests prove none is attempted.
const state: DeploymentState = {
  ...args,
  pid: 999_999_999,
  pgid: 999_999_999,
  startTicks: "1",
  servedPort: 5001,
  baseUrl: "http://127.0.0.1:5001",
  url: "http://127.0.0.1:5001/invocations",
  logFile: "/run/logs/model-server-127.0.0.1-5001.log",
};

test("restart keys", () => {
  expect(RESTART_KEYS).toEqual(["modelUri", "mlflowBin", "passEnv"]);
});

test.each([
  ["auth", { auth: { username: "admin", password: "second-Pa55word" } }],
  ["trackingUri", { trackingUri: "http://localhost:5000" }],
  ["auth and trackingUri", { auth: { token: "t" }, trackingUri: "http://mlflow.internal:5000" }],
  ["startTimeoutSeconds", { startTimeoutSeconds: 300 }],
])("a change of %s is an in-place update that records it without a restart", async (_k, change) => {
  const news = { ...args, ...change };
  expect(diffDeployment(state, news)).toEqual({
    changes: true,
    replaces: [],
    deleteBeforeReplace: true,
  });
  await expect(updateDeployment(state, news)).resolves.toEqual({ ...state, ...change });
});

test("state from before passEnv existed equals an empty passEnv; order and repeats do not count", async () => {
  const { passEnv: _none, ...legacy } = state;
  expect(_none).toEqual([]);
  expect(diffDeployment(legacy as DeploymentState, args).changes).toBe(false);
  expect(
    diffDeployment({ ...state, passEnv: ["B", "A"] }, { ...args, passEnv: ["A", "B", "A"] })
      .changes,
  ).toBe(false);
  await expect(updateDeployment(legacy as DeploymentState, args)).resolves.toEqual(state);
  expect(diffDeployment(state, { ...args, passEnv: ["HF_TOKEN"] })).toEqual({
    changes: true,
    replaces: [],
    deleteBeforeReplace: true,
  });
});
