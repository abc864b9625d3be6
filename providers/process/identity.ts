import * as child_process from "child_process";
import * as fs from "fs";

/**
 * Process identity and liveness, behind one small interface so the rest of the code never reads /proc
 * itself. Linux reads /proc (no process spawned per probe); every other POSIX system (macOS, the BSDs)
 * asks `ps`, which they all ship. Windows has no process groups for `kill(-pgid)` and is refused at config
 * time (mlflow.mode / mlflow.deployMode `local`); `processProbe` throws there with the same reason.
 */
export interface ProcessInfo {
  /** Start identity: /proc start ticks on Linux, `ps -o lstart` (to the second) elsewhere. A recycled
   * pid has another one, so it is never mistaken for the process we started. */
  start: string;
  pgid: number;
}

export interface ProcessProbe {
  /** The process's start identity and group, or undefined when it is gone (or a zombie). */
  info(pid: number): ProcessInfo | undefined;
  /** Its command line (arguments joined by spaces), or "" when it is gone. */
  commandLine(pid: number): string;
  /** Pids of the processes listening on TCP `port` (any address), or undefined when this platform
   * cannot tell (then the caller falls back to "our process is alive and the port was free when we
   * reserved it"). */
  listeners(port: number): number[] | undefined;
}

/** Runs a command and returns its stdout, or undefined when it fails (exit code != 0, not found). */
export type Exec = (file: string, args: string[]) => string | undefined;

export const execQuiet: Exec = (file, args) => {
  try {
    return child_process.execFileSync(file, args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 10_000,
    });
  } catch {
    return undefined;
  }
};

export function unsupportedPlatformMessage(platform: string): string {
  return (
    `local servers need a POSIX system with process groups (Linux, macOS); this is "${platform}": ` +
    'use mlflow.mode "existing" and serve the models elsewhere'
  );
}

/** The probe for `platform`; tests inject the platform and `exec` to run the non-Linux branch. */
export function processProbe(
  platform: string = process.platform,
  exec: Exec = execQuiet,
): ProcessProbe {
  if (platform === "linux") {
    return linuxProbe();
  }
  if (platform === "win32") {
    throw new Error(unsupportedPlatformMessage(platform));
  }
  return psProbe(exec);
}

/** /proc/<pid>/stat (start ticks, field 22; pgid, field 5), /proc/<pid>/cmdline, /proc/net/tcp{,6}. */
export function linuxProbe(procRoot = "/proc"): ProcessProbe {
  return {
    info(pid) {
      try {
        const stat = fs.readFileSync(`${procRoot}/${pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        if (fields[0] === "Z") {
          return undefined;
        }
        return { start: fields[19], pgid: Number(fields[2]) };
      } catch {
        return undefined;
      }
    },
    commandLine(pid) {
      try {
        return fs
          .readFileSync(`${procRoot}/${pid}/cmdline`, "utf8")
          .replace(/\0+$/, "")
          .split("\0")
          .join(" ");
      } catch {
        return "";
      }
    },
    listeners(port) {
      // Socket inodes in state LISTEN (0A) on the port, then the processes holding one of them open.
      const inodes = new Set<string>();
      for (const table of ["tcp", "tcp6"]) {
        let text = "";
        try {
          text = fs.readFileSync(`${procRoot}/net/${table}`, "utf8");
        } catch {
          continue;
        }
        for (const line of text.split("\n").slice(1)) {
          const cols = line.trim().split(/\s+/);
          if (cols.length > 9 && cols[3] === "0A" && parseInt(cols[1].split(":")[1], 16) === port) {
            inodes.add(cols[9]);
          }
        }
      }
      if (inodes.size === 0) {
        return [];
      }
      const pids: number[] = [];
      for (const entry of fs.readdirSync(procRoot)) {
        if (!/^\d+$/.test(entry)) {
          continue;
        }
        try {
          for (const fd of fs.readdirSync(`${procRoot}/${entry}/fd`)) {
            const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`${procRoot}/${entry}/fd/${fd}`));
            if (m && inodes.has(m[1])) {
              pids.push(Number(entry));
              break;
            }
          }
        } catch {
          // gone, or another user's process (its fds are not ours to read: it is not ours either)
        }
      }
      return pids;
    },
  };
}

/** `ps` (POSIX: macOS, BSDs) and `lsof` (shipped with macOS) through `exec`. */
export function psProbe(exec: Exec): ProcessProbe {
  return {
    info(pid) {
      // lstart last: it contains spaces ("Tue Dec  1 06:59:21 2026").
      const out = exec("ps", ["-o", "pgid=", "-o", "stat=", "-o", "lstart=", "-p", String(pid)]);
      const cols = out?.trim().split(/\s+/) ?? [];
      if (cols.length < 3 || cols[1].startsWith("Z")) {
        return undefined;
      }
      return { start: cols.slice(2).join(" "), pgid: Number(cols[0]) };
    },
    commandLine(pid) {
      return (exec("ps", ["-o", "command=", "-p", String(pid)]) ?? "").trim();
    },
    listeners(port) {
      // -t: pids only; exit code 1 with no output when nothing listens.
      const out = exec("lsof", ["-nP", `-iTCP:${port}`, "-sTCP:LISTEN", "-t"]);
      if (out === undefined) {
        return exec("sh", ["-c", "command -v lsof"]) === undefined ? undefined : [];
      }
      return out
        .split("\n")
        .map((s) => s.trim())
        .filter((s) => /^\d+$/.test(s))
        .map(Number);
    },
  };
}
