"""The action groups of meta/runtime.yml: complete, exclusive, and usable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(
    path.stem
    for path in (REPO / "plugins" / "modules").glob("*.py")
    if not path.stem.startswith("_")
)

# What module_defaults may set for each family: every member accepts these
# options, so a group's defaults never break one of its modules.
FAMILY_OPTIONS = {
    "mongodb": {"uri", "login_host", "login_port", "login_user", "login_password"},
    "redis": {"login_host", "login_port", "login_user", "login_password", "tls"},
    "http": {"validate_certs", "ca_path", "url_username", "url_password", "timeout"},
    "s3": {"endpoint_url", "region", "access_key", "secret_key", "profile"},
    "k8s": {"kubeconfig", "context", "host", "api_key", "validate_certs"},
    "tls": {"ca_path", "timeout", "max_workers"},
    "command": {"timeout"},
    "window": {"windows", "timezone"},
    "report": {"report_dir", "webhook_url"},
}


@pytest.fixture(scope="module")
def groups() -> dict:
    """Return the action groups of meta/runtime.yml."""
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    return runtime["action_groups"]


@pytest.fixture(scope="module")
def documented_options() -> dict:
    """Return each module's documented options, doc fragments included."""
    names = [f"trm.maintenance.{name}" for name in MODULES]
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "--json", *names],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
        },
    )
    docs = json.loads(proc.stdout)
    return {
        name.split(".")[-1]: set(doc["doc"].get("options", {}))
        for name, doc in docs.items()
    }


def test_requires_ansible_is_unchanged() -> None:
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())

    assert runtime["requires_ansible"] == ">=2.19.0"


def test_all_lists_every_module_once(groups: dict) -> None:
    assert sorted(groups["all"]) == MODULES
    assert len(groups["all"]) == len(set(groups["all"]))


def test_every_module_is_in_exactly_one_family(groups: dict) -> None:
    families = {name: members for name, members in groups.items() if name != "all"}
    memberships = {
        module: [name for name, members in families.items() if module in members]
        for module in MODULES
    }

    counts = {module: len(found) for module, found in memberships.items()}

    assert counts == dict.fromkeys(MODULES, 1)


def test_every_listed_name_is_a_module(groups: dict) -> None:
    listed = {module for members in groups.values() for module in members}

    assert listed - set(MODULES) == set()


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("mongodb", ["mongo_compact", "mongo_health", "mongo_metrics"]),
        ("redis", ["redis_stats"]),
        ("http", ["http_health", "prometheus_query"]),
        ("s3", ["s3_backup_verify"]),
        ("k8s", ["k8s_failover", "k8s_isolate", "k8s_log_scan"]),
        ("tls", ["tls_expiry"]),
    ],
)
def test_connection_families_hold_their_modules(
    groups: dict, family: str, expected: list
) -> None:
    assert sorted(groups[family]) == expected


def test_every_family_declares_the_options_it_shares(groups: dict) -> None:
    assert set(groups) - {"all"} == set(FAMILY_OPTIONS)


@pytest.mark.parametrize("family", sorted(FAMILY_OPTIONS))
def test_every_member_accepts_the_family_options(
    groups: dict, documented_options: dict, family: str
) -> None:
    missing = {
        module: sorted(FAMILY_OPTIONS[family] - documented_options[module])
        for module in groups[family]
    }

    assert missing == {module: [] for module in groups[family]}
