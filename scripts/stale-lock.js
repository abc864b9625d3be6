// `node scripts/stale-lock.js <stack>`: recovers the stack lock a killed `pulumi up` (SIGKILL, a crash,
// a reboot) left on a file backend (PULUMI_BACKEND_URL=file://...), so the next `up` needs no manual
// `pulumi cancel`.
//
// The file backend's locks are `<backend>/.pulumi/locks/<org>/<project>/<stack>/<id>.json` (with a
// `<id>.json.attrs` metadata sidecar), each `{"pid", "username", "hostname", "timestamp"}` of the
// `pulumi` process holding it. A lock is removed
// only when its holder was on this machine and is no longer running (its pid is gone, or now belongs to
// a process that is not `pulumi`). A lock of a running `pulumi`, or of another machine, is left alone and
// reported with what to do. Other backends keep their locks themselves; this does nothing there.
// Exit code 0 when the stack is (now) unlocked or not on a file backend, 1 when a lock remains.
const { execFileSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

function main(argv) {
  const stack = argv[0];
  if (!stack) {
    console.error("usage: node scripts/stale-lock.js <stack> [project-dir]");
    return 2;
  }
  const backend = fileBackendDir(process.env.PULUMI_BACKEND_URL ?? "");
  if (backend === undefined) {
    return 0;
  }
  const project = projectName(argv[1] ?? process.cwd());
  const locksRoot = path.join(backend, ".pulumi", "locks");
  let remaining = 0;
  for (const file of lockFiles(locksRoot, project, stack)) {
    let lock;
    try {
      lock = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
      continue; // removed meanwhile, or being written by a starting `pulumi`
    }
    const who = `${lock.username}@${lock.hostname} (pid ${lock.pid}) since ${lock.timestamp}`;
    if (lock.hostname !== os.hostname()) {
      remaining++;
      console.error(
        `[stale-lock] stack ${stack} is locked by ${who}, another machine; once no pulumi runs there ` +
          `for this stack, run: npm run pulumi -- cancel --yes --stack ${stack}`,
      );
    } else if (isRunningPulumi(lock.pid)) {
      remaining++;
      console.error(
        `[stale-lock] stack ${stack} is locked by ${who}, which is still running: wait for it to finish`,
      );
    } else {
      fs.rmSync(file, { force: true });
      fs.rmSync(`${file}.attrs`, { force: true }); // the file bucket's metadata sidecar
      console.error(
        `[stale-lock] removed the lock of stack ${stack} held by ${who}: that pulumi is no longer running`,
      );
    }
  }
  return remaining === 0 ? 0 : 1;
}

/** The directory of a `file://` backend URL (query parameters dropped, `~` expanded), else undefined. */
function fileBackendDir(url) {
  if (!url.startsWith("file://")) {
    return undefined;
  }
  const dir = url.slice("file://".length).split("?")[0];
  return dir === "~" || dir.startsWith("~/") ? path.join(os.homedir(), dir.slice(1)) : dir;
}

function projectName(dir) {
  const yaml = fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8");
  const m = /^name:\s*["']?([^"'\s#]+)/m.exec(yaml);
  if (!m) {
    throw new Error(`no project name in ${path.join(dir, "Pulumi.yaml")}`);
  }
  return m[1];
}

/** Lock files of the stack under every organization folder (`organization` on a file backend). */
function lockFiles(locksRoot, project, stack) {
  if (!fs.existsSync(locksRoot)) {
    return [];
  }
  const files = [];
  for (const org of fs.readdirSync(locksRoot)) {
    const dir = path.join(locksRoot, org, project, stack);
    if (fs.existsSync(dir)) {
      for (const name of fs.readdirSync(dir)) {
        if (name.endsWith(".json")) {
          files.push(path.join(dir, name));
        }
      }
    }
  }
  return files;
}

/** Whether pid is a running process whose program is `pulumi` (a reused pid is someone else). */
function isRunningPulumi(pid) {
  if (!Number.isInteger(pid) || pid <= 0) {
    return false;
  }
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (err.code !== "EPERM") {
      return false;
    }
  }
  let command = "";
  try {
    command = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
  } catch {
    try {
      command = execFileSync("ps", ["-o", "comm=", "-p", String(pid)], { encoding: "utf8" }).trim();
    } catch {
      return false; // ps found no such process
    }
  }
  return path.basename(command).startsWith("pulumi");
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}

module.exports = { main };
