/**
 * POSIX shell quoting for commands sent over SSH. The remote side runs the command through the user's
 * login shell (`sh -c`), so every argument is single-quoted; a single quote inside becomes `'\''`.
 * Nothing here escapes secrets: secrets never go on a command line (they go on stdin or in 0600 files).
 */

/** One argument, quoted for `sh`. Plain words (letters, digits and `@%+=:,./_-`) stay as they are. */
export function shQuote(arg: string): string {
  if (arg === "") {
    return "''";
  }
  if (/^[A-Za-z0-9@%+=:,./_-]+$/.test(arg)) {
    return arg;
  }
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** An argv, quoted and joined into one `sh` command line. */
export function shJoin(argv: readonly string[]): string {
  if (argv.length === 0) {
    throw new Error("shJoin: empty command");
  }
  return argv.map(shQuote).join(" ");
}

/** A valid POSIX environment variable name (what `env NAME=value` accepts without surprises). */
export function isEnvName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}
