"""Runs modules and playbooks through ansible-playbook, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_BIN = Path(sys.executable).parent


@dataclass
class PlaybookRun:
    """What one ansible-playbook run did."""

    rc: int
    stdout: str
    stderr: str


class AnsibleRunner:
    """Runs tasks against localhost with this checkout as trm.maintenance."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.counter = 0

    def env(self, extra: dict | None = None) -> dict:
        """Return the environment ansible-playbook runs with."""
        return {
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            **(extra or {}),
        }

    def playbook(
        self,
        playbook: Path | str,
        *args: str,
        env: dict | None = None,
        timeout: float = 300,
    ) -> PlaybookRun:
        """Run ``ansible-playbook playbook args`` from the repository root."""
        proc = subprocess.run(
            [str(ANSIBLE_BIN / "ansible-playbook"), str(playbook), *args],
            cwd=REPO,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return PlaybookRun(proc.returncode, proc.stdout, proc.stderr)

    def module(
        self,
        name: str,
        args: dict,
        *,
        check_mode: bool = False,
        env: dict | None = None,
        timeout: float = 120,
    ) -> dict:
        """Run one module task on localhost and return its registered result."""
        self.counter += 1
        out = self.workdir / f"result-{self.counter}.json"
        task = {
            "name": "Run the module under test",
            name: args,
            "register": "result",
            "ignore_errors": True,
            "check_mode": check_mode,
        }
        save = {
            "name": "Save the result",
            "ansible.builtin.copy": {
                "content": "{{ result | to_json }}",
                "dest": str(out),
            },
            "check_mode": False,
        }
        play = [
            {
                "hosts": "localhost",
                "gather_facts": False,
                "vars": {"ansible_python_interpreter": sys.executable},
                "tasks": [task, save],
            }
        ]
        path = self.workdir / f"play-{self.counter}.yml"
        path.write_text(yaml.safe_dump(play, sort_keys=False))
        run = self.playbook(
            path, "-i", "localhost,", "-c", "local", env=env, timeout=timeout
        )
        if not out.exists():
            raise AssertionError(f"Playbook did not run:\n{run.stdout}\n{run.stderr}")
        return json.loads(out.read_text())
