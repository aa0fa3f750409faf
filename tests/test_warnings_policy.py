"""The test suite's warnings policy (pyproject.toml, ``filterwarnings``) holds in every test.

A deprecation issued from the project's code (the package, the tests, a DAG file as Airflow
imports it) fails the test, including a library's deprecation whose ``stacklevel`` points
at our call; one issued inside a named library is ignored. The warnings below are issued
from modules given those names, under the filters pytest set up for this test.
"""

from __future__ import annotations

import types
import warnings

import pytest

WARN = """
import warnings

def call(category, stacklevel=1):
    warnings.warn(f"old API in {__name__}", category, stacklevel=stacklevel)
"""


def _module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(WARN, module.__dict__)
    return module


@pytest.mark.parametrize(
    "issuer", ["churnloop.training.planted", "tests.planted", "unusual_prefix_0af3_customer_data"]
)
@pytest.mark.parametrize("category", [DeprecationWarning, PendingDeprecationWarning, FutureWarning])
def test_a_deprecation_issued_from_project_code_fails(issuer: str, category: type[Warning]) -> None:
    with pytest.raises(category, match="old API"):
        _module(issuer).call(category)


def test_a_library_deprecation_called_from_project_code_fails() -> None:
    """A library warns with ``stacklevel=2``: the warning's module is its caller, ours."""
    library = _module("airflow.planted")
    caller = types.ModuleType("churnloop.planted_caller")
    caller.library = library
    exec("def use():\n    library.call(DeprecationWarning, stacklevel=2)\n", caller.__dict__)
    with pytest.raises(DeprecationWarning, match="old API"):
        caller.use()


def test_a_deprecation_inside_a_named_library_is_ignored_and_any_other_is_shown() -> None:
    with warnings.catch_warnings(record=True) as caught:
        _module("mlflow.store.planted").call(DeprecationWarning)
        _module("unlisted_library").call(DeprecationWarning)
    assert [str(warning.message) for warning in caught] == ["old API in unlisted_library"]
