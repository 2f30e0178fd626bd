"""Starts the lab's servers in dependency order, records them, and stops them."""

from __future__ import annotations

import importlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from lab.core import (
    LabContext,
    LabError,
    load_state,
    pid_alive,
    save_state,
    stop_pid,
)

# Dependency order: the application needs Redis, MongoDB, the TLS certificates
# and the Kubernetes stand-in's log folder; Prometheus scrapes the application.
COMPONENTS = [
    "redis",
    "mongodb",
    "s3",
    "tls",
    "k8s",
    "app",
    "node_exporter",
    "prometheus",
]


def up(
    state_dir: Path,
    *,
    inventory: Path | None = None,
    only: list[str] | None = None,
    options: dict | None = None,
    quiet: bool = False,
) -> dict:
    """Start the lab's servers, write its state and inventory, and return the state."""
    _refuse_if_running(state_dir)
    ctx = LabContext(state_dir)
    state = {
        "now": datetime.now(timezone.utc).isoformat(),
        "servers": {},
        "options": options or {},
    }
    started = time.monotonic()
    for name in [c for c in COMPONENTS if not only or c in only]:
        _start_one(ctx, state, name, quiet=quiet)
    if inventory is not None:
        write_inventory(state, inventory)
    _say(quiet, f"lab: up in {time.monotonic() - started:.1f} s; state in {state_dir}")
    return state


def _start_one(ctx: LabContext, state: dict, name: str, *, quiet: bool) -> None:
    began = time.monotonic()
    module = importlib.import_module(f"lab.components.{name}")
    try:
        record = module.start(ctx, state)
    except Exception as error:
        save_state(ctx.state_dir, state)
        down(ctx.state_dir, quiet=True)
        log = ctx.log_path(name)
        raise LabError(f"{name} did not start: {error} (log: {log})") from error
    state["servers"][name] = record
    save_state(ctx.state_dir, state)
    where = f"port {record['port']}" if "port" in record else "ready"
    _say(quiet, f"lab: {name} {where} ({time.monotonic() - began:.1f} s)")


def _refuse_if_running(state_dir: Path) -> None:
    running = [name for name, alive in _liveness(state_dir).items() if alive]
    if running:
        raise LabError(
            f"the lab in {state_dir} is already running ({', '.join(running)}); "
            "run 'python -m lab down' first"
        )


def down(state_dir: Path, *, quiet: bool = False) -> None:
    """Stop every recorded server by its process id, newest first."""
    state = load_state(state_dir)
    known = [name for name in COMPONENTS if name in state["servers"]]
    others = [name for name in state["servers"] if name not in COMPONENTS]
    for name in reversed(known + others):
        _stop_record(name, state["servers"][name], quiet=quiet)
    state["servers"] = {}
    save_state(state_dir, state)


def stop_component(state_dir: Path, name: str) -> None:
    """Stop one server and mark it stopped, leaving the others running."""
    state = load_state(state_dir)
    record = state["servers"].get(name)
    if record is None:
        raise LabError(f"{name} is not part of the lab in {state_dir}")
    _stop_record(name, record, quiet=False)
    record["stopped"] = True
    save_state(state_dir, state)


def _stop_record(name: str, record: dict, *, quiet: bool) -> None:
    for pid in reversed(record.get("pids", [])):
        if pid_alive(pid):
            stop_pid(pid)
            _say(quiet, f"lab: stopped {name} (pid {pid})")


def _liveness(state_dir: Path) -> dict:
    servers = load_state(state_dir)["servers"]
    return {
        name: any(pid_alive(pid) for pid in record.get("pids", []))
        for name, record in servers.items()
    }


def status(state_dir: Path) -> bool:
    """Print each server's state; return True when every recorded server runs."""
    liveness = _liveness(state_dir)
    if not liveness:
        print(f"lab: not running (no servers recorded in {state_dir})")
        return False
    for name, alive in liveness.items():
        print(f"lab: {name:<14} {'running' if alive else 'stopped'}")
    return all(liveness.values())


def inventory_vars(state: dict) -> dict:
    """Return the variables the lab inventory reads, from the lab's state."""
    found: dict = {"lab_state_now": state["now"]}
    for name, record in state["servers"].items():
        for key, value in record.items():
            if key != "pids" and _fits_inventory(value):
                found[f"lab_{name}_{key}"] = value
    return found


def _fits_inventory(value: object) -> bool:
    # The seeded data's expectations are large and only tests read them; they
    # stay in state.json so the inventory stays readable.
    if isinstance(value, (str, int, float, bool)):
        return True
    return isinstance(value, (list, dict)) and len(json.dumps(value)) <= 2048


def write_inventory(state: dict, path: Path) -> None:
    """Write the lab's generated inventory variables (credentials: owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by 'python -m lab up'; do not edit, do not commit.\n"
    path.write_text(header + yaml.safe_dump(inventory_vars(state), sort_keys=True))
    path.chmod(0o600)


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, flush=True)
