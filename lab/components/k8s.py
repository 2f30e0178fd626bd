"""Lab component ``k8s``: the Kubernetes API stand-in (``lab.k8s_server``).

Starts the server on a free loopback port with its pod log folder under the state
folder, and writes a kubeconfig (context ``trm-lab``) that points at it. Options
come from ``state["options"]["k8s"]``: ``ready_delay`` (seconds a new pod stays
Pending), ``never_ready`` (new pods stay Pending) and ``replicas``.
"""

from __future__ import annotations

from pathlib import Path

from lab.core import LOOPBACK, LabContext, LabError, free_port, wait_for_port

CONTEXT = "trm-lab"
NAMESPACE = "trm"
DEPLOYMENT = "trm-app"
# The server accepts any bearer token; this one only makes clients send one.
TOKEN = "trm-lab-token"


def server_args(options: dict) -> list[str]:
    """Turn the component's options into command-line options of the server."""
    unknown = sorted(set(options) - {"ready_delay", "never_ready", "replicas"})
    if unknown:
        raise LabError(f"Unknown k8s lab options: {', '.join(unknown)}")
    args = []
    if "ready_delay" in options:
        args += ["--ready-delay", str(float(options["ready_delay"]))]
    if options.get("never_ready"):
        args.append("--never-ready")
    if "replicas" in options:
        args += ["--replicas", str(int(options["replicas"]))]
    return args


def write_kubeconfig(path: Path, url: str) -> None:
    """Write a kubeconfig with one cluster, one token user and context ``trm-lab``."""
    path.write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f"- name: {CONTEXT}\n"
        "  cluster:\n"
        f"    server: {url}\n"
        "users:\n"
        f"- name: {CONTEXT}-operator\n"
        "  user:\n"
        f"    token: {TOKEN}\n"
        "contexts:\n"
        f"- name: {CONTEXT}\n"
        "  context:\n"
        f"    cluster: {CONTEXT}\n"
        f"    user: {CONTEXT}-operator\n"
        f"    namespace: {NAMESPACE}\n"
        f"current-context: {CONTEXT}\n"
        "preferences: {}\n"
    )
    path.chmod(0o600)


def start(ctx: LabContext, state: dict) -> dict:
    """Start the Kubernetes API stand-in and write its kubeconfig."""
    options = state.get("options", {}).get("k8s", {})
    extra = server_args(options)
    port = free_port()
    logs_dir = ctx.path("k8s-logs")
    logs_dir.mkdir(exist_ok=True)
    pid = ctx.spawn_python(
        "k8s",
        "lab.k8s_server",
        *("--port", str(port), "--logs-dir", str(logs_dir), *extra),
    )
    wait_for_port(port, pid=pid)
    url = f"http://{LOOPBACK}:{port}"
    kubeconfig = ctx.path("kubeconfig")
    write_kubeconfig(kubeconfig, url)
    return {
        "pids": [pid],
        "host": LOOPBACK,
        "port": port,
        "url": url,
        "kubeconfig": str(kubeconfig),
        "context": CONTEXT,
        "namespace": NAMESPACE,
        "deployment": DEPLOYMENT,
        "logs_dir": str(logs_dir),
    }
