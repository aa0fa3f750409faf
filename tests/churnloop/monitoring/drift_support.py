"""What the drift tests share: thresholds fixed here, so a settings change does not move them."""

from churnloop.monitoring.effect_sizes import DriftThresholds

THRESHOLDS = DriftThresholds(
    numeric_method="psi",
    psi=0.2,
    psi_bins=10,
    wasserstein=0.1,
    jensenshannon=0.1,
    share=0.5,
    min_rows=100,
    alpha=0.05,
)
