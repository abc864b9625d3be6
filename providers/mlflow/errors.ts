/**
 * A failed MLflow REST call. Carries MLflow's `error_code` (e.g. RESOURCE_DOES_NOT_EXIST), the HTTP status
 * (undefined when the server never answered) and the request, never its headers or credentials.
 */
export class MlflowError extends Error {
  constructor(
    message: string,
    readonly errorCode: string,
    readonly status: number | undefined,
    readonly method: string,
    readonly path: string,
  ) {
    super(message);
    // Set again: Pulumi's closure serializer turns this class into a function that calls
    // `Error.call(this, message)`, which does not set `message`; without this line every MLflow error
    // inside a dynamic provider reached the engine as "error: undefined".
    this.message = message;
    this.name = "MlflowError";
  }
}

/** True when `err` is an MlflowError with the given MLflow error code. */
export function hasErrorCode(err: unknown, code: string): boolean {
  return err instanceof MlflowError && err.errorCode === code;
}

/** True when `err` means the object is gone (MLflow's RESOURCE_DOES_NOT_EXIST or a plain 404). */
export function isNotFound(err: unknown): boolean {
  return (
    err instanceof MlflowError &&
    (err.errorCode === "RESOURCE_DOES_NOT_EXIST" || err.status === 404)
  );
}
