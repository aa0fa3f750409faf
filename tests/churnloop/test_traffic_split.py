"""The canary's traffic split as the registry holds it: ``@candidate`` and the registered
model's ``canary_share`` tag, read with the aliases in one call; a share that is not a number
in [0, 1] is reported and read as 0 (the champion serves everyone)."""

from __future__ import annotations

import math

import pytest

from churnloop import registry
from churnloop.settings import Settings
from tests.churnloop.training_support import with_empty_mlflow


@pytest.fixture
def registered(settings: Settings) -> Settings:
    """A registered model without versions: tags and aliases need no trained model."""
    registry.connect(with_empty_mlflow(settings)).create_registered_model(settings.model_name)
    return settings


def store_share(settings: Settings, value: str) -> None:
    client = registry.connect(settings)
    client.set_registered_model_tag(settings.model_name, registry.CANARY_SHARE_TAG, value)


def test_nothing_registered_splits_nothing(settings):
    with_empty_mlflow(settings)

    assert registry.aliases_and_split(settings) == ({}, registry.TrafficSplit())


def test_a_share_set_is_read_back_and_cleared(registered):
    registry.set_canary_share(registered, 0.25)
    assert registry.traffic_split(registered) == registry.TrafficSplit(None, 0.25)

    registry.clear_canary_share(registered)
    registry.clear_canary_share(registered)  # clearing twice is no error

    assert registry.traffic_split(registered).share == 0.0


@pytest.mark.parametrize("stored", ["half", "1.5", "-0.1", "nan", "inf", ""])
def test_a_malformed_share_reads_as_zero_and_says_why(registered, stored):
    store_share(registered, stored)

    split = registry.traffic_split(registered)

    assert split.share == 0.0
    assert (
        registry.CANARY_SHARE_TAG in split.problem and "champion serves everyone" in split.problem
    )


@pytest.mark.parametrize("share", [-0.01, 1.01, math.nan])
def test_setting_a_share_outside_zero_to_one_is_refused(registered, share):
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        registry.set_canary_share(registered, share)

    assert (
        registry.CANARY_SHARE_TAG
        not in registry.connect(registered).get_registered_model(registered.model_name).tags
    )
