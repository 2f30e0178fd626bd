# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which workload and pods a k8s module works on, and the namespace allow-list."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    OptionError,
)
from ansible_collections.trm.maintenance.plugins.module_utils.k8s import (
    WORKLOAD_KINDS,
    ApiError,
    KubeClient,
    selector_string,
)

# DNS-1123 labels: what Kubernetes accepts as a namespace name.
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class TargetSpec:
    """A workload by kind and name, or pods (or workloads) by label selectors."""

    namespace: str
    kind: str
    name: str | None
    selector: str | None

    @property
    def described(self) -> str:
        """Say what is targeted, for messages."""
        if self.name:
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.kind} with labels {self.selector} in {self.namespace}"


def parse_target(params: dict) -> TargetSpec:
    """Check namespace, kind, name and label_selectors."""
    namespace = params.get("namespace")
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise OptionError("namespace", namespace, "must be a Kubernetes namespace name")
    kind = params.get("kind") or WORKLOAD_KINDS[0]
    if kind not in WORKLOAD_KINDS:
        raise OptionError("kind", kind, f"must be one of {WORKLOAD_KINDS}")
    name = params.get("name")
    selectors = [
        s.strip() for s in params.get("label_selectors") or [] if s and s.strip()
    ]
    if bool(name) == bool(selectors):
        raise OptionError("name", name, "or label_selectors must be set, and not both")
    return TargetSpec(namespace, kind, name or None, ",".join(selectors) or None)


def check_allowed(namespace: str, allowed: Any) -> None:
    """Refuse a namespace that the allow-list does not name."""
    names = [str(item) for item in allowed or []]
    if namespace not in names:
        raise OptionError(
            "namespace",
            namespace,
            f"is not in allowed_namespaces {names}; add it there to allow "
            "disruptive work in it",
        )


def find_workload(client: KubeClient, spec: TargetSpec) -> dict:
    """Return the one workload the spec names or selects, or raise OptionError."""
    if spec.name:
        try:
            return client.read_workload(spec.kind, spec.namespace, spec.name)
        except ApiError as error:
            if error.status == 404:
                raise OptionError(
                    "name",
                    spec.name,
                    f"names no {spec.kind} in namespace {spec.namespace}",
                ) from None
            raise
    found = client.list_workloads(spec.kind, spec.namespace, spec.selector)
    if len(found) != 1:
        names = sorted(item["metadata"]["name"] for item in found)
        raise OptionError(
            "label_selectors",
            spec.selector,
            f"must select exactly one {spec.kind} in namespace {spec.namespace}; "
            f"selected {len(found)}: {names}",
        )
    return found[0]


def workload_selector(workload: dict) -> str:
    """Return the label selector of a workload's pods."""
    return selector_string((workload.get("spec") or {}).get("selector"))


def find_pods(client: KubeClient, spec: TargetSpec) -> list:
    """Return the pods of the named workload, or those the selectors match."""
    if spec.name:
        workload = find_workload(client, spec)
        return client.list_pods(spec.namespace, workload_selector(workload))
    return client.list_pods(spec.namespace, spec.selector)
