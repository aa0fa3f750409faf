"""docs/adding-a-task.md, exercised: its marked examples run against the real code.

Each ``<!-- example: name -->`` block is extracted from the page and applied to copies of
the repo's files (or executed), so the guide fails the suite when it no longer matches the
code. The repo itself is never changed.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import shutil
import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from churnloop import cli, schema
from churnloop.demo.simulation import generate_labels, generate_snapshots
from churnloop.features import definition
from churnloop.settings import get_settings
from churnloop.storage import lake
from churnloop.training import gate
from churnloop.training.gate import FAILED, PASSED, SKIPPED
from churnloop.training.metrics import classification_metrics, score
from churnloop.training.pipeline import fit_pipeline
from churnloop.training.split import split_by_time

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "adding-a-task.md"
EXAMPLE = re.compile(
    r"<!-- example: (?P<name>[\w-]+) -->\n(?P<indent> *)```\w+\n(?P<body>.*?)\n(?P=indent)```",
    re.DOTALL,
)
REPO_FOLDERS = ("dags/", "include/", "tests/", "great_expectations/", "feature_repo/", "docs/")
DAY = dt.date(2026, 3, 4)


def example(name: str) -> str:
    """The body of the guide's code block marked ``<!-- example: name -->``."""
    found = {
        match["name"]: textwrap.dedent(match["body"])
        for match in EXAMPLE.finditer(GUIDE.read_text())
    }
    assert name in found, f"{GUIDE.name} has no block marked <!-- example: {name} -->"
    return found[name]


def apply_diff(diff: str, root: Path) -> dict[str, str]:
    """Apply the guide's diff to copies of the repo's files under ``root``.

    Hunks carry no line numbers: each hunk's old lines (context and removed) must occur
    exactly once in the file, so a hunk that no longer matches the code fails here.
    """
    edited: dict[str, str] = {}
    path = None
    for part in re.split(r"^(?=--- a/|@@)", diff, flags=re.MULTILINE):
        lines = part.splitlines()
        if not lines:
            continue
        if part.startswith("--- a/"):
            path = lines[0].removeprefix("--- a/")
            edited[path] = (REPO / path).read_text()
            continue
        hunk = lines[1:]
        old = "".join(f"{line[1:]}\n" for line in hunk if line[:1] in (" ", "-", ""))
        new = "".join(f"{line[1:]}\n" for line in hunk if line[:1] in (" ", "+", ""))
        text = f"\n{edited[path]}"
        assert text.count(f"\n{old}") == 1, f"hunk {lines[0]!r} does not match {path} once"
        edited[path] = text.replace(f"\n{old}", f"\n{new}", 1)[1:]
    for relpath, text in edited.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)
    return edited


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_set_columns(suite: dict) -> tuple[list[str], set[str]]:
    """The suite's ordered column list and the columns it expects to be non-null."""
    by_type: dict[str, list[dict]] = {}
    for expectation in suite["expectations"]:
        by_type.setdefault(expectation["type"], []).append(expectation["kwargs"])
    (ordered,) = by_type["expect_table_columns_to_match_ordered_list"]
    not_null = {kwargs["column"] for kwargs in by_type["expect_column_values_to_not_be_null"]}
    return ordered["column_list"], not_null


def test_the_training_set_suite_follows_feature_schema_as_the_guide_says():
    suite = json.loads((REPO / "great_expectations/expectations/training_sets.json").read_text())
    ordered, not_null = training_set_columns(suite)

    assert ordered == [
        schema.ENTITY,
        schema.TIMESTAMP,
        *definition.FEATURE_SCHEMA.names,
        schema.LABEL,
    ]
    assert set(definition.FEATURE_SCHEMA.names) <= not_null


def test_the_new_feature_example_builds_and_its_suite_and_service_follow(tmp_path):
    edited = apply_diff(example("new-feature"), tmp_path)
    assert set(edited) == {
        "include/churnloop/features/definition.py",
        "feature_repo/churn_features.py",
        "great_expectations/expectations/training_sets.json",
    }
    module = load_module(
        tmp_path / "include/churnloop/features/definition.py", "features_with_example"
    )
    added = sorted(set(module.FEATURE_SCHEMA.names) - set(definition.FEATURE_SCHEMA.names))
    assert added == ["logins_per_day_30d"]
    assert module.FEATURE_SERVICE != definition.FEATURE_SERVICE
    assert f" {module.FEATURE_SERVICE} = definitions(" in edited["feature_repo/churn_features.py"]

    days = [DAY - dt.timedelta(days=offset) for offset in range(6) if offset != 2]
    history = pd.concat(generate_snapshots(day, 200).to_pandas() for day in days)
    rows = module.build_features(history, DAY)

    pa.Table.from_pandas(rows, schema=module.TABLE_SCHEMA, preserve_index=False)
    per_day = rows["logins_per_day_30d"].to_numpy()
    assert np.isfinite(per_day).all()
    np.testing.assert_allclose(per_day, rows["logins_30d"] / 5)  # 5 of the 30 days observed
    ordered, not_null = training_set_columns(
        json.loads(edited["great_expectations/expectations/training_sets.json"])
    )
    assert ordered == [schema.ENTITY, schema.TIMESTAMP, *module.FEATURE_SCHEMA.names, schema.LABEL]
    assert set(module.FEATURE_SCHEMA.names) <= not_null


def test_the_new_expectation_example_quarantines_only_the_day_that_breaks_it(
    settings, monkeypatch, tmp_path
):
    from churnloop.validation.partition import PartitionQuarantined, validate_partition

    clean = generate_snapshots(DAY, 60)
    minutes = clean["session_minutes"].to_numpy().copy()
    minutes[[3, 7]] = [2000.0, 1500.5]
    index = clean.schema.get_field_index("session_minutes")
    broken = clean.set_column(index, "session_minutes", pa.array(minutes))
    raw = schema.raw_dataset(schema.SNAPSHOTS)
    lake(settings).write_table(raw, DAY, broken)
    assert validate_partition(settings, schema.SNAPSHOTS, DAY).passed, "committed suite"

    shutil.copytree(settings.great_expectations_dir, tmp_path / "great_expectations")
    suite_file = tmp_path / "great_expectations/expectations/customer_snapshots.json"
    suite = json.loads(suite_file.read_text())
    suite["expectations"].append(json.loads(example("new-expectation")))
    suite_file.write_text(json.dumps(suite, indent=2))
    monkeypatch.setenv("CHURNLOOP_PROJECT_ROOT", str(tmp_path))
    edited = get_settings()

    lake(edited).write_table(raw, DAY, clean)
    assert validate_partition(edited, schema.SNAPSHOTS, DAY).passed
    lake(edited).write_table(raw, DAY, broken)
    with pytest.raises(PartitionQuarantined) as caught:
        validate_partition(edited, schema.SNAPSHOTS, DAY)

    message = str(caught.value)
    assert "1 of " in message and "expectations failed" in message
    assert "(column='session_minutes', min_value=0, max_value=1440): 2 rows" in message
    assert "2000" in message and "1500.5" in message
    quarantined = lake(edited).read_table(schema.quarantine_dataset(schema.SNAPSHOTS), DAY)
    assert pc.max(quarantined["session_minutes"]).as_py() == 2000.0


@pytest.fixture(scope="module")
def holdout_metrics() -> dict[str, dict[str, float]]:
    """Holdout metrics of a real model and of one fitted on shuffled labels."""
    first = DAY - dt.timedelta(days=60)
    frames = []
    for offset in range(6):
        day = first + dt.timedelta(days=offset)
        snapshots = generate_snapshots(day, 600).to_pandas()
        labels = generate_labels(day, 600).to_pandas()
        frames.append(snapshots.merge(labels, on=[schema.ENTITY, schema.TIMESTAMP]))
    train, holdout = split_by_time(pd.concat(frames, ignore_index=True), holdout_days=2)
    names = [*schema.NUMERIC, *schema.CATEGORICAL]
    params = {"n_estimators": 40, "num_leaves": 15, "min_child_samples": 20, "n_jobs": 1}
    shuffled = train.assign(
        **{schema.LABEL: np.random.default_rng(7).permutation(train[schema.LABEL].to_numpy())}
    )
    labels = holdout[schema.LABEL].to_numpy()
    return {
        role: classification_metrics(labels, score(fit_pipeline(data, names, params, 1), holdout))
        for role, data in (("good", train), ("noise", shuffled))
    }


def test_the_new_gate_check_example_decides_as_documented(holdout_metrics):
    namespace = dict(vars(gate))
    exec(example("new-gate-check"), namespace)
    check = namespace["_calibration_check"]
    good, noise = holdout_metrics["good"], holdout_metrics["noise"]

    assert check(good, None, 0.01).status == SKIPPED
    assert check(good, noise, None).status == SKIPPED
    better = check(good, noise, 0.01)
    assert better.status == PASSED and better.observed < 0
    worse = check(noise, good, 0.0)
    assert worse.status == FAILED and worse.observed == pytest.approx(
        noise["brier"] - good["brier"]
    )
    assert worse.name == "max_brier_rise" and "> 0.0000" in worse.message


def test_the_gate_wiring_example_matches_judge():
    anchor, call = example("gate-wiring").splitlines()
    source = Path(gate.__file__).read_text()

    assert f"    {anchor}\n" in source, "the guide's anchor line is no longer in judge()"
    arguments = re.findall(r"\b(\w+)_metrics\b", call)
    local_names = gate.judge.__code__.co_varnames
    assert arguments and all(f"{name}_metrics" in local_names for name in arguments)


def test_every_path_and_command_the_guide_names_exists():
    text = GUIDE.read_text()
    quoted = re.findall(r"`([^`\s]+)`", text)
    paths = {token for token in quoted if token.startswith(REPO_FOLDERS)}
    paths = {path for path in paths if not set(path) & set("<…")}  # placeholders
    missing = sorted(path for path in paths if not (REPO / path).exists())
    assert not missing, f"{GUIDE.name} names paths that do not exist: {missing}"

    commands = set(re.findall(r"\.venv/bin/churnloop ([a-z-]+)", text))
    choices = next(
        action.choices for action in cli.build_parser()._actions if action.choices is not None
    )
    unknown = sorted(commands - set(choices))
    assert commands and not unknown, f"{GUIDE.name} names unknown churnloop commands: {unknown}"
