import { shQuote } from "../ssh/quote";

/**
 * What the remote MLflow server and the remote agent share as services on the SSH host: how the host
 * runs them (a systemd unit, or our restart loop with a pidfile), and the URL they are reached on.
 */
export type Supervisor = "systemd" | "process";

/** Prints `systemd` where systemd runs the host, else `process`. */
export const DETECT_SUPERVISOR =
  "if [ -d /run/systemd/system ]; then echo systemd; else echo process; fi";

/** Prints `running` when the unit is active, or when the pidfile's process is our supervisor: its
 * command line contains `commandLine` (a pid reused by another process does not). */
export function serviceRunningScript(
  supervisor: Supervisor,
  service: { unit: string; pidFile: string; commandLine: string },
): string {
  if (supervisor === "systemd") {
    return `if systemctl is-active --quiet ${service.unit}; then echo running; else echo stopped; fi`;
  }
  return [
    `pid=$(cat ${shQuote(service.pidFile)} 2>/dev/null || true)`,
    `if [ -n "$pid" ] && tr '\\0' ' ' 2>/dev/null < /proc/"$pid"/cmdline | grep -qF ${shQuote(service.commandLine)}; then echo running; else echo stopped; fi`,
  ].join("\n");
}

/** `http://<host>:<port>`, an IPv6 literal in brackets. */
export function httpUrlOf(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}
