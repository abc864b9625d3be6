// Suites: pure/mocked unit tests, integration tests against real MLflow servers on loopback, engine
// end-to-end tests that drive the real Pulumi CLI through the Automation API, and the fault,
// bad-input and secrets suites (also on the real engine).
const common = {
  preset: "ts-jest",
  testEnvironment: "node",
};

module.exports = {
  testSequencer: "<rootDir>/test/support/replayLastSequencer.js",
  projects: [
    { ...common, displayName: "unit", testMatch: ["<rootDir>/test/unit/**/*.test.ts"] },
    {
      ...common,
      displayName: "integration",
      testMatch: ["<rootDir>/test/integration/**/*.test.ts"],
    },
    { ...common, displayName: "engine", testMatch: ["<rootDir>/test/engine/**/*.test.ts"] },
    { ...common, displayName: "faults", testMatch: ["<rootDir>/test/faults/**/*.test.ts"] },
    // Recorded resource inputs replayed on real engines (a private Docker engine: scripts/dockerd.sh).
    { ...common, displayName: "replay", testMatch: ["<rootDir>/test/replay/**/*.test.ts"] },
  ],
};
