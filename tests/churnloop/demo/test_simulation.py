import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from churnloop import cli, schema, storage
from churnloop.demo.breakages import BREAKAGES
from churnloop.demo.simulation import (
    InvalidSimulation,
    Scenario,
    generate_labels,
    generate_snapshots,
    simulate,
)

DAY = dt.date(2026, 3, 4)
CUSTOMERS = 500


def days_from(start: dt.date, count: int) -> list[dt.date]:
    return [start + dt.timedelta(days=offset) for offset in range(count)]


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def quiet(line: str) -> None:
    """A progress sink for tests."""


# -- generation ---------------------------------------------------------------------------


def test_same_seed_gives_identical_tables_and_another_seed_differs():
    assert generate_snapshots(DAY, CUSTOMERS, seed=7).equals(generate_snapshots(DAY, CUSTOMERS, 7))
    assert generate_labels(DAY, CUSTOMERS, seed=7).equals(generate_labels(DAY, CUSTOMERS, 7))
    assert not generate_snapshots(DAY, CUSTOMERS, 8).equals(generate_snapshots(DAY, CUSTOMERS, 7))
    assert not generate_labels(DAY, CUSTOMERS, 8).equals(generate_labels(DAY, CUSTOMERS, 7))


def test_customers_persist_with_stable_profiles_and_daily_behaviour():
    today, tomorrow = (generate_snapshots(day, CUSTOMERS) for day in days_from(DAY, 2))
    assert today[schema.ENTITY].equals(tomorrow[schema.ENTITY])
    for stable in ("plan", "region", "contract", "age", "monthly_charges"):
        assert today[stable].equals(tomorrow[stable]), stable
    for daily in ("logins", "session_minutes", "spend"):
        assert not today[daily].equals(tomorrow[daily]), daily


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario(),
        Scenario("covariate_drift", drift_start=DAY, ramp_days=0),
        Scenario("concept_drift", drift_start=DAY, ramp_days=0),
    ],
    ids=lambda scenario: scenario.name,
)
def test_snapshots_keep_the_contract(scenario):
    table = generate_snapshots(DAY, CUSTOMERS, scenario=scenario)

    assert table.schema == schema.SNAPSHOT_SCHEMA
    assert table.num_rows == CUSTOMERS
    assert all(column.null_count == 0 for column in table.columns)
    assert pc.count_distinct(table[schema.ENTITY]).as_py() == CUSTOMERS
    stamps = table[schema.TIMESTAMP]
    assert pc.min(stamps).as_py() >= midnight(DAY)
    assert pc.max(stamps).as_py() < midnight(DAY + dt.timedelta(days=1))
    for name, values in (
        ("plan", schema.PLANS),
        ("region", schema.REGIONS),
        ("contract", schema.CONTRACTS),
    ):
        assert set(pc.unique(table[name]).to_pylist()) == set(values), name
    assert pc.min(table["age"]).as_py() >= 18 and pc.max(table["age"]).as_py() <= 100
    for name in schema.NUMERIC:
        assert pc.min(table[name]).as_py() >= 0, name


def test_labels_keep_the_contract_and_carry_their_snapshot_timestamp():
    labels = generate_labels(DAY, 5_000)

    assert labels.schema == schema.LABEL_SCHEMA
    assert labels[schema.ENTITY].equals(generate_snapshots(DAY, 5_000)[schema.ENTITY])
    assert set(pc.unique(labels[schema.TIMESTAMP]).to_pylist()) == {midnight(DAY)}
    assert set(pc.unique(labels[schema.LABEL]).to_pylist()) == {0, 1}
    assert 0.08 <= pc.mean(labels[schema.LABEL]).as_py() <= 0.20


def test_labels_are_learnable_but_not_trivially():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    days = days_from(DAY, 3)
    snapshots = pa.concat_tables(generate_snapshots(day, 3_000) for day in days).to_pandas()
    labels = np.concatenate([generate_labels(day, 3_000)[schema.LABEL].to_numpy() for day in days])
    features = snapshots.drop(columns=[schema.ENTITY, schema.TIMESTAMP])
    features[list(schema.CATEGORICAL)] = features[list(schema.CATEGORICAL)].astype("category")
    train = (snapshots[schema.ENTITY] % 4 != 0).to_numpy()  # hold out a quarter of customers

    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=60)
    model.fit(features[train], labels[train])
    auc = roc_auc_score(labels[~train], model.predict_proba(features[~train])[:, 1])

    assert 0.65 < auc < 0.95


def test_covariate_drift_moves_ages_from_drift_start_and_not_before():
    scenario = Scenario("covariate_drift", drift_start=DAY, ramp_days=10)
    before, first, middle, done = (
        DAY - dt.timedelta(days=1),
        DAY,
        DAY + dt.timedelta(days=4),
        DAY + dt.timedelta(days=9),
    )

    def mean_age(day: dt.date, scenario: Scenario | None) -> float:
        return pc.mean(generate_snapshots(day, 4_000, scenario=scenario)["age"]).as_py()

    assert generate_snapshots(before, 4_000, scenario=scenario).equals(
        generate_snapshots(before, 4_000)
    )
    assert mean_age(DAY, None) < 35
    assert mean_age(DAY, None) < mean_age(first, scenario) < mean_age(middle, scenario)
    assert mean_age(middle, scenario) < mean_age(done, scenario)
    assert mean_age(done, scenario) > 55


def test_concept_drift_changes_churn_but_not_the_inputs():
    scenario = Scenario("concept_drift", drift_start=DAY, ramp_days=0)
    before, after = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)

    assert generate_snapshots(after, 4_000, scenario=scenario).equals(
        generate_snapshots(after, 4_000)
    )
    assert generate_labels(before, 4_000, scenario=scenario).equals(generate_labels(before, 4_000))
    baseline_rate = pc.mean(generate_labels(after, 4_000)[schema.LABEL]).as_py()
    drifted_rate = pc.mean(generate_labels(after, 4_000, scenario=scenario)[schema.LABEL]).as_py()
    assert drifted_rate > baseline_rate + 0.08


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": "sideways"}, "valid: baseline, covariate_drift, concept_drift"),
        ({"name": "covariate_drift"}, "needs a drift_start"),
        ({"breaks": {DAY: "melted"}}, "unknown breakage 'melted' on 2026-03-04; valid: renamed"),
        ({"ramp_days": -1}, "ramp_days must be >= 0"),
    ],
)
def test_invalid_scenarios_say_what_is_wrong(arguments, message):
    with pytest.raises(InvalidSimulation, match=message):
        Scenario(**arguments)


# -- landing drops ------------------------------------------------------------------------


def test_labels_land_thirty_days_late_and_earlier_drops_are_empty(settings):
    start = dt.date(2026, 1, 1)
    summary = simulate(settings, start, 33, 50, Scenario(), progress=quiet)
    landing = storage.landing(settings)
    days = days_from(start, 33)

    assert landing.partitions(schema.SNAPSHOTS) == days
    assert landing.partitions(schema.LABELS) == days
    for arrival in days[:30]:
        empty = landing.read_table(schema.LABELS, arrival)
        assert empty.num_rows == 0 and empty.schema == schema.LABEL_SCHEMA, arrival
    for arrival in days[30:]:
        snapshot_day = arrival - dt.timedelta(days=schema.LABEL_DELAY_DAYS)
        landed = landing.read_table(schema.LABELS, arrival)
        assert landed.equals(generate_labels(snapshot_day, 50)), arrival
    assert (summary.days, summary.snapshot_rows, summary.label_rows) == (33, 33 * 50, 3 * 50)
    assert summary.landing_uri == landing.uri_of("")


def test_extending_a_simulation_delivers_the_labels_due(settings):
    history_start, start = dt.date(2026, 1, 1), dt.date(2026, 2, 5)
    simulate(settings, start, 1, 50, Scenario(), progress=quiet, history_start=history_start)

    landed = storage.landing(settings).read_table(schema.LABELS, start)
    assert landed.equals(generate_labels(start - dt.timedelta(days=30), 50))


def _read_drop(landing: storage.Store, day: dt.date) -> pa.Table:
    return landing.read_table(schema.SNAPSHOTS, day)


BREAKAGE_EFFECTS = {
    "renamed_column": lambda table: (
        "tenure" in table.column_names and "tenure_months" not in table.column_names
    ),
    "missing_column": lambda table: (
        table.column_names
        == [name for name in schema.SNAPSHOT_SCHEMA.names if name != "payment_failures"]
    ),
    "extra_column": lambda table: (
        table.select(schema.SNAPSHOT_SCHEMA.names).schema == schema.SNAPSHOT_SCHEMA
        and len(table.column_names) == len(schema.SNAPSHOT_SCHEMA) + 1
    ),
    "wrong_type": lambda table: table.schema.field("age").type == pa.string(),
    "null_keys": lambda table: 0 < table[schema.ENTITY].null_count < table.num_rows,
    "out_of_range": lambda table: {-3, 212} <= set(table["age"].to_pylist()),
    "duplicate_rows": lambda table: (
        pc.count_distinct(table[schema.ENTITY]).as_py() < table.num_rows
    ),
    "empty_file": lambda table: table.num_rows == 0 and table.schema == schema.SNAPSHOT_SCHEMA,
}


def test_every_breakage_kind_has_an_effect_test():
    assert set(BREAKAGES) == {*BREAKAGE_EFFECTS, "corrupt_file", "missing_day"}


@pytest.mark.parametrize("kind", sorted(BREAKAGE_EFFECTS))
def test_a_breakage_changes_only_its_day_snapshot_drop(settings, kind):
    days = days_from(DAY, 3)
    broken = days[1]
    summary = simulate(settings, DAY, 3, 200, Scenario(breaks={broken: kind}), progress=quiet)
    landing = storage.landing(settings)

    assert BREAKAGE_EFFECTS[kind](_read_drop(landing, broken))
    for day in (days[0], days[2]):
        assert _read_drop(landing, day).equals(generate_snapshots(day, 200))
    assert landing.partitions(schema.LABELS) == days
    assert summary.broken == {broken: kind}


def test_corrupt_file_lands_unreadable_bytes(settings):
    simulate(settings, DAY, 1, 200, Scenario(breaks={DAY: "corrupt_file"}), progress=quiet)

    with pytest.raises(storage.CorruptFile, match="customer_snapshots/dt=2026-03-04"):
        _read_drop(storage.landing(settings), DAY)


def test_missing_day_leaves_no_drop_even_over_an_earlier_run(settings):
    days = days_from(DAY, 3)
    simulate(settings, DAY, 3, 200, Scenario(), progress=quiet)
    simulate(settings, DAY, 3, 200, Scenario(breaks={days[1]: "missing_day"}), progress=quiet)
    landing = storage.landing(settings)

    assert landing.partitions(schema.SNAPSHOTS) == [days[0], days[2]]
    assert landing.partitions(schema.LABELS) == days
    assert len(list(landing.list_files(schema.SNAPSHOTS))) == 2


def test_breakage_outside_the_simulated_days_is_refused(settings):
    scenario = Scenario(breaks={DAY + dt.timedelta(days=5): "null_keys"})

    with pytest.raises(InvalidSimulation, match="outside the simulated 2026-03-04..2026-03-05"):
        simulate(settings, DAY, 2, 50, scenario, progress=quiet)
    assert storage.landing(settings).partitions(schema.SNAPSHOTS) == []


def test_progress_reports_one_line_per_day(settings):
    lines: list[str] = []
    simulate(settings, DAY, 2, 50, Scenario(breaks={DAY: "null_keys"}), progress=lines.append)

    assert len(lines) == 2
    assert lines[0].startswith("simulate 2026-03-04 [1/2]: snapshots 50 rows (null_keys)")
    assert "elapsed" in lines[1]


# -- command line -------------------------------------------------------------------------


def test_cli_simulate_writes_the_requested_partitions(settings, capsys):
    exit_code = cli.main(
        [
            "simulate",
            "--start",
            "2026-01-01",
            "--days",
            "4",
            "--customers",
            "60",
            "--scenario",
            "covariate_drift",
            "--drift-start",
            "2026-01-03",
            "--ramp-days",
            "2",
            "--break",
            "2026-01-02:out_of_range",
            "--break",
            "2026-01-04:missing_day",
            "--seed",
            "3",
        ]
    )
    landing = storage.landing(settings)
    days = days_from(dt.date(2026, 1, 1), 4)

    assert exit_code == 0
    assert landing.partitions(schema.SNAPSHOTS) == days[:3]
    assert landing.partitions(schema.LABELS) == days
    scenario = Scenario("covariate_drift", drift_start=days[2], ramp_days=2)
    assert _read_drop(landing, days[2]).equals(generate_snapshots(days[2], 60, 3, scenario))
    output = capsys.readouterr()
    assert "2026-01-02 out_of_range, 2026-01-04 missing_day" in output.out
    assert output.err.count("simulate 2026-01-0") == 4


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--scenario", "sideways"], "choose from 'baseline', 'covariate_drift', 'concept_drift'"),
        (["--break", "2026-01-01:melted"], "valid: renamed_column, missing_column"),
        (["--break", "2026-01-01:null_keys", "--break", "2026-01-01:empty_file"], "same day"),
    ],
)
def test_cli_rejects_bad_arguments_with_the_valid_choices(settings, capsys, arguments, message):
    try:
        exit_code = cli.main(["simulate", "--start", "2026-01-01", "--days", "2", *arguments])
    except SystemExit as rejected:  # by argparse: a name outside the choices
        exit_code = rejected.code

    assert exit_code == 2
    assert message in capsys.readouterr().err
    assert storage.landing(settings).partitions(schema.SNAPSHOTS) == []


def test_cli_rejects_a_malformed_day(capsys):
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--start", "2026-1-1"])
    assert "expected a day as YYYY-MM-DD, got '2026-1-1'" in capsys.readouterr().err
