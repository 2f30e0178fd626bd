"""The k8s modules' connection options, and the helpers the other k8s tests share.

Every test here runs a module through Ansible against the lab's Kubernetes API
stand-in (kmock with controllers, see ``test_lab_k8s.py`` for what it does not
reproduce: graceful deletion, real readiness probes, TLS and authentication).
"""

from __future__ import annotations

import random
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from lab.components import k8s
from lab.core import LOOPBACK, LabContext, free_port, stop_pid

NS = "trm"
APP = "trm-app"
TIMEOUT = 5
SCAN = "trm.maintenance.k8s_log_scan"
DRILL = "trm.maintenance.k8s_failover"
ISOLATE = "trm.maintenance.k8s_isolate"

pytestmark = pytest.mark.lab


class Cluster:
    """A running stand-in and the official client bound to it."""

    def __init__(self, record: dict) -> None:
        self.record = record
        api = config.new_client_from_config(
            config_file=record["kubeconfig"], context=record["context"]
        )
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.policy = client.PolicyV1Api(api)
        self.logs_dir = Path(record["logs_dir"])

    def pods(self) -> list:
        """The application's pods, by name."""
        listing = self.core.list_namespaced_pod(
            NS, label_selector=f"app={APP}", _request_timeout=TIMEOUT
        )
        return sorted(listing.items, key=lambda pod: pod.metadata.name)

    def names(self) -> list:
        """The application's pod names."""
        return [pod.metadata.name for pod in self.pods()]

    def uids(self) -> set:
        """The application's pod uids."""
        return {pod.metadata.uid for pod in self.pods()}

    def deployment(self):
        """The application's Deployment."""
        return self.apps.read_namespaced_deployment(APP, NS, _request_timeout=TIMEOUT)

    def wait_ready(self, count: int, *, timeout: float = 10.0) -> None:
        """Wait until ``count`` pods are Ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = [pod for pod in self.pods() if is_ready(pod)]
            if len(ready) == count and len(self.pods()) == count:
                return
            time.sleep(0.05)
        raise AssertionError(f"{count} ready pods did not show within {timeout} s")

    def connection(self) -> dict:
        """The module options that reach this stand-in."""
        return {"kubeconfig": self.record["kubeconfig"], "context": "trm-lab"}


def create_statefulset(cluster: Cluster, name: str, *, replicas: int = 3) -> list:
    """Create a StatefulSet of ``replicas`` pods and wait until all are Ready."""
    labels = {"app": name}
    body = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "mongo:7.0"}]},
            },
        },
    }
    cluster.apps.create_namespaced_stateful_set(NS, body, _request_timeout=TIMEOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listing = cluster.core.list_namespaced_pod(
            NS, label_selector=f"app={name}", _request_timeout=TIMEOUT
        )
        pods = sorted(listing.items, key=lambda pod: pod.metadata.name)
        if len(pods) == replicas and all(is_ready(pod) for pod in pods):
            return pods
        time.sleep(0.05)
    raise AssertionError(f"StatefulSet {name} did not get {replicas} ready pods")


def replace_pod(cluster: Cluster, *, started: datetime) -> str:
    """Delete the first pod and give its replacement the start time ``started``.

    The replacement stands for a pod that a rollout or a drill made at that time:
    the stand-in serves its log from then on, as a kubelet would.
    """
    before = set(cluster.names())
    cluster.core.delete_namespaced_pod(sorted(before)[0], NS, _request_timeout=TIMEOUT)
    cluster.wait_ready(len(before))
    (name,) = set(cluster.names()) - before
    body = {"status": {"startTime": started.strftime("%Y-%m-%dT%H:%M:%SZ")}}
    cluster.core.patch_namespaced_pod_status(name, NS, body, _request_timeout=TIMEOUT)
    return name


def is_ready(pod) -> bool:
    """Tell whether a pod's Ready condition is True."""
    conditions = pod.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


@pytest.fixture
def start_cluster(tmp_path: Path):
    """Start the k8s lab component with options; stop it afterwards."""
    started: list = []

    def start(**options) -> Cluster:
        state = {"servers": {}, "options": {"k8s": options}}
        record = k8s.start(LabContext(tmp_path / f"k8s{len(started)}"), state)
        started.append(record)
        return Cluster(record)

    yield start
    for record in reversed(started):
        for pid in reversed(record["pids"]):
            stop_pid(pid)


@pytest.fixture
def cluster(start_cluster) -> Cluster:
    """A stand-in whose new pods turn Ready after 0.3 s."""
    return start_cluster(ready_delay=0.3)


# Log lines: what the tests write, and what they expect from it.


def stamp(moment: datetime) -> str:
    """A kubelet-style timestamp: nanoseconds, UTC, ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


@dataclass(frozen=True)
class Line:
    """One planted log line, with what it is, so tests count without regexes."""

    when: datetime
    kind: str
    text: str


KINDS = {
    "request": lambda r: (
        f"INFO GET /api/referrals/ref-{r.randint(10000, 99999)} 200 "
        f"{r.randint(3, 900)}ms request_id={r.getrandbits(32):08x}"
    ),
    "error": lambda r: (
        f"ERROR ValidationError: referral ref-{r.randint(10000, 99999)} "
        f"is missing a field (request_id={r.getrandbits(32):08x})"
    ),
    "timeout": lambda r: (
        f"ERROR RedisTimeoutError: GET session:{r.randint(100, 999)} "
        f"timed out after {r.choice((1000, 2000))}ms"
    ),
    "payment": lambda r: (
        f"WARN Payment failed for invoice inv-{r.randint(10**5, 10**6)}:"
        f" card_declined (amount={r.randint(100, 9999) / 100:.2f} USD)"
    ),
    "login": lambda r: (
        f"WARN Failed login attempt for user u{r.randint(1, 9)}"
        f"@example.org from 203.0.113.{r.randint(2, 254)} (attempt 1)"
    ),
    "secret": lambda r: (
        "ERROR Upstream refused: POST https://svc:hunter2-pw@pay"
        ".example.org/charge password=hunter2-pw token=abc123def456"
    ),
    "quiet": lambda r: "INFO no errors here, error_count=0 and all is well",
}


def plant(
    rng: random.Random,
    *,
    start: datetime,
    end: datetime,
    count: int,
    weights: dict,
) -> list:
    """Lines at random times between ``start`` and ``end``, kinds by weight."""
    kinds = list(weights)
    span = (end - start).total_seconds()
    moments = sorted(
        start + timedelta(seconds=rng.uniform(0, span)) for _unused in range(count)
    )
    picked = rng.choices(kinds, weights=[weights[k] for k in kinds], k=count)
    return [
        Line(moment, kind, KINDS[kind](rng)) for moment, kind in zip(moments, picked)
    ]


def write_lines(path: Path, lines: list) -> None:
    """Write ``<timestamp> <text>`` lines, oldest first."""
    ordered = sorted(lines, key=lambda line: line.when)
    path.write_text("".join(f"{stamp(line.when)} {line.text}\n" for line in ordered))


def count(lines: list, *kinds: str, since: datetime | None = None) -> int:
    """How many lines of the given kinds were planted since ``since``."""
    return sum(
        1
        for line in lines
        if line.kind in kinds and (since is None or line.when >= since)
    )


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(timezone.utc)


# The connection options


def test_kubeconfig_and_context_from_the_environment(ansible, cluster):
    env = {
        "K8S_AUTH_KUBECONFIG": cluster.record["kubeconfig"],
        "K8S_AUTH_CONTEXT": "trm-lab",
    }
    result = ansible.module(SCAN, {"namespace": NS, "name": APP}, env=env)

    assert result["status"] == "unknown", result
    assert result["pods"] == cluster.names()
    assert result["metrics"]["containers"] == 3
    assert [log["state"] for log in result["logs"]] == ["read"] * 3


def test_host_alone_reaches_the_api_without_a_kubeconfig(ansible, cluster, tmp_path):
    write_lines(
        cluster.logs_dir / "trm-app.log",
        [Line(now() - timedelta(minutes=1), "error", "ERROR boom")],
    )
    args = {
        "host": cluster.record["url"],
        "api_key": "lab-token-not-secret",
        "namespace": NS,
        "label_selectors": [f"app={APP}"],
    }
    result = ansible.module(SCAN, args, env={"KUBECONFIG": str(tmp_path / "none")})

    assert result["metrics"]["errors"] == 3
    assert "lab-token-not-secret" not in str(result)


def test_kubeconfig_as_a_mapping(ansible, cluster):
    document = yaml.safe_load(Path(cluster.record["kubeconfig"]).read_text())
    args = {"kubeconfig": document, "namespace": NS, "name": APP}
    result = ansible.module(SCAN, args)

    assert result["pods"] == cluster.names()


def test_a_kubeconfig_mappings_credentials_are_not_in_the_invocation(
    ansible, cluster, tmp_path
):
    document = yaml.safe_load(Path(cluster.record["kubeconfig"]).read_text())
    token = document["users"][0]["user"]["token"]
    # A second user, not used by the context, holding the other kinds of secret.
    document["users"].append(
        {
            "name": "spare",
            "user": {
                "username": "ops",
                "password": "spare-password-91",
                "client-certificate-data": "c3BhcmUtY2VydGlmaWNhdGU=",
                "client-key-data": "c3BhcmUta2V5LWRhdGE=",
            },
        }
    )
    secrets = [
        token,
        "spare-password-91",
        "c3BhcmUtY2VydGlmaWNhdGU=",
        "c3BhcmUta2V5LWRhdGE=",
    ]
    base = {"kubeconfig": document, "namespace": NS, "name": APP}
    calls = {
        SCAN: base,
        DRILL: {**base, "allowed_namespaces": [NS]},
        ISOLATE: {**base, "allowed_namespaces": [NS], "dest": str(tmp_path / "x")},
    }
    # Registered results drop ``invocation``; the output at -vvv shows it.
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [
                {"name": f"Run {module}", module: args, "check_mode": True}
                for module, args in calls.items()
            ],
        }
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    run = ansible.playbook(
        path,
        *("-i", "localhost,", "-c", "local", "-vvv"),
        env={"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
    )

    assert run.rc == 0, run.stdout
    assert run.stdout.count('"invocation": {') == 3
    assert run.stdout.count('"username": "ops"') == 3
    assert run.stdout.count(f'"server": "{cluster.record["url"]}"') == 3
    for secret in secrets:
        assert secret not in run.stdout + run.stderr, secret


def test_an_unreachable_api_server_is_unknown_not_a_failure(ansible):
    url = f"http://{LOOPBACK}:{free_port()}"
    args = {"host": url, "api_key": "x", "namespace": NS, "name": APP}
    for module in (SCAN, DRILL):
        extra = {"allowed_namespaces": [NS]} if module == DRILL else {}
        result = ansible.module(module, {**args, **extra})

        assert result.get("failed") is not True, result
        assert result["status"] == "unknown"
        assert result["checks"][0]["name"] == "api"
        assert result["checks"][0]["message"] == (
            f"Could not reach the Kubernetes API at {url}: connection refused"
        )
        assert result["changed"] is False


def test_a_missing_kubeconfig_and_an_unknown_context_fail_the_task(
    ansible, tmp_path, cluster
):
    missing = ansible.module(
        SCAN, {"kubeconfig": str(tmp_path / "nope"), "namespace": NS, "name": APP}
    )
    wrong = ansible.module(
        SCAN, {**cluster.connection(), "context": "prod", "namespace": NS, "name": APP}
    )

    assert missing["failed"] is True
    assert (
        missing["msg"]
        == f"Option 'kubeconfig' is not a readable file; got '{tmp_path / 'nope'}'"
    )
    assert wrong["failed"] is True
    assert wrong["msg"].startswith("Option 'context' cannot be used: ")
    assert wrong["option"] == "context"


def test_the_stand_in_reads_booleans_as_the_api_server_does(cluster):
    """Older clients send True, not true; the API server takes both."""
    name = cluster.names()[0]
    moment = now() - timedelta(minutes=1)
    write_lines(cluster.logs_dir / "trm-app.log", [Line(moment, "request", "INFO hi")])
    base = f"{cluster.record['url']}/api/v1/namespaces/{NS}/pods/{name}/log"
    answers = {}
    for spelling in ("true", "True", "1", "false"):
        url = f"{base}?timestamps={spelling}"
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            answers[spelling] = answer.read().decode()
    stamped = f"{stamp(moment)} INFO hi\n"
    assert answers == {
        "true": stamped,
        "True": stamped,
        "1": stamped,
        "false": "INFO hi\n",
    }
