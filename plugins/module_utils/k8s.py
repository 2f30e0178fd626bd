# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes client of the k8s modules: connection options, calls, our errors.

Connections follow kubernetes.core: ``kubeconfig``, ``context``, ``host``,
``api_key``, ``validate_certs``, ``ca_cert``, ``client_cert`` and ``client_key``,
each also read from its ``K8S_AUTH_*`` environment variable. Every call carries a
timeout and returns the API's JSON as plain mappings, never the client's models.
"""

from __future__ import annotations

import json
import os
import traceback
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator

from ansible.module_utils.basic import env_fallback

from ansible_collections.trm.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
    OptionError,
)

try:
    import urllib3
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None

DEFAULT_REQUEST_TIMEOUT = 10.0
PAGE_SIZE = 500
DEPLOYMENT = "Deployment"
STATEFULSET = "StatefulSet"
WORKLOAD_KINDS = [DEPLOYMENT, STATEFULSET]
MAX_MESSAGE_CHARS = 300


def _env(*names: str) -> tuple:
    return (env_fallback, [f"K8S_AUTH_{name}" for name in names])


K8S_AUTH_SPEC = {
    "kubeconfig": {"type": "raw", "fallback": _env("KUBECONFIG")},
    "context": {"type": "str", "fallback": _env("CONTEXT")},
    "host": {"type": "str", "fallback": _env("HOST")},
    "api_key": {"type": "str", "no_log": True, "fallback": _env("API_KEY")},
    "validate_certs": {
        "type": "bool",
        "aliases": ["verify_ssl"],
        "fallback": _env("VALIDATE_CERTS", "VERIFY_SSL"),
    },
    "ca_cert": {
        "type": "path",
        "aliases": ["ssl_ca_cert"],
        "fallback": _env("CA_CERT", "SSL_CA_CERT"),
    },
    "client_cert": {
        "type": "path",
        "aliases": ["cert_file"],
        "fallback": _env("CLIENT_CERT", "CERT_FILE"),
    },
    "client_key": {
        "type": "path",
        "aliases": ["key_file"],
        "no_log": False,
        "fallback": _env("CLIENT_KEY", "KEY_FILE"),
    },
    "request_timeout": {"type": "float", "default": DEFAULT_REQUEST_TIMEOUT},
}


class K8sError(MaintenanceError):
    """The Kubernetes API could not answer a call; the checks turn it into findings."""


class Unreachable(K8sError):
    """No HTTP answer: connection refused, timeout, TLS failure."""


class ApiError(K8sError):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.api_message = message
        super().__init__(f"HTTP {status} {reason}: {message}")


# The keys of a kubeconfig whose values are credentials: user tokens and
# passwords, key material, and the tokens and secrets of auth providers.
KUBECONFIG_SECRET_KEYS = frozenset(
    {
        "token",
        "password",
        "client-key-data",
        "client-certificate-data",
        "id-token",
        "refresh-token",
        "access-token",
        "client-secret",
    }
)


def kubeconfig_secrets(kubeconfig: Any) -> list:
    """Return the credential values of a kubeconfig given as a mapping."""
    found: list = []
    if isinstance(kubeconfig, dict):
        for key, value in kubeconfig.items():
            if key in KUBECONFIG_SECRET_KEYS and isinstance(value, str) and value:
                found.append(value)
            else:
                found += kubeconfig_secrets(value)
    elif isinstance(kubeconfig, list):
        for item in kubeconfig:
            found += kubeconfig_secrets(item)
    return found


def hide_secrets(module: Any) -> None:
    """Have Ansible mask a kubeconfig mapping's credentials in all the output.

    ``kubeconfig`` may be a path or a mapping, so it cannot be ``no_log`` as a
    whole: a path is worth showing. The credentials inside a mapping are masked
    instead, in ``invocation`` and wherever else they would appear.
    """
    module.no_log_values.update(kubeconfig_secrets(module.params.get("kubeconfig")))


@dataclass(frozen=True)
class Connection:
    """How to reach the API server."""

    kubeconfig: Any = None
    context: str | None = None
    host: str | None = None
    api_key: str | None = None
    validate_certs: bool | None = None
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    timeout: float = DEFAULT_REQUEST_TIMEOUT


def connection_from_params(params: dict) -> Connection:
    """Check the connection options and return them."""
    timeout = params.get("request_timeout")
    if timeout is None or timeout <= 0:
        raise OptionError("request_timeout", timeout, "must be a number above zero")
    kubeconfig = params.get("kubeconfig")
    if isinstance(kubeconfig, str):
        kubeconfig = os.path.expanduser(kubeconfig)
        if not os.path.isfile(kubeconfig):
            raise OptionError("kubeconfig", kubeconfig, "is not a readable file")
    elif kubeconfig is not None and not isinstance(kubeconfig, dict):
        raise OptionError(
            "kubeconfig", type(kubeconfig).__name__, "must be a path or a mapping"
        )
    for option in ("ca_cert", "client_cert", "client_key"):
        path = params.get(option)
        if path and not os.path.isfile(path):
            raise OptionError(option, path, "is not a readable file")
    return Connection(
        kubeconfig=kubeconfig,
        context=params.get("context"),
        host=(params.get("host") or "").rstrip("/") or None,
        api_key=params.get("api_key"),
        validate_certs=params.get("validate_certs"),
        ca_cert=params.get("ca_cert"),
        client_cert=params.get("client_cert"),
        client_key=params.get("client_key"),
        timeout=float(timeout),
    )


def require_kubernetes() -> None:
    """Raise when the kubernetes Python library is missing."""
    if not HAS_KUBERNETES:
        raise MaintenanceError(
            "The kubernetes Python library is required on the controller: "
            "pip install kubernetes"
        )


def build_configuration(conn: Connection) -> Any:
    """Return a client configuration: kubeconfig or in-cluster, then the options."""
    require_kubernetes()
    configuration = client.Configuration()
    if conn.kubeconfig or conn.context or not conn.host:
        _load_config(conn, configuration)
    if conn.host:
        configuration.host = conn.host
    if conn.api_key:
        configuration.api_key = {"authorization": f"Bearer {conn.api_key}"}
        configuration.api_key_prefix = {}
        # A kubeconfig's token refresher would put its own token back.
        configuration.refresh_api_key_hook = None
    if conn.validate_certs is not None:
        configuration.verify_ssl = conn.validate_certs
    for attribute, value in (
        ("ssl_ca_cert", conn.ca_cert),
        ("cert_file", conn.client_cert),
        ("key_file", conn.client_key),
    ):
        if value:
            setattr(configuration, attribute, value)
    # One attempt per call: the checks poll on their own schedule.
    configuration.retries = 0
    return configuration


def _load_config(conn: Connection, configuration: Any) -> None:
    """Fill ``configuration`` from the kubeconfig, or in-cluster, like kubectl."""
    options = {"context": conn.context, "client_configuration": configuration}
    try:
        if isinstance(conn.kubeconfig, dict):
            config.load_kube_config_from_dict(
                conn.kubeconfig, persist_config=False, **options
            )
        elif conn.kubeconfig or conn.context:
            config.load_kube_config(
                config_file=conn.kubeconfig, persist_config=False, **options
            )
        else:
            _load_default(configuration)
    except ConfigException as error:
        raise _config_error(conn, error) from None


def _load_default(configuration: Any) -> None:
    """In-cluster service account first, then ``~/.kube/config`` or KUBECONFIG."""
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        try:
            config.load_kube_config(
                client_configuration=configuration, persist_config=False
            )
        except (ConfigException, OSError, TypeError):
            raise MaintenanceError(
                "No Kubernetes connection is configured: set kubeconfig (or "
                "K8S_AUTH_KUBECONFIG), or host with api_key, or run inside a pod "
                "with a service account"
            ) from None


def _config_error(conn: Connection, error: Exception) -> OptionError:
    text = str(error)
    if conn.context and "context" in text.lower():
        return OptionError("context", conn.context, f"cannot be used: {text}")
    shown = conn.kubeconfig if isinstance(conn.kubeconfig, str) else "(a mapping)"
    return OptionError("kubeconfig", shown, f"could not be loaded: {text}")


def short(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Cut ``text`` to one line of at most ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else f"{text[:limit]}..."


# What the client's connection errors mean, in words, for the commonest causes.
_REASONS = (
    ("connection refused", "connection refused"),
    ("name or service not known", "unknown host name"),
    ("temporary failure in name resolution", "unknown host name"),
    ("nodename nor servname", "unknown host name"),
    ("certificate_verify_failed", "the TLS certificate could not be verified"),
    ("wrong_version_number", "the server does not speak TLS on that port"),
)


def reason_words(text: str) -> str:
    """Say a connection error in words, keeping the client's text when unknown."""
    lowered = text.lower()
    for clue, words in _REASONS:
        if clue in lowered:
            return words
    return text


def api_error(error: Any) -> ApiError:
    """Turn the client's ApiException into an ApiError with the server's message."""
    raw = error.body or ""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        message = json.loads(raw or "{}").get("message") or ""
    except (TypeError, ValueError, AttributeError):
        message = raw
    status = int(error.status or 0)
    reason = str(error.reason or "")
    return ApiError(status, reason, short(message or reason))


class KubeClient:
    """The API calls the k8s modules make, with timeouts and our errors."""

    def __init__(self, conn: Connection) -> None:
        configuration = build_configuration(conn)
        if configuration.verify_ssl is False:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.host = configuration.host
        self.timeout = (conn.timeout, conn.timeout)
        self.api = client.ApiClient(configuration)

    # Each API class takes a while to load in recent clients: only when used.

    @cached_property
    def core(self) -> Any:
        """The core/v1 API."""
        return client.CoreV1Api(self.api)

    @cached_property
    def apps(self) -> Any:
        """The apps/v1 API."""
        return client.AppsV1Api(self.api)

    @cached_property
    def policy(self) -> Any:
        """The policy/v1 API."""
        return client.PolicyV1Api(self.api)

    def preload(self) -> Any:
        """Load the core API now, before threads share the client and race to."""
        return self.core

    def close(self) -> None:
        """Release the connection pool."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.api.close()

    def raw(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a client method and return the unread HTTP response."""
        try:
            return method(
                *args,
                _preload_content=False,
                _request_timeout=self.timeout,
                **kwargs,
            )
        except ApiException as error:
            # Status 0 is the client's word for a TLS failure: no answer at all.
            if not error.status:
                raise self.unreachable(ValueError(error.reason)) from None
            raise api_error(error) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise self.unreachable(error) from None

    def call(self, method: Any, *args: Any, **kwargs: Any) -> dict:
        """Call a client method and return the answer's JSON."""
        response = self.raw(method, *args, **kwargs)
        try:
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise self.unreachable(error) from None
        finally:
            response.release_conn()
        try:
            return json.loads(data or b"{}")
        except ValueError:
            raise K8sError(
                f"The API server at {self.host} did not answer JSON: "
                f"{short(data.decode('utf-8', 'replace'), 120)!r}"
            ) from None

    def unreachable(self, error: Exception) -> Unreachable:
        """Word a failure to get an answer."""
        reason = getattr(error, "reason", None) or error
        text = short(str(reason), 200)
        if "timed out" in text.lower():
            return Unreachable(
                f"The Kubernetes API at {self.host} did not answer within "
                f"{self.timeout[1]:g} s"
            )
        return Unreachable(
            f"Could not reach the Kubernetes API at {self.host}: {reason_words(text)}"
        )

    # Workloads and pods

    def read_workload(self, kind: str, namespace: str, name: str) -> dict:
        """Return a Deployment or StatefulSet."""
        method = (
            self.apps.read_namespaced_deployment
            if kind == DEPLOYMENT
            else self.apps.read_namespaced_stateful_set
        )
        return self.call(method, name, namespace)

    def list_workloads(self, kind: str, namespace: str, selector: str) -> list:
        """Return the Deployments or StatefulSets that a label selector matches."""
        method = (
            self.apps.list_namespaced_deployment
            if kind == DEPLOYMENT
            else self.apps.list_namespaced_stateful_set
        )
        return list(self.paged(method, namespace, label_selector=selector))

    def list_pods(self, namespace: str, selector: str) -> list:
        """Return the pods that a label selector matches."""
        return list(
            self.paged(
                self.core.list_namespaced_pod, namespace, label_selector=selector
            )
        )

    def list_budgets(self, namespace: str) -> list:
        """Return the namespace's PodDisruptionBudgets."""
        method = self.policy.list_namespaced_pod_disruption_budget
        return list(self.paged(method, namespace))

    def paged(self, method: Any, *args: Any, **kwargs: Any) -> Iterator[dict]:
        """Yield the items of a list call, one page at a time."""
        token = None
        while True:
            extra = {"_continue": token} if token else {}
            page = self.call(method, *args, limit=PAGE_SIZE, **kwargs, **extra)
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    # Changes

    def evict(
        self, namespace: str, name: str, *, grace: int | None, dry_run: bool = False
    ) -> None:
        """Ask the Eviction API to remove a pod; the budget may refuse (429)."""
        options = client.V1DeleteOptions(grace_period_seconds=grace)
        body = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
            delete_options=options,
        )
        extra = {"dry_run": "All"} if dry_run else {}
        self.call(
            self.core.create_namespaced_pod_eviction, name, namespace, body, **extra
        )

    def delete_pod(self, namespace: str, name: str, *, grace: int | None) -> None:
        """Delete a pod, bypassing disruption budgets; grace 0 forces it."""
        extra = {} if grace is None else {"grace_period_seconds": grace}
        self.call(self.core.delete_namespaced_pod, name, namespace, **extra)

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> dict:
        """Set a workload's replicas through its scale subresource."""
        method = (
            self.apps.patch_namespaced_deployment_scale
            if kind == DEPLOYMENT
            else self.apps.patch_namespaced_stateful_set_scale
        )
        return self.call(method, name, namespace, {"spec": {"replicas": replicas}})

    def annotate(self, kind: str, namespace: str, name: str, annotations: dict) -> None:
        """Merge annotations into a workload's metadata."""
        method = (
            self.apps.patch_namespaced_deployment
            if kind == DEPLOYMENT
            else self.apps.patch_namespaced_stateful_set
        )
        self.call(method, name, namespace, {"metadata": {"annotations": annotations}})

    # Logs

    def open_log(
        self,
        namespace: str,
        pod: str,
        *,
        container: str,
        since_seconds: int | None = None,
        previous: bool = False,
    ) -> Any:
        """Open a container's log with timestamps; the caller reads and releases it."""
        extra = {"since_seconds": since_seconds} if since_seconds else {}
        if previous:
            extra["previous"] = True
        return self.raw(
            self.core.read_namespaced_pod_log,
            pod,
            namespace,
            container=container,
            timestamps=True,
            **extra,
        )


# Selectors and pods, as mappings in the API's own shape.


def selector_string(selector: dict | None) -> str:
    """Render a LabelSelector (matchLabels and matchExpressions) as a query."""
    selector = selector or {}
    terms = [
        f"{key}={value}"
        for key, value in sorted((selector.get("matchLabels") or {}).items())
    ]
    for expression in selector.get("matchExpressions") or []:
        terms.append(_expression_text(expression))
    return ",".join(terms)


def _expression_text(expression: dict) -> str:
    key, operator = expression["key"], expression["operator"]
    values = ",".join(expression.get("values") or [])
    texts = {
        "In": f"{key} in ({values})",
        "NotIn": f"{key} notin ({values})",
        "Exists": key,
        "DoesNotExist": f"!{key}",
    }
    return texts[operator]


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """Tell whether labels satisfy a LabelSelector; an empty selector matches all."""
    selector = selector or {}
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in wanted.items()):
        return False
    return all(
        _expression_holds(expression, labels)
        for expression in selector.get("matchExpressions") or []
    )


def _expression_holds(expression: dict, labels: dict) -> bool:
    key, values = expression["key"], expression.get("values") or []
    operator = expression["operator"]
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    return key not in labels


def pod_name(pod: dict) -> str:
    """Return a pod's name."""
    return pod["metadata"]["name"]


def pod_uid(pod: dict) -> str:
    """Return a pod's uid."""
    return pod["metadata"].get("uid") or ""


def pod_ready(pod: dict) -> bool:
    """Tell whether a pod is Ready and not being deleted."""
    if terminating(pod):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


def pod_scheduled(pod: dict) -> bool:
    """Tell whether a pod has been bound to a node."""
    return bool((pod.get("spec") or {}).get("nodeName"))


def terminating(pod: dict) -> bool:
    """Tell whether a pod is being deleted."""
    return bool(pod["metadata"].get("deletionTimestamp"))


def container_names(pod: dict) -> list:
    """Return the names of a pod's init containers, then of its containers."""
    spec = pod.get("spec") or {}
    return [
        item["name"]
        for item in (spec.get("initContainers") or []) + (spec.get("containers") or [])
    ]


def waiting_reason(pod: dict) -> str | None:
    """Return why a pod's first waiting container has not started, or None."""
    status = pod.get("status") or {}
    for item in status.get("containerStatuses") or []:
        waiting = (item.get("state") or {}).get("waiting")
        if waiting:
            return waiting.get("reason") or "Waiting"
    return None
