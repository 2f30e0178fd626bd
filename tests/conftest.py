"""Test setup: make the collection importable and give tests a way to run modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / ".collections"


def _link_collection() -> None:
    """Expose the checkout as ansible_collections/trm/maintenance for imports."""
    link = COLLECTIONS / "ansible_collections" / "trm" / "maintenance"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../../.."), target_is_directory=True)


_link_collection()
for entry in (str(COLLECTIONS), str(REPO)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from tests.helpers.ansible import AnsibleRunner  # noqa: E402


@pytest.fixture(scope="session")
def ansible(tmp_path_factory: pytest.TempPathFactory) -> AnsibleRunner:
    """Run trm.maintenance modules and playbooks through ansible-playbook."""
    return AnsibleRunner(tmp_path_factory.mktemp("ansible"))
