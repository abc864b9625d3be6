/**
 * The MLflow basic-auth password rules, as MLflow 3.17 applies them, checked before anything starts.
 * No imports: config validation and the providers both use it.
 *
 * - MLflow's user store (`mlflow.utils.validation._validate_password`, used by create_user and
 *   update_user) refuses fewer than 12 characters.
 * - The auth app refuses to bootstrap the admin with an empty password or with `password1234`, the
 *   default older MLflow versions shipped (`_validate_bootstrap_admin_password`).
 * - The admin password reaches MLflow through its ini file (`basic_auth.ini`, read by Python's
 *   configparser): a line break ends the value, and leading or trailing whitespace is stripped, so the
 *   admin would silently get another password. Other control characters are refused as well (they
 *   cannot travel through environment variables and HTTP headers intact). `%` is fine: the ini writer
 *   escapes it for configparser's interpolation (providers/mlflowServerCore.ts basicAuthIni).
 *
 * The messages name the setting, never the value.
 */

export const MLFLOW_PASSWORD_KEY = "model-serving:mlflowPassword";
export const MLFLOW_PASSWORD_MIN_LENGTH = 12;
const LEGACY_DEFAULT = "password1234";

/** What is wrong with the password, or undefined when MLflow accepts it. */
export function mlflowPasswordProblem(password: unknown): string | undefined {
  const problem = (what: string) => `${MLFLOW_PASSWORD_KEY}: ${what}`;
  if (typeof password !== "string") {
    return problem(`must be a string (got ${password === null ? "null" : typeof password})`);
  }
  if (password === "") {
    return problem("must not be empty");
  }
  if (/[\r\n]/.test(password)) {
    return problem("must not contain a line break (it would end the value in MLflow's ini file)");
  }
  if (/[\u0000-\u001f\u007f-\u009f]/.test(password)) {
    return problem("must not contain control characters (tab, NUL, escape, …)");
  }
  if (password.trim() !== password) {
    return problem(
      "must not start or end with a space (MLflow's ini file would strip it, giving the admin " +
        "another password)",
    );
  }
  const length = [...password].length;
  if (length < MLFLOW_PASSWORD_MIN_LENGTH) {
    return problem(
      `must be at least ${MLFLOW_PASSWORD_MIN_LENGTH} characters, as MLflow requires ` +
        `(got ${length})`,
    );
  }
  if (password === LEGACY_DEFAULT) {
    return problem("is the default password of older MLflow versions, which MLflow refuses");
  }
  return undefined;
}
