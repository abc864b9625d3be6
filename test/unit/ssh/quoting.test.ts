import { execFileSync } from "child_process";
import { buildCommand, shJoin, shQuote, withRemoteDeadline } from "../../../providers/ssh";

/** What `sh` makes of a command line: each argument on its own NUL-terminated record. */
function shArgs(line: string): string[] {
  const out = execFileSync("sh", ["-c", `printf '%s\\0' ${line}`], { encoding: "utf8" });
  return out.split("\0").slice(0, -1);
}

describe("shQuote", () => {
  test.each([
    ["plain", "plain"],
    ["/opt/mlflow/bin/mlflow", "/opt/mlflow/bin/mlflow"],
    ["", "''"],
    ["two words", "'two words'"],
    ["it's", `'it'\\''s'`],
    ["$HOME", "'$HOME'"],
    ["a;b", "'a;b'"],
  ])("%j -> %s", (input, quoted) => {
    expect(shQuote(input)).toBe(quoted);
  });

  test("every awkward argument reaches sh unchanged", () => {
    const awkward = [
      "",
      " ",
      "it's",
      "''",
      `"double"`,
      "$(touch /tmp/should-not-exist)",
      "`id`",
      "a\nb",
      "tab\there",
      "back\\slash",
      "*",
      "~",
      "--flag=value with space",
      "ünïcödé",
      "!bang",
    ];
    expect(shArgs(shJoin(awkward))).toEqual(awkward);
  });

  test("an empty argv is refused", () => {
    expect(() => shJoin([])).toThrow("shJoin: empty command");
  });
});

describe("buildCommand", () => {
  test("argv as the SSH user", () => {
    expect(buildCommand("deploy", { argv: ["ls", "-la", "/opt/my dir"] })).toBe(
      "ls -la '/opt/my dir'",
    );
  });

  test("asRoot as root adds nothing; as another user it is sudo -n", () => {
    expect(buildCommand("root", { argv: ["id", "-u"], asRoot: true })).toBe("id -u");
    expect(buildCommand("deploy", { argv: ["id", "-u"], asRoot: true })).toBe("sudo -n -- id -u");
  });

  test("a script as root through sudo goes into sh -c, quoted once", () => {
    expect(buildCommand("deploy", { script: 'echo "$HOME"; id -u', asRoot: true })).toBe(
      `sudo -n -- sh -c 'echo "$HOME"; id -u'`,
    );
  });

  test("asUser uses sudo -n -H -u for root and for sudo users alike", () => {
    const expected = "sudo -n -H -u mlflow -- sh -c 'mlflow --version'";
    expect(buildCommand("root", { argv: ["mlflow", "--version"], asUser: "mlflow" })).toBe(
      expected,
    );
    expect(buildCommand("deploy", { argv: ["mlflow", "--version"], asUser: "mlflow" })).toBe(
      expected,
    );
  });

  test("cwd fails the command when the directory is missing, even for a script", () => {
    const line = buildCommand("root", { script: "pwd; echo after", cwd: "/nonexistent dir" });
    expect(line).toBe("cd '/nonexistent dir' || exit 1\npwd; echo after");
    const run = () => execFileSync("sh", ["-c", line], { encoding: "utf8", stdio: "pipe" });
    expect(run).toThrow();
  });

  test("env is set for the command only, values quoted", () => {
    const line = buildCommand("root", {
      argv: ["sh", "-c", 'printf %s "$GREETING"'],
      env: { GREETING: "hi there; $x" },
    });
    expect(line).toBe(`env 'GREETING=hi there; $x' sh -c 'printf %s "$GREETING"'`);
    expect(execFileSync("sh", ["-c", line], { encoding: "utf8" })).toBe("hi there; $x");
    const script = buildCommand("root", { script: 'printf %s "$A"', env: { A: "1 2" } });
    expect(execFileSync("sh", ["-c", script], { encoding: "utf8" })).toBe("1 2");
  });

  test("bad input is refused with the reason", () => {
    expect(() => buildCommand("root", {})).toThrow(
      "buildCommand: set exactly one of argv and script",
    );
    expect(() => buildCommand("root", { argv: ["a"], script: "b" })).toThrow(
      "buildCommand: set exactly one of argv and script",
    );
    expect(() => buildCommand("root", { argv: ["a"], asRoot: true, asUser: "x" })).toThrow(
      "buildCommand: set at most one of asRoot and asUser",
    );
    expect(() => buildCommand("root", { argv: ["a"], env: { "BAD-NAME": "1" } })).toThrow(
      'buildCommand: invalid environment variable name "BAD-NAME"',
    );
  });
});

describe("withRemoteDeadline", () => {
  test("wraps the command in GNU timeout (TERM, then KILL 5 s later), whole seconds rounded up", () => {
    expect(withRemoteDeadline("sudo -n -- sleep 31", 1500)).toBe(
      "timeout -k 5 2 sh -c 'sudo -n -- sleep 31'",
    );
  });

  test("the wrapped command still gets its stdin and exit code", () => {
    const line = withRemoteDeadline("cat; exit 7", 5000);
    let code = 0;
    let out = "";
    try {
      out = execFileSync("sh", ["-c", line], { input: "in", encoding: "utf8" });
    } catch (err) {
      code = (err as { status: number }).status;
      out = (err as { stdout: string }).stdout;
    }
    expect({ code, out }).toEqual({ code: 7, out: "in" });
  });
});
