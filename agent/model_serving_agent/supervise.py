"""python -m model_serving_agent.supervise --config agent.json [--agent-pid-file FILE]

Supervision where no systemd runs the agent: this process runs `python -m model_serving_agent` as its
child and starts it again when it dies, like the systemd unit's `Restart=always` (agent/systemd), so a
killed or crashed agent is back on the same port with the same models without anyone running `up`.

- A child that exits with status 2 (bad config, bad token file, unreadable state file) is not started
  again: that needs a fix, not a retry (systemd's RestartPreventExitStatus). The supervisor exits 2.
- Restarts back off: 1 s, doubling to 30 s while the child keeps dying within 60 s of its start.
- SIGTERM/SIGINT are passed on to the child, which closes its fronts (backends keep running for the
  next start to adopt, as with the unit's KillMode=process); after 30 s the child gets SIGKILL.
- The child gets SIGTERM when the supervisor itself dies (PR_SET_PDEATHSIG), so a SIGKILLed supervisor
  leaves no agent behind for refresh + up to trip over.
- The child stays in the supervisor's process group: stopping the group stops both. The agent starts
  its backends in their own sessions, so they are not in it.
- `--agent-pid-file` holds the running agent's pid (written at each start, removed when the
  supervisor ends): what the remote host's scripts and tests read.
"""

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import List, Optional

FIRST_DELAY, MAX_DELAY, HEALTHY_AFTER, STOP_GRACE = 1.0, 30.0, 60.0, 30.0
PR_SET_PDEATHSIG = 1
NO_RESTART_STATUS = 2


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} supervisor: {message}", file=sys.stderr, flush=True)


def die_with_parent() -> None:
    # Runs in the child between fork and exec.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, command: List[str], agent_pid_file: Optional[str] = None) -> None:
        self.command = command
        self.agent_pid_file = agent_pid_file
        self.child: Optional[subprocess.Popen] = None
        self.stopping = False

    def on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        try:
            return self.supervise()
        finally:
            if self.agent_pid_file:
                try:
                    os.unlink(self.agent_pid_file)
                except FileNotFoundError:
                    pass

    def supervise(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.on_signal)
        delay = FIRST_DELAY
        while not self.stopping:
            started = time.monotonic()
            self.child = subprocess.Popen(self.command, preexec_fn=die_with_parent)
            log(f"started the agent (pid {self.child.pid})")
            if self.agent_pid_file:
                write_atomically(self.agent_pid_file, f"{self.child.pid}\n")
            status = self.wait_child()
            if self.stopping:
                return 0
            if status == NO_RESTART_STATUS:
                log(f"the agent exited with status {status} (its config, token or state file): not restarting")
                return NO_RESTART_STATUS
            delay = FIRST_DELAY if time.monotonic() - started >= HEALTHY_AFTER else delay
            log(f"the agent exited ({describe(status)}); starting it again in {delay:g} s")
            self.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
        return 0

    def wait_child(self) -> int:
        assert self.child is not None
        stop_by: Optional[float] = None
        while True:
            try:
                return self.child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
            if self.stopping:
                stop_by = stop_by or time.monotonic() + STOP_GRACE
                if time.monotonic() >= stop_by:
                    log(f"the agent (pid {self.child.pid}) outlived SIGTERM by {STOP_GRACE:g} s: SIGKILL")
                    self.child.kill()

    def sleep(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < until:
            time.sleep(min(0.2, until - time.monotonic()))


def write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def describe(status: int) -> str:
    return f"killed by {signal.Signals(-status).name}" if status < 0 else f"status {status}"


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="model_serving_agent.supervise", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the agent's JSON config file")
    parser.add_argument("--agent-pid-file", help="holds the running agent's pid; removed on exit")
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "model_serving_agent", "--config", os.path.abspath(args.config)]
    return Supervisor(command, args.agent_pid_file).run()


if __name__ == "__main__":
    sys.exit(main())
