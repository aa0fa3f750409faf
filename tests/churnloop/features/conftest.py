import pytest

from churnloop.features.build import build_feature_partition
from churnloop.features.feast_config import apply_definitions
from tests.churnloop.features_support import D1, D2, write_snapshots


@pytest.fixture
def two_days(settings):
    """Customer 1 on both days (changing), 2 only on D1, 3 only on D2; features built."""
    apply_definitions(settings)
    write_snapshots(settings, D1, {1: {"plan": "basic", "logins": 1}, 2: {"region": "east"}})
    write_snapshots(settings, D2, {1: {"plan": "premium", "logins": 50}, 3: {"logins": 2}})
    for day in (D1, D2):
        build_feature_partition(settings, day)
    return settings
