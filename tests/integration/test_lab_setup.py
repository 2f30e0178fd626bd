"""The set-up steps of `make demo` and `make test`: OS packages, order, copies.

The OS package script is run with ``--dry-run`` on a PATH of stand-in commands,
so it decides what a fresh Debian machine lacks without installing anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "scripts" / "install-os-packages.sh"
COPY = REPO / "scripts" / "copy-git-files.sh"
BASH = shutil.which("bash") or "/bin/bash"
COMMANDS = (
    "git",
    "redis-server",
    "prometheus",
    "prometheus-node-exporter",
    "shellcheck",
    "node",
    "npm",
    "openssl",
)


def stand_ins(folder: Path, names: tuple) -> Path:
    """A folder of commands that do nothing, one per name."""
    folder.mkdir(exist_ok=True)
    for name in names:
        path = folder / name
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
    return folder


def without_ensurepip(folder: Path) -> Path:
    """A module folder whose ``ensurepip`` fails to import, as on Debian."""
    package = folder / "ensurepip"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('No module ensurepip')\n")
    return folder


def install(tmp_path: Path, *args: str, lacking=(), python=sys.executable, env=None):
    """Run the OS package script on a PATH that lacks the commands ``lacking``."""
    path = stand_ins(tmp_path / "bin", tuple(c for c in COMMANDS if c not in lacking))
    return subprocess.run(
        [BASH, str(INSTALL), *args],
        env={"PATH": str(path), "PYTHON": python, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("lacking", "expected"),
    [
        ((), []),
        (("git",), ["git"]),
        (("redis-server", "node"), ["redis-server", "nodejs"]),
        (COMMANDS, ["git", *COMMANDS[1:5], "nodejs", "npm", "openssl"]),
    ],
)
def test_dry_run_lists_the_package_of_each_missing_command(tmp_path, lacking, expected):
    run = install(tmp_path, "--dry-run", lacking=lacking)
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.splitlines() == expected


def test_python_without_ensurepip_needs_python3_venv_first(tmp_path: Path):
    shadow = without_ensurepip(tmp_path / "shadow")
    env = {"PYTHONPATH": str(shadow)}
    assert (
        subprocess.run(
            [sys.executable, "-c", "import ensurepip"],
            env=env,
            capture_output=True,
            check=False,
        ).returncode
        == 1
    )

    run = install(tmp_path, "--dry-run", lacking=("git",), env=env)
    assert run.returncode == 0
    assert run.stdout.splitlines() == ["python3-venv", "git"]


def test_missing_python_needs_python3_and_python3_venv(tmp_path: Path):
    run = install(tmp_path, "--dry-run", python=str(tmp_path / "no-python3"))
    assert run.returncode == 0
    assert run.stdout.splitlines() == ["python3", "python3-venv"]


def test_nothing_missing_installs_nothing(tmp_path: Path):
    # apt-get and sudo are not on this PATH: the script must not reach them.
    run = install(tmp_path)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


def test_without_apt_get_it_names_the_packages_to_install(tmp_path: Path):
    run = install(tmp_path, lacking=("git", "shellcheck"))
    assert run.returncode == 1
    assert run.stderr == (
        "install-os-packages: please install git shellcheck with your package manager\n"
    )


def test_unknown_argument_is_refused(tmp_path: Path):
    run = install(tmp_path, "--yes")
    assert run.returncode == 2
    assert run.stderr == f"usage: {INSTALL} [--dry-run]\n"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", ["demo", "test", "venv"])
def test_make_installs_os_packages_before_the_virtualenv(tmp_path, target: str):
    run = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'venv'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = run.stdout.splitlines()
    packages = lines.index("PYTHON=python3 ./scripts/install-os-packages.sh")
    venv = lines.index(f"python3 -m venv {tmp_path / 'venv'}")
    assert packages < venv


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_fresh_stamp_keeps_the_virtualenv_and_touches_no_interpreter(tmp_path):
    # The venv's python links to an interpreter older than the requirements.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    base = tmp_path / "python3.11"
    base.write_text("")
    os.utime(base, (0, 0))
    (venv / "bin" / "python").symlink_to(base)
    (venv / ".requirements-installed").touch()
    run = subprocess.run(
        ["make", "-n", "venv", f"VENV={venv}", f"COLLECTION_LINK={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "venv" not in run.stdout.replace("Nothing to be done for 'venv'", "")
    assert base.stat().st_mtime == 0


def git(repo: Path, *args: str) -> None:
    """Run git in ``repo``."""
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A repository with tracked, untracked, ignored and deleted files."""
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    for name in ("a.txt", "sub/b.txt", "gone.txt", "c.txt", "d.log", ".gitignore"):
        (repo / name).write_text(f"{name}\n")
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, "init", "-q")
    git(repo, "add", "a.txt", "sub/b.txt", "gone.txt", ".gitignore")
    (repo / "gone.txt").unlink()
    return repo


def copy(repo: Path, dest: Path) -> subprocess.CompletedProcess:
    """Run the copy script in ``repo``."""
    return subprocess.run(
        [BASH, str(COPY), str(dest)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_copy_keeps_known_files_and_skips_deleted_ones(checkout, tmp_path):
    dest = tmp_path / "out" / "ansible_collections" / "trm" / "maintenance"
    run = copy(checkout, dest)

    assert run.returncode == 0, run.stderr
    assert run.stderr == (
        "copy-git-files: skipping gone.txt (deleted in the working tree)\n"
    )
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == [".gitignore", "a.txt", "c.txt", "sub/b.txt"]
    assert (dest / "sub" / "b.txt").read_text() == "sub/b.txt\n"


def test_copy_fails_when_a_file_cannot_be_copied(checkout, tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    # A file where the copy needs a folder makes cp fail for sub/b.txt.
    (dest / "sub").write_text("in the way\n")
    run = copy(checkout, dest)

    assert run.returncode != 0
    assert f"cp: '{dest / 'sub'}' exists but is not a directory" in run.stderr
    assert (dest / "a.txt").read_text() == "a.txt\n"


def test_copy_outside_a_repository_fails(tmp_path: Path):
    run = copy(tmp_path, tmp_path / "out")
    assert run.returncode != 0
    assert not (tmp_path / "out").exists()


def test_sanity_copies_with_the_script_and_hides_no_error():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nsanity: venv\n", 1)[1].split("\n\n", 1)[0]
    assert "./scripts/copy-git-files.sh $(SANITY_ROOT)" in recipe
    assert "|| true" not in recipe
    assert os.access(COPY, os.X_OK) and os.access(INSTALL, os.X_OK)
