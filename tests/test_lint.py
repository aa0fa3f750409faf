"""`make lint` fails on a planted violation of each rule it checks, naming what broke.

Each case copies the checkout (the files git tracks or would) to a temporary folder,
plants one violation and runs `make lint` there with this checkout's virtualenv;
`lint-imports` reads the copy's package (first on PYTHONPATH), so the contracts judge
the planted code, not ours.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from churnloop.settings import PROJECT_ROOT

VENV_BIN = PROJECT_ROOT / ".venv" / "bin"

# (file, text appended or prepended, what the failure must say)
VIOLATIONS = {
    "ruff check": (
        "include/churnloop/errors.py",
        "append",
        "import os\n",
        "`os` imported but unused",
    ),
    "ruff format": (
        "include/churnloop/errors.py",
        "append",
        "PLANTED = {'a':1}\n",
        "include/churnloop/errors.py",
    ),
    "a stage imports upward": (
        "include/churnloop/features/definition.py",
        "append",
        "\n\nfrom churnloop.serving import app  # noqa: E402, F401\n",
        "churnloop.features is not allowed to import churnloop.serving",
    ),
    "a stage imports Airflow": (
        "include/churnloop/training/plan.py",
        "append",
        "\n\nimport airflow  # noqa: E402, F401\n",
        "churnloop.training.plan -> airflow",
    ),
    "a DAG imports a stage at module level": (
        "dags/customer_data.py",
        "prepend",
        "from churnloop.training import steps  # noqa: F401\n",
        "`churnloop.training` is banned at the module level",
    ),
    "the package imports an undeclared package": (
        "include/churnloop/errors.py",
        "append",
        "\n\nimport tenacity  # noqa: E402, F401\n",
        "'tenacity' imported but it is a transitive dependency",
    ),
    "the package imports a dev-only package": (
        "include/churnloop/errors.py",
        "append",
        "\n\nimport pytest  # noqa: E402, F401\n",
        "'pytest' imported but declared as a dev dependency",
    ),
}


def _copy_of_repo(target: Path) -> Path:
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, tracked):
        source = PROJECT_ROOT / name.decode()
        if source.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name.decode())
    return target


def _plant(path: Path, where: str, text: str) -> None:
    original = path.read_text()
    path.write_text(original + text if where == "append" else text + original)


def _make_lint(repo: Path) -> subprocess.CompletedProcess[str]:
    synced = VENV_BIN.parent / ".synced"
    command = ["make", "--no-print-directory", "-o", str(synced), "lint"]
    command += [f"BIN={VENV_BIN}", f"SYNCED={synced}"]
    environ = {**os.environ, "PYTHONPATH": str(repo / "include")}
    return subprocess.run(command, cwd=repo, env=environ, capture_output=True, text=True)


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_of_repo(tmp_path_factory.mktemp("repo"))


def test_lint_passes_on_the_repository(clean_copy: Path) -> None:
    result = _make_lint(clean_copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("rule", VIOLATIONS)
def test_lint_fails_on_a_planted_violation(rule: str, clean_copy: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(clean_copy, repo)
    file, where, text, expected = VIOLATIONS[rule]
    _plant(repo / file, where, text)
    result = _make_lint(repo)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{rule}: make lint passed\n{output}"
    assert expected in output, f"{rule}: the failure does not say {expected!r}\n{output}"
