"""trm.maintenance.npm_audit and the dependency_review role, through Ansible.

The project under review is ``fixtures/npm/app``: lodash 4.17.4 and mkdirp 0.5.1
(which pulls in minimist 0.0.8) as dependencies, debug 2.6.8 (with ms 2.0.0) as a
devDependency, all with long-published advisories and newer major versions.

Most tests run npm against a registry that runs in this process on loopback:
it serves packuments, tarballs made here, and npm's bulk advisory endpoint, from
``fixtures/npm/registry.json`` (advisories modelled on the published ones for
those versions). That keeps them independent of the network and of whether the
public registry's audit endpoint can be reached from here. Its gaps: a handful
of versions per package, tarballs that hold only a package.json, and no
authentication, search or publishing.

One test uses the public registry with the committed lockfile; it is skipped
when ``npm ci`` cannot reach that registry. Every count asserted comes from
``npm audit --json`` or ``npm outdated --json`` run by the test itself.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils.report import (
    parse_entries,
)
from lab.core import LOOPBACK, free_port

MODULE = "trm.maintenance.npm_audit"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "npm"
APP = FIXTURES / "app"
NPM = shutil.which("npm")
NPM_TIMEOUT = 180
SEVERITIES = ("info", "low", "moderate", "high", "critical")


@pytest.fixture(autouse=True)
def npm_installed() -> None:
    """Fail, not skip, without npm: the test setup installs it."""
    if NPM is None:
        pytest.fail(
            "npm is not installed: run scripts/install-os-packages.sh, which "
            "installs nodejs and npm"
        )


# The stand-in registry


def tarball(name: str, version: str, dependencies: dict) -> bytes:
    """A package tarball holding only its package.json."""
    manifest = {"name": name, "version": version, "dependencies": dependencies}
    data = json.dumps(manifest).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("package/package.json")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Registry:
    """Packuments, tarballs and advisories, built from the catalogue."""

    def __init__(self, catalogue: dict, base_url: str) -> None:
        self.advisories = catalogue["advisories"]
        self.tarballs: dict[str, bytes] = {}
        self.packuments = {
            name: self._packument(name, spec, base_url)
            for name, spec in catalogue["packages"].items()
        }
        self.requests: list[str] = []

    def _packument(self, name: str, spec: dict, base_url: str) -> dict:
        versions = {}
        for version, dependencies in spec["versions"].items():
            path = f"/{name}/-/{name}-{version}.tgz"
            data = self.tarballs[path] = tarball(name, version, dependencies)
            digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
            versions[version] = {
                "name": name,
                "version": version,
                "dependencies": dependencies,
                "dist": {
                    "tarball": f"{base_url}{path}",
                    "integrity": f"sha512-{digest}",
                    "shasum": hashlib.sha1(data).hexdigest(),
                },
            }
        return {
            "name": name,
            "dist-tags": {"latest": spec["latest"]},
            "versions": versions,
        }

    def bulk(self, asked: dict) -> dict:
        """Answer the bulk advisory request: advisories of the packages asked about."""
        return {
            name: self.advisories[name] for name in asked if name in self.advisories
        }


class RegistryHandler(BaseHTTPRequestHandler):
    """Serves the registry's GET and the advisory POST endpoints."""

    server: RegistryServer

    def do_GET(self) -> None:
        """Serve a packument or a tarball."""
        registry = self.server.registry
        registry.requests.append(f"GET {self.path}")
        if self.path in registry.tarballs:
            self._send(200, registry.tarballs[self.path], "application/octet-stream")
            return
        name = self.path.lstrip("/").replace("%2f", "/").replace("%2F", "/")
        packument = registry.packuments.get(name)
        if packument is None:
            self._send(404, b'{"error":"Not found"}', "application/json")
            return
        self._send(200, json.dumps(packument).encode(), "application/json")

    def do_POST(self) -> None:
        """Answer the bulk advisory endpoint."""
        registry = self.server.registry
        registry.requests.append(f"POST {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/-/npm/v1/security/advisories/bulk":
            self._send(404, b'{"error":"Not found"}', "application/json")
            return
        answer = registry.bulk(json.loads(body or b"{}"))
        self._send(200, json.dumps(answer).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Keep the test output quiet."""


class RegistryServer(ThreadingHTTPServer):
    """The stand-in registry on a loopback port."""

    daemon_threads = True
    registry: Registry


@pytest.fixture(scope="module")
def registry():
    """A running stand-in registry; yields its URL and its catalogue."""
    port = free_port()
    server = RegistryServer((LOOPBACK, port), RegistryHandler)
    url = f"http://{LOOPBACK}:{port}"
    server.registry = Registry(
        json.loads((FIXTURES / "registry.json").read_text()), url
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.registry, f"{url}/"
    server.shutdown()
    server.server_close()


# Projects and independent npm runs


@pytest.fixture(scope="module")
def npm_env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """npm's environment: a cache of its own, no update check, no funding lines."""
    cache = tmp_path_factory.mktemp("npm-cache")
    return {
        "npm_config_cache": str(cache),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }


def npm(
    args: list, cwd: Path, env: dict, *, check: bool = True
) -> subprocess.CompletedProcess:
    """Run npm the way a person would, with a timeout."""
    proc = subprocess.run(
        [NPM, *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"npm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def npm_json(args: list, cwd: Path, env: dict) -> dict:
    """Run an npm command that prints JSON and exits 1 when it finds something."""
    return json.loads(npm([*args, "--json"], cwd, env, check=False).stdout)


@pytest.fixture(scope="module")
def project(registry, npm_env, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture's package.json installed from the stand-in registry."""
    _registry, url = registry
    folder = tmp_path_factory.mktemp("project")
    shutil.copy(APP / "package.json", folder / "package.json")
    npm(["install", "--ignore-scripts", f"--registry={url}"], folder, npm_env)
    return folder


def by_name(result: dict) -> dict:
    """The result's findings by name."""
    return {check["name"]: check for check in result["checks"]}


def expected_counts(audit: dict) -> dict:
    """Vulnerable packages per severity, as npm's own audit counts them."""
    counts = audit["metadata"]["vulnerabilities"]
    return {severity: counts[severity] for severity in SEVERITIES}


def major(version: str) -> tuple:
    """The part of a version that changes on a breaking release."""
    parts = [int(part) for part in version.split(".")[:3]]
    return (parts[0],) if parts[0] else (0, parts[1])


def majors_expected(outdated: dict) -> list:
    """Packages whose latest release is a new major version, from npm outdated."""
    return sorted(
        name
        for name, info in outdated.items()
        if major(info.get("current") or info["wanted"]) < major(info["latest"])
    )


# The module against the stand-in registry


def test_findings_match_what_npm_audit_and_npm_outdated_report(
    ansible, registry, project, npm_env
):
    stand_in, url = registry
    audit = npm_json(["audit", f"--registry={url}"], project, npm_env)
    outdated = npm_json(["outdated", f"--registry={url}"], project, npm_env)
    counts = expected_counts(audit)
    assert counts["critical"] > 0
    assert counts["low"] > 0

    result = ansible.module(
        MODULE, {"path": str(project), "registry": url}, env=npm_env
    )

    assert result["failed"] is False
    assert [check["name"] for check in result["checks"]] == [
        "vulnerabilities_critical",
        "vulnerabilities_high",
        "vulnerabilities_moderate",
        "vulnerabilities_low",
        "major_updates",
        "updates",
    ]
    metrics = result["metrics"]
    assert {s: metrics[f"vulnerabilities_{s}"] for s in SEVERITIES} == counts
    assert (
        metrics["vulnerabilities_total"]
        == audit["metadata"]["vulnerabilities"]["total"]
    )
    assert metrics["dependencies_total"] == audit["metadata"]["dependencies"]["total"]

    checks = by_name(result)
    critical = checks["vulnerabilities_critical"]
    assert (critical["status"], critical["value"]) == ("critical", counts["critical"])
    assert sorted(package["name"] for package in critical["packages"]) == sorted(
        name
        for name, info in audit["vulnerabilities"].items()
        if info["severity"] == "critical"
    )
    low = checks["vulnerabilities_low"]
    assert (low["status"], low["value"]) == ("ok", counts["low"])
    moderate_status = "warning" if counts["moderate"] else "ok"
    assert checks["vulnerabilities_moderate"]["status"] == moderate_status

    expected_major = majors_expected(outdated)
    major_updates = checks["major_updates"]
    assert sorted(p["name"] for p in major_updates["packages"]) == expected_major
    assert major_updates["value"] == len(expected_major)
    assert major_updates["status"] == ("warning" if len(expected_major) > 1 else "ok")
    listed = {
        p["name"]: (p["current"], p["wanted"], p["latest"])
        for p in checks["updates"]["packages"]
    }
    assert listed == {
        name: (info["current"], info["wanted"], info["latest"])
        for name, info in outdated.items()
    }
    assert metrics["outdated_total"] == len(outdated)
    assert result["status"] == "critical"
    assert result["summary"].startswith(f"npm dependencies of {project} CRITICAL")
    assert "POST /-/npm/v1/security/advisories/bulk" in stand_in.requests


def test_production_review_in_check_mode_leaves_dev_dependencies_out(
    ansible, registry, project, npm_env
):
    _stand_in, url = registry
    audit = npm_json(["audit", "--omit=dev", f"--registry={url}"], project, npm_env)
    outdated = npm_json(
        ["outdated", "--omit=dev", f"--registry={url}"], project, npm_env
    )

    result = ansible.module(
        MODULE,
        {"path": str(project), "registry": url, "omit_dev": True},
        env=npm_env,
        check_mode=True,
    )

    metrics = result["metrics"]
    assert {s: metrics[f"vulnerabilities_{s}"] for s in SEVERITIES} == expected_counts(
        audit
    )
    assert "debug" not in {p["name"] for c in result["checks"] for p in c["packages"]}
    expected_major = majors_expected(outdated)
    major_updates = by_name(result)["major_updates"]
    assert major_updates["value"] == len(expected_major)
    assert major_updates["status"] == ("warning" if len(expected_major) > 1 else "ok")
    assert result["changed"] is False


def test_without_node_modules_current_versions_come_from_the_lockfile(
    ansible, registry, project, npm_env, tmp_path
):
    _stand_in, url = registry
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy(project / name, bare / name)
    outdated = npm_json(["outdated", f"--registry={url}"], bare, npm_env)
    assert all("current" not in info for info in outdated.values())
    lock = json.loads((bare / "package-lock.json").read_text())["packages"]

    result = ansible.module(
        MODULE,
        {"path": str(bare), "registry": url, "commands": ["outdated"]},
        env=npm_env,
    )

    updates = by_name(result)["updates"]
    assert {
        p["name"]: (p["current"], p["current_from"]) for p in updates["packages"]
    } == {
        name: (lock[f"node_modules/{name}"]["version"], "lockfile") for name in outdated
    }
    assert [check["name"] for check in result["checks"]] == ["major_updates", "updates"]


def test_fail_on_turns_findings_at_the_audit_level_into_a_failure(
    ansible, registry, project, npm_env
):
    _stand_in, url = registry
    audit = npm_json(["audit", f"--registry={url}"], project, npm_env)

    result = ansible.module(
        MODULE,
        {
            "path": str(project),
            "registry": url,
            "audit_level": "high",
            "commands": ["audit"],
            "fail_on": "critical",
        },
        env=npm_env,
    )

    assert result["failed"] is True
    assert result["msg"] == result["summary"]
    assert [check["name"] for check in result["checks"]] == [
        "vulnerabilities_critical",
        "vulnerabilities_high",
    ]
    assert result["metrics"]["vulnerabilities_low"] == expected_counts(audit)["low"]


# What can go wrong


def test_a_folder_without_package_json_fails_naming_the_option(ansible, tmp_path):
    result = ansible.module(MODULE, {"path": str(tmp_path)})
    assert result["failed"] is True
    assert result["option"] == "path"
    assert result["msg"] == (
        f"Option 'path' must be the project's folder, but it holds no package.json; "
        f"got '{tmp_path}'"
    )


def path_without_npm(folder: Path) -> str:
    """A PATH with every program of the system's PATH except Node.js and npm."""
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for program in os.listdir(directory):
            link = folder / program
            if program in {"npm", "npx", "node", "nodejs", "corepack"} or link.exists():
                continue
            link.symlink_to(Path(directory) / program)
    return str(folder)


def test_npm_missing_from_path_is_unknown_with_what_to_install(
    ansible, project, npm_env, tmp_path
):
    search_path = path_without_npm(tmp_path / "bin")
    assert shutil.which("npm", path=search_path) is None

    result = ansible.module(
        MODULE, {"path": str(project)}, env={**npm_env, "PATH": search_path}
    )

    assert result["failed"] is False
    assert [(c["name"], c["status"]) for c in result["checks"]] == [
        ("audit", "unknown"),
        ("outdated", "unknown"),
    ]
    for check in result["checks"]:
        assert check["message"] == "npm was not found on PATH"
        assert "apt-get install nodejs npm" in check["action"]
    assert result["status"] == "unknown"


def test_a_registry_that_does_not_answer_is_unknown_within_the_timeout(
    ansible, project, npm_env
):
    url = f"http://{LOOPBACK}:{free_port()}/"
    started = time.monotonic()

    result = ansible.module(
        MODULE, {"path": str(project), "registry": url, "timeout": 5}, env=npm_env
    )

    elapsed = time.monotonic() - started
    checks = by_name(result)
    assert checks["audit"]["status"] == "unknown"
    assert checks["audit"]["message"].startswith(
        f"npm audit could not get advisories: request to {url}-/npm/v1/security/"
        "advisories/bulk failed"
    )
    assert "ECONNREFUSED" in checks["audit"]["message"]
    # npm retries a refused packument request for about a minute on its own.
    assert checks["outdated"]["status"] == "unknown"
    assert checks["outdated"]["message"] == (
        "npm outdated did not finish within 5 s and was stopped"
    )
    assert elapsed < 45
    assert result["status"] == "unknown"


# The public registry


def test_the_public_registry_with_the_committed_lockfile(ansible, npm_env, tmp_path):
    app = tmp_path / "app"
    shutil.copytree(APP, app)
    install = npm(["ci", "--ignore-scripts"], app, npm_env, check=False)
    if install.returncode != 0:
        pytest.skip(f"npm ci cannot reach the public registry: {install.stderr[-300:]}")
    audit = npm_json(["audit"], app, npm_env)
    outdated = npm_json(["outdated"], app, npm_env)

    result = ansible.module(MODULE, {"path": str(app)}, env=npm_env)

    checks = by_name(result)
    assert sorted(checks["major_updates"]["packages"], key=lambda p: p["name"]) == [
        package
        for package in sorted(checks["updates"]["packages"], key=lambda p: p["name"])
        if package["name"] in majors_expected(outdated)
    ]
    assert {p["name"]: p["latest"] for p in checks["updates"]["packages"]} == {
        name: info["latest"] for name, info in outdated.items()
    }
    if "metadata" in audit:
        assert {
            s: result["metrics"][f"vulnerabilities_{s}"] for s in SEVERITIES
        } == expected_counts(audit)
        assert checks["vulnerabilities_critical"]["status"] == (
            "critical" if audit["metadata"]["vulnerabilities"]["critical"] else "ok"
        )
    else:
        # The registry (or a mirror in front of it) refused the audit request:
        # the module reports npm's own message as unknown.
        assert checks["audit"]["status"] == "unknown"
        assert checks["audit"]["message"] == (
            f"npm audit could not get advisories: {audit['message']}"
        )


# The dependency_review role


def run_role(ansible, tmp_path: Path, variables: dict, env: dict) -> list:
    """Run the role in a playbook and return maintenance_results."""
    out = tmp_path / "results.json"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "ansible_python_interpreter": sys.executable,
                "maintenance_cadence": "weekly",
                **variables,
            },
            "tasks": [
                {
                    "name": "Review the dependencies",
                    "ansible.builtin.import_role": {
                        "name": "trm.maintenance.dependency_review"
                    },
                },
                {
                    "name": "Save the results",
                    "ansible.builtin.copy": {
                        "content": "{{ maintenance_results | to_json }}",
                        "dest": str(out),
                    },
                },
            ],
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    run = ansible.playbook(playbook, "-i", "localhost,", "-c", "local", env=env)
    assert run.rc == 0, run.stdout + run.stderr
    return json.loads(out.read_text())


def test_the_role_records_one_entry_per_project(
    ansible, registry, project, npm_env, tmp_path
):
    _stand_in, url = registry
    audit = npm_json(["audit", f"--registry={url}"], project, npm_env)
    production = npm_json(
        ["audit", "--omit=dev", f"--registry={url}"], project, npm_env
    )

    entries = run_role(
        ansible,
        tmp_path,
        {
            "dependency_review_registry": url,
            "dependency_review_projects": [
                {"name": "api", "path": str(project)},
                {"name": "api (production)", "path": str(project), "omit_dev": True},
                {"name": "worker", "path": str(tmp_path / "no-such-folder")},
            ],
        },
        npm_env,
    )

    assert [(e["section"], e["task"], e["cadence"], e["role"]) for e in entries] == [
        (
            "Dependencies",
            "Review the npm dependencies of api",
            "weekly",
            "dependency_review",
        ),
        (
            "Dependencies",
            "Review the npm dependencies of api (production)",
            "weekly",
            "dependency_review",
        ),
        (
            "Dependencies",
            "Review the npm dependencies of worker",
            "weekly",
            "dependency_review",
        ),
    ]
    full, prod, missing = (entry["result"] for entry in entries)
    assert full["status"] == "critical"
    assert {s: full["metrics"][f"vulnerabilities_{s}"] for s in SEVERITIES} == (
        expected_counts(audit)
    )
    assert {s: prod["metrics"][f"vulnerabilities_{s}"] for s in SEVERITIES} == (
        expected_counts(production)
    )
    assert missing["failed"] is True
    report = parse_entries(entries)
    assert [(e.kind, e.status) for e in report] == [
        ("check", "critical"),
        ("check", "critical"),
        ("failed", "unknown"),
    ]
    # One project's bad path is reported; it does not stop the others.
    assert report[2].message.startswith(
        "Option 'path' must be an existing folder that holds package.json"
    )


def test_the_role_without_projects_records_a_skip_with_a_note(ansible, tmp_path):
    entries = run_role(ansible, tmp_path, {}, {})
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["section"], entry["task"], entry["role"]) == (
        "Dependencies",
        "Review the npm dependencies",
        "dependency_review",
    )
    assert entry["result"]["skipped"] is True
    assert "dependency_review_projects" in entry["result"]["skip_reason"]
    assert [(e.kind, e.message[:40]) for e in parse_entries(entries)] == [
        ("skipped", "No project to review: set dependency_rev")
    ]
