import tseslint from "typescript-eslint";
import pulumi from "@pulumi/eslint-plugin";

export default tseslint.config(
  {
    ignores: [
      "node_modules/**",
      "bin/**",
      "bench/results/**",
      "jest.config.js",
      "eslint.config.mjs",
      "scripts/*.js",
      "tools/pulumi/dynamic-provider/*.js",
      "bench/register.js",
      "test/support/*.js",
    ],
  },
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@pulumi": pulumi },
    rules: {
      eqeqeq: "error",
      curly: "error",
      "prefer-const": "error",
      "@pulumi/no-output-in-template-literal": "error",
      "@typescript-eslint/no-require-imports": "off",
    },
  },
);
