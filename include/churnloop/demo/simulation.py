"""Demo data for the loop: daily customer snapshots, late churn labels, drift and breakage.

Any day is produced on its own, identically on every re-run (random streams keyed by seed
and day); `simulate` writes days of snapshot and label drops to the landing zone.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from churnloop import schema, storage
from churnloop.demo.breakages import BREAKAGES, Drop
from churnloop.settings import Settings

log = logging.getLogger(__name__)

SCENARIOS = ("baseline", "covariate_drift", "concept_drift")
DRIFTING_SCENARIOS = ("covariate_drift", "concept_drift")
DEFAULT_RAMP_DAYS = 14

# Independent random streams, each keyed by (seed, stream[, day ordinal]).
_PROFILE_STREAM = 0
_BEHAVIOUR_STREAM = 1
_LABEL_STREAM = 2
_BREAKAGE_STREAM = 3

# Signup dates are drawn as "months before" this day; any fixed day would do.
_SIGNUP_EPOCH = dt.date(2026, 1, 1)
_MONTH_DAYS = 30


class InvalidSimulation(ValueError):
    """A simulation was asked for with arguments it cannot honour; the message names
    the argument and, for names, lists the valid ones."""


@dataclass(frozen=True)
class Scenario:
    """What upstream does: a drift from ``drift_start`` (ramping over ``ramp_days``) and
    breakages of single days' snapshot drops (``breaks``: day -> kind in ``BREAKAGES``)."""

    name: str = "baseline"
    drift_start: dt.date | None = None
    ramp_days: int = DEFAULT_RAMP_DAYS
    breaks: dict[dt.date, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise InvalidSimulation(
                f"unknown scenario {self.name!r}; valid: {', '.join(SCENARIOS)}"
            )
        if self.name in DRIFTING_SCENARIOS and self.drift_start is None:
            raise InvalidSimulation(f"scenario {self.name!r} needs a drift_start day")
        if self.ramp_days < 0:
            raise InvalidSimulation(f"ramp_days must be >= 0, got {self.ramp_days}")
        for day, kind in self.breaks.items():
            if kind not in BREAKAGES:
                raise InvalidSimulation(
                    f"unknown breakage {kind!r} on {day}; valid: {', '.join(BREAKAGES)}"
                )

    def drift_weight(self, day: dt.date) -> float:
        """How far the drift has gone on ``day``: 0 before ``drift_start``, rising by
        ``1 / ramp_days`` a day from it (``drift_start`` itself is the first changed day),
        1 once the ramp is over. Always 0 for ``baseline``."""
        if self.name not in DRIFTING_SCENARIOS or self.drift_start is None:
            return 0.0
        elapsed = (day - self.drift_start).days
        if elapsed < 0:
            return 0.0
        if self.ramp_days == 0:
            return 1.0
        return min(1.0, (elapsed + 1) / self.ramp_days)


BASELINE = Scenario()


# -- the population ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Population:
    """Static per-customer profiles; index i is customer ``i + 1``."""

    plan: np.ndarray  # index into schema.PLANS
    region: np.ndarray  # index into schema.REGIONS
    contract: np.ndarray  # index into schema.CONTRACTS
    age: np.ndarray
    drifted_age: np.ndarray  # the age this customer has once covariate drift reached it
    drift_rank: np.ndarray  # uniform [0, 1): customers below the drift weight are drifted
    signup_months: np.ndarray  # months before _SIGNUP_EPOCH
    monthly_charges: np.ndarray
    engagement: np.ndarray  # expected logins a day at age 30
    minutes_per_login: np.ndarray
    support_rate: np.ndarray  # expected tickets a day
    payment_risk: np.ndarray  # expected payment failures a day


_PLAN_SHARES = (0.5, 0.35, 0.15)
_PLAN_PRICES = (25.0, 55.0, 95.0)
_REGION_SHARES = (0.3, 0.25, 0.25, 0.2)
_MONTHLY_SHARE = 0.55


def _rng(seed: int, stream: int, day: dt.date | None = None) -> np.random.Generator:
    key = [seed, stream] if day is None else [seed, stream, day.toordinal()]
    return np.random.default_rng(np.random.SeedSequence(key))


def _population(customers: int, seed: int) -> _Population:
    rng = _rng(seed, _PROFILE_STREAM)
    n = customers
    plan = rng.choice(len(schema.PLANS), size=n, p=_PLAN_SHARES).astype(np.int8)
    monthly = rng.random(n) < _MONTHLY_SHARE
    price = np.asarray(_PLAN_PRICES)[plan] * rng.lognormal(0.0, 0.15, n)
    return _Population(
        plan=plan,
        region=rng.choice(len(schema.REGIONS), size=n, p=_REGION_SHARES).astype(np.int8),
        contract=np.where(monthly, 0, 1).astype(np.int8),
        age=np.clip(rng.normal(31.0, 6.5, n), 18, 100),
        drifted_age=np.clip(rng.normal(65.0, 8.0, n), 18, 100),
        drift_rank=rng.random(n),
        signup_months=rng.gamma(1.3, 18.0, n).astype(np.int32),
        monthly_charges=np.round(price, 2),
        engagement=rng.lognormal(np.log(1.6), 0.6, n),
        minutes_per_login=rng.lognormal(np.log(9.0), 0.4, n),
        support_rate=rng.lognormal(np.log(0.05), 0.8, n),
        payment_risk=rng.lognormal(np.log(0.02), 1.0, n),
    )


# -- one day ----------------------------------------------------------------------------


def _day_columns(
    day: dt.date, customers: int, seed: int, scenario: Scenario
) -> dict[str, np.ndarray]:
    """The snapshot of ``day`` as numpy columns in the contract's types (categoricals as
    indices into their ``schema`` value tuples)."""
    population = _population(customers, seed)
    rng = _rng(seed, _BEHAVIOUR_STREAM, day)
    n = customers
    age = population.age
    if scenario.name == "covariate_drift":
        drifted = population.drift_rank < scenario.drift_weight(day)
        age = np.where(drifted, population.drifted_age, population.age)
    # Older customers log in less often but stay longer when they do.
    age_factor = np.clip(1.0 - 0.012 * (age - 30.0), 0.35, 1.2)
    logins = rng.poisson(population.engagement * age_factor)
    minutes_per_login = population.minutes_per_login * (1.0 + 0.01 * (age - 30.0))
    session_minutes = rng.gamma(np.maximum(logins, 1), minutes_per_login) * (logins > 0)
    # Away customers: the gap grows as engagement falls (mean 1 / p days).
    gap_p = np.clip(population.engagement * age_factor / 2.0, 0.02, 0.95)
    days_since_last_login = np.where(logins > 0, 0, np.minimum(rng.geometric(gap_p), 365))
    tenure = population.signup_months + (day - _SIGNUP_EPOCH).days // _MONTH_DAYS
    spend = population.monthly_charges / _MONTH_DAYS + rng.gamma(0.6, 0.08, n) * session_minutes
    return {
        "plan": population.plan,
        "region": population.region,
        "contract": population.contract,
        "age": np.rint(age).astype(np.int32),
        "tenure_months": np.maximum(tenure, 0).astype(np.int32),
        "monthly_charges": population.monthly_charges,
        "logins": logins.astype(np.int32),
        "session_minutes": np.round(session_minutes, 2),
        "support_tickets": rng.poisson(population.support_rate).astype(np.int32),
        "payment_failures": rng.poisson(population.payment_risk).astype(np.int32),
        "spend": np.round(spend, 2),
        "days_since_last_login": days_since_last_login.astype(np.int32),
    }


def _churn_logit(columns: dict[str, np.ndarray], concept_weight: float) -> np.ndarray:
    """The log-odds of churning within 30 days, from one snapshot's features.

    Before concept drift, disengagement, payment trouble, support contacts, a monthly
    contract, short tenure and a high price drive churn. The drifted concept (a
    competitor's cheaper offer) makes churn more common and driven by price, plan and
    region instead; ``concept_weight`` blends the two on the log-odds scale.
    """
    monthly = columns["contract"] == 0
    charges = columns["monthly_charges"]
    new_monthly = monthly & (columns["tenure_months"] < 6)
    baseline = (
        -1.6
        + 1.2 * np.minimum(columns["payment_failures"], 3)
        + 0.7 * np.minimum(columns["support_tickets"], 4)
        - 0.45 * np.minimum(columns["logins"], 5)
        + 1.2 * (columns["days_since_last_login"] > 14)
        + 0.9 * monthly
        + 1.5 * new_monthly
        - 0.04 * np.minimum(columns["tenure_months"], 48)
        + 0.03 * (charges - 50.0) * monthly
    )
    if concept_weight == 0.0:
        return baseline
    drifted = (
        -1.6
        + 0.035 * (charges - 50.0)
        + 0.8 * (columns["plan"] == schema.PLANS.index("premium"))
        + 0.9 * (columns["region"] == schema.REGIONS.index("south"))
        + 0.3 * monthly
    )
    return (1.0 - concept_weight) * baseline + concept_weight * drifted


def _churn_probability(
    day: dt.date, columns: dict[str, np.ndarray], scenario: Scenario
) -> np.ndarray:
    concept_weight = scenario.drift_weight(day) if scenario.name == "concept_drift" else 0.0
    return 1.0 / (1.0 + np.exp(-_churn_logit(columns, concept_weight)))


def _check_request(customers: int, seed: int) -> None:
    if customers < 1:
        raise InvalidSimulation(f"customers must be >= 1, got {customers}")
    if seed < 0:
        raise InvalidSimulation(f"seed must be >= 0, got {seed}")


def _key_columns(day: dt.date, customers: int) -> dict[str, pa.Array]:
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    timestamp = pa.scalar(midnight, type=schema.SNAPSHOT_SCHEMA.field(schema.TIMESTAMP).type)
    return {
        schema.ENTITY: pa.array(np.arange(1, customers + 1, dtype=np.int64)),
        schema.TIMESTAMP: pa.repeat(timestamp, customers),
    }


def generate_snapshots(
    day: dt.date, customers: int, seed: int = 42, scenario: Scenario | None = None
) -> pa.Table:
    """The clean snapshot of ``day`` (no breakage), in ``schema.SNAPSHOT_SCHEMA``."""
    _check_request(customers, seed)
    columns = _day_columns(day, customers, seed, scenario or BASELINE)
    arrays = _key_columns(day, customers)
    categories = {"plan": schema.PLANS, "region": schema.REGIONS, "contract": schema.CONTRACTS}
    for name, values in categories.items():
        arrays[name] = pa.array(values).take(pa.array(columns[name]))
    for name in schema.NUMERIC:
        arrays[name] = pa.array(columns[name], type=schema.SNAPSHOT_SCHEMA.field(name).type)
    return pa.table(arrays, schema=schema.SNAPSHOT_SCHEMA)


def generate_labels(
    snapshot_day: dt.date, customers: int, seed: int = 42, scenario: Scenario | None = None
) -> pa.Table:
    """Churn labels for the snapshot of ``snapshot_day``, in ``schema.LABEL_SCHEMA``."""
    _check_request(customers, seed)
    scenario = scenario or BASELINE
    columns = _day_columns(snapshot_day, customers, seed, scenario)
    probability = _churn_probability(snapshot_day, columns, scenario)
    churned = _rng(seed, _LABEL_STREAM, snapshot_day).random(customers) < probability
    arrays = _key_columns(snapshot_day, customers)
    arrays[schema.LABEL] = pa.array(churned.astype(np.int8))
    return pa.table(arrays, schema=schema.LABEL_SCHEMA)


# -- breakages --------------------------------------------------------------------------


def break_drop(kind: str, table: pa.Table, day: dt.date, seed: int = 42) -> Drop:
    """``table`` as upstream delivers it on a day broken by ``kind`` (reproducibly)."""
    if kind not in BREAKAGES:
        raise InvalidSimulation(f"unknown breakage {kind!r}; valid: {', '.join(BREAKAGES)}")
    return BREAKAGES[kind](table, _rng(seed, _BREAKAGE_STREAM, day))


# -- writing drops to the landing zone ---------------------------------------------------


@dataclass(frozen=True)
class SimulationSummary:
    """What a simulation wrote, for the CLI and for task logs."""

    landing_uri: str
    start: dt.date
    end: dt.date
    days: int
    snapshot_rows: int
    label_rows: int
    broken: dict[dt.date, str]
    seconds: float

    def __str__(self) -> str:
        broken = ", ".join(f"{day} {kind}" for day, kind in sorted(self.broken.items()))
        return "\n".join(
            [
                f"simulated {self.days} days {self.start}..{self.end} in {self.seconds:.1f} s",
                f"snapshot rows: {self.snapshot_rows:,}; label rows: {self.label_rows:,}",
                f"broken days: {broken or 'none'}",
                f"landing zone: {self.landing_uri}",
            ]
        )


def _write_snapshot_drop(landing: storage.Store, day: dt.date, drop: Drop) -> int:
    """Land ``drop`` as the day's snapshot file; returns the rows a reader will find."""
    dataset = schema.landing_dataset(schema.SNAPSHOTS)
    if drop is None:
        landing.delete_partition(dataset, day)
        return 0
    if isinstance(drop, bytes):
        landing.write_data_file(dataset, day, drop)
        return 0
    landing.write_table(dataset, day, drop)
    return drop.num_rows


def _simulated_days(
    start: dt.date, days: int, scenario: Scenario, history_start: dt.date
) -> dt.date:
    """The last simulated day, once the days asked for are known to make sense."""
    if days < 1:
        raise InvalidSimulation(f"days must be >= 1, got {days}")
    end = start + dt.timedelta(days=days - 1)
    outside = sorted(day for day in scenario.breaks if not start <= day <= end)
    if outside:
        listed = ", ".join(map(str, outside))
        raise InvalidSimulation(f"breakage days outside the simulated {start}..{end}: {listed}")
    if history_start > start:
        raise InvalidSimulation(f"history_start {history_start} is after start {start}")
    return end


def _snapshot_drop(
    day: dt.date, customers: int, seed: int, scenario: Scenario
) -> tuple[Drop, str | None]:
    """What upstream delivers as ``day``'s snapshots, and the breakage it suffered, if any."""
    table = generate_snapshots(day, customers, seed, scenario)
    kind = scenario.breaks.get(day)
    return (table if kind is None else break_drop(kind, table, day, seed)), kind


def _label_drop(
    day: dt.date, customers: int, seed: int, scenario: Scenario, history_start: dt.date
) -> tuple[pa.Table, str]:
    """The labels due on ``day`` (of the snapshot 30 days earlier) and a progress note;
    empty while that snapshot predates ``history_start``."""
    labelled_day = day - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
    if labelled_day < history_start:
        return schema.LABEL_SCHEMA.empty_table(), "labels: empty drop (none due yet)"
    labels = generate_labels(labelled_day, customers, seed, scenario)
    return labels, f"labels {labels.num_rows:,} rows of {labelled_day}"


def simulate(
    settings: Settings,
    start: dt.date,
    days: int,
    customers: int,
    scenario: Scenario,
    seed: int = 42,
    progress: Callable[[str], None] = log.info,
    history_start: dt.date | None = None,
) -> SimulationSummary:
    """Write ``days`` days of snapshot and label drops from ``start`` to the landing zone.

    Day d gets its (possibly broken) snapshot drop at ``customer_snapshots/dt=d`` and a
    label drop at ``churn_labels/dt=d`` holding the labels of the snapshot of d - 30
    days. Snapshots exist from ``history_start`` on (default ``start``; pass an earlier
    day when extending a simulation one day at a time); label drops due before any
    snapshot could be labelled are empty, so "no labels yet" differs from "no drop".
    A re-run rewrites the same partitions, including removing a ``missing_day`` drop.
    """
    _check_request(customers, seed)
    history_start = history_start or start
    end = _simulated_days(start, days, scenario, history_start)
    landing = storage.landing(settings)
    labels_dataset = schema.landing_dataset(schema.LABELS)
    snapshot_rows = label_rows = 0
    began = time.perf_counter()
    for index in range(days):
        day_began = time.perf_counter()
        day = start + dt.timedelta(days=index)
        drop, kind = _snapshot_drop(day, customers, seed, scenario)
        rows = _write_snapshot_drop(landing, day, drop)
        labels, labels_note = _label_drop(day, customers, seed, scenario, history_start)
        landing.write_table(labels_dataset, day, labels)
        snapshot_rows += rows
        label_rows += labels.num_rows
        broken_note = f" ({kind})" if kind else ""
        progress(
            f"simulate {day} [{index + 1}/{days}]: snapshots {rows:,} rows{broken_note}, "
            f"{labels_note}; "
            f"{time.perf_counter() - day_began:.2f} s, elapsed {time.perf_counter() - began:.1f} s"
        )
    return SimulationSummary(
        landing_uri=landing.uri_of(""),
        start=start,
        end=end,
        days=days,
        snapshot_rows=snapshot_rows,
        label_rows=label_rows,
        broken=dict(scenario.breaks),
        seconds=time.perf_counter() - began,
    )
