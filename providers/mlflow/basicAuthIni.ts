/** MLflow's basic-auth settings file, for a server here or on a remote host. MLflow reads it with
 * Python's configparser, whose interpolation treats `%` as special: every value escapes it (`%%`).
 * MLflow reads `admin_password` only when it creates the admin user (the first start with basic auth
 * on that user store); a later password change goes through MLflow's user API. */
export function basicAuthIniText(
  userStoreFile: string,
  auth: { username: string; password: string },
): string {
  const value = (v: string) => v.replace(/%/g, "%%");
  return [
    "[mlflow]",
    "default_permission = READ",
    `database_uri = ${value(`sqlite:///${userStoreFile}`)}`,
    `admin_username = ${value(auth.username)}`,
    `admin_password = ${value(auth.password)}`,
    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
    "",
  ].join("\n");
}
