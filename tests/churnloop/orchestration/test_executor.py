import gc
import subprocess
import sys

import pytest
import structlog
from mlflow.utils import requirements_utils

from churnloop.orchestration.executor import CACHE_WARMERS, PRELOADED_MODULES, preload
from churnloop.validation import data_docs_views


@pytest.fixture
def unfrozen():
    """The test process's objects back under the collector after a preload froze them."""
    yield
    gc.unfreeze()


def test_preload_imports_the_task_libraries_and_fills_their_caches(monkeypatch, unfrozen):
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(data_docs_views, "_TEMPLATES", data_docs_views._ProcessBytecodeCache())
    gc.unfreeze()

    with structlog.testing.capture_logs() as logs:
        preload()

    assert "lightgbm" in requirements_utils._MODULES_TO_PACKAGES  # what log_model maps
    assert len(data_docs_views._TEMPLATES._compiled) == data_docs_views.warm()
    (entry,) = [entry for entry in logs if entry["event"] == "Preloaded task libraries"]
    assert entry["modules"] == PRELOADED_MODULES and entry["warmers"] == CACHE_WARMERS
    # What was loaded is out of the collector's reach: a task's collections skip it.
    assert entry["frozen_objects"] > 100_000 and gc.get_freeze_count() > 100_000


def test_a_warmer_that_does_not_exist_fails_the_preload_loudly():
    with pytest.raises(AttributeError, match="no_such_cache"):
        preload(modules=(), warmers=("churnloop.training.challenger:no_such_cache",))


def test_preloading_logs_none_of_gx_registration_lines():
    """Run in a fresh interpreter at INFO, as the scheduler is: GX is not imported yet there."""
    script = (
        "import logging; logging.basicConfig(level=logging.INFO)\n"
        "from churnloop.orchestration.executor import preload\n"
        "preload(warmers=())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert "Skipping registering function" not in result.stderr + result.stdout
