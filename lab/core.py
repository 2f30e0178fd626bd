"""Process, port and state helpers shared by every lab component."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
STATE_FILE = "state.json"


class LabError(Exception):
    """A lab server could not be started, reached or stopped."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Tell whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int, *, host: str = LOOPBACK, timeout: float = 20.0, pid: int | None = None
) -> None:
    """Wait until ``host:port`` accepts connections, or raise ``LabError``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return
        if pid is not None and not pid_alive(pid):
            raise LabError(f"Process {pid} exited before listening on port {port}")
        time.sleep(0.05)
    raise LabError(f"Nothing listened on {host}:{port} within {timeout} seconds")


def pid_alive(pid: int) -> bool:
    """Tell whether process ``pid`` exists and is not a zombie."""
    try:
        waited, _unused = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        return stat.read_text().split(") ", 1)[-1][:1] != "Z"
    return True


def stop_pid(pid: int, *, timeout: float = 5.0) -> None:
    """Stop process ``pid`` (and its session) with SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        _signal_group(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)
    raise LabError(f"Process {pid} did not stop")


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid``, or the process alone."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@dataclass
class LabContext:
    """Where a lab lives: its state folder and the interpreter for our servers."""

    state_dir: Path
    python: str = field(default=sys.executable)

    def __post_init__(self) -> None:
        # Servers run with the state folder as their working directory, so
        # every path handed to them must be absolute.
        self.state_dir = Path(self.state_dir).resolve()

    def path(self, *parts: str) -> Path:
        """Return a path under the state folder, creating its parent folders."""
        target = self.state_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def log_path(self, name: str) -> Path:
        """Return the log file of server ``name``."""
        return self.path("logs", f"{name}.log")

    def spawn(self, name: str, argv: list[str], *, env: dict | None = None) -> int:
        """Start ``argv`` in its own session with its own log; return the pid."""
        with self.log_path(name).open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {})},
                cwd=self.state_dir,
            )
        return proc.pid

    def spawn_python(
        self, name: str, module: str, *args: str, env: dict | None = None
    ) -> int:
        """Start ``python -m module args`` as a lab server; return the pid."""
        repo_root = str(Path(__file__).resolve().parent.parent)
        path = os.pathsep.join(filter(None, [repo_root, os.environ.get("PYTHONPATH")]))
        return self.spawn(
            name,
            [self.python, "-m", module, *args],
            env={"PYTHONPATH": path, **(env or {})},
        )


def load_state(state_dir: Path) -> dict:
    """Read the lab state, or an empty state when the lab was never started."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return {"servers": {}}
    return json.loads(path.read_text())


def save_state(state_dir: Path, state: dict) -> None:
    """Write the lab state atomically, for its owner only (it holds passwords)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.chmod(0o600)
    tmp.replace(state_dir / STATE_FILE)
