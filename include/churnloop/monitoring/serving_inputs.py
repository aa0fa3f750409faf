"""A day's served inputs against the data contract, for the daily report: what the model
server's ``churnloop_input_out_of_contract_total`` and ``churnloop_nonfinite_predictions_total``
counted, recounted from the day's prediction log with the same code
(`churnloop.serving.contract`), so the report holds them even where no Prometheus scrapes.

Each logged row is checked against the contract of the model version that scored it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pandas as pd

from churnloop import storage
from churnloop.schema import PREDICTION
from churnloop.serving.contract import as_nested, input_contract, nonfinite_count
from churnloop.serving.model import ModelLoadError, load_served_model
from churnloop.serving.prediction_log import read_predictions
from churnloop.settings import Settings

LOGGED = "logged"
"""The alias name the versions are loaded under here (they may no longer hold an alias)."""


def serving_input_counts(
    settings: Settings, day: dt.date, predictions: pd.DataFrame | None = None
) -> dict[str, Any]:
    """Out-of-contract inputs and non-finite scores in ``day``'s prediction log (or in
    ``predictions``, the log already read); JSON-safe.

    ``out_of_contract`` is ``{feature: {reason: count}}`` over every checked row;
    ``nonfinite_predictions`` counts NaN or infinite scores by model version, shadow scores
    included; rows of a version that no longer loads are counted in ``unchecked_rows``,
    with the reason in ``unchecked_versions``.
    """
    if predictions is None:
        try:
            predictions = read_predictions(settings, day)
        except storage.PartitionNotFound:
            predictions = pd.DataFrame({"model_version": pd.Series(dtype="Int64")})
    counts: Counter[tuple[str, str]] = Counter()
    unchecked: dict[str, str] = {}
    unchecked_rows = 0
    for version, rows in predictions.groupby("model_version", sort=True):
        try:
            model = load_served_model(settings, int(version), LOGGED)
        except ModelLoadError as error:
            unchecked[str(int(version))] = str(error)
            unchecked_rows += len(rows)
            continue
        contract = input_contract(model, settings.great_expectations_dir)
        counts.update(contract.count_frame(rows))
    return {
        "day": day.isoformat(),
        "rows": len(predictions),
        "rows_checked": len(predictions) - unchecked_rows,
        "unchecked_rows": unchecked_rows,
        "unchecked_versions": unchecked,
        "out_of_contract": as_nested(dict(counts)),
        "nonfinite_predictions": _nonfinite_by_version(predictions),
    }


def _nonfinite_by_version(predictions: pd.DataFrame) -> dict[str, int]:
    """NaN or infinite champion and shadow scores, by the version that gave them."""
    found: Counter[str] = Counter()
    for version_column, score_column in (
        ("model_version", PREDICTION),
        ("shadow_version", "shadow_prediction"),
    ):
        if version_column not in predictions:
            continue
        scored = predictions[predictions[version_column].notna()]
        for version, rows in scored.groupby(version_column, sort=True):
            found[str(int(version))] += nonfinite_count(rows[score_column].to_numpy(dtype=float))
    return dict(sorted(found.items()))
