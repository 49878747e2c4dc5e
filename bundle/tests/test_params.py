"""Job parameters: a missing or malformed one is named in the error."""

from __future__ import annotations

import datetime as dt

import pytest

from usage_backfill import ParameterError
from usage_backfill.params import BackfillParams, RollbackParams, parse_partitions

BASE = {
    "partition_date": "2024-03-01",
    "backfill_id": "bf",
    "manifest_id": "m",
    "attempt": "1",
    "staging_table": "main.usage.staging",
    "target_table": "main.usage.daily_customer_usage",
    "dim_table": "main.ref.customer_dim",
    "pin.main.ref.customer_dim": "4",
    "raw_root": "/raw/",
    "cutover_date": "2024-06-01",
}


def test_backfill_parameters_parse_with_the_default_lookback() -> None:
    p = BackfillParams.parse(BASE)
    assert p.lookback_days == 3
    assert p.dim_version == 4
    assert p.raw_root == "/raw"
    assert p.code_version is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pin.main.ref.customer_dim": ""}, "'pin.main.ref.customer_dim' is required"),
        ({"attempt": "0"}, "'attempt' must be at least 1"),
        ({"partition_date": "2024-3-1"}, "'partition_date' must be YYYY-MM-DD"),
        ({"staging_table": "staging"}, "'staging_table' must be a three-part name"),
        ({"lookback_days": "x"}, "'lookback_days' must be an integer"),
        ({"cutover_date": ""}, "'cutover_date' is required"),
    ],
)
def test_a_bad_backfill_parameter_is_named(change: dict[str, str], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        BackfillParams.parse({**BASE, **change})


def test_partitions_are_parsed_sorted_and_checked() -> None:
    parsed = parse_partitions(
        '[{"partition_date": "2024-03-02", "staging_version": 7},'
        ' {"partition_date": "2024-03-01", "staging_version": 5}]'
    )
    assert [(p.partition_date, p.staging_version) for p in parsed] == [
        (dt.date(2024, 3, 1), 5),
        (dt.date(2024, 3, 2), 7),
    ]
    for bad in ("[]", "{}", "nope", '[{"partition_date": "2024-03-01", "staging_version": "5"}]'):
        with pytest.raises(ParameterError):
            parse_partitions(bad)


def test_rollback_needs_a_version_to_restore() -> None:
    with pytest.raises(ParameterError, match="'restore_version' is required"):
        RollbackParams.parse({"target_table": "a.b.c", "partition_date": "2024-03-01"})


def test_the_local_command_refuses_a_bad_parameter_before_starting_spark(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from usage_backfill.__main__ import main

    code = main(["rollback", "--warehouse", "unused", "--param", "target_table=a.b.c"])
    assert code == 2
    assert "'partition_date' is required" in capsys.readouterr().err
