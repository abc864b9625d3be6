import * as crypto from "crypto";
import { shQuote } from "../ssh/quote";

/**
 * A provisioning profile (provisioning/profiles/<name>.yaml, validated by config/provisioningProfile.ts)
 * rendered into one idempotent POSIX shell script that runs as root on the MLflow host (through
 * `sudo -n` for a sudo user). The script:
 *   1. exits at once when the host's stamp (<baseDir>/provisioned.sha256) holds this script's hash and
 *      the venv's interpreter exists: the fast path, nothing is touched;
 *   2. refuses an OS the profile does not list (/etc/os-release ID:VERSION_ID);
 *   3. apt-installs the missing packages only (profile + extra + PostgreSQL's when asked);
 *   4. creates the service user (system user, no login shell) and the base/data directories it owns;
 *   5. creates the venv as the service user with the profile's interpreter (version-checked) and
 *      pip-installs the pins (constraints file too) as that user;
 *   6. writes the stamp last, so a failed run is re-run in full next time.
 * The hash covers the whole rendered script, so any change of profile, extras or layout re-runs it.
 * No secret is part of provisioning.
 */
export interface ProvisioningProfile {
  name: string;
  description: string;
  /** `ID:VERSION_ID` values from /etc/os-release, e.g. `debian:12`. */
  os: string[];
  python: { executable: string; minVersion: string; pip?: string };
  apt: string[];
  pip: { requirements: string[]; constraints?: string };
  /** Variables for the MLflow server's environment (written to <baseDir>/profile.env). */
  env?: Record<string, string>;
  postgresql?: { apt: string[]; pip: string[] };
}

/** Where things live on the host. */
export interface HostLayout {
  serviceUser: string;
  /** The venv and provisioning records: <baseDir>/venv, <baseDir>/provisioned.sha256. */
  baseDir: string;
  /** MLflow's data (backend store, artifacts), kept by destroy. */
  dataDir: string;
}

export interface ProvisionArgs {
  profile: ProvisioningProfile;
  layout: HostLayout;
  extraApt?: string[];
  extraPip?: string[];
  /** Install the profile's PostgreSQL packages (a PostgreSQL backend store on this host). */
  postgresql?: boolean;
  /** Install the profile's PostgreSQL client (pip) packages only (an existing database by DSN). */
  postgresqlClient?: boolean;
}

export interface RenderedProvisioning {
  script: string;
  /** sha256 (hex) of the script; what the host records. */
  hash: string;
}

export const DEFAULT_LAYOUT: HostLayout = {
  serviceUser: "mlflow",
  baseDir: "/opt/model-serving",
  dataDir: "/var/lib/model-serving/mlflow",
};

/** What the script prints last: `provision: up to date <hash>` or `provision: done <hash>`. */
export function provisionOutcome(stdout: string): { changed: boolean; hash: string } | undefined {
  const m = /^provision: (up to date|done) ([0-9a-f]{64})$/m.exec(stdout);
  return m ? { changed: m[1] === "done", hash: m[2] } : undefined;
}

export function venvDir(layout: HostLayout): string {
  return `${layout.baseDir}/venv`;
}

const HASH_PLACEHOLDER = "@@PROFILE_HASH@@";

export function renderProvisioning(args: ProvisionArgs): RenderedProvisioning {
  const { profile, layout } = args;
  const pgServer = args.postgresql ? profile.postgresql : undefined;
  const pg =
    pgServer ??
    (args.postgresqlClient && profile.postgresql ? { ...profile.postgresql, apt: [] } : undefined);
  if ((args.postgresql || args.postgresqlClient) && !pg) {
    throw new Error(`provisioning profile ${profile.name} has no postgresql packages`);
  }
  const apt = unique([...profile.apt, ...(pg?.apt ?? []), ...(args.extraApt ?? [])]);
  const requirements = unique([
    ...profile.pip.requirements,
    ...(pg?.pip ?? []),
    ...(args.extraPip ?? []),
  ]);
  const venv = venvDir(layout);
  const py = `${venv}/bin/python`;
  const user = shQuote(layout.serviceUser);
  const base = shQuote(layout.baseDir);
  const stamp = shQuote(`${layout.baseDir}/provisioned.sha256`);
  const asUser = `runuser -u ${user} --`;
  const [major, minor] = profile.python.minVersion.split(".").map(Number);
  const pipArgs = ["--requirement", `${layout.baseDir}/requirements.txt`];
  if (profile.pip.constraints !== undefined) {
    pipArgs.push("--constraint", `${layout.baseDir}/constraints.txt`);
  }
  const lines = [
    "#!/bin/sh",
    `# model-serving provisioning, profile ${profile.name}: ${profile.description}`,
    "set -eu",
    `HASH=${HASH_PLACEHOLDER}`,
    `if [ "$(cat ${stamp} 2>/dev/null || true)" = "$HASH" ] && [ -x ${shQuote(py)} ]; then`,
    '  echo "provision: up to date $HASH"',
    "  exit 0",
    "fi",
    "",
    "# The OS this profile's runtimes come from.",
    ". /etc/os-release",
    'case "$ID:$VERSION_ID" in',
    `  ${profile.os.map(shQuote).join("|")}) ;;`,
    `  *) echo "provision: profile ${profile.name} supports ${profile.os.join(", ")}; this host is $ID:$VERSION_ID" >&2; exit 3 ;;`,
    "esac",
    "",
    "# Debian packages: only the missing ones, so a provisioned host needs no apt at all.",
    "missing=''",
    `for p in ${apt.map(shQuote).join(" ")}; do`,
    `  dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"`,
    "done",
    'if [ -n "$missing" ]; then',
    '  echo "provision: apt-get install$missing"',
    "  export DEBIAN_FRONTEND=noninteractive",
    "  apt-get update -qq",
    "  # shellcheck disable=SC2086",
    "  apt-get install -y -qq --no-install-recommends $missing >/dev/null",
    "fi",
    "",
    "# The service user owns the venv and MLflow's data; it cannot log in.",
    `if ! id -u ${user} >/dev/null 2>&1; then`,
    `  useradd --system --user-group --home-dir ${base} --shell /usr/sbin/nologin ${user}`,
    "fi",
    `install -d -m 0755 -o ${user} -g ${user} ${base}`,
    `install -d -m 0750 -o ${user} -g ${user} ${shQuote(layout.dataDir)}`,
    "",
    "# The venv, from the profile's interpreter.",
    `${shQuote(profile.python.executable)} -c 'import sys; sys.exit(0 if sys.version_info >= (${major}, ${minor}) else 1)' || {`,
    `  echo "provision: ${profile.python.executable} is older than ${profile.python.minVersion} (profile ${profile.name})" >&2`,
    "  exit 3",
    "}",
    `[ -x ${shQuote(py)} ] || ${asUser} ${shQuote(profile.python.executable)} -m venv ${shQuote(venv)}`,
    heredoc(`${layout.baseDir}/requirements.txt`, requirements.join("\n")),
    ...(profile.pip.constraints !== undefined
      ? [heredoc(`${layout.baseDir}/constraints.txt`, profile.pip.constraints.trimEnd())]
      : []),
    heredoc(
      `${layout.baseDir}/profile.env`,
      Object.entries(profile.env ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join("\n"),
    ),
    `chown ${user}:${user} ${base}/requirements.txt ${base}/profile.env${profile.pip.constraints !== undefined ? ` ${base}/constraints.txt` : ""}`,
    ...(profile.python.pip !== undefined
      ? [`${asUser} ${shQuote(py)} -m pip install --quiet ${shQuote(`pip==${profile.python.pip}`)}`]
      : []),
    `echo "provision: pip install (${requirements.length} requirements)"`,
    `${asUser} ${shQuote(py)} -m pip install --quiet ${pipArgs.map(shQuote).join(" ")}`,
    "",
    `echo "$HASH" > ${stamp}`,
    'echo "provision: done $HASH"',
    "",
  ];
  const body = lines.join("\n");
  const hash = crypto.createHash("sha256").update(body).digest("hex");
  return { script: body.replace(HASH_PLACEHOLDER, hash), hash };
}

/** A file written by the script: a quoted heredoc, so nothing inside is expanded. */
function heredoc(file: string, content: string): string {
  const marker = "MODEL_SERVING_EOF";
  if (content.split("\n").includes(marker)) {
    throw new Error(`renderProvisioning: ${file} contains the line ${marker}`);
  }
  return `cat > ${shQuote(file)} <<'${marker}'\n${content}\n${marker}`;
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
