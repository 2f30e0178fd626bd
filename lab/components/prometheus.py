"""Lab component ``prometheus``: a real Prometheus scraping the lab's exporters.

It scrapes the lab application over HTTPS and the node exporter every second,
keeps its data under the state folder, and counts as started once every target
has been scraped successfully. Tests add their own exporters through
``state["options"]["prometheus"]["extra_targets"]``: a list of ``{"job": name,
"targets": ["127.0.0.1:port", ...]}`` with optional ``metrics_path`` and ``scheme``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from lab.core import (
    LOOPBACK,
    LabContext,
    LabError,
    free_port,
    pid_alive,
    stop_pid,
    wait_for_port,
)

BINARY = "/usr/bin/prometheus"
NAME = "prometheus"
INTERVAL = "1s"
RETENTION = "1d"
APP_SERVER_NAME = "localhost"
HTTP_TIMEOUT = 2.0
READY_TIMEOUT = 15.0
# Prometheus passes new targets to its scrapers on a five-second tick, so the
# first scrapes land five to six seconds after the start; this leaves room.
SCRAPED_TIMEOUT = 15.0
POLL_SECONDS = 0.1
# rate() and increase() need two samples of a series; waiting for the second
# scrape (one more second) lets the guide's error-rate query answer at once.
MIN_SAMPLES = 2

# Our requests go to loopback only, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def scrape_jobs(state: dict) -> list[dict]:
    """Return the scrape jobs for the servers started so far and the extra targets."""
    servers = state.get("servers", {})
    jobs = []
    if "app" in servers:
        jobs.append(_app_job(servers["app"]))
    if "node_exporter" in servers:
        node = servers["node_exporter"]
        jobs.append(_job("node_exporter", [f"{node['host']}:{node['port']}"]))
    extra = state.get("options", {}).get(NAME, {}).get("extra_targets", [])
    jobs += [_extra_job(target) for target in extra]
    return jobs


def _job(name: str, targets: list[str], **settings: object) -> dict:
    """Return one static scrape job."""
    return {"job_name": name, **settings, "static_configs": [{"targets": targets}]}


def _app_job(app: dict) -> dict:
    """Scrape the application's metrics over HTTPS, trusting the lab CA."""
    tls = {
        "ca_file": app["ca_file"],
        "server_name": app.get("server_name", APP_SERVER_NAME),
    }
    return _job(
        "app",
        [f"{app['host']}:{app['port']}"],
        scheme="https",
        metrics_path=app.get("metrics_path", "/metrics"),
        tls_config=tls,
    )


def _extra_job(target: dict) -> dict:
    """Turn an ``extra_targets`` entry into a scrape job."""
    settings = {k: target[k] for k in ("metrics_path", "scheme") if k in target}
    return _job(target["job"], list(target["targets"]), **settings)


def write_config(ctx: LabContext, jobs: list[dict]) -> Path:
    """Write the Prometheus configuration under the state folder."""
    config = {
        "global": {
            "scrape_interval": INTERVAL,
            "scrape_timeout": INTERVAL,
            "evaluation_interval": INTERVAL,
        },
        "scrape_configs": jobs,
    }
    path = ctx.path(NAME, "prometheus.yml")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def argv(ctx: LabContext, config: Path, port: int, *, binary: str = BINARY) -> list:
    """Return the Prometheus command line."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={ctx.path(NAME, 'data')}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={LOOPBACK}:{port}",
    ]


def get_json(url: str) -> dict:
    """GET ``url`` and return its JSON body."""
    with _OPENER.open(url, timeout=HTTP_TIMEOUT) as answer:
        return json.loads(answer.read())


def wait_ready(url: str, *, pid: int, timeout: float = READY_TIMEOUT) -> None:
    """Wait until Prometheus says it is ready to serve queries."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(pid)
        try:
            with _OPENER.open(f"{url}/-/ready", timeout=HTTP_TIMEOUT) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(POLL_SECONDS)
    raise LabError(f"Prometheus at {url} was not ready within {timeout} seconds")


def scraped_targets(url: str) -> dict[tuple[str, str], tuple[str, int]]:
    """Return ``up`` and the samples of the last minute by (job, instance)."""
    up = _by_target(url, "up")
    counts = _by_target(url, "count_over_time(up[1m])")
    return {key: (value, int(float(counts.get(key, "0")))) for key, value in up.items()}


def _by_target(url: str, promql: str) -> dict[tuple[str, str], str]:
    """Run an instant query and return its values by (job, instance)."""
    query = urllib.parse.urlencode({"query": promql})
    result = get_json(f"{url}/api/v1/query?{query}")["data"]["result"]
    found = {}
    for item in result:
        labels = item["metric"]
        found[(labels.get("job", ""), labels.get("instance", ""))] = item["value"][1]
    return found


def expected_targets(jobs: list[dict]) -> set[tuple[str, str]]:
    """Return every (job, instance) pair the configuration scrapes."""
    return {
        (job["job_name"], target)
        for job in jobs
        for static in job["static_configs"]
        for target in static["targets"]
    }


def wait_scraped(
    url: str, expected: set, *, pid: int, timeout: float = SCRAPED_TIMEOUT
) -> None:
    """Wait until every expected target is up with ``MIN_SAMPLES`` scrapes."""
    deadline = time.monotonic() + timeout
    pending = set(expected)
    while pending and time.monotonic() < deadline:
        _check_alive(pid)
        try:
            up = scraped_targets(url)
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            up = {}
        pending = {target for target in expected if not _scraped(up.get(target))}
        if pending:
            time.sleep(POLL_SECONDS)
    if pending:
        raise LabError(
            f"Prometheus did not scrape {sorted(pending)} within {timeout} seconds: "
            f"{_scrape_errors(url)}"
        )


def _scraped(state: tuple[str, int] | None) -> bool:
    """Tell whether a target is up with enough samples for rate()."""
    return state is not None and state[0] == "1" and state[1] >= MIN_SAMPLES


def _scrape_errors(url: str) -> dict:
    """Return the last scrape error of each target, for a failure message."""
    try:
        targets = get_json(f"{url}/api/v1/targets")["data"]["activeTargets"]
    except (urllib.error.URLError, OSError, KeyError, ValueError) as error:
        return {"targets": f"unavailable ({error})"}
    return {t["scrapeUrl"]: t.get("lastError") or t.get("health") for t in targets}


def _check_alive(pid: int) -> None:
    if not pid_alive(pid):
        raise LabError(f"Prometheus (pid {pid}) exited; see logs/{NAME}.log")


def start(ctx: LabContext, state: dict) -> dict:
    """Start Prometheus, wait for its first scrapes and return its record."""
    options = state.get("options", {}).get(NAME, {})
    jobs = scrape_jobs(state)
    config = write_config(ctx, jobs)
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    binary = options.get("binary", BINARY)
    try:
        pid = ctx.spawn(NAME, argv(ctx, config, port, binary=binary))
    except FileNotFoundError:
        raise LabError(f"{binary} is missing: install the prometheus package") from None
    try:
        wait_for_port(port, pid=pid)
        wait_ready(url, pid=pid)
        wait_scraped(url, expected_targets(jobs), pid=pid)
    except BaseException:
        # The orchestrator only stops what a record lists; a failed start has none.
        stop_pid(pid)
        raise
    return {
        "pids": [pid],
        "host": LOOPBACK,
        "port": port,
        "url": url,
        "config": str(config),
        "jobs": [job["job_name"] for job in jobs],
    }
