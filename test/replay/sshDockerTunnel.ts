import { spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";

/**
 * The Docker client's transport to an `ssh://` host, as its connection helper does it (what the Docker
 * provider does with a `docker.Provider { host: "ssh://...", sshOpts }`): every connection to the
 * engine is `ssh <sshOpts> -T -l <user> -p <port> -- <host> docker system dial-stdio`, the Engine API
 * spoken over that process's stdin/stdout. Served on a local unix socket, so the replay's `docker`
 * CLI and Engine API calls go through exactly that transport. `sessions` counts the ssh processes.
 */
export async function sshDockerTunnel(
  recorded: { host: string; sshOpts?: string[] },
  dir: string,
): Promise<{
  socket: string;
  sessions: () => number;
  /** The last line an ssh process wrote to stderr when it failed (e.g. "Host key verification failed."). */
  lastError: () => string;
  close: () => Promise<void>;
}> {
  const url = new URL(recorded.host);
  if (url.protocol !== "ssh:") {
    throw new Error(`sshDockerTunnel: not an ssh:// host: ${recorded.host}`);
  }
  const argv = [
    ...(recorded.sshOpts ?? []),
    "-T",
    ...(url.username ? ["-l", decodeURIComponent(url.username)] : []),
    ...(url.port ? ["-p", url.port] : []),
    "--",
    url.hostname,
    "docker",
    "system",
    "dial-stdio",
  ];
  let sessions = 0;
  let lastError = "";
  const socket = path.join(dir, "docker-over-ssh.sock");
  fs.rmSync(socket, { force: true });
  const server = net.createServer((conn) => {
    sessions++;
    const ssh = spawn("ssh", argv, { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    ssh.stderr.on("data", (d) => (stderr = (stderr + d).slice(-2000)));
    conn.pipe(ssh.stdin);
    ssh.stdout.pipe(conn);
    ssh.on("exit", (code) => {
      if (code !== 0 && stderr.trim()) {
        lastError = stderr.trim().split("\n").pop() ?? "";
      }
      conn.destroy();
    });
    conn.on("close", () => ssh.kill());
    conn.on("error", () => ssh.kill());
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    socket,
    sessions: () => sessions,
    lastError: () => lastError,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
