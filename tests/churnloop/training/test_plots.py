"""The figures: one curve per model, each labelled with its name and its metric."""

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from churnloop.training.plots import comparison_plots


def curve_labels(figure) -> list[str]:
    (axes,) = figure.axes
    return [line.get_label() for line in axes.get_lines()]


def test_challenger_champion_and_baselines_share_each_figure():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    challenger = labels * 0.5 + rng.random(500)
    champion = labels * 0.3 + rng.random(500)
    baseline = rng.random(500)

    figures = comparison_plots(
        labels,
        {"challenger v2": challenger, "champion v1": champion},
        {"logistic_regression": baseline},
    )

    assert set(figures) == {"roc_vs_champion", "pr_vs_champion"}
    roc = curve_labels(figures["roc_vs_champion"])
    assert roc == [
        f"challenger v2 (AUC {roc_auc_score(labels, challenger):.3f})",
        f"champion v1 (AUC {roc_auc_score(labels, champion):.3f})",
        f"logistic_regression (AUC {roc_auc_score(labels, baseline):.3f})",
        "chance",
    ]
    pr = curve_labels(figures["pr_vs_champion"])
    assert pr[1] == f"champion v1 (PR AUC {average_precision_score(labels, champion):.3f})"
    assert figures["roc_vs_champion"].axes[0].get_title() == (
        "ROC (holdout): challenger v2 vs champion v1"
    )
    assert figures["roc_vs_champion"].axes[0].get_lines()[2].get_linestyle() == ":"
