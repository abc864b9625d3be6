import * as fs from "fs";
import * as path from "path";
import { ResolvedConnection } from "./connection";

/**
 * MLflow basic-auth credentials for a server started here, as MLflow's own credentials file
 * (`~/.mlflow/credentials`, which `mlflow.utils.credentials` reads when MLFLOW_TRACKING_USERNAME and
 * MLFLOW_TRACKING_PASSWORD are unset) in a home directory of the server's own: the server runs with
 * HOME set to it, so the password is in no process environment (where /proc/<pid>/environ shows it
 * and every child inherits it). The directory is 0700 and the file 0600.
 *
 * A token has no such file in MLflow: it stays in MLFLOW_TRACKING_TOKEN.
 */

/** The file's text: an INI read by Python's configparser, so `%` is doubled (its interpolation). */
export function credentialsFileText(username: string, password: string): string {
  for (const [name, value] of [
    ["username", username],
    ["password", password],
  ] as const) {
    // configparser strips values and ends them at a line break: such a value cannot round-trip.
    if (/[\r\n]/.test(value) || value !== value.trim()) {
      throw new Error(
        `the MLflow ${name} cannot go into MLflow's credentials file: it has a line break or ` +
          "leading/trailing whitespace",
      );
    }
  }
  const escape = (v: string) => v.replace(/%/g, "%%");
  return [
    "[mlflow]",
    `mlflow_tracking_username = ${escape(username)}`,
    `mlflow_tracking_password = ${escape(password)}`,
    "",
  ].join("\n");
}

/** Writes `<home>/.mlflow/credentials` (0600, rewritten 0600 when it existed) under a 0700 home. */
export function writeCredentialsHome(home: string, username: string, password: string): void {
  const text = credentialsFileText(username, password);
  const dir = path.join(home, ".mlflow");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(home, 0o700);
  fs.chmodSync(dir, 0o700);
  const file = path.join(dir, "credentials");
  fs.writeFileSync(file, text, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

/**
 * The MLflow variables a server started here gets for `conn`: the tracking URI, and for basic auth
 * HOME=`home` after writing the credentials file there; for a token, MLFLOW_TRACKING_TOKEN.
 */
export function serverTrackingEnv(conn: ResolvedConnection, home: string): Record<string, string> {
  const env: Record<string, string> = { MLFLOW_TRACKING_URI: conn.baseUrl };
  if (conn.auth.kind === "basic") {
    writeCredentialsHome(home, conn.auth.username, conn.auth.password);
    env.HOME = home;
  } else if (conn.auth.kind === "token") {
    env.MLFLOW_TRACKING_TOKEN = conn.auth.token;
  }
  return env;
}
