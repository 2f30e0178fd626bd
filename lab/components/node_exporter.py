"""Lab component ``node_exporter``: the real Prometheus node exporter, disk only.

Only the filesystem collector runs: the checks read disk usage from it, and the
other collectors would add seconds of scrape time and thousands of series.
"""

from __future__ import annotations

from lab.core import LOOPBACK, LabContext, LabError, free_port, wait_for_port

BINARY = "/usr/bin/prometheus-node-exporter"
NAME = "node_exporter"


def argv(port: int, *, binary: str = BINARY) -> list[str]:
    """Return the command line of a node exporter listening on ``port``."""
    return [
        binary,
        f"--web.listen-address={LOOPBACK}:{port}",
        "--collector.disable-defaults",
        "--collector.filesystem",
    ]


def start(ctx: LabContext, state: dict) -> dict:
    """Start the node exporter on a free loopback port and return its record."""
    options = state.get("options", {}).get(NAME, {})
    binary = options.get("binary", BINARY)
    port = free_port()
    try:
        pid = ctx.spawn(NAME, argv(port, binary=binary))
    except FileNotFoundError:
        raise LabError(
            f"{binary} is missing: install the prometheus-node-exporter package"
        ) from None
    wait_for_port(port, pid=pid)
    return {
        "pids": [pid],
        "host": LOOPBACK,
        "port": port,
        "url": f"http://{LOOPBACK}:{port}",
    }
