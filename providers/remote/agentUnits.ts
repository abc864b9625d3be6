import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { shJoin, shQuote } from "../ssh/quote";
import { UNIT_NAME as MLFLOW_UNIT_NAME, remotePaths } from "./mlflowServerUnits";
import { HostLayout, venvDir } from "./provisionScript";

/**
 * What the MLOps agent is made of on a remote MLflow host (mode `remote`, deploy mode `agent`), as
 * text (pure, unit-tested): the agent package as it is copied, its config file, a systemd unit and
 * the restart loop used where systemd does not run, and the scripts that install and check it. The
 * API token is in none of them: it reaches the host over SSH stdin into <baseDir>/agent-token (0600,
 * the service user's), which the config names.
 *
 * On the host:
 * - <baseDir>/agent/            the package (model_serving_agent/, requirements.txt), root's, 0644;
 *   <baseDir>/agent.sha256      the package's content hash: an equal hash skips the copy.
 * - <baseDir>/agent.json        the config (no secret); <baseDir>/agent-token the token (0600).
 * - <dataDir>/agent/            state.json and logs/: what destroy keeps, like MLflow's data.
 * - the unit `model-serving-agent.service` (KillMode=process: the backends outlive an agent restart
 *   and are adopted), or <baseDir>/agent-supervise.sh started with setsid as the service user, which
 *   becomes the agent's own supervisor (`python -m model_serving_agent.supervise`, as for the local
 *   agent: restarts with a backoff, a config error not retried).
 */
export interface AgentPackage {
  /** Path relative to the package root -> base64 of the bytes. */
  files: Record<string, string>;
  /** sha256 (hex) over the paths and bytes. */
  hash: string;
}

/** The agent's package from the project's agent/ folder: model_serving_agent/ (no caches) and the
 * pinned requirements.txt. */
export function agentPackage(agentDir: string): AgentPackage {
  const rels: string[] = ["requirements.txt"];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(agentDir, rel)).sort()) {
      const child = path.posix.join(rel, name);
      const stat = fs.statSync(path.join(agentDir, child));
      if (stat.isDirectory()) {
        if (name !== "__pycache__") {
          walk(child);
        }
      } else if (!name.endsWith(".pyc")) {
        rels.push(child);
      }
    }
  };
  walk("model_serving_agent");
  rels.sort();
  const hash = crypto.createHash("sha256");
  const files: Record<string, string> = {};
  for (const rel of rels) {
    const bytes = fs.readFileSync(path.join(agentDir, rel));
    hash.update(`${rel}\0`).update(bytes).update("\0");
    files[rel] = bytes.toString("base64");
  }
  return { files, hash: hash.digest("hex") };
}

/** The packages the agent imports besides the standard library, pinned in agent/requirements.txt;
 * MLflow's own dependency set brings them into the profile's venv (checked, installed if missing). */
export const AGENT_RUNTIME_PACKAGES = ["aiohttp", "pydantic"] as const;

/** `name==version` pins of agent/requirements.txt for the runtime packages. */
export function runtimePins(requirements: string): Record<string, string> {
  const pins: Record<string, string> = {};
  for (const line of requirements.split("\n")) {
    const m = /^\s*([A-Za-z0-9_.-]+)==([^\s#;]+)/.exec(line);
    if (m && (AGENT_RUNTIME_PACKAGES as readonly string[]).includes(m[1].toLowerCase())) {
      pins[m[1].toLowerCase()] = m[2];
    }
  }
  for (const name of AGENT_RUNTIME_PACKAGES) {
    if (pins[name] === undefined) {
      throw new Error(`agent/requirements.txt: no ${name}==<version> pin`);
    }
  }
  return pins;
}

export interface PortRange {
  first: number;
  last: number;
}

export interface RemoteAgentSpec {
  layout: HostLayout;
  /** Interface the API and the fronts bind on the host (mlflow.remote.bindHost). */
  bindHost: string;
  port: number;
  frontPorts: PortRange;
  backendPorts: PortRange;
  /** MLflow as the host reaches it, e.g. http://127.0.0.1:5000. */
  hostTrackingUri: string;
  backendStartTimeoutSeconds: number;
  backendWorkers?: number;
}

export const AGENT_UNIT_NAME = "model-serving-agent";
/** Every process of the agent carries it (the backends inherit it); delete finds them by it. */
export const REMOTE_AGENT_MARKER = "MODEL_SERVING_AGENT_HOME";

export function agentPaths(layout: HostLayout) {
  const data = `${layout.dataDir}/agent`;
  return {
    srcDir: `${layout.baseDir}/agent`,
    srcHash: `${layout.baseDir}/agent.sha256`,
    config: `${layout.baseDir}/agent.json`,
    token: `${layout.baseDir}/agent-token`,
    unitFile: `/etc/systemd/system/${AGENT_UNIT_NAME}.service`,
    supervisor: `${layout.baseDir}/agent-supervise.sh`,
    supervisorPid: `${layout.baseDir}/run/agent-supervisor.pid`,
    agentPid: `${layout.baseDir}/run/agent.pid`,
    log: `${layout.baseDir}/log/agent.stdout.log`,
    dataDir: data,
    stateFile: `${data}/state.json`,
    logDir: `${data}/logs`,
  };
}

/** The agent's config file (agent/model_serving_agent/config.py); no secret, the token is a file. */
export function remoteAgentConfig(spec: RemoteAgentSpec): Record<string, unknown> {
  const paths = agentPaths(spec.layout);
  return {
    host: spec.bindHost,
    port: spec.port,
    front_ports: spec.frontPorts,
    backend_ports: spec.backendPorts,
    state_file: paths.stateFile,
    log_dir: paths.logDir,
    token_file: paths.token,
    mlflow_tracking_uri: spec.hostTrackingUri,
    python: `${venvDir(spec.layout)}/bin/python`,
    backend_start_timeout_seconds: spec.backendStartTimeoutSeconds,
    ...(spec.backendWorkers !== undefined ? { backend_workers: spec.backendWorkers } : {}),
  };
}

export function agentArgv(layout: HostLayout): string[] {
  return [
    `${venvDir(layout)}/bin/python`,
    "-m",
    "model_serving_agent",
    "--config",
    agentPaths(layout).config,
  ];
}

/** The agent's fixed environment: the package on PYTHONPATH and the marker (no secret). */
function agentEnv(layout: HostLayout): string[] {
  const paths = agentPaths(layout);
  return [`PYTHONPATH=${paths.srcDir}`, `${REMOTE_AGENT_MARKER}=${paths.dataDir}`];
}

/** The agent's supervisor where systemd does not run (agent/model_serving_agent/supervise.py): it
 * writes the running agent's pid to the agent pidfile. */
export function supervisorArgv(layout: HostLayout): string[] {
  const paths = agentPaths(layout);
  return [
    `${venvDir(layout)}/bin/python`,
    "-m",
    "model_serving_agent.supervise",
    "--config",
    paths.config,
    "--agent-pid-file",
    paths.agentPid,
  ];
}

export function agentSystemdUnit(layout: HostLayout): string {
  return [
    "[Unit]",
    "Description=model-serving MLOps agent",
    `After=network-online.target ${MLFLOW_UNIT_NAME}.service`,
    "",
    "[Service]",
    "Type=simple",
    `User=${layout.serviceUser}`,
    `Group=${layout.serviceUser}`,
    `WorkingDirectory=${agentPaths(layout).dataDir}`,
    `EnvironmentFile=-${remotePaths(layout).profileEnv}`,
    ...agentEnv(layout).map((l) => `Environment=${l}`),
    `ExecStart=${agentArgv(layout).join(" ")}`,
    // Only the agent: its backends run in sessions of their own and the next agent adopts them.
    "KillMode=process",
    "Restart=always",
    "RestartSec=2",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/**
 * Where systemd does not run: started with `setsid` as the service user, it records its pid (kept
 * across the exec), takes the profile's environment and becomes the agent's supervisor, which starts
 * the agent again when it exits (a kill -9 included: after 1 s, backing off to 30 s while it keeps
 * dying; exit status 2, a config or token file error, is not retried) until it gets TERM; then it
 * stops the agent (TERM: it closes its fronts and leaves the backends for the next start).
 */
export function agentSupervisorScript(layout: HostLayout): string {
  const paths = agentPaths(layout);
  const profileEnv = remotePaths(layout).profileEnv;
  return [
    "#!/bin/sh",
    "# model-serving: runs the MLOps agent under its supervisor until that gets TERM.",
    `echo $$ > ${shQuote(paths.supervisorPid)}`,
    `if [ -s ${shQuote(profileEnv)} ]; then set -a; . ${shQuote(profileEnv)}; set +a; fi`,
    `cd ${shQuote(paths.dataDir)}`,
    `exec env ${agentEnv(layout).map(shQuote).join(" ")} ${shJoin(supervisorArgv(layout))}`,
    "",
  ].join("\n");
}

/** Prints the package hash the host has ("" when none). */
export function installedHashScript(layout: HostLayout): string {
  const paths = agentPaths(layout);
  return `if [ -d ${shQuote(paths.srcDir)} ]; then cat ${shQuote(paths.srcHash)} 2>/dev/null || true; fi`;
}

/** Python (run as root with the venv's interpreter) that reads the package as JSON on stdin and
 * swaps it into place: root's files, 0644, then the hash stamp. */
export const UNPACK_PY = [
  "import base64, json, os, shutil, sys",
  "dest, stamp, digest = sys.argv[1:4]",
  "os.umask(0o022)",
  "files = json.load(sys.stdin)",
  "tmp, old = dest + '.new', dest + '.old'",
  "shutil.rmtree(tmp, ignore_errors=True)",
  "for rel, data in files.items():",
  "    target = os.path.join(tmp, rel)",
  "    os.makedirs(os.path.dirname(target), exist_ok=True)",
  "    with open(target, 'wb') as f:",
  "        f.write(base64.b64decode(data))",
  "shutil.rmtree(old, ignore_errors=True)",
  "if os.path.isdir(dest):",
  "    os.rename(dest, old)",
  "os.rename(tmp, dest)",
  "shutil.rmtree(old, ignore_errors=True)",
  "with open(stamp, 'w') as f:",
  "    f.write(digest + '\\n')",
].join("\n");

export function unpackArgv(layout: HostLayout, hash: string): string[] {
  const paths = agentPaths(layout);
  return [`${venvDir(layout)}/bin/python`, "-c", UNPACK_PY, paths.srcDir, paths.srcHash, hash];
}

/**
 * Runs as root: the agent's runtime packages must be in the venv at the agent's pins (MLflow's set
 * brings them); any that is missing or another version is pip-installed as the service user from
 * the package's requirements.txt, under the profile's constraints when the host has them. Prints
 * `agent requirements: present` or `agent requirements: installed <names>`.
 */
export function requirementsScript(layout: HostLayout, pins: Record<string, string>): string {
  const py = `${venvDir(layout)}/bin/python`;
  const user = shQuote(layout.serviceUser);
  const check = [
    "import importlib.metadata as md",
    `pins = ${JSON.stringify(pins)}`,
    "bad = []",
    "for name, version in pins.items():",
    "    try:",
    "        ok = md.version(name) == version",
    "    except md.PackageNotFoundError:",
    "        ok = False",
    "    if not ok:",
    "        bad.append(name + '==' + version)",
    "print(' '.join(bad))",
  ].join("\n");
  const constraints = `${layout.baseDir}/constraints.txt`;
  return [
    "set -e",
    `bad=$(runuser -u ${user} -- ${shQuote(py)} -c ${shQuote(check)})`,
    'if [ -z "$bad" ]; then echo "agent requirements: present"; exit 0; fi',
    `c=; if [ -s ${shQuote(constraints)} ]; then c="--constraint ${constraints}"; fi`,
    "# shellcheck disable=SC2086",
    `runuser -u ${user} -- ${shQuote(py)} -m pip install --quiet $c $bad`,
    'echo "agent requirements: installed $bad"',
  ].join("\n");
}

/** What the host must run: a changed one restarts the agent (its backends stay and are adopted). */
export function agentRevision(
  spec: RemoteAgentSpec,
  packageHash: string,
  supervisor: string,
): string {
  const unit =
    supervisor === "systemd" ? agentSystemdUnit(spec.layout) : agentSupervisorScript(spec.layout);
  return crypto
    .createHash("sha256")
    .update(JSON.stringify([unit, remoteAgentConfig(spec), packageHash]))
    .digest("hex");
}
