/** Quotes a string for POSIX shells: the result is one word, whatever it contains. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A Python string literal holding `s` (JSON string escapes are valid in Python). */
export function pythonString(s: string): string {
  return JSON.stringify(s);
}
