"""Installing: the packaging metadata raises no deprecation warning, and `./dev install` with
nothing changed runs no pip and prints nothing (the dev script run against a stub venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

STUB_PYTHON = """#!/usr/bin/env bash
# records each call; pip's answers come from the environment
echo "$*" >> "$(dirname "$0")/../calls.log"
case "$*" in
  *"-e .[dev]"*)
    [ -n "${STUB_DEPRECATE:-}" ] && echo "  SetuptoolsDeprecationWarning: something is deprecated"
    [ -n "${STUB_FAIL:-}" ] && { echo "ERROR: No matching distribution found for nothing"; exit 1; }
    echo "  building editable wheel (noise the terminal does not need)" ;;
esac
exit 0
"""


def test_the_packaging_metadata_has_no_deprecation_warning():
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-input", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Would install automem-pipelines" in output
    assert "deprecat" not in output.lower(), output


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "dev", root / "dev")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(STUB_PYTHON)
    (bin_dir / "python").chmod(0o755)
    return root


def _dev(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(root / "dev"), *args],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _calls(root: Path) -> list[str]:
    log = root / ".venv" / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_dev_install_installs_once_then_is_quiet(tmp_path):
    root = _project(tmp_path)
    first = _dev(root, "install")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "" and first.stderr.startswith("dev: installing into .venv")
    assert len(first.stderr.splitlines()) == 1  # pip's output went to the log
    assert "noise the terminal" in (root / ".venv" / "install.log").read_text()
    pip_calls = [c for c in _calls(root) if "pip install" in c]
    assert len(pip_calls) == 2  # pip itself, then the project
    assert list((root / ".venv").glob(".installed-*"))

    again = _dev(root, "install")
    assert again.returncode == 0 and again.stdout == again.stderr == ""
    assert [c for c in _calls(root) if "pip install" in c] == pip_calls  # no pip this time

    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + "\n# edit\n")
    changed = _dev(root, "install")
    assert changed.returncode == 0 and "installing" in changed.stderr
    assert len([c for c in _calls(root) if "pip install" in c]) == 4
    assert len(list((root / ".venv").glob(".installed-*"))) == 1  # the old stamp is gone


def test_dev_install_shows_a_failure_and_a_deprecation(tmp_path):
    root = _project(tmp_path)
    warned = _dev(root, "install", STUB_DEPRECATE="1")
    assert warned.returncode == 0 and "something is deprecated" in warned.stderr
    (next((root / ".venv").glob(".installed-*"))).unlink()

    failed = _dev(root, "install", STUB_FAIL="1")
    assert failed.returncode != 0
    assert "No matching distribution" in failed.stderr and "pip install failed" in failed.stderr
    assert not list((root / ".venv").glob(".installed-*"))  # tried again next time
