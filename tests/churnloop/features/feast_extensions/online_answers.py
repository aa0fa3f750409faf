"""Feast's own online answer as the direct readers give theirs, the oracle of their tests."""

import math
from typing import Any

from feast import FeatureService, FeatureStore
from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

from tests.churnloop.features.feast_extensions.test_online_store import FIELDS

NAMES = [field.name for field in FIELDS]


def feasts(store: FeatureStore, service: FeatureService, customers: list[int]) -> list[tuple]:
    """Feast's answer as (values by name, found) per customer; found as the model server
    reads it: present and stamped."""
    proto = store.get_online_features(
        features=service, entity_rows=[{"customer_id": c} for c in customers]
    ).proto
    vectors = dict(zip(proto.metadata.feature_names.val, proto.results, strict=True))
    answers = []
    for index in range(len(customers)):
        values, found = {}, False
        for name in NAMES:
            vector = vectors[name]
            value = vector.values[index]
            kind = value.WhichOneof("val")
            values[name] = None if kind in (None, "null_val") else getattr(value, kind)
            found = found or (
                vector.statuses[index] == FieldStatus.PRESENT
                and vector.event_timestamps[index].seconds > 0
            )
        answers.append((values, found))
    return answers


def same(ours: list[tuple], theirs: list[tuple]) -> bool:
    def normal(value: Any) -> Any:
        return "NaN" if isinstance(value, float) and math.isnan(value) else value

    def normalized(answers: list[tuple]) -> list[tuple]:
        return [({k: normal(v) for k, v in values.items()}, found) for values, found in answers]

    return normalized(ours) == normalized(theirs)
