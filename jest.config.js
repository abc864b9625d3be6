// Three suites: pure/mocked unit tests, integration tests against real MLflow servers on loopback, and
// engine end-to-end tests that drive the real Pulumi CLI through the Automation API.
const common = {
  preset: "ts-jest",
  testEnvironment: "node",
};

module.exports = {
  projects: [
    { ...common, displayName: "unit", testMatch: ["<rootDir>/test/unit/**/*.test.ts"] },
    {
      ...common,
      displayName: "integration",
      testMatch: ["<rootDir>/test/integration/**/*.test.ts"],
    },
    { ...common, displayName: "engine", testMatch: ["<rootDir>/test/engine/**/*.test.ts"] },
  ],
};
