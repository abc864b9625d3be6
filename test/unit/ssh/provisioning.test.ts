import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { loadProfile, profileNames, PROFILES_DIR } from "../../../config/provisioningProfile";
import {
  DEFAULT_LAYOUT,
  provisionOutcome,
  renderProvisioning,
} from "../../../providers/remote/provisionScript";
import { repoRoot, tempDir } from "../../support/env";

const defaultProfile = loadProfile("default");
const sparkflows = loadProfile("sparkflows-compat");

/** The lines of a heredoc-written file in the script. */
function fileIn(script: string, file: string): string[] {
  const m = new RegExp(
    `cat > ${file.replace(/[/.]/g, "\\$&")} <<'MODEL_SERVING_EOF'\\n([\\s\\S]*?)\\nMODEL_SERVING_EOF`,
  ).exec(script);
  if (!m) {
    throw new Error(`no heredoc for ${file}`);
  }
  return m[1].split("\n");
}

describe("provisioning profiles (provisioning/profiles/*.yaml)", () => {
  test("the shipped profiles", () => {
    expect(profileNames()).toEqual(["default", "sparkflows-compat"]);
  });

  test("default pins what the project pins (python/requirements.txt) and its full constraint set", () => {
    const projectPins = fs
      .readFileSync(path.join(repoRoot, "python", "requirements.txt"), "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "" && !l.startsWith("#"));
    expect(defaultProfile.pip.requirements).toEqual(projectPins);
    expect(defaultProfile.pip.constraints).toBe(
      fs.readFileSync(path.join(repoRoot, "python", "constraints.txt"), "utf8"),
    );
    expect(defaultProfile.python).toEqual({ executable: "python3", minVersion: "3.11" });
  });

  test("sparkflows-compat is the admin guide's list", () => {
    expect(sparkflows.pip.requirements).toEqual([
      "pyspark==3.2.1",
      "h2o-pysparkling-3.2==3.36.1.2.post",
      "mlflow==1.30.1",
      "boto3==1.28.50",
      "Flask==2.2.4",
      "click==8.1.3",
      "tornado==6.2",
      "pylint==2.5.3",
      "numpy==1.21.6",
    ]);
    expect(sparkflows.apt).toEqual(
      expect.arrayContaining(["openjdk-8-jdk-headless", "python3.7", "python3.7-venv"]),
    );
    expect(sparkflows.python).toEqual({ executable: "python3.7", minVersion: "3.7", pip: "24.0" });
    expect(sparkflows.os).toEqual(["ubuntu:18.04"]);
  });
});

describe("renderProvisioning", () => {
  const rendered = renderProvisioning({ profile: defaultProfile, layout: DEFAULT_LAYOUT });

  test("both profiles render to scripts sh can parse", () => {
    for (const profile of [defaultProfile, sparkflows]) {
      for (const postgresql of [false, true]) {
        const { script } = renderProvisioning({ profile, layout: DEFAULT_LAYOUT, postgresql });
        expect(() => execFileSync("sh", ["-n"], { input: script })).not.toThrow();
      }
    }
  });

  test("the hash is the script's own and is recorded; the fast path checks it first", () => {
    const { script, hash } = rendered;
    expect(
      crypto.createHash("sha256").update(script.replace(hash, "@@PROFILE_HASH@@")).digest("hex"),
    ).toBe(hash);
    const lines = script.split("\n");
    expect(lines.slice(2, 8)).toEqual([
      "set -eu",
      `HASH=${hash}`,
      `if [ "$(cat /opt/model-serving/provisioned.sha256 2>/dev/null || true)" = "$HASH" ] && [ -x /opt/model-serving/venv/bin/python ]; then`,
      '  echo "provision: up to date $HASH"',
      "  exit 0",
      "fi",
    ]);
    // The stamp is written last, after every install step.
    expect(lines.slice(-3)).toEqual([
      'echo "$HASH" > /opt/model-serving/provisioned.sha256',
      'echo "provision: done $HASH"',
      "",
    ]);
    expect(lines.indexOf(lines.at(-3) as string)).toBeGreaterThan(
      lines.findIndex((l) => l.includes("pip install --quiet --requirement")),
    );
  });

  test("default: OS gate, apt packages, service user, venv as that user, pins and constraints", () => {
    const { script } = rendered;
    expect(script).toContain(
      `  debian:12|debian:13|ubuntu:24.04) ;;\n  *) echo "provision: profile default supports debian:12, debian:13, ubuntu:24.04; this host is $ID:$VERSION_ID" >&2; exit 3 ;;`,
    );
    expect(script).toContain("for p in python3 python3-venv ca-certificates procps curl; do");
    expect(script).toContain(
      "useradd --system --user-group --home-dir /opt/model-serving --shell /usr/sbin/nologin mlflow",
    );
    expect(script).toContain(
      "install -d -m 0750 -o mlflow -g mlflow /var/lib/model-serving/mlflow",
    );
    expect(script).toContain(
      "python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'",
    );
    expect(script).toContain(
      "[ -x /opt/model-serving/venv/bin/python ] || runuser -u mlflow -- python3 -m venv /opt/model-serving/venv",
    );
    expect(fileIn(script, "/opt/model-serving/requirements.txt")).toEqual([
      "mlflow[auth]==3.17.2",
      "scikit-learn==1.9.1",
    ]);
    expect(fileIn(script, "/opt/model-serving/constraints.txt")).toContain("mlflow==3.17.2");
    expect(script).toContain(
      "runuser -u mlflow -- /opt/model-serving/venv/bin/python -m pip install --quiet --requirement /opt/model-serving/requirements.txt --constraint /opt/model-serving/constraints.txt",
    );
    expect(script).not.toContain("postgresql");
  });

  test("sparkflows-compat: Python 3.7 venv, pip pinned first, JAVA_HOME for the server, no constraints file", () => {
    const { script } = renderProvisioning({ profile: sparkflows, layout: DEFAULT_LAYOUT });
    expect(script).toContain("  ubuntu:18.04) ;;");
    expect(script).toContain(
      "for p in openjdk-8-jdk-headless python3.7 python3.7-venv ca-certificates procps curl; do",
    );
    expect(script).toContain(
      "python3.7 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 7) else 1)'",
    );
    expect(script).toContain("runuser -u mlflow -- python3.7 -m venv /opt/model-serving/venv");
    expect(script).toContain(
      "runuser -u mlflow -- /opt/model-serving/venv/bin/python -m pip install --quiet pip==24.0\n",
    );
    expect(fileIn(script, "/opt/model-serving/requirements.txt")).toEqual(
      sparkflows.pip.requirements,
    );
    expect(fileIn(script, "/opt/model-serving/profile.env")).toEqual([
      "JAVA_HOME=/usr/lib/jvm/java-8-openjdk-amd64",
    ]);
    expect(script).not.toContain("constraints.txt");
  });

  test("extra packages and PostgreSQL's are added once, after the profile's", () => {
    const { script } = renderProvisioning({
      profile: defaultProfile,
      layout: DEFAULT_LAYOUT,
      postgresql: true,
      extraApt: ["jq", "curl"],
      extraPip: ["boto3==1.40.0"],
    });
    expect(script).toContain(
      "for p in python3 python3-venv ca-certificates procps curl postgresql jq; do",
    );
    expect(fileIn(script, "/opt/model-serving/requirements.txt")).toEqual([
      "mlflow[auth]==3.17.2",
      "scikit-learn==1.9.1",
      "psycopg2-binary==2.9.10",
      "boto3==1.40.0",
    ]);
  });

  test("any change re-runs it (another hash); the same inputs give the same hash", () => {
    const base = { profile: defaultProfile, layout: DEFAULT_LAYOUT };
    const hashes = [
      renderProvisioning(base).hash,
      renderProvisioning({ ...base, extraPip: ["boto3==1.40.0"] }).hash,
      renderProvisioning({ ...base, extraApt: ["jq"] }).hash,
      renderProvisioning({ ...base, postgresql: true }).hash,
      renderProvisioning({ ...base, layout: { ...DEFAULT_LAYOUT, serviceUser: "ml" } }).hash,
      renderProvisioning({
        ...base,
        profile: { ...defaultProfile, pip: { requirements: ["mlflow==3.17.1"] } },
      }).hash,
    ];
    expect(new Set(hashes).size).toBe(hashes.length);
    expect(renderProvisioning(base).hash).toBe(rendered.hash);
  });

  test("PostgreSQL with a profile that has none is refused", () => {
    const withoutPg = { ...defaultProfile, postgresql: undefined };
    expect(() =>
      renderProvisioning({ profile: withoutPg, layout: DEFAULT_LAYOUT, postgresql: true }),
    ).toThrow("provisioning profile default has no postgresql packages");
  });

  test("provisionOutcome reads the script's last line", () => {
    const h = "a".repeat(64);
    expect(provisionOutcome(`x\nprovision: done ${h}\n`)).toEqual({ changed: true, hash: h });
    expect(provisionOutcome(`provision: up to date ${h}\n`)).toEqual({ changed: false, hash: h });
    expect(provisionOutcome("provision: done abc")).toBeUndefined();
  });
});

describe("loadProfile errors name the file, the key and the value", () => {
  const dir = tempDir("profiles");
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, body: object) =>
    fs.writeFileSync(path.join(dir, `${name}.yaml`), JSON.stringify(body));
  const valid = {
    name: "p",
    description: "d",
    os: ["debian:12"],
    python: { executable: "python3", minVersion: "3.11" },
    apt: ["python3"],
    pip: { requirements: ["mlflow==3.17.2"] },
  };

  test.each([
    [
      { apt: ["Python3 venv"] },
      `apt[0]: must be a Debian package name (lowercase letters, digits, + - .) (got "Python3 venv")`,
    ],
    [
      { pip: { requirements: ["mlflow; rm -rf /"] } },
      `pip.requirements[0]: must be a pip requirement like name==1.2.3 or name[extra]>=1 (no URLs, options or markers) (got "mlflow; rm -rf /")`,
    ],
    [
      { os: ["bookworm"] },
      `os[0]: must be ID:VERSION_ID as in /etc/os-release, e.g. debian:12 (got "bookworm")`,
    ],
    [
      { colour: "red" },
      "colour: unknown key; expected one of name, description, os, python, apt, pip, env, postgresql",
    ],
  ])("%j", (change, message) => {
    write("p", { ...valid, ...change });
    expect(() => loadProfile("p", dir)).toThrow(`${path.join(dir, "p.yaml")}: ${message}`);
  });

  test("the file name is the profile name; an unknown profile lists the known ones", () => {
    write("p", valid);
    write("q", valid);
    expect(() => loadProfile("q", dir)).toThrow(
      `${path.join(dir, "q.yaml")}: name: must be the file's name "q" (got "p")`,
    );
    expect(() => loadProfile("nope", dir)).toThrow(
      'provisioning profile "nope" does not exist; expected one of p, q',
    );
    expect(profileNames(PROFILES_DIR)).toContain("default");
  });
});
