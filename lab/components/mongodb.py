"""MongoDB for the lab: nx-27017 (the wire protocol on SQLite) seeded with TRM data."""

from __future__ import annotations

import shutil
from pathlib import Path

from pymongo import MongoClient

from lab import trm_data
from lab.core import LOOPBACK, LabContext, LabError, free_port, stop_pid, wait_for_port

NAME = "mongodb"
SERVER = "nx-27017"
CLIENT_TIMEOUTS = {
    "serverSelectionTimeoutMS": 5000,
    "connectTimeoutMS": 3000,
    "socketTimeoutMS": 60000,
}


def start(ctx: LabContext, state: dict) -> dict:
    """Start nx-27017 on a free port, seed the TRM database and return its record."""
    data = trm_data.generate(trm_data.resolve_now(state))
    port = free_port()
    files = _files(ctx)
    pid = ctx.spawn(NAME, _command(ctx, port, files))
    try:
        wait_for_port(port, pid=pid)
        uri = f"mongodb://{LOOPBACK}:{port}/"
        seed(uri, data)
    except BaseException:
        stop_pid(pid)
        raise
    return {
        "pids": [pid],
        "host": LOOPBACK,
        "port": port,
        "uri": uri,
        "database": trm_data.DATABASE,
        "server": SERVER,
        "auth": False,
        **{name: str(path) for name, path in files.items()},
        "expected": data.expected,
    }


def seed(uri: str, data: trm_data.TrmData) -> None:
    """Insert every TRM collection and create its indexes."""
    with MongoClient(uri, **CLIENT_TIMEOUTS) as client:
        database = client[trm_data.DATABASE]
        for name, docs in data.collections.items():
            database[name].insert_many(docs)
            for index in trm_data.INDEXES[name]:
                database[name].create_index(
                    list(index["key"].items()),
                    name=index["name"],
                    unique=index.get("unique", False),
                )


def _files(ctx: LabContext) -> dict[str, Path]:
    """Return the server's data folder, pid file and log file, the folder emptied."""
    data_dir = ctx.path(NAME, "data")
    # A previous run's files would make the seed collide on _id.
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    return {
        "data_dir": data_dir,
        "pid_file": ctx.path(NAME, f"{SERVER}.pid"),
        "log_file": ctx.path(NAME, f"{SERVER}.log"),
    }


def _command(ctx: LabContext, port: int, files: dict[str, Path]) -> list[str]:
    """Return the argv that runs nx-27017 in the foreground on loopback."""
    return [
        _executable(ctx),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--data-dir",
        str(files["data_dir"]),
        "--pid-file",
        str(files["pid_file"]),
        "--log-file",
        str(files["log_file"]),
    ]


def _executable(ctx: LabContext) -> str:
    """Find nx-27017 next to the lab's interpreter, else on PATH."""
    beside = Path(ctx.python).parent / SERVER
    if beside.exists():
        return str(beside)
    found = shutil.which(SERVER)
    if found is None:
        raise LabError(f"{SERVER} is not installed: run 'pip install nx-27017'")
    return found
