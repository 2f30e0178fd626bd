"""Redis: the real redis-server from the OS packages, with a password."""

from __future__ import annotations

import secrets
import shutil

from lab.core import LOOPBACK, LabContext, LabError, free_port, wait_for_port


def redis_server_binary() -> str:
    """Return the path of redis-server, or explain how to install it."""
    binary = shutil.which("redis-server") or shutil.which(
        "redis-server", path="/usr/bin:/usr/sbin"
    )
    if not binary:
        raise LabError("redis-server is not installed; run 'make lab-deps'")
    return binary


def start(ctx: LabContext, state: dict) -> dict:
    """Start redis-server on a free loopback port with a random password."""
    port = free_port()
    password = secrets.token_urlsafe(18)
    data_dir = ctx.path("redis", "data")
    data_dir.mkdir(exist_ok=True)
    config = ctx.path("redis", "redis.conf")
    # The password goes in a config file, not argv, so `ps` does not show it.
    config.write_text(
        f"bind {LOOPBACK}\nport {port}\nrequirepass {password}\n"
        f"dir {data_dir}\nsave ''\nappendonly no\ndaemonize no\n"
        "protected-mode yes\n"
    )
    config.chmod(0o600)
    pid = ctx.spawn("redis", [redis_server_binary(), str(config)])
    wait_for_port(port, pid=pid)
    return {
        "pids": [pid],
        "host": LOOPBACK,
        "port": port,
        "password": password,
        "url": f"redis://{LOOPBACK}:{port}/0",
    }
