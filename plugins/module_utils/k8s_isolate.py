# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Incident isolation: save a workload's logs, then scale it to zero.

The logs are read first because a pod's logs go with the pod: once the
workload is scaled down, its current and previous container logs cannot be read
any more. A manifest next to the logs says what was isolated, when, from how
many replicas, and how to restore it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.checks import (
    CheckResult,
    Finding,
    unknown,
)
from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s import (
    ApiError,
    K8sError,
    KubeClient,
    connection_from_params,
    container_names,
    pod_name,
    pod_ready,
    pod_uid,
    terminating,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_gates import (
    desired_replicas,
    workload_name,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s_targets import (
    TargetSpec,
    check_allowed,
    find_workload,
    parse_target,
    workload_selector,
)
from ansible_collections.trm.maintenance.plugins.module_utils.thresholds import (
    CRITICAL,
    OK,
    WARNING,
)

SUBJECT = "Incident isolation"
MANIFEST = "isolation.json"
ANNOTATION_PREFIX = "trm.maintenance/"
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class IsolationSettings:
    """Where the logs go and what the workload is scaled to."""

    dest: str
    replicas: int
    previous: bool
    timeout: float
    poll: float
    annotate: bool


def parse_settings(params: dict) -> IsolationSettings:
    """Check the isolation's options."""
    dest = params.get("dest")
    if not dest:
        raise OptionError("dest", dest, "must be a folder for the saved logs")
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise OptionError("dest", dest, "exists and is not a folder")
    replicas = params.get("replicas")
    if replicas is None or replicas < 0:
        raise OptionError("replicas", replicas, "must be 0 or more")
    for option in ("timeout", "poll_interval"):
        if (params.get(option) or 0) <= 0:
            raise OptionError(option, params.get(option), "must be a number above zero")
    return IsolationSettings(
        dest=os.path.abspath(dest),
        replicas=replicas,
        previous=bool(params.get("previous")),
        timeout=float(params["timeout"]),
        poll=float(params["poll_interval"]),
        annotate=bool(params.get("annotate")),
    )


def log_path(dest: str, pod: str, container: str, *, previous: bool) -> str:
    """Where one container's log is saved."""
    suffix = ".previous.log" if previous else ".log"
    return os.path.join(dest, pod, f"{container}{suffix}")


def planned_logs(pods: list, settings: IsolationSettings) -> list:
    """Every log the isolation saves: each container's, and its previous one's."""
    planned = []
    for pod in pods:
        for container in container_names(pod):
            for previous in (False, True) if settings.previous else (False,):
                path = log_path(
                    settings.dest, pod_name(pod), container, previous=previous
                )
                planned.append(
                    {
                        "pod": pod_name(pod),
                        "container": container,
                        "previous": previous,
                        "path": path,
                    }
                )
    return planned


def save_log(client: KubeClient, namespace: str, entry: dict) -> dict:
    """Stream one container log into its file; note its size and digest."""
    record = {**entry, "bytes": 0, "sha256": None, "saved": False, "error": None}
    try:
        response = client.open_log(
            namespace,
            entry["pod"],
            container=entry["container"],
            previous=entry["previous"],
        )
    except ApiError as error:
        if error.status == 400 and entry["previous"]:
            record["error"] = "no previous container"
        else:
            record["error"] = str(error)
        return record
    except K8sError as error:
        record["error"] = str(error)
        return record
    try:
        record.update(_write_stream(response, entry["path"]))
    except (K8sError, OSError) as error:
        record["error"] = f"could not save the log: {error}"
    return record


def _write_stream(response: Any, path: str) -> dict:
    """Write a response body to ``path`` (owner only), atomically."""
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in response.stream(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    finally:
        response.release_conn()
    return {"bytes": size, "sha256": digest.hexdigest(), "saved": True}


def wait_gone(
    client: KubeClient, namespace: str, selector: str, settings: IsolationSettings
) -> tuple:
    """Poll until no pod is left; return (pods left, seconds waited)."""
    began = time.monotonic()
    deadline = began + settings.timeout
    while True:
        pods = client.list_pods(namespace, selector)
        if not pods or time.monotonic() >= deadline:
            return pods, time.monotonic() - began
        time.sleep(settings.poll)


def write_manifest(settings: IsolationSettings, manifest: dict) -> str:
    """Write the manifest next to the logs, readable by the owner only."""
    os.makedirs(settings.dest, mode=0o700, exist_ok=True)
    path = os.path.join(settings.dest, MANIFEST)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=2, sort_keys=True)
    return path


def pod_record(pod: dict) -> dict:
    """What the manifest keeps of a pod."""
    spec = pod.get("spec") or {}
    return {
        "name": pod_name(pod),
        "uid": pod_uid(pod),
        "node": spec.get("nodeName"),
        "ready": pod_ready(pod),
        "images": [c.get("image") for c in spec.get("containers") or []],
    }


# The module's work


def run_k8s_isolate(params: dict, *, check_mode: bool) -> dict:
    """Save the logs and scale the workload down (or plan it in check mode)."""
    spec = parse_target(params)
    check_allowed(spec.namespace, params.get("allowed_namespaces"))
    settings = parse_settings(params)
    conn = connection_from_params(params)
    result = CheckResult()
    extra = {
        "plan": {},
        "replicas_before": None,
        "replicas": None,
        "saved_logs": [],
        "manifest": None,
        "pods": [],
    }
    changed = False
    try:
        client = KubeClient(conn)
        try:
            changed = _isolate(
                client, spec, settings, result, extra, check_mode=check_mode
            )
        finally:
            client.close()
    except K8sError as error:
        result.add(
            unknown(
                "api",
                str(error),
                action="Isolate by hand now (kubectl scale --replicas=0) and check "
                "the API server",
            )
        )
    return {**result.to_dict(SUBJECT), **extra, "changed": changed}


@dataclass(frozen=True)
class Scene:
    """What the isolation found: the workload, its pods and the logs to save."""

    workload: dict
    pods: list
    planned: list

    @property
    def replicas(self) -> int:
        """The workload's replicas before the isolation."""
        return desired_replicas(self.workload)


def _isolate(
    client: KubeClient,
    spec: TargetSpec,
    settings: IsolationSettings,
    result: CheckResult,
    extra: dict,
    *,
    check_mode: bool,
) -> bool:
    """Save the logs, scale down and wait (or plan it); True when it changed."""
    workload = find_workload(client, spec)
    workload.setdefault("kind", spec.kind)
    pods = client.list_pods(spec.namespace, workload_selector(workload))
    scene = Scene(workload, pods, planned_logs(pods, settings))
    extra.update(
        replicas_before=scene.replicas,
        replicas=scene.replicas,
        pods=[pod_name(p) for p in pods],
        plan=_plan(scene, settings),
    )
    needed = scene.replicas != settings.replicas or bool(
        pods and settings.replicas == 0
    )
    if check_mode or not needed:
        result.add(Finding("plan", OK, _plan_message(scene, settings, needed=needed)))
        return needed
    _act(client, scene, settings, result, extra)
    return True


def _act(
    client: KubeClient,
    scene: Scene,
    settings: IsolationSettings,
    result: CheckResult,
    extra: dict,
) -> None:
    """Save every log, scale the workload, wait for its pods, write the manifest."""
    namespace = scene.workload["metadata"]["namespace"]
    saved = [save_log(client, namespace, entry) for entry in scene.planned]
    extra["saved_logs"] = saved
    result.add(_saved_finding(saved, settings))
    started = _iso_now()
    scaled = scene.replicas == settings.replicas
    if not scaled:
        finding = _scale(client, scene.workload, settings, started)
        result.add(finding)
        scaled = finding.status == OK
    extra["replicas"] = settings.replicas if scaled else scene.replicas
    left, waited = [], 0.0
    if scaled and settings.replicas == 0:
        selector = workload_selector(scene.workload)
        left, waited = wait_gone(client, namespace, selector, settings)
        result.add(_gone_finding(scene.workload, left, waited, settings))
    result.metrics.update(
        replicas_before=scene.replicas,
        logs_saved=sum(1 for item in saved if item["saved"]),
        bytes_saved=sum(item["bytes"] for item in saved),
        seconds_to_isolate=round(waited, 3),
    )
    manifest = _manifest(scene, saved, settings, started)
    extra["manifest"] = write_manifest(settings, manifest)


def _scale(
    client: KubeClient, workload: dict, settings: IsolationSettings, started: str
) -> Finding:
    """Record the isolation on the workload, then scale it."""
    meta = workload["metadata"]
    kind, namespace, name = workload["kind"], meta["namespace"], meta["name"]
    before = desired_replicas(workload)
    annotations = {
        f"{ANNOTATION_PREFIX}isolated-at": started,
        f"{ANNOTATION_PREFIX}replicas-before": str(before),
    }
    try:
        if settings.annotate:
            client.annotate(kind, namespace, name, annotations)
        client.scale(kind, namespace, name, settings.replicas)
    except K8sError as error:
        return Finding(
            "scaled",
            CRITICAL,
            f"Scaling {workload_name(workload)} to {settings.replicas} failed: {error}",
            action="Scale it down by hand now (kubectl scale --replicas=0)",
        )
    return Finding(
        "scaled",
        OK,
        f"Scaled {workload_name(workload)} from {before} to {settings.replicas} "
        "replicas",
        value=settings.replicas,
    )


def _saved_finding(saved: list, settings: IsolationSettings) -> Finding:
    current = [s for s in saved if not s["previous"]]
    failed = [s for s in current if not s["saved"]]
    previous = [s for s in saved if s["previous"] and s["saved"]]
    message = (
        f"Saved {len(current) - len(failed)} of {len(current)} container logs and "
        f"{len(previous)} previous ones to {settings.dest}"
    )
    if not failed:
        return Finding("logs_saved", OK, message, value=len(current) - len(failed))
    reasons = "; ".join(
        f"{s['pod']}/{s['container']}: {s['error']}" for s in failed[:3]
    )
    return Finding(
        "logs_saved",
        WARNING,
        f"{message}; not saved: {reasons}",
        value=len(current) - len(failed),
        action="Collect the missing logs from the log store before they expire",
    )


def _gone_finding(
    workload: dict, left: list, waited: float, settings: IsolationSettings
) -> Finding:
    name = workload_name(workload)
    if settings.replicas != 0:
        return Finding(
            "pods_gone", OK, f"{name} keeps {settings.replicas} replicas as asked"
        )
    if not left:
        return Finding(
            "pods_gone",
            OK,
            f"No pod of {name} is left ({waited:.1f} s after scaling)",
            value=round(waited, 3),
            unit="s",
        )
    running = [p for p in left if not terminating(p)]
    status = CRITICAL if running else WARNING
    names = ", ".join(pod_name(p) for p in left)
    return Finding(
        "pods_gone",
        status,
        f"{len(left)} pods of {name} are still there after {settings.timeout:g} s: "
        f"{names}",
        action="Delete the remaining pods by hand and find out what keeps them",
    )


def _plan(scene: Scene, settings: IsolationSettings) -> dict:
    meta = scene.workload["metadata"]
    return {
        "workload": {
            "kind": scene.workload["kind"],
            "namespace": meta["namespace"],
            "name": meta["name"],
        },
        "replicas_before": scene.replicas,
        "replicas_after": settings.replicas,
        "pods": [pod_record(p) for p in scene.pods],
        "logs": [entry["path"] for entry in scene.planned],
        "dest": settings.dest,
    }


def _plan_message(scene: Scene, settings: IsolationSettings, *, needed: bool) -> str:
    name = workload_name(scene.workload)
    if not needed:
        return (
            f"{name} is already at {settings.replicas} replicas with no pod left; "
            "nothing to isolate"
        )
    return (
        f"Would save up to {len(scene.planned)} logs of {len(scene.pods)} pods to "
        f"{settings.dest}, then scale {name} from {scene.replicas} to "
        f"{settings.replicas} replicas"
    )


def _manifest(
    scene: Scene, saved: list, settings: IsolationSettings, started: str
) -> dict:
    meta = scene.workload["metadata"]
    target = f"{scene.workload['kind'].lower()}/{meta['name']}"
    restore = (
        f"kubectl -n {meta['namespace']} scale {target} --replicas={scene.replicas}"
    )
    return {
        "workload": {
            "kind": scene.workload["kind"],
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta.get("uid"),
        },
        "isolated_at": started,
        "replicas_before": scene.replicas,
        "replicas_after": settings.replicas,
        "pods": [pod_record(p) for p in scene.pods],
        "logs": saved,
        "restore": restore,
    }


def _iso_now() -> str:
    return (
        datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    )
