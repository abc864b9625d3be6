import { mlflowPasswordProblem } from "../../config/mlflowPassword";
import { basicAuthIni } from "../../providers/mlflowServerCore";

// The MLflow password rules (MLflow 3.17: _validate_password, _validate_bootstrap_admin_password, and
// what its configparser-read ini file cannot carry), every message verbatim and none echoing the value.
describe("mlflowPasswordProblem", () => {
  const table: [string, unknown, string][] = [
    ["not a string", 123456789012, "model-serving:mlflowPassword: must be a string (got number)"],
    ["null", null, "model-serving:mlflowPassword: must be a string (got null)"],
    ["empty", "", "model-serving:mlflowPassword: must not be empty"],
    [
      "too short (MLflow's minimum is 12)",
      "short-pw-11",
      "model-serving:mlflowPassword: must be at least 12 characters, as MLflow requires (got 11)",
    ],
    [
      "too short in code points, not UTF-16 units",
      "пароль-пар😀",
      "model-serving:mlflowPassword: must be at least 12 characters, as MLflow requires (got 11)",
    ],
    [
      "a line break",
      "first-line-ok\nsecond",
      "model-serving:mlflowPassword: must not contain a line break (it would end the value in MLflow's ini file)",
    ],
    [
      "a carriage return",
      "first-line-ok\rsecond",
      "model-serving:mlflowPassword: must not contain a line break (it would end the value in MLflow's ini file)",
    ],
    [
      "a tab",
      "tabbed\tpassword-1",
      "model-serving:mlflowPassword: must not contain control characters (tab, NUL, escape, …)",
    ],
    [
      "NUL",
      "nul\u0000password-12",
      "model-serving:mlflowPassword: must not contain control characters (tab, NUL, escape, …)",
    ],
    [
      "a leading space",
      " leading-space-pw",
      "model-serving:mlflowPassword: must not start or end with a space (MLflow's ini file would strip it, giving the admin another password)",
    ],
    [
      "a trailing no-break space",
      "trailing-space-pw\u00a0",
      "model-serving:mlflowPassword: must not start or end with a space (MLflow's ini file would strip it, giving the admin another password)",
    ],
    [
      "MLflow's old default",
      "password1234",
      "model-serving:mlflowPassword: is the default password of older MLflow versions, which MLflow refuses",
    ],
  ];
  it.each(table)("refuses %s", (_case, password, message) => {
    expect(mlflowPasswordProblem(password)).toBe(message);
    if (typeof password === "string" && password.length > 3) {
      expect(message).not.toContain(password);
    }
  });

  it.each([
    "exactly-12ch",
    "inner spaces are fine",
    "100%-sure-%(name)s-%%",
    "semi;colon#hash=equals:colon",
    "unicode-пароль-密码",
  ])("accepts %j", (password) => {
    expect(mlflowPasswordProblem(password)).toBeUndefined();
  });
});

describe("basicAuthIni", () => {
  it("escapes % for configparser's interpolation in every value", () => {
    expect(basicAuthIni("/data/100%", { username: "ad%min", password: "100%-sure-%(name)s" })).toBe(
      [
        "[mlflow]",
        "default_permission = READ",
        "database_uri = sqlite:////data/100%%/basic_auth.db",
        "admin_username = ad%%min",
        "admin_password = 100%%-sure-%%(name)s",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        "",
      ].join("\n"),
    );
  });
});
