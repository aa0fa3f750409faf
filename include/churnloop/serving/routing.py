"""Which variant answers a customer during a canary: a pure function of the customer, the
candidate's version and the share, so every server process, and a restarted one, routes alike.

A customer's place in [0, 1) is a BLAKE2b hash of their id salted with the candidate's
version: the same customer always sees the same version during one canary, each canary
(a new candidate) draws its own customers, and raising the share only adds customers (those
already on the candidate stay there).

Instances without a ``customer_id`` (explicit ``features``) go to the champion: hashing the
feature values would move a customer between versions whenever their features change, and
those requests name no customer to keep them apart.
"""

from __future__ import annotations

import hashlib

CHAMPION = "champion"
CANDIDATE = "candidate"
SHADOW = "shadow"
"""Variants: what answers, metrics and prediction-log rows name as the scorer (the shadow
only scores, for the log and the metrics)."""

_FRACTION_BITS = 53
"""A double holds 53 bits exactly: more would round the largest hashes up to 1.0."""


def position(key: int | str, candidate_version: int) -> float:
    """``key``'s place in [0, 1) for the canary of ``candidate_version``."""
    digest = hashlib.blake2b(
        str(key).encode(), digest_size=8, salt=f"v{candidate_version}".encode()
    ).digest()
    return (int.from_bytes(digest, "big") >> (64 - _FRACTION_BITS)) / 2**_FRACTION_BITS


def variant_for(key: int | str | None, candidate_version: int | None, share: float) -> str:
    """`CANDIDATE` for the ``share`` of keys whose position falls below it, else `CHAMPION`
    (always without a key, a candidate or a share)."""
    if key is None or candidate_version is None or share <= 0:
        return CHAMPION
    return CANDIDATE if position(key, candidate_version) < share else CHAMPION
