"""Kubernetes API stand-in for the lab: kmock's emulator plus a cluster's controllers.

Serves namespace ``trm`` with the ``trm-app`` Deployment, its ReplicaSet and pods,
a PodDisruptionBudget and a Service over plain HTTP on loopback. On top of kmock's
in-memory object store it adds what a real cluster does around those objects:
label and field selectors, pagination, merge and JSON patches, the scale and
eviction subresources, pod logs read from files, and controllers that replace
deleted pods, follow ``spec.replicas`` and keep the Deployment, ReplicaSet and
PodDisruptionBudget status in step with the pods. StatefulSets that clients
create get their ordinal pods (``<name>-0``, ``<name>-1``, ...), one at a time
unless ``podManagementPolicy`` is ``Parallel``, recreated under the same name
when deleted.

Run it with ``python -m lab.k8s_server --port N --logs-dir DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import contextlib
import copy
import datetime
import functools
import hashlib
import itertools
import json
import math
import random
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock

from lab.core import LOOPBACK

NAMESPACE = "trm"
APP = "trm-app"
CONTAINER = "app"
IMAGE = "registry.trm.internal/trm/referral-api:2.14.3"
NODE = "lab-node-1"
NODE_IP = "10.0.0.11"
# Kubernetes builds generated name suffixes from this alphabet (no vowels, no 0/1/3).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
CHUNK_BYTES = 64 * 1024
CONTROLLER_PERIOD = 0.1
JSON = "application/json"

PODS = kmock.resource("v1/pods")
SERVICES = kmock.resource("v1/services")
NAMESPACES = kmock.resource("v1/namespaces")
DEPLOYMENTS = kmock.resource("apps/v1/deployments")
REPLICASETS = kmock.resource("apps/v1/replicasets")
STATEFULSETS = kmock.resource("apps/v1/statefulsets")
PDBS = kmock.resource("policy/v1/poddisruptionbudgets")

KINDS = {
    PODS: ("v1", "Pod"),
    SERVICES: ("v1", "Service"),
    DEPLOYMENTS: ("apps/v1", "Deployment"),
    REPLICASETS: ("apps/v1", "ReplicaSet"),
    STATEFULSETS: ("apps/v1", "StatefulSet"),
    PDBS: ("policy/v1", "PodDisruptionBudget"),
}
GENERATION_KINDS = (DEPLOYMENTS, REPLICASETS, STATEFULSETS, PDBS)
SCALABLE = (DEPLOYMENTS, REPLICASETS, STATEFULSETS)
VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
POD_FIELDS = ("spec.nodeName", "spec.restartPolicy", "status.phase", "status.podIP")

NAMESPACE_PATH = re.compile(r"/api/v1/namespaces(?:/(?P<name>[^/]+))?/?")
SET_TERM = re.compile(r"\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*")
EQUALITY_TERM = re.compile(r"\s*(!?)([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*))?\s*")
FIELD_TERM = re.compile(r"\s*([\w.]+)\s*(==|=|!=)\s*([^,]*?)\s*")
LOG_LINE = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z ")


# --- Time and names -------------------------------------------------------------


def utcnow() -> datetime.datetime:
    """Return the current time in UTC."""
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(moment: datetime.datetime) -> str:
    """Format a time the way the API server does: seconds, UTC, ``Z``."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime.datetime:
    """Parse an RFC 3339 time as the API server accepts it in query parameters."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def to_ns(moment: datetime.datetime) -> int:
    """Return nanoseconds since the epoch."""
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def random_suffix(length: int = 5) -> str:
    """Return a generated-name suffix like the API server's."""
    return "".join(random.choices(NAME_ALPHABET, k=length))


def template_hash(template: Mapping[str, Any]) -> str:
    """Return a stable ``pod-template-hash`` for a pod template."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    letters = []
    for _unused in range(10):
        number, index = divmod(number, len(NAME_ALPHABET))
        letters.append(NAME_ALPHABET[index])
    return "".join(letters)


def scaled(value: int | str, total: int, *, round_up: bool) -> int:
    """Resolve an int-or-percent field (``maxSurge``, ``minAvailable``)."""
    if isinstance(value, int):
        return value
    fraction = int(str(value).rstrip("%")) * total / 100
    return math.ceil(fraction) if round_up else math.floor(fraction)


# --- Status answers -------------------------------------------------------------


def reply(payload: Any, *, status: int = 200, content_type: str = JSON) -> Any:
    """Answer with an explicit status and type.

    kmock keeps the status and headers of a reaction between requests, so every
    answer of our reactions states both.
    """
    return kmock.Response(
        status=status, headers={"Content-Type": content_type}, payload=payload
    )


def status_body(code: int, reason: str, message: str, details: Any = None) -> dict:
    """Build a ``Status`` object as the API server returns for failures."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def qualified(resource: Any) -> str:
    """Return ``plural.group`` (or the plural alone for the core group)."""
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


def object_details(resource: Any, name: str) -> dict:
    """Return the ``details`` of a Status that names one object."""
    details = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    return details


def not_found_body(resource: Any, name: str) -> dict:
    """Return the Status of a missing object."""
    message = f'{qualified(resource)} "{name}" not found'
    return status_body(404, "NotFound", message, object_details(resource, name))


class Refusal(Exception):
    """A request the API server refuses, with the Status it answers."""

    def __init__(
        self, code: int, reason: str, message: str, *, details: Any = None
    ) -> None:
        super().__init__(message)
        self.body = status_body(code, reason, message, details)

    @property
    def response(self) -> Any:
        """The kmock answer carrying this refusal."""
        return reply(self.body, status=self.body["code"])


def answers_refusals(method: Callable) -> Callable:
    """Turn a ``Refusal`` raised by a reaction into its Status answer."""

    @functools.wraps(method)
    async def reaction(self: Any, request: Any) -> Any:
        try:
            return await method(self, request)
        except Refusal as refusal:
            return refusal.response

    return reaction


def bad_request(message: str) -> Refusal:
    """Return a 400 refusal."""
    return Refusal(400, "BadRequest", message)


# --- Selectors ------------------------------------------------------------------


Requirement = Callable[[Mapping[str, Any]], bool]


def split_terms(text: str) -> list[str]:
    """Split a selector on the commas that are not inside parentheses."""
    return [term for term in re.split(r",(?![^()]*\))", text) if term.strip()]


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse a ``labelSelector`` query into requirements on a label mapping."""
    return [label_requirement(term) for term in split_terms(text)]


def label_requirement(term: str) -> Requirement:
    """Parse one term: ``k=v``, ``k==v``, ``k!=v``, ``k in (..)``, ``k notin (..)``,
    ``k``, ``!k``."""
    found = SET_TERM.fullmatch(term)
    if found:
        key, values = found[1], {value.strip() for value in found[3].split(",")}
        if found[2] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    found = EQUALITY_TERM.fullmatch(term)
    if not found or (found[1] and found[3]):
        raise bad_request(f"unable to parse requirement: {term.strip()!r}")
    negated, key, operator, value = found.groups()
    if operator is None:
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    if operator == "!=":
        return lambda labels: labels.get(key) != value
    return lambda labels: labels.get(key) == value


def parse_field_selector(resource: Any, text: str) -> list[Requirement]:
    """Parse a ``fieldSelector`` query into requirements on a whole object."""
    supported = ("metadata.name", "metadata.namespace")
    supported += POD_FIELDS if resource == PODS else ()
    requirements = []
    for term in split_terms(text):
        found = FIELD_TERM.fullmatch(term)
        if not found or found[1] not in supported:
            raise bad_request(f"field label not supported: {term.strip()}")
        requirements.append(field_requirement(*found.groups()))
    return requirements


def field_requirement(path: str, operator: str, value: str) -> Requirement:
    """Return a requirement comparing a dotted field of an object with a value."""

    def actual(obj: Mapping[str, Any]) -> str:
        for part in path.split("."):
            obj = obj.get(part) or {}
        return obj if isinstance(obj, str) else ""

    if operator == "!=":
        return lambda obj: actual(obj) != value
    return lambda obj: actual(obj) == value


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Tell whether labels satisfy a LabelSelector object."""
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in wanted.items()):
        return False
    expressions = selector.get("matchExpressions") or []
    return all(expression_matches(item, labels) for item in expressions)


def expression_matches(
    expression: Mapping[str, Any], labels: Mapping[str, str]
) -> bool:
    """Tell whether labels satisfy one ``matchExpressions`` item."""
    key, values = expression["key"], expression.get("values") or []
    outcomes = {
        "In": labels.get(key) in values,
        "NotIn": labels.get(key) not in values,
        "Exists": key in labels,
        "DoesNotExist": key not in labels,
    }
    return outcomes.get(expression["operator"], False)


def selector_text(selector: Mapping[str, Any]) -> str:
    """Render a LabelSelector's ``matchLabels`` as a query string."""
    labels = selector.get("matchLabels") or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


# --- Pod logs -------------------------------------------------------------------


def time_key(moment_ns: int) -> bytes:
    """Turn nanoseconds since the epoch into the comparable key of a log timestamp."""
    seconds, nanos = divmod(moment_ns, 10**9)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}".encode()


@dataclass(frozen=True)
class LogQuery:
    """Which file to read and which of its lines to answer with."""

    path: Path | None
    since: bytes
    timestamps: bool = False
    tail: int | None = None
    limit_bytes: int | None = None


def matching_lines(query: LogQuery) -> Iterator[bytes]:
    """Yield the lines of the log file at or after ``query.since``, as answered."""
    if query.path is None or not query.path.is_file():
        return
    with query.path.open("rb") as lines:
        for line in lines:
            found = LOG_LINE.match(line)
            if not found:
                continue
            key = found[1] + b"." + (found[2] or b"").ljust(9, b"0")
            if key < query.since:
                continue
            text = line if query.timestamps else line[found.end() :]
            yield text if text.endswith(b"\n") else text + b"\n"


def take_chunk(lines: Iterator[bytes], size: int) -> bytes:
    """Join the next lines up to about ``size`` bytes."""
    parts, total = [], 0
    for line in lines:
        parts.append(line)
        total += len(line)
        if total >= size:
            break
    return b"".join(parts)


async def stream_log(query: LogQuery) -> AsyncIterator[bytes]:
    """Stream the answer to a log request in chunks, never the whole file at once."""
    # An empty first chunk starts the answer even when no line matches: kmock
    # passes the request on to the next reaction when a stream yields nothing.
    yield b""
    source = matching_lines(query)
    lines: Iterator[bytes] = source
    try:
        # File reads block, so they run in a worker thread, one chunk at a time.
        if query.tail is not None:
            lines = iter(await asyncio.to_thread(collections.deque, source, query.tail))
        budget = query.limit_bytes
        while chunk := await asyncio.to_thread(take_chunk, lines, CHUNK_BYTES):
            if budget is not None:
                chunk, budget = chunk[:budget], budget - len(chunk[:budget])
            yield chunk
            if budget == 0:
                return
    finally:
        source.close()


def query_int(params: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    """Read an integer query parameter, refusing values below ``minimum``."""
    if name not in params:
        return None
    try:
        value = int(params[name])
    except ValueError:
        raise bad_request(f"{name}: invalid value {params[name]!r}") from None
    if value < minimum:
        raise bad_request(f"{name}: Invalid value: {value}: must be at least {minimum}")
    return value


def query_bool(params: Mapping[str, str], name: str) -> bool:
    """Read a boolean query parameter the way the API server's Go code does."""
    value = params.get(name, "false")
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise bad_request(f"{name}: invalid value {value!r}")


def since_ns(params: Mapping[str, str]) -> int | None:
    """Return the start of the window asked by ``sinceSeconds`` or ``sinceTime``."""
    if "sinceSeconds" in params and "sinceTime" in params:
        raise bad_request(
            "at most one of `sinceTime` or `sinceSeconds` may be specified"
        )
    seconds = query_int(params, "sinceSeconds", minimum=1)
    if seconds is not None:
        return time.time_ns() - seconds * 10**9
    if "sinceTime" not in params:
        return None
    try:
        return to_ns(parse_time(params["sinceTime"]))
    except ValueError:
        raise bad_request(f"sinceTime: invalid value {params['sinceTime']!r}") from None


# --- Objects --------------------------------------------------------------------


def metadata(name: str, created: datetime.datetime, **extra: Any) -> dict:
    """Return object metadata as the API server fills it in."""
    return {
        "name": name,
        "namespace": NAMESPACE,
        "uid": str(uuid.uuid4()),
        "creationTimestamp": rfc3339(created),
        **extra,
    }


def owner_reference(owner: Mapping[str, Any]) -> dict:
    """Return a controller ownerReference pointing at ``owner``."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def container_spec() -> dict:
    """Return the application container of the pod template."""
    return {
        "name": CONTAINER,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def pod_template() -> dict:
    """Return the Deployment's pod template."""
    return {
        "metadata": {"labels": {"app": APP}},
        "spec": {
            "containers": [container_spec()],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "securityContext": {},
        },
    }


def condition(
    kind: str,
    status: str,
    moment: str,
    *,
    reason: str | None = None,
    message: str | None = None,
    previous: list[dict] | None = None,
) -> dict:
    """Build a condition, keeping its transition time while its status holds."""
    old = next((item for item in previous or [] if item["type"] == kind), None)
    kept = old is not None and old["status"] == status
    result = {"type": kind, "status": status}
    if reason is not None:
        result["reason"] = reason
    if message is not None:
        result["message"] = message
    result["lastTransitionTime"] = old["lastTransitionTime"] if kept else moment
    return result


def deployment_object(created: datetime.datetime, replicas: int) -> dict:
    """Return the ``trm-app`` Deployment as first applied."""
    annotations = {"deployment.kubernetes.io/revision": "1"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(
            APP, created, generation=1, labels={"app": APP}, annotations=annotations
        ),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": APP}},
            "template": pod_template(),
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {},
    }


def replicaset_object(
    deployment: Mapping[str, Any], created: datetime.datetime
) -> dict:
    """Return the ReplicaSet the Deployment controller makes for its template."""
    template = copy.deepcopy(deployment["spec"]["template"])
    pod_hash = template_hash(template)
    template["metadata"]["labels"]["pod-template-hash"] = pod_hash
    selector = copy.deepcopy(deployment["spec"]["selector"])
    selector["matchLabels"]["pod-template-hash"] = pod_hash
    name = f"{deployment['metadata']['name']}-{pod_hash}"
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": metadata(
            name,
            created,
            generation=1,
            labels=dict(template["metadata"]["labels"]),
            annotations={"deployment.kubernetes.io/revision": "1"},
            ownerReferences=[owner_reference(deployment)],
        ),
        "spec": {
            "replicas": deployment["spec"].get("replicas", 1),
            "selector": selector,
            "template": template,
        },
        "status": {"replicas": 0},
    }


def pdb_object(created: datetime.datetime) -> dict:
    """Return the ``trm-app`` PodDisruptionBudget (minAvailable 2)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(APP, created, generation=1, labels={"app": APP}),
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": APP}}},
        "status": {},
    }


def service_object(created: datetime.datetime) -> dict:
    """Return the ``trm-app`` ClusterIP Service."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(APP, created, labels={"app": APP}),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.118.27",
            "clusterIPs": ["10.96.118.27"],
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
            ],
            "selector": {"app": APP},
            "sessionAffinity": "None",
        },
        "status": {"loadBalancer": {}},
    }


def namespace_object(name: str, created: datetime.datetime) -> dict:
    """Return a Namespace object."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": rfc3339(created),
            "labels": {"kubernetes.io/metadata.name": name},
            "resourceVersion": "1",
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def pending_status(started: str) -> dict:
    """Return the status of a scheduled pod whose container is being created."""
    unready = "containers with unready status: [app]"
    waiting = {"waiting": {"reason": "ContainerCreating"}}
    return {
        "phase": "Pending",
        "hostIP": NODE_IP,
        "startTime": started,
        "qosClass": "Burstable",
        "conditions": [
            condition("PodScheduled", "True", started),
            condition("Initialized", "True", started),
            condition(
                "ContainersReady",
                "False",
                started,
                reason="ContainersNotReady",
                message=unready,
            ),
            condition(
                "Ready", "False", started, reason="ContainersNotReady", message=unready
            ),
        ],
        "containerStatuses": [container_status(ready=False, state=waiting)],
    }


def running_status(started: str, ready_since: str, pod_ip: str) -> dict:
    """Return the status of a running pod whose container passed its probe."""
    running = {"running": {"startedAt": started}}
    return {
        "phase": "Running",
        "hostIP": NODE_IP,
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": started,
        "qosClass": "Burstable",
        "conditions": [
            condition("PodScheduled", "True", started),
            condition("Initialized", "True", started),
            condition("ContainersReady", "True", ready_since),
            condition("Ready", "True", ready_since),
        ],
        "containerStatuses": [container_status(ready=True, state=running)],
    }


def container_status(*, ready: bool, state: dict) -> dict:
    """Return the status of the application container."""
    status = {
        "name": CONTAINER,
        "image": IMAGE,
        "imageID": "",
        "ready": ready,
        "started": ready,
        "restartCount": 0,
        "state": state,
    }
    if ready:
        status["imageID"] = f"{IMAGE.split(':', maxsplit=1)[0]}@sha256:{'7e' * 32}"
        status["containerID"] = f"containerd://{uuid.uuid4().hex}{uuid.uuid4().hex}"
    return status


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """Tell whether a pod's Ready condition is True."""
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def waiting_reason(pod: Mapping[str, Any], container: str) -> str | None:
    """Return why a container has not started yet, or None when it runs."""
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status["name"] == container and "waiting" in status.get("state", {}):
            return status["state"]["waiting"].get("reason", "ContainerCreating")
    return None


def scale_of(resource: Any, owner: Mapping[str, Any]) -> dict:
    """Return the ``autoscaling/v1`` Scale of a Deployment or ReplicaSet."""
    meta = owner["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: meta[key]
            for key in (
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "creationTimestamp",
            )
        },
        "spec": {"replicas": owner["spec"].get("replicas", 1)},
        "status": {
            "replicas": owner.get("status", {}).get("replicas", 0),
            "selector": selector_text(owner["spec"].get("selector") or {}),
        },
    }


def omit_zero(fields: Mapping[str, int]) -> dict:
    """Drop zero counts, as the API server omits empty status fields."""
    return {key: value for key, value in fields.items() if value}


# --- Changes to objects ---------------------------------------------------------


def apply_patch(current: dict, patch: Any, content_type: str) -> dict:
    """Apply a JSON patch or a merge patch to a copy of ``current``."""
    if "apply-patch" in content_type:
        raise Refusal(
            415, "UnsupportedMediaType", "server-side apply is not supported here"
        )
    if "json-patch" in content_type:
        if not isinstance(patch, list):
            raise bad_request("a JSON patch must be a list of operations")
        try:
            return jsonpatch.apply_patch(current, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
            raise Refusal(422, "Invalid", f"the JSON patch failed: {error}") from None
    if not isinstance(patch, dict):
        raise bad_request("a merge patch must be a JSON object")
    merged = kmock.Object(copy.deepcopy(current))
    try:
        merged.patch(patch)
    except ValueError as error:
        raise Refusal(422, "Invalid", f"the merge patch failed: {error}") from None
    return merged.raw


SERVER_FIELDS = ("name", "namespace", "uid", "creationTimestamp", "generation")


def keep_server_fields(current: dict, updated: dict, *, status_only: bool) -> dict:
    """Keep what clients cannot change: identity, and status or all but status."""
    if status_only:
        result = copy.deepcopy(current)
        result["status"] = updated.get("status") or {}
        return result
    result = copy.deepcopy(updated)
    meta = result.setdefault("metadata", {})
    meta.update(
        {k: current["metadata"][k] for k in SERVER_FIELDS if k in current["metadata"]}
    )
    result["apiVersion"], result["kind"] = current["apiVersion"], current["kind"]
    if "status" in current:
        result["status"] = copy.deepcopy(current["status"])
    return result


def check_replicas(resource: Any, obj: Mapping[str, Any]) -> None:
    """Refuse a negative or non-integer ``spec.replicas`` like the API's validation."""
    replicas = obj.get("spec", {}).get("replicas", 1)
    valid = isinstance(replicas, int) and not isinstance(replicas, bool)
    if resource not in SCALABLE or (valid and replicas >= 0):
        return
    name, kind = obj["metadata"]["name"], KINDS[resource][1]
    reason = "must be greater than or equal to 0"
    message = f'{kind}.{resource.group} "{name}" is invalid: spec.replicas: '
    cause = {"reason": "FieldValueInvalid", "field": "spec.replicas"}
    cause["message"] = f"Invalid value: {replicas}: {reason}"
    details = {"name": name, "group": resource.group, "kind": kind, "causes": [cause]}
    raise Refusal(422, "Invalid", message + cause["message"], details=details)


def decode_continue(token: str | None) -> int:
    """Return the list offset a ``continue`` token stands for."""
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token))["offset"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise bad_request(f"continue key is not valid: {token!r}") from None


def encode_continue(offset: int) -> str:
    """Return an opaque ``continue`` token for a list offset."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def dry_run(request: Any, body: Mapping[str, Any]) -> bool:
    """Tell whether an eviction asks for a dry run."""
    options = body.get("deleteOptions") or {}
    return request.params.get("dryRun") == "All" or "All" in (
        options.get("dryRun") or []
    )


# --- Controllers ----------------------------------------------------------------


class Controllers:
    """What a cluster's controllers do for the lab's objects.

    The ReplicaSet controller keeps one pod per replica, the Deployment controller
    reports its rollout, the disruption controller computes each budget, the
    garbage collector removes objects whose owner is gone, and the kubelet turns a
    new pod Ready after ``ready_delay`` seconds (never, with ``never_ready``).
    """

    def __init__(self, cluster: LabCluster, *, ready_delay: float, never_ready: bool):
        self.cluster = cluster
        self.ready_delay = ready_delay
        self.never_ready = never_ready
        self.ready_at: dict[str, float] = {}
        self.started_ns: dict[str, int] = {}
        self.addresses = itertools.count(12)

    def reconcile(self) -> None:
        """Bring every object's state in line with the others, once."""
        for deployment in self.cluster.objects_of(DEPLOYMENTS):
            self.sync_deployment(deployment)
        for statefulset in self.cluster.objects_of(STATEFULSETS):
            self.sync_statefulset(statefulset)
        self.collect_garbage()
        for budget in self.cluster.objects_of(PDBS):
            self.cluster.update_status(PDBS, budget, self.budget_status(budget))

    def sync_deployment(self, deployment: dict) -> None:
        """Scale the Deployment's ReplicaSet, its pods, and report both statuses."""
        desired = deployment["spec"].get("replicas", 1)
        replicaset = self.replicaset_for(deployment)
        if replicaset["spec"].get("replicas") != desired:
            replicaset = self.rescale_replicaset(replicaset, desired)
        pods = self.sync_pods(replicaset, desired)
        ready = sum(pod_ready(pod) for pod in pods)
        rs_status = replicaset_status(replicaset, len(pods), ready)
        self.cluster.update_status(REPLICASETS, replicaset, rs_status)
        status = self.deployment_status(deployment, replicaset, len(pods), ready)
        self.cluster.update_status(DEPLOYMENTS, deployment, status)

    def replicaset_for(self, deployment: dict) -> dict:
        """Return the ReplicaSet the Deployment controls, making it when missing."""
        uid = deployment["metadata"]["uid"]
        for replicaset in self.cluster.objects_of(REPLICASETS, NAMESPACE):
            if self.cluster.controller_uid(replicaset) == uid:
                return replicaset
        return self.cluster.add(REPLICASETS, replicaset_object(deployment, utcnow()))

    def rescale_replicaset(self, replicaset: dict, desired: int) -> dict:
        """Set the ReplicaSet's replicas, as the Deployment controller does."""
        updated = copy.deepcopy(replicaset)
        updated["spec"]["replicas"] = desired
        updated["metadata"]["generation"] = replicaset["metadata"]["generation"] + 1
        annotations = updated["metadata"].setdefault("annotations", {})
        annotations["deployment.kubernetes.io/desired-replicas"] = str(desired)
        return self.cluster.put(REPLICASETS, updated)

    def sync_pods(self, replicaset: dict, desired: int) -> list[dict]:
        """Create or delete pods until the ReplicaSet has ``desired``, then age them."""
        pods = self.cluster.owned(PODS, replicaset)
        if len(pods) > desired:
            # Like the ReplicaSet controller: unready pods go first, then the newest.
            pods.sort(
                key=lambda pod: pod["metadata"]["creationTimestamp"], reverse=True
            )
            pods.sort(key=pod_ready)
            for pod in pods[: len(pods) - desired]:
                self.cluster.remove(PODS, pod)
            pods = pods[len(pods) - desired :]
        while len(pods) < desired:
            pods.append(self.create_pod(replicaset))
        return [self.promote(pod) for pod in pods]

    def sync_statefulset(self, statefulset: dict) -> None:
        """Keep one pod per ordinal, made in order, and report the status."""
        desired = statefulset["spec"].get("replicas", 1)
        prefix = f"{statefulset['metadata']['name']}-"
        pods = {
            pod["metadata"]["name"]: pod
            for pod in self.cluster.owned(PODS, statefulset)
        }
        for name, pod in list(pods.items()):
            if int(name[len(prefix) :]) >= desired:
                self.cluster.remove(PODS, pod)
                del pods[name]
        parallel = statefulset["spec"].get("podManagementPolicy") == "Parallel"
        for ordinal in range(desired):
            name = f"{prefix}{ordinal}"
            if name not in pods:
                pods[name] = self.create_member(statefulset, ordinal)
                if not parallel:
                    break
            elif not parallel and not pod_ready(pods[name]):
                break
        members = [self.promote(pod) for pod in pods.values()]
        ready = sum(pod_ready(pod) for pod in members)
        status = statefulset_status(statefulset, len(members), ready)
        self.cluster.update_status(STATEFULSETS, statefulset, status)

    def create_member(self, statefulset: dict, ordinal: int) -> dict:
        """Create the StatefulSet's pod of one ordinal, Pending until its delay."""
        template = copy.deepcopy(statefulset["spec"]["template"])
        name = f"{statefulset['metadata']['name']}-{ordinal}"
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels["statefulset.kubernetes.io/pod-name"] = name
        labels["controller-revision-hash"] = revision_of(statefulset)
        created = utcnow()
        meta = metadata(
            name, created, labels=labels, ownerReferences=[owner_reference(statefulset)]
        )
        meta["namespace"] = statefulset["metadata"]["namespace"]
        spec = {**template["spec"], "nodeName": NODE, "hostname": name}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        pod["status"] = pending_status(rfc3339(created))
        if not self.never_ready:
            self.ready_at[meta["uid"]] = time.monotonic() + self.ready_delay
        self.started_ns[name] = time.time_ns()
        return self.cluster.add(PODS, pod)

    def create_pod(self, replicaset: dict, *, created_ns: int | None = None) -> dict:
        """Create a pod of the ReplicaSet: Pending, or Running and Ready when seeded."""
        seeded = created_ns is not None
        created_ns = time.time_ns() if created_ns is None else created_ns
        created = datetime.datetime.fromtimestamp(
            created_ns / 10**9, datetime.timezone.utc
        )
        pod = self.pod_object(replicaset, created)
        if seeded:
            pod["status"] = running_status(
                rfc3339(created), rfc3339(created), self.ip()
            )
        elif not self.never_ready:
            self.ready_at[pod["metadata"]["uid"]] = time.monotonic() + self.ready_delay
        self.started_ns[pod["metadata"]["name"]] = created_ns
        return self.cluster.add(PODS, pod)

    def pod_object(self, replicaset: dict, created: datetime.datetime) -> dict:
        """Return a new pod from the ReplicaSet's template, scheduled on the node."""
        template = copy.deepcopy(replicaset["spec"]["template"])
        prefix = f"{replicaset['metadata']['name']}-"
        spec = {**template["spec"], "nodeName": NODE, "serviceAccountName": "default"}
        meta = metadata(
            f"{prefix}{random_suffix()}",
            created,
            generateName=prefix,
            labels=template["metadata"]["labels"],
            ownerReferences=[owner_reference(replicaset)],
        )
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        pod["status"] = pending_status(rfc3339(created))
        return pod

    def ip(self) -> str:
        """Return the next pod IP address."""
        return f"10.244.1.{next(self.addresses) % 250 + 2}"

    def promote(self, pod: dict) -> dict:
        """Turn a pending pod Running and Ready once its delay has passed."""
        due = self.ready_at.get(pod["metadata"]["uid"])
        if due is None or due > time.monotonic():
            return pod
        del self.ready_at[pod["metadata"]["uid"]]
        updated = copy.deepcopy(pod)
        started = pod["status"]["startTime"]
        updated["status"] = running_status(started, rfc3339(utcnow()), self.ip())
        return self.cluster.put(PODS, updated)

    def deployment_status(
        self, deployment: dict, replicaset: dict, total: int, ready: int
    ) -> dict:
        """Compute the Deployment's status from its pods, as its controller reports."""
        desired = deployment["spec"].get("replicas", 1)
        status = omit_zero(
            {
                "replicas": total,
                "updatedReplicas": total,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": max(desired - ready, 0),
            }
        )
        status["observedGeneration"] = deployment["metadata"].get("generation", 1)
        previous = deployment.get("status", {}).get("conditions") or []
        minimum = desired - max_unavailable(deployment, desired)
        status["conditions"] = [
            available_condition(ready >= minimum, previous),
            progressing_condition(replicaset, previous),
        ]
        return status

    def budget_status(self, budget: dict) -> dict:
        """Compute a PodDisruptionBudget's status as the disruption controller does."""
        selector = budget["spec"].get("selector") or {}
        pods = self.cluster.selected(PODS, budget["metadata"]["namespace"], selector)
        expected = self.expected_pods(pods)
        healthy = sum(pod_ready(pod) for pod in pods)
        desired = desired_healthy(budget["spec"], expected)
        allowed = max(healthy - desired, 0)
        generation = budget["metadata"].get("generation", 1)
        previous = budget.get("status", {}).get("conditions") or []
        reason = "SufficientPods" if allowed else "InsufficientPods"
        allowed_condition = condition(
            "DisruptionAllowed",
            "True" if allowed else "False",
            rfc3339(utcnow()),
            reason=reason,
            message="",
            previous=previous,
        )
        allowed_condition["observedGeneration"] = generation
        return {
            "observedGeneration": generation,
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [allowed_condition],
        }

    def expected_pods(self, pods: list[dict]) -> int:
        """Count the pods a budget expects: its pods' controllers' replicas."""
        owners = {self.cluster.controller_uid(pod) for pod in pods}
        replicas = [
            owner["spec"].get("replicas", 0 if resource == REPLICASETS else 1)
            for resource in (REPLICASETS, STATEFULSETS)
            for owner in self.cluster.objects_of(resource)
            if owner["metadata"]["uid"] in owners
        ]
        orphans = sum(self.cluster.controller_uid(pod) is None for pod in pods)
        return sum(replicas) + orphans

    def collect_garbage(self) -> None:
        """Delete ReplicaSets and pods whose owners are gone, and forget dead pods."""
        for resource in (REPLICASETS, PODS):
            alive = self.cluster.uids()
            for obj in self.cluster.objects_of(resource):
                refs = obj["metadata"].get("ownerReferences") or []
                if refs and not any(ref["uid"] in alive for ref in refs):
                    self.cluster.remove(resource, obj)
        alive = self.cluster.uids()
        names = {pod["metadata"]["name"] for pod in self.cluster.objects_of(PODS)}
        self.ready_at = {uid: due for uid, due in self.ready_at.items() if uid in alive}
        self.started_ns = {n: t for n, t in self.started_ns.items() if n in names}


def replicaset_status(replicaset: Mapping[str, Any], total: int, ready: int) -> dict:
    """Compute a ReplicaSet's status; ``replicas`` is reported even when zero."""
    counts = {
        "fullyLabeledReplicas": total,
        "readyReplicas": ready,
        "availableReplicas": ready,
    }
    generation = replicaset["metadata"].get("generation", 1)
    return {"replicas": total, **omit_zero(counts), "observedGeneration": generation}


def max_unavailable(deployment: Mapping[str, Any], desired: int) -> int:
    """Resolve the rolling update's maxUnavailable like the Deployment controller."""
    strategy = deployment["spec"].get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = scaled(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    return 1 if surge == 0 and unavailable == 0 else unavailable


def desired_healthy(spec: Mapping[str, Any], expected: int) -> int:
    """Return how many healthy pods a budget's spec asks for."""
    if "minAvailable" in spec:
        return scaled(spec["minAvailable"], expected, round_up=True)
    if "maxUnavailable" in spec:
        unavailable = scaled(spec["maxUnavailable"], expected, round_up=True)
        return max(expected - unavailable, 0)
    return 0


def deployment_condition(
    kind: str, status: str, reason: str, message: str, previous: list[dict]
) -> dict:
    """Build a Deployment condition, which also carries ``lastUpdateTime``."""
    moment = rfc3339(utcnow())
    result = condition(
        kind, status, moment, reason=reason, message=message, previous=previous
    )
    old = next((item for item in previous if item["type"] == kind), None)
    same = old is not None and (old["status"], old.get("reason")) == (status, reason)
    result["lastUpdateTime"] = old["lastUpdateTime"] if same else moment
    return result


def available_condition(available: bool, previous: list[dict]) -> dict:
    """Return the Deployment's Available condition."""
    if available:
        return deployment_condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            previous,
        )
    return deployment_condition(
        "Available",
        "False",
        "MinimumReplicasUnavailable",
        "Deployment does not have minimum availability.",
        previous,
    )


def progressing_condition(replicaset: Mapping[str, Any], previous: list[dict]) -> dict:
    """Return the Progressing condition: the one ReplicaSet has rolled out."""
    name = replicaset["metadata"]["name"]
    message = f'ReplicaSet "{name}" has successfully progressed.'
    return deployment_condition(
        "Progressing", "True", "NewReplicaSetAvailable", message, previous
    )


# --- The API server -------------------------------------------------------------


def revision_of(statefulset: Mapping[str, Any]) -> str:
    """Return the StatefulSet's revision name for its pod template."""
    digest = template_hash(statefulset["spec"]["template"])
    return f"{statefulset['metadata']['name']}-{digest}"


def statefulset_status(statefulset: Mapping[str, Any], total: int, ready: int) -> dict:
    """Compute a StatefulSet's status: one revision, every pod on it."""
    counts = {
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": total,
        "updatedReplicas": total,
    }
    revision = revision_of(statefulset)
    return {
        "replicas": total,
        **omit_zero(counts),
        "currentRevision": revision,
        "updateRevision": revision,
        "observedGeneration": statefulset["metadata"].get("generation", 1),
        "collisionCount": 0,
    }


# Discovery: resource -> (kind, short name, subresources).
DISCOVERY = {
    PODS: ("Pod", "po", ("log", "eviction", "status")),
    SERVICES: ("Service", "svc", ("status",)),
    DEPLOYMENTS: ("Deployment", "deploy", ("scale", "status")),
    REPLICASETS: ("ReplicaSet", "rs", ("scale", "status")),
    STATEFULSETS: ("StatefulSet", "sts", ("scale", "status")),
    PDBS: ("PodDisruptionBudget", "pdb", ("status",)),
}


def resource_infos() -> dict:
    """Return the discovery information of the resources the lab serves."""
    infos = {
        resource: kmock.ResourceInfo(
            namespaced=True,
            kind=kind,
            singular=kind.lower(),
            verbs=VERBS,
            shortnames={short},
            categories=set() if resource == PDBS else {"all"},
            subresources=set(subresources),
        )
        for resource, (kind, short, subresources) in DISCOVERY.items()
    }
    infos[NAMESPACES] = kmock.ResourceInfo(
        namespaced=False,
        kind="Namespace",
        singular="namespace",
        verbs=("get", "list"),
        shortnames={"ns"},
    )
    return infos


@attrs.define(kw_only=True)
class LabCluster(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with a cluster's subresources and controllers."""

    logs_dir: Path
    ready_delay: float = 1.0
    never_ready: bool = False
    controllers: Controllers = attrs.field(init=False)
    namespaces: dict = attrs.field(init=False, factory=dict)
    _version: int = attrs.field(init=False, default=1)
    _events: list = attrs.field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for resource, info in resource_infos().items():
            self.resources[resource] = info
        self.controllers = Controllers(
            self, ready_delay=self.ready_delay, never_ready=self.never_ready
        )
        # Same priority, so the first matching reaction wins: subresources first.
        get, post = kmock.method.GET, kmock.method.POST
        self[get, PODS, kmock.subresource("log")] << self._serve_log
        self[post, PODS, kmock.subresource("eviction")] << self._serve_eviction
        self[kmock.subresource("scale")] << self._serve_scale
        self[kmock.method.PATCH] << self._serve_patch
        self[kmock.method.PUT] << self._serve_replace

    # The store: kmock's objects, written with resource versions and watch events.

    def next_version(self) -> str:
        """Return a new resourceVersion."""
        self._version += 1
        return str(self._version)

    def get(self, resource: Any, namespace: str | None, name: str) -> dict | None:
        """Return a live object, or None."""
        key = (resource, namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return self.objects[key].raw

    def objects_of(self, resource: Any, namespace: str | None = None) -> list[dict]:
        """Return the live objects of a resource, in one namespace or all."""
        return [
            obj.raw
            for (kind, where, _unused), obj in self.objects.items()
            if kind == resource and not obj.deleted
            if namespace is None or where == namespace
        ]

    def selected(
        self, resource: Any, namespace: str, selector: Mapping[str, Any]
    ) -> list[dict]:
        """Return the objects in a namespace whose labels match a LabelSelector."""
        return [
            obj
            for obj in self.objects_of(resource, namespace)
            if selector_matches(selector, obj["metadata"].get("labels") or {})
        ]

    def owned(self, resource: Any, owner: Mapping[str, Any]) -> list[dict]:
        """Return the objects that ``owner`` controls."""
        uid, namespace = owner["metadata"]["uid"], owner["metadata"]["namespace"]
        return [
            obj
            for obj in self.objects_of(resource, namespace)
            if self.controller_uid(obj) == uid
        ]

    @staticmethod
    def controller_uid(obj: Mapping[str, Any]) -> str | None:
        """Return the uid of the object's controller, or None."""
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("controller"):
                return ref["uid"]
        return None

    def uids(self) -> set[str]:
        """Return the uids of all live objects."""
        return {
            obj.raw["metadata"].get("uid")
            for obj in self.objects.values()
            if not obj.deleted
        }

    def add(self, resource: Any, obj: dict) -> dict:
        """Store a new object and announce it."""
        return self._store(resource, obj, "ADDED")

    def put(self, resource: Any, obj: dict) -> dict:
        """Store a changed object and announce it."""
        return self._store(resource, obj, "MODIFIED")

    def _store(self, resource: Any, obj: dict, event: str) -> dict:
        """Write an object with a new resourceVersion, keeping only this version."""
        obj["metadata"]["resourceVersion"] = self.next_version()
        meta = obj["metadata"]
        self.objects[resource, meta.get("namespace"), meta["name"]] = obj
        self._events.append((resource, {"type": event, "object": copy.deepcopy(obj)}))
        return obj

    def remove(self, resource: Any, obj: Mapping[str, Any]) -> None:
        """Delete an object and announce it."""
        meta = obj["metadata"]
        del self.objects[resource, meta.get("namespace"), meta["name"]]
        self._events.append((resource, {"type": "DELETED", "object": dict(obj)}))

    def update_status(self, resource: Any, obj: dict, status: dict) -> dict:
        """Write a new status when it differs from the stored one."""
        if obj.get("status") == status:
            return obj
        updated = copy.deepcopy(obj)
        updated["status"] = status
        return self.put(resource, updated)

    async def sync(self) -> None:
        """Let the controllers act on the current state, then tell the watchers."""
        self.controllers.reconcile()
        for key in [key for key, obj in self.objects.items() if obj.deleted]:
            del self.objects[key]
        events, self._events = self._events, []
        # kmock's watch streams read from these buses.
        for resource, event in events:
            await self._buses[resource].put(event)

    def forget_requests(self) -> None:
        """Drop the requests kmock records: a long-running lab never asserts them."""
        del self._requests[:]
        for payload in self._payloads:
            del payload._requests[:]
        for errors in self._errors:
            del errors[:]

    # Request routing.

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> Any:
        # kmock cannot parse the paths of namespaces themselves, so they are
        # answered before it tries.
        found = NAMESPACE_PATH.fullmatch(raw_request.path)
        if found and raw_request.method == "GET":
            return self._serve_namespaces(found["name"])
        return await super().__call__(raw_request)

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        missing = self._missing(request)
        if missing is not None:
            return missing
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            self._stamp_created(request)
        if request.subresource is not None or request.method in (
            kmock.method.PATCH,
            kmock.method.PUT,
        ):
            # Skip the emulator's own write handling: our reactions write these.
            response = await super(kmock.KubernetesEmulator, self)._handle(request)
        else:
            response = await super()._handle(request)
        if request.method != kmock.method.GET:
            await self.sync()
        return response

    def _missing(self, request: Any) -> aiohttp.web.StreamResponse | None:
        """Answer 404 for a named object that does not exist."""
        if request.resource not in KINDS or request.name is None:
            return None
        if request.action == kmock.action.CREATE:
            return None
        if self.get(request.resource, request.namespace, request.name) is not None:
            return None
        body = not_found_body(request.resource, request.name)
        return aiohttp.web.json_response(body, status=404)

    def _stamp_created(self, request: Any) -> None:
        """Fill in what the API server sets on a new object."""
        data = request.data
        meta = data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{random_suffix()}"
        if request.namespace:
            meta.setdefault("namespace", request.namespace)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(utcnow())
        meta["resourceVersion"] = self.next_version()
        if request.resource in GENERATION_KINDS:
            meta["generation"] = 1
        if request.resource in KINDS:
            api_version, kind = KINDS[request.resource]
            data.setdefault("apiVersion", api_version)
            data.setdefault("kind", kind)

    def _serve_namespaces(self, name: str | None) -> aiohttp.web.StreamResponse:
        """Answer a namespace list or one namespace."""
        if name is None:
            listing = {
                "apiVersion": "v1",
                "kind": "NamespaceList",
                "metadata": {"resourceVersion": str(self._version)},
                "items": [self.namespaces[key] for key in sorted(self.namespaces)],
            }
            return aiohttp.web.json_response(listing)
        if name not in self.namespaces:
            return aiohttp.web.json_response(
                not_found_body(NAMESPACES, name), status=404
            )
        return aiohttp.web.json_response(self.namespaces[name])

    # Reactions.

    @answers_refusals
    async def _serve_list(self, request: Any) -> Any:
        if request.resource not in KINDS:
            # Explicit base call: a decorated method has no class cell for super().
            listing = await kmock.KubernetesEmulator._serve_list(self, request)
            return reply(listing)
        start = decode_continue(request.params.get("continue"))
        limit = query_int(request.params, "limit", minimum=0) or 0
        items = self._selected_items(request)
        page = items[start : start + limit] if limit else items[start:]
        listed = {"resourceVersion": str(self._version)}
        remaining = len(items) - start - len(page)
        if limit and remaining > 0:
            listed["continue"] = encode_continue(start + len(page))
            listed["remainingItemCount"] = remaining
        api_version, kind = KINDS[request.resource]
        body = {"apiVersion": api_version, "kind": f"{kind}List", "metadata": listed}
        return reply({**body, "items": page})

    def _selected_items(self, request: Any) -> list[dict]:
        """Return the objects a list request selects, sorted by namespace and name."""
        params = request.params
        labels = parse_label_selector(params.get("labelSelector", ""))
        fields = parse_field_selector(request.resource, params.get("fieldSelector", ""))
        items = [
            obj
            for obj in self.objects_of(request.resource, request.namespace)
            if all(wanted(obj["metadata"].get("labels") or {}) for wanted in labels)
            if all(wanted(obj) for wanted in fields)
        ]
        return sorted(
            items,
            key=lambda obj: (
                obj["metadata"].get("namespace", ""),
                obj["metadata"]["name"],
            ),
        )

    @answers_refusals
    async def _serve_log(self, request: Any) -> Any:
        pod = self.get(PODS, request.namespace, request.name)
        query = self._log_query(pod, request.params)
        return reply(stream_log(query), content_type="text/plain")

    def _log_query(self, pod: dict, params: Mapping[str, str]) -> LogQuery:
        """Turn the query parameters of a log request into a ``LogQuery``."""
        names = [item["name"] for item in pod["spec"]["containers"]]
        container = params.get("container") or names[0]
        if container not in names:
            name = pod["metadata"]["name"]
            raise bad_request(f"container {container} is not valid for pod {name}")
        started = self.controllers.started_ns.get(pod["metadata"]["name"])
        if started is None:
            started = to_ns(parse_time(pod["metadata"]["creationTimestamp"]))
        return LogQuery(
            path=self._log_path(pod, container, query_bool(params, "previous")),
            since=time_key(max(started, since_ns(params) or 0)),
            timestamps=query_bool(params, "timestamps"),
            tail=query_int(params, "tailLines", minimum=0),
            limit_bytes=query_int(params, "limitBytes", minimum=1),
        )

    def _log_path(self, pod: dict, container: str, previous: bool) -> Path | None:
        """Return the file that holds the container's log, or None for no log yet."""
        name = pod["metadata"]["name"]
        if previous:
            path = self.logs_dir / f"{name}.previous.log"
            if not path.is_file():
                raise bad_request(
                    f'previous terminated container "{container}" in pod "{name}" '
                    "not found"
                )
            return path
        reason = waiting_reason(pod, container)
        if reason is not None:
            raise bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            )
        own = self.logs_dir / f"{name}.log"
        app = (pod["metadata"].get("labels") or {}).get("app")
        return own if own.is_file() or not app else self.logs_dir / f"{app}.log"

    @answers_refusals
    async def _serve_eviction(self, request: Any) -> Any:
        pod = self.get(PODS, request.namespace, request.name)
        body = request.data if isinstance(request.data, dict) else {}
        named = (body.get("metadata") or {}).get("name")
        if named and named != request.name:
            raise bad_request("name in URL does not match name in Eviction object")
        self._check_budget(pod)
        if not dry_run(request, body):
            self.remove(PODS, pod)
        success = {"kind": "Status", "apiVersion": "v1", "metadata": {}}
        return reply({**success, "status": "Success", "code": 201}, status=201)

    def _check_budget(self, pod: dict) -> None:
        """Refuse an eviction that the pod's disruption budget does not allow."""
        # Pods that are not running are deleted without consulting any budget.
        if pod["status"].get("phase") in ("Pending", "Succeeded", "Failed"):
            return
        labels = pod["metadata"].get("labels") or {}
        budgets = [
            budget
            for budget in self.objects_of(PDBS, pod["metadata"]["namespace"])
            if selector_matches(budget["spec"].get("selector") or {}, labels)
        ]
        if len(budgets) > 1:
            raise Refusal(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction "
                "subresource does not support.",
            )
        if budgets:
            self._check_allowance(pod, budgets[0])

    def _check_allowance(self, pod: dict, budget: dict) -> None:
        """Refuse when evicting the pod would take the budget below its minimum."""
        status = self.controllers.budget_status(budget)
        current, desired = status["currentHealthy"], status["desiredHealthy"]
        if pod_ready(pod) and status["disruptionsAllowed"] > 0:
            return
        # An unready pod may go while the budget is met without it.
        if not pod_ready(pod) and current >= desired:
            return
        name = budget["metadata"]["name"]
        cause = {
            "reason": "DisruptionBudget",
            "message": f"The disruption budget {name} needs {desired} healthy pods "
            f"and has {current} currently",
        }
        raise Refusal(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
            details={"causes": [cause]},
        )

    @answers_refusals
    async def _serve_scale(self, request: Any) -> Any:
        owner = self.get(request.resource, request.namespace, request.name)
        if request.resource not in SCALABLE or owner is None:
            raise Refusal(
                404, "NotFound", "the server could not find the requested resource"
            )
        current = scale_of(request.resource, owner)
        if request.method == kmock.method.GET:
            return reply(current)
        wanted = self._changed(request, current)
        updated = copy.deepcopy(owner)
        updated["spec"]["replicas"] = (wanted.get("spec") or {}).get("replicas")
        written = self._write(request.resource, owner, updated)
        return reply(scale_of(request.resource, written))

    @answers_refusals
    async def _serve_patch(self, request: Any) -> Any:
        current = self._target(request)
        patched = self._changed(request, current)
        status_only = request.subresource == "status"
        return reply(
            self._write(request.resource, current, patched, status_only=status_only)
        )

    @answers_refusals
    async def _serve_replace(self, request: Any) -> Any:
        current = self._target(request)
        body = self._changed(request, current)
        sent = (body.get("metadata") or {}).get("resourceVersion")
        if sent and sent != current["metadata"]["resourceVersion"]:
            raise Refusal(
                409,
                "Conflict",
                f"Operation cannot be fulfilled on {qualified(request.resource)} "
                f'"{request.name}": the object has been modified; please apply your '
                "changes to the latest version and try again",
                details=object_details(request.resource, request.name),
            )
        status_only = request.subresource == "status"
        return reply(
            self._write(request.resource, current, body, status_only=status_only)
        )

    def _target(self, request: Any) -> dict:
        """Return the object a write addresses, refusing unknown subresources."""
        if request.resource not in KINDS or request.subresource not in (None, "status"):
            raise Refusal(
                404, "NotFound", "the server could not find the requested resource"
            )
        return self.get(request.resource, request.namespace, request.name)

    def _changed(self, request: Any, current: dict) -> dict:
        """Return the object a PATCH or PUT asks for."""
        if request.method == kmock.method.PATCH:
            content_type = request.headers.get("Content-Type", "")
            return apply_patch(copy.deepcopy(current), request.data, content_type)
        if request.method != kmock.method.PUT:
            raise Refusal(
                405, "MethodNotAllowed", f"{request.method.value} is not allowed"
            )
        if not isinstance(request.data, dict):
            raise bad_request("the body must be a JSON object")
        return request.data

    def _follow_start(self, pod: Mapping[str, Any]) -> None:
        """Serve a pod's log from the ``startTime`` a client wrote to its status.

        Tests use this to make a pod that started hours ago, as one that replaced
        another in a rollout: its log holds nothing from before that time.
        """
        started = (pod.get("status") or {}).get("startTime")
        if started:
            name = pod["metadata"]["name"]
            self.controllers.started_ns[name] = to_ns(parse_time(started))

    def _write(
        self, resource: Any, current: dict, updated: dict, *, status_only: bool = False
    ) -> dict:
        """Store a client's change; a new spec makes a new generation."""
        updated = keep_server_fields(current, updated, status_only=status_only)
        check_replicas(resource, updated)
        if resource == PODS and status_only:
            self._follow_start(updated)
        if resource in GENERATION_KINDS and updated.get("spec") != current.get("spec"):
            updated["metadata"]["generation"] = (
                current["metadata"].get("generation", 1) + 1
            )
        return self.put(resource, updated)


# --- The process ----------------------------------------------------------------


def seed(cluster: LabCluster, *, replicas: int) -> None:
    """Create the namespace ``trm`` and its objects, as deployed three days ago."""
    created = utcnow().replace(microsecond=0) - datetime.timedelta(days=3)
    for name, age in (("default", 30), ("kube-system", 30), (NAMESPACE, 3)):
        moment = utcnow() - datetime.timedelta(days=age)
        cluster.namespaces[name] = namespace_object(name, moment)
    deployment = deployment_object(created, replicas)
    replicaset = replicaset_object(deployment, created)
    conditions = [available_condition(True, []), progressing_condition(replicaset, [])]
    for item in conditions:
        item["lastTransitionTime"] = item["lastUpdateTime"] = rfc3339(created)
    deployment["status"] = {"conditions": conditions}
    cluster.add(DEPLOYMENTS, deployment)
    cluster.add(REPLICASETS, replicaset)
    for _unused in range(replicas):
        cluster.controllers.create_pod(replicaset, created_ns=to_ns(created))
    budget = pdb_object(created)
    allowed = condition(
        "DisruptionAllowed", "True", rfc3339(created), reason="SufficientPods"
    )
    budget["status"] = {"conditions": [{**allowed, "message": ""}]}
    cluster.add(PDBS, budget)
    cluster.add(SERVICES, service_object(created))
    cluster.controllers.reconcile()


async def run_controllers(cluster: LabCluster, stop: asyncio.Event) -> None:
    """Run the controllers until ``stop`` is set."""
    while not stop.is_set():
        await cluster.sync()
        cluster.forget_requests()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), CONTROLLER_PERIOD)


async def serve(options: argparse.Namespace) -> None:
    """Serve the API on loopback until SIGTERM or SIGINT."""
    cluster = LabCluster(
        logs_dir=options.logs_dir,
        ready_delay=options.ready_delay,
        never_ready=options.never_ready,
    )
    seed(cluster, replicas=options.replicas)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with cluster, kmock.Server(cluster, host=LOOPBACK, port=options.port):
        await run_controllers(cluster, stop)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.k8s_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--logs-dir", type=Path, required=True)
    parser.add_argument(
        "--ready-delay",
        type=float,
        default=1.0,
        help="seconds a new pod stays Pending before it is Running and Ready",
    )
    parser.add_argument(
        "--never-ready", action="store_true", help="new pods stay Pending forever"
    )
    parser.add_argument("--replicas", type=int, default=3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the server."""
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
