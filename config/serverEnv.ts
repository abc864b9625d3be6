/**
 * Environment variable names the providers set on the servers themselves (tracking URI, credentials,
 * the basic-auth ini and Flask key, PATH): config refuses them in `mlflow.passEnv`, and
 * providers/process/env.ts never copies them from the deploying shell. One list for both layers; no
 * imports, so the provider-code package can carry it (scripts/provider-code.js).
 */
export const RESERVED_ENV_NAMES = [
  "PATH",
  "MLFLOW_TRACKING_URI",
  "MLFLOW_TRACKING_USERNAME",
  "MLFLOW_TRACKING_PASSWORD",
  "MLFLOW_TRACKING_TOKEN",
  "MLFLOW_AUTH_CONFIG_PATH",
  "MLFLOW_FLASK_SERVER_SECRET_KEY",
] as const;
