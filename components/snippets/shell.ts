/** Quotes a string for POSIX shells: the result is one word, whatever it contains. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A Python string literal holding `s` (JSON string escapes are valid in Python). */
export function pythonString(s: string): string {
  return JSON.stringify(s);
}

/**
 * Runs `command` in a subshell with the AWS credential chain's current credentials exported
 * (AWS_PROFILE, SSO, instance roles...; AWS CLI v2.9+), so they never stay in the caller's shell.
 * Without credentials the export fails and `command` does not run.
 */
export function awsCredentialsFromChain(command: string): string {
  return `(AWS_CREDENTIALS="$(aws configure export-credentials --format env)" && eval "$AWS_CREDENTIALS" && ${command})`;
}
