"""The lab's MongoDB (nx-27017 seeded with TRM data) for the MongoDB tests.

nx-27017 speaks MongoDB's wire protocol on SQLite. Measured against what a
real MongoDB 7 answers, it:

- counts right with the ``count`` command and ``count_documents``, date
  windows included, but ignores dates in an aggregate ``$match``;
- ignores the other top-level fields of a filter that also has ``$or`` (so
  the checks join conditions with ``$and``), and counts nothing for
  ``count_documents({field: None})`` (the ``count`` command is right);
- names a file path in ``dbStats.db`` and in ``$collStats``'s ``ns``, has no
  ``nindexes`` and a ``totalIndexSize`` of 0 in collection statistics, and
  flattens dotted ``$project`` inclusions (the checks project computed fields);
- answers ``serverStatus`` with connections, uptime and memory only (no
  opcounters, wiredTiger, repl), and every command it does not know, such as
  ``replSetGetStatus``, ``currentOp`` or ``profile``, with ``{ok: 1, result: []}``;
- does not support ``$indexStats``; has no authentication (it answers
  ``saslStart`` with an empty document, which the driver cannot read);
- creates a database or collection that a command merely names.

So these tests prove counts, sizes and connection figures against a real
wire-protocol server; replica sets, the profiler, index counters, current
operations and WiredTiger are proven against the MongoDB 7 stand-in instead.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import yaml
from pymongo import MongoClient

from lab import trm_data
from lab.components import mongodb
from lab.core import LabContext, stop_pid

NOW = "2025-03-09T14:30:00.000+00:00"
NOW_DT = datetime.fromisoformat(NOW)
# The guide's cadences of the role's concerns; in the playbooks the
# maintenance_calendar role sets these toggles.
CADENCES = {
    "daily": ("connections", "business_metrics"),
    "weekly": ("performance_review",),
    "monthly": ("capacity", "user_activity", "access_review"),
    "quarterly": ("optimisation",),
}


def start_lab(folder: Path) -> dict:
    """Start the lab's MongoDB in ``folder``, seeded for ``NOW``; return its record."""
    return mongodb.start(LabContext(folder), {"servers": {}, "now": NOW})


def stop_lab(record: dict) -> None:
    """Stop the lab's MongoDB by its process ids."""
    for pid in reversed(record["pids"]):
        stop_pid(pid)


def open_database(record: dict) -> MongoClient:
    """A client of the lab's MongoDB, to read the figures the modules report."""
    return MongoClient(record["uri"], serverSelectionTimeoutMS=5000)


def new_registrations(days: int) -> int:
    """Users created in the ``days`` before ``NOW``, from the lab's own data."""
    users = trm_data.generate(NOW_DT).collections["users"]
    times = trm_data.creation_times(users)
    return trm_data.count_between(times, NOW_DT - days * trm_data.DAY, NOW_DT)


def toggles(cadence: str) -> dict:
    """The role's concern toggles for ``cadence``: its concerns on, others off."""
    return {
        f"mongo_checks_{concern}": cadence == due
        for due, concerns in CADENCES.items()
        for concern in concerns
    }


def run_role(ansible, folder: Path, cadence: str, variables: dict, *args: str):
    """Run mongo_checks for ``cadence`` (and the report when asked); return the
    results it recorded."""
    out = folder / f"results-{cadence}.json"
    tasks = [
        {
            "name": "Run the MongoDB checks",
            "ansible.builtin.import_role": {"name": "trm.maintenance.mongo_checks"},
        },
        {
            "name": "Save the results",
            "ansible.builtin.copy": {
                "content": "{{ maintenance_results | default([]) | to_json }}",
                "dest": str(out),
            },
            "check_mode": False,
            "tags": ["always"],
        },
    ]
    if "report_dir" in variables:
        tasks.append(
            {
                "name": "Write the maintenance log",
                "ansible.builtin.import_role": {"name": "trm.maintenance.report"},
            }
        )
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "ansible_python_interpreter": sys.executable,
                "maintenance_cadence": cadence,
                **toggles(cadence),
                **variables,
            },
            "tasks": tasks,
        }
    ]
    path = folder / f"play-{cadence}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    run = ansible.playbook(path, "-i", "localhost,", "-c", "local", *args)
    if not out.exists():
        raise AssertionError(f"The role did not run:\n{run.stdout}\n{run.stderr}")
    return run, json.loads(out.read_text())


def entries(results: list) -> dict:
    """The role's entries by task, each with its findings by name."""
    found = {}
    for entry in results:
        checks = entry["result"].get("checks") or []
        found[entry["task"]] = {
            "entry": entry,
            "checks": {check["name"]: check for check in checks},
        }
    return found
