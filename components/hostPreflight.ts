import * as pulumi from "@pulumi/pulumi";
import type { SshConnection } from "../providers/ssh/connection";
import { shQuote } from "../providers/ssh/quote";

/**
 * The MLflow host's preflight: a one-shot `@pulumi/command` `remote.Command` run before provisioning,
 * so a host that cannot work fails early with every reason at once, before anything is installed:
 *   - the OS is Linux and one the profile lists (/etc/os-release ID:VERSION_ID);
 *   - the SSH user is root or has passwordless sudo (`sudo -n true`);
 *   - Python: the installed interpreter is at least the profile's minVersion, or, not installed yet,
 *     the version apt would install (`apt-cache policy`) is; with no package lists yet the OS pin stands
 *     for it (the profile's OS list is the one whose python3 is new enough);
 *   - MLflow's port is free, or held by the service user (the server of an earlier `up`). Model server
 *     ports are not checked: deploy mode remote takes the first free one from portRangeStart.
 * It runs on create and again only when its script changes (another profile, port or service user).
 */
export interface PreflightSpec {
  profile: { name: string; os: string[]; python: { executable: string; minVersion: string } };
  mlflowPort: number;
  serviceUser: string;
}

/** The preflight's script (POSIX sh; its stdout's last line starts `preflight: ok`). */
export function preflightScript(spec: PreflightSpec): string {
  const { profile } = spec;
  const [major, minor] = profile.python.minVersion.split(".").map(Number);
  const py = shQuote(profile.python.executable);
  const pyName = profile.python.executable.split("/").pop() as string;
  return [
    "#!/bin/sh",
    `# model-serving preflight of the MLflow host, profile ${profile.name}`,
    "set -u",
    "fail=0",
    'problem() { echo "preflight: $*" >&2; fail=1; }',
    "",
    'if [ "$(uname -s)" != Linux ]; then problem "the host runs $(uname -s), not Linux"; fi',
    "ID=unknown; VERSION_ID=unknown",
    "if [ -r /etc/os-release ]; then . /etc/os-release; fi",
    'case "$ID:$VERSION_ID" in',
    `  ${profile.os.map(shQuote).join("|")}) ;;`,
    `  *) problem "profile ${profile.name} supports ${profile.os.join(", ")}; this host is $ID:$VERSION_ID" ;;`,
    "esac",
    "",
    'me=$(id -un 2>/dev/null || echo "uid $(id -u)")',
    'if [ "$(id -u)" = 0 ]; then',
    "  how=root",
    "elif ! command -v sudo >/dev/null 2>&1; then",
    '  problem "user $me is not root and sudo is not installed; log in as root or give $me passwordless sudo"',
    "elif sudo -n true 2>/dev/null; then",
    '  how="$me with passwordless sudo"',
    "else",
    "  problem \"user $me is not root and has no passwordless sudo (sudo -n true failed); add '$me ALL=(ALL) NOPASSWD:ALL' to /etc/sudoers.d/$me\"",
    "fi",
    "",
    `if command -v ${py} >/dev/null 2>&1; then`,
    `  pyv=$(${py} -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')`,
    `  ${py} -c 'import sys; sys.exit(0 if sys.version_info >= (${major}, ${minor}) else 1)' \\`,
    `    || problem "${pyName} is $pyv; profile ${profile.name} needs ${profile.python.minVersion} or newer"`,
    "else",
    `  cand=$(apt-cache policy ${shQuote(pyName)} 2>/dev/null | sed -n 's/^ *Candidate: *//p')`,
    '  case "$cand" in',
    `    ''|'(none)') pyv="not installed yet ($ID:$VERSION_ID provides ${profile.python.minVersion}+)" ;;`,
    "    *)",
    '      pyv="$cand from apt"',
    "      cmaj=${cand%%.*}; crest=${cand#*.}; cmin=${crest%%[!0-9]*}",
    `      if [ "$cmaj" -lt ${major} ] || { [ "$cmaj" -eq ${major} ] && [ "$cmin" -lt ${minor} ]; }; then`,
    `        problem "apt would install ${pyName} $cand; profile ${profile.name} needs ${profile.python.minVersion} or newer"`,
    "      fi ;;",
    "  esac",
    "fi",
    "",
    `port=${spec.mlflowPort}`,
    `svc=$(id -u ${shQuote(spec.serviceUser)} 2>/dev/null || echo none)`,
    "holders=''",
    "for f in /proc/net/tcp /proc/net/tcp6; do",
    '  [ -r "$f" ] || continue',
    "  while read -r _ local _ st _ _ _ uid _; do",
    '    [ "$st" = 0A ] || continue',
    '    [ "$((0x${local##*:}))" = "$port" ] && holders="$holders $uid"',
    '  done < "$f"',
    "done",
    "portv=free",
    "for uid in $holders; do",
    '  if [ "$uid" = "$svc" ]; then',
    `    portv="held by ${spec.serviceUser} (the MLflow server of an earlier up)"`,
    "  else",
    '    who=$(getent passwd "$uid" | cut -d: -f1)',
    `    problem "port $port (MLflow, mlflow.port) is in use on the host by \${who:-uid $uid}; stop what listens there or choose another mlflow.port"`,
    "    break",
    "  fi",
    "done",
    "",
    'if [ "$fail" != 0 ]; then exit 1; fi',
    'echo "preflight: ok: $ID:$VERSION_ID, $how, python $pyv, port $port $portv"',
  ].join("\n");
}

/** remote.Command's connection, from ours: the host key must be the public key line (the command
 * provider pins no fingerprint). */
function commandConnection(conn: SshConnection) {
  return {
    host: conn.host,
    port: conn.port,
    user: conn.user,
    privateKey: conn.privateKey,
    ...(conn.passphrase === undefined ? {} : { privateKeyPassword: conn.passphrase }),
    hostKey: conn.hostKey.trim().split(/\s+/).slice(0, 2).join(" "),
    dialErrorLimit: 3,
    perDialTimeout: 20,
  };
}

/**
 * Declares the preflight (`${name}-preflight`, a child of `parent`), or undefined when the host key is
 * pinned by fingerprint only, which remote.Command cannot check (a warning says so).
 */
export function hostPreflight(
  name: string,
  connection: pulumi.Output<SshConnection>,
  hostKey: pulumi.Input<string>,
  spec: Omit<PreflightSpec, "mlflowPort"> & { mlflowPort: pulumi.Input<number> },
  parent: pulumi.Resource,
): pulumi.Resource | undefined {
  if (typeof hostKey === "string" && hostKey.trim().startsWith("SHA256:")) {
    pulumi.log.warn(
      "MlflowServer: remote.hostKey is a SHA256 fingerprint; the preflight check (a @pulumi/command remote.Command, which pins only a public key line) is left out: pin the host's public key line to have it",
      parent,
    );
    return undefined;
  }
  const command = require("@pulumi/command") as typeof import("@pulumi/command");
  return new command.remote.Command(
    `${name}-preflight`,
    {
      connection: pulumi.secret(connection.apply(commandConnection)),
      create: pulumi
        .output(spec.mlflowPort)
        .apply((mlflowPort) => preflightScript({ ...spec, mlflowPort })),
      addPreviousOutputInEnv: false,
    },
    { parent, additionalSecretOutputs: ["connection"] },
  );
}
