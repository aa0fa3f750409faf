"""The canary's traffic split as the registry holds it: ``@candidate`` and the registered
model's ``canary_share`` tag (``<version>:<share>``), read with the aliases in one call. A
share is the candidate's only while it names the candidate's version; one that is not
``<version>:<share in [0, 1]>`` is reported and read as 0 (the champion serves everyone)."""

from __future__ import annotations

import math

import pytest

from churnloop import registry
from churnloop.settings import Settings
from tests.churnloop.training_support import with_empty_mlflow


@pytest.fixture
def registered(settings: Settings, tmp_path) -> Settings:
    """A registered model with versions 1 and 2 (no trained model: aliases and tags need
    none), version 1 as ``@candidate``."""
    client = registry.connect(with_empty_mlflow(settings))
    client.create_registered_model(settings.model_name)
    for _ in range(2):
        client.create_model_version(settings.model_name, source=tmp_path.as_uri())
    client.set_registered_model_alias(settings.model_name, registry.CANDIDATE, "1")
    return settings


def split(settings: Settings) -> registry.TrafficSplit:
    return registry.aliases_and_split(settings)[1]


def store_share(settings: Settings, value: str) -> None:
    client = registry.connect(settings)
    client.set_registered_model_tag(settings.model_name, registry.CANARY_SHARE_TAG, value)


def test_nothing_registered_splits_nothing(settings):
    with_empty_mlflow(settings)

    assert registry.aliases_and_split(settings) == ({}, registry.TrafficSplit())


def test_a_share_set_is_read_back_and_cleared(registered):
    registry.set_canary_share(registered, 1, 0.25)
    assert split(registered) == registry.TrafficSplit(1, 0.25)

    registry.clear_canary_share(registered)
    registry.clear_canary_share(registered)  # clearing twice is no error

    assert split(registered) == registry.TrafficSplit(1, 0.0)


def test_a_share_written_for_another_version_routes_nobody_to_the_candidate(registered):
    registry.set_canary_share(registered, 1, 0.5)
    registry.connect(registered).set_registered_model_alias(
        registered.model_name, registry.CANDIDATE, "2"
    )

    assert split(registered) == registry.TrafficSplit(2, 0.0)

    registry.set_canary_share(registered, 2, 0.1)
    assert split(registered) == registry.TrafficSplit(2, 0.1)


def test_a_share_without_a_candidate_routes_nobody(registered):
    registry.set_canary_share(registered, 1, 1.0)
    registry.connect(registered).delete_registered_model_alias(
        registered.model_name, registry.CANDIDATE
    )

    assert split(registered) == registry.TrafficSplit(None, 0.0)


@pytest.mark.parametrize("stored", ["half", "1:1.5", "1:-0.1", "1:nan", "1:inf", "", "0.5", ":0.5"])
def test_a_malformed_share_reads_as_zero_and_says_why(registered, stored):
    store_share(registered, stored)

    found = split(registered)

    assert found.share == 0.0
    assert (
        registry.CANARY_SHARE_TAG in found.problem and "champion serves everyone" in found.problem
    )


@pytest.mark.parametrize("share", [-0.01, 1.01, math.nan])
def test_setting_a_share_outside_zero_to_one_is_refused(registered, share):
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        registry.set_canary_share(registered, 1, share)

    assert (
        registry.CANARY_SHARE_TAG
        not in registry.connect(registered).get_registered_model(registered.model_name).tags
    )
