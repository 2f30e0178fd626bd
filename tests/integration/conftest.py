"""The lab for integration tests: real servers on loopback, stopped by pid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab.orchestrator import down, up, write_inventory

REPO = Path(__file__).resolve().parents[2]


def lab_inventory(state: dict, dest: Path) -> Path:
    """Copy the lab inventory to ``dest`` and write the lab's variables into it."""
    inventory = dest / "inventory"
    shutil.copytree(
        REPO / "inventories" / "lab",
        inventory,
        ignore=shutil.ignore_patterns("lab.yml"),
    )
    write_inventory(state, inventory / "group_vars" / "trm_platform" / "lab.yml")
    return inventory


@pytest.fixture(scope="module")
def full_lab(tmp_path_factory: pytest.TempPathFactory):
    """Every lab server, started for one test module and stopped after it."""
    state_dir = tmp_path_factory.mktemp("lab")
    try:
        state = up(state_dir, quiet=True)
        state["state_dir"] = str(state_dir)
        yield state
    finally:
        down(state_dir, quiet=True)
