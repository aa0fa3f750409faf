"""Run a committed Great Expectations suite on a DataFrame and summarise what failed.

``great_expectations/`` is only read at run time; run state (results, the Data Docs build)
goes to this machine's working folder through config substitution, so several processes can
validate at once. Importing this module imports GX, which is slow: tasks import it inside.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from churnloop.errors import DataError, enumerated, excerpt
from churnloop.settings import Settings
from churnloop.storage import lake
from churnloop.validation import data_docs
from churnloop.validation.excerpts import EXAMPLES_SHOWN, LONGEST_EXAMPLE
from churnloop.validation.gx_imports import (
    DataContextError,
    ExpectationValidationResult,
    FileDataContext,
    RunIdentifier,
    get_context,
)

RESULTS_DIR = "validations"
DOCS_BUILD_DIR = "data_docs"
LONGEST_ARGUMENT = 60
NAMES_SHOWN = 10
"""Column names a failure lists (missing, unexpected), then how many more."""
LONGEST_ERROR = 300
"""Characters of one exception message GX reports (it may quote the data)."""
LONGEST_DESCRIPTION = 4_000
"""Characters of the failure list in an error; the Data Docs page has them all."""
LARGEST_WHOLE = 1e15
"""A whole float below this shows as an integer (``18`` for 18.0); above, as a float."""
_NOT_SHOWN = {"batch_id", "column", "result_format", "catch_exceptions", "meta"}


class SuiteNotEvaluated(DataError):
    """GX could not evaluate the suite on this data at all (it raised instead of reporting)."""


@dataclass(frozen=True)
class Failure:
    """One failed expectation, in the terms a person fixing the data needs."""

    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    unexpected_count: int | None = None
    examples: tuple[str, ...] = ()
    observed: Any = None
    errors: tuple[str, ...] = ()

    def describe(self) -> str:
        """``expect_x(column='age', min_value=18, max_value=100): 41 rows, e.g. -3, 212``."""
        arguments = ([f"column={self.column!r}"] if self.column else []) + [
            f"{name}={_show_argument(value)}" for name, value in self.kwargs.items()
        ]
        return f"{self.expectation}({', '.join(arguments)}): {self._what_was_found()}"

    def _what_was_found(self) -> str:
        if self.errors:
            return "could not be evaluated: " + "; ".join(self.errors)
        if self.unexpected_count is not None:
            rows = f"{self.unexpected_count} row{'s' if self.unexpected_count != 1 else ''}"
            examples = [value for value in self.examples if value != "null"]
            return f"{rows}, e.g. {', '.join(examples)}" if examples else rows
        expected_columns = self.kwargs.get("column_list")
        if expected_columns is not None and isinstance(self.observed, list):
            return _column_list_difference(list(expected_columns), self.observed)
        return f"observed {_show(self.observed)}"


@dataclass(frozen=True)
class SuiteResult:
    """The outcome of one suite run; ``result`` is GX's own validation result as JSON."""

    suite_name: str
    passed: bool
    evaluated: int
    failures: tuple[Failure, ...]
    data_docs_relpath: str | None
    result: dict[str, Any] = field(repr=False)

    def describe(self) -> str:
        """``2 of 31 expectations failed:`` followed by one line per failure, as many as
        fit in LONGEST_DESCRIPTION characters, then how many more failed."""
        lines = [f"{len(self.failures)} of {self.evaluated} expectations failed:"]
        length = len(lines[0])
        for shown, failure in enumerate(self.failures):
            line = f" - {failure.describe()}"
            length += len(line) + 1
            if length > LONGEST_DESCRIPTION:
                left_out = len(self.failures) - shown
                lines.append(f" - … (truncated: {left_out} more, listed in the Data Docs)")
                break
            lines.append(line)
        return "\n".join(lines)


def gx_context(settings: Settings) -> FileDataContext:
    """The project's GX file context, with this machine's run-state folders filled in."""
    return _context(
        settings.great_expectations_dir,
        _work_dir(settings),
        data_docs.DATA_DOCS_PREFIX,
        settings.data_docs_index_runs,
    )


@functools.cache
def _context(
    context_root_dir: Path, work_dir: Path, docs_prefix: str, index_runs: int
) -> FileDataContext:
    """Built once per process and configuration: every task of a process reuses it."""
    runtime_environment = {
        "churnloop_validation_results_dir": str(work_dir / RESULTS_DIR),
        "churnloop_data_docs_dir": str(work_dir / DOCS_BUILD_DIR),
        "churnloop_data_docs_public_path": f"{docs_prefix}/",
        "churnloop_data_docs_index_runs": index_runs,
    }
    return get_context(
        mode="file", context_root_dir=context_root_dir, runtime_environment=runtime_environment
    )


def _work_dir(settings: Settings) -> Path:
    """GX's run state lives with the rest of this machine's working state, not in the checkout."""
    return settings.home / "great_expectations"


def run_suite(
    settings: Settings,
    suite_name: str,
    df: pd.DataFrame,
    parameters: Mapping[str, Any],
    run_name: str | None = None,
) -> SuiteResult:
    """Validate ``df`` with the committed checkpoint ``suite_name`` and publish its Data Docs.

    ``parameters`` fill the suite's ``{"$PARAMETER": ...}`` bounds (row counts, the day).
    Raises SuiteNotEvaluated when GX cannot evaluate the data at all.

    GX runs with pandas' Copy-on-Write, in its run only: its pandas engine selects a
    column's non-null rows before each column-map expectation, a deep copy of the whole
    frame when there are no nulls; under Copy-on-Write that copy is lazy, and GX writing
    to one would still copy it first: ``df`` is unchanged.
    """
    context = gx_context(settings)
    try:
        checkpoint = context.checkpoints.get(suite_name)
    except DataContextError as error:
        raise LookupError(
            f"no checkpoint {suite_name!r} in {settings.great_expectations_dir}/checkpoints: "
            "add its suite under expectations/ and run `churnloop validation-setup`"
        ) from error
    run_id = RunIdentifier(run_name=run_name or suite_name, run_time=dt.datetime.now(dt.UTC))
    try:
        with pd.option_context("mode.copy_on_write", True):
            checkpoint_result = checkpoint.run(
                batch_parameters={"dataframe": df},
                expectation_parameters=dict(parameters),
                run_id=run_id,
            )
    except (OSError, MemoryError):
        raise
    except Exception as error:
        raise SuiteNotEvaluated(
            f"suite {suite_name!r} could not be evaluated: {type(error).__name__}: "
            + excerpt(str(error), LONGEST_ERROR)
        ) from error
    ((result_id, result),) = checkpoint_result.run_results.items()
    docs_build_dir = _work_dir(settings) / DOCS_BUILD_DIR
    docs_relpath = data_docs.publish_build(lake(settings), docs_build_dir, context, result_id)
    failures = tuple(_failure(outcome) for outcome in result.results if not outcome.success)
    return SuiteResult(
        suite_name=suite_name,
        passed=bool(result.success),
        evaluated=int(result.statistics["evaluated_expectations"]),
        failures=failures,
        data_docs_relpath=docs_relpath,
        result=result.to_json_dict(),
    )


def _failure(outcome: ExpectationValidationResult) -> Failure:
    config = outcome.expectation_config
    details = outcome.result or {}
    examples = dict.fromkeys(_show(value) for value in details.get("partial_unexpected_list") or ())
    return Failure(
        expectation=config.type,
        column=config.kwargs.get("column"),
        kwargs={k: v for k, v in config.kwargs.items() if k not in _NOT_SHOWN},
        unexpected_count=details.get("unexpected_count"),
        examples=tuple(examples)[:EXAMPLES_SHOWN],
        observed=details.get("observed_value"),
        errors=_exception_messages(outcome.exception_info or {}),
    )


def _exception_messages(exception_info: Mapping[str, Any]) -> tuple[str, ...]:
    """GX reports exceptions flat, or keyed by metric when several metrics raised."""
    infos = [exception_info] if "raised_exception" in exception_info else exception_info.values()
    messages = (info.get("exception_message") for info in infos if info.get("raised_exception"))
    return tuple(dict.fromkeys(excerpt(message, LONGEST_ERROR) for message in messages if message))


def _column_list_difference(expected: list[str], observed: list[str]) -> str:
    expected_names, counts = set(expected), Counter(observed)
    missing = [name for name in expected if name not in counts]
    extra = [name for name in observed if name not in expected_names]
    repeated = sorted(name for name, count in counts.items() if count > 1)
    parts = [f"missing {_names(missing)}"] if missing else []
    parts += [f"unexpected {_names(extra)}"] if extra else []
    parts += [f"repeated {_names(repeated)}"] if repeated else []
    return ", ".join(parts) or f"columns in another order: {observed}"


def _names(names: list[str]) -> str:
    """``['a', 'b' and 7 more]``: a drop may bring thousands of columns, or huge names."""
    return f"[{enumerated([_show(name) for name in names], NAMES_SHOWN)}]"


def _show_argument(value: Any) -> str:
    """Long lists (a suite's column list) would bury the failure; their count is enough."""
    shown = _show(value)
    if isinstance(value, list | tuple) and len(shown) > LONGEST_ARGUMENT:
        return f"[{len(value)} values]"
    return shown


def _show(value: Any) -> str:
    """A value as a person reads it: ``null``, ``18`` for 18.0, ISO times, quoted strings;
    at most LONGEST_EXAMPLE characters of it."""
    return excerpt(_shown_whole(value), LONGEST_EXAMPLE)


def _shown_whole(value: Any) -> str:
    if not pd.api.types.is_scalar(value):
        return repr(value)
    if pd.isna(value):
        return "null"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < LARGEST_WHOLE:
        return str(int(value))
    return repr(value)
