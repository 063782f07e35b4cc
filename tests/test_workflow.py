"""The GitHub workflows pass actionlint (syntax, expressions, action inputs, shellcheck where installed).

actionlint comes from requirements.txt as a wheel that ships the binary; without it these tests
fail, they do not skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def actionlint() -> str:
    beside = Path(sys.executable).with_name("actionlint")  # the venv's own, first
    path = str(beside) if beside.is_file() else shutil.which("actionlint")
    if path is None:
        pytest.fail("actionlint is not installed: `pip install -r requirements.txt` (make venv) installs it")
    return path


def lint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint(), "-no-color", *map(str, files)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_workflows_pass_actionlint():
    assert WORKFLOWS, "no workflow under .github/workflows"
    run = lint(*WORKFLOWS)
    assert run.returncode == 0, f"actionlint found problems:\n{run.stdout}{run.stderr}"


def test_actionlint_reports_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.nonexistent_context }}\n      - uses: actions/checkout@v5\n        with:\n          no-such-input: 1\n")
    run = lint(bad)
    assert run.returncode == 1
    assert "nonexistent_context" in run.stdout and "no-such-input" in run.stdout, run.stdout
