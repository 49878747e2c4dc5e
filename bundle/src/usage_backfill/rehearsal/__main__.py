"""`python -m usage_backfill.rehearsal SUBCOMMAND ...`: `sample`, `executor`, `check`.

sample   --raw DIR --warehouse DIR --start YYYY-MM-DD --days N [--seed S]
         [--customers K] [--gate-failing-day YYYY-MM-DD]
executor --slots N [--scratch DIR]
check    --sample rehearsal-sample.json --expect EXPECT.json [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from pyspark.sql import SparkSession


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m usage_backfill.rehearsal",
        description="A rehearsal of the backfill on local Spark and Delta tables.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sample = commands.add_parser("sample", help="write seeded raw files and the warehouse")
    sample.add_argument("--raw", required=True, type=Path, help="raw files' root")
    sample.add_argument("--warehouse", required=True, type=Path, help="warehouse directory")
    sample.add_argument("--start", required=True, type=dt.date.fromisoformat)
    sample.add_argument("--days", required=True, type=int)
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--customers", type=int, default=5)
    sample.add_argument("--gate-failing-day", type=dt.date.fromisoformat, default=None)

    executor = commands.add_parser("executor", help="run jobs on request, JSON lines")
    executor.add_argument("--slots", required=True, type=int, help="runs at a time")
    executor.add_argument("--scratch", type=Path, default=None, help="Spark's scratch dir")

    check = commands.add_parser("check", help="check the tables against the expectation")
    check.add_argument("--sample", required=True, type=Path, help="rehearsal-sample.json")
    check.add_argument("--expect", required=True, type=Path, help="the demo's expectation")
    check.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    return parser.parse_args(argv)


def reserve_stdout() -> TextIO:
    """The real stdout, for this command's own output; file descriptor 1 then goes to stderr,
    so whatever Spark's JVM (started later, inheriting it) or a library prints lands there."""
    sys.stdout.flush()
    reserved = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return reserved


@contextlib.contextmanager
def spark_session(scratch: Path | None, app_name: str) -> Iterator[SparkSession]:
    from usage_backfill.local import local_spark

    with contextlib.ExitStack() as stack:
        if scratch is None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rehearsal-")))
        spark = local_spark(scratch, app_name=app_name)
        try:
            yield spark
        finally:
            spark.stop()


def run_sample(args: argparse.Namespace) -> int:
    from usage_backfill.rehearsal.raw_sample import RawSpec
    from usage_backfill.rehearsal.sample import generate, write_summary

    spec = RawSpec(args.start, args.days, seed=args.seed, customers=args.customers)
    if args.days < 1 or args.customers < 3:
        print("error: --days must be at least 1 and --customers at least 3", file=sys.stderr)
        return 2
    out = reserve_stdout()
    with spark_session(None, "usage-backfill-rehearsal-sample") as spark:
        try:
            summary = generate(spark, args.raw, args.warehouse, spec, args.gate_failing_day)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    write_summary(args.raw, summary)
    print(json.dumps(summary, sort_keys=True), file=out)
    out.close()
    return 0


def run_executor(args: argparse.Namespace) -> int:
    from usage_backfill.rehearsal.executor import serve

    if args.slots < 1:
        print("error: --slots must be at least 1", file=sys.stderr)
        return 2
    # The real stdout carries the protocol only; anything else printed goes to stderr.
    protocol = reserve_stdout()
    with spark_session(args.scratch, "usage-backfill-rehearsal-executor") as spark:
        serve(spark, sys.stdin, protocol, args.slots)
    protocol.close()
    return 0


def run_check(args: argparse.Namespace) -> int:
    from usage_backfill.rehearsal.check import (
        InputError,
        exit_code,
        load_json,
        report,
        run_checks,
    )

    try:
        sample = load_json(args.sample, "sample summary")
        expect = load_json(args.expect, "expectation")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = reserve_stdout()
    with spark_session(None, "usage-backfill-rehearsal-check") as spark:
        try:
            checks = run_checks(spark, sample, expect)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except Exception as e:  # the check could not run: not a failed check
            print(f"error: the check could not run: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
    if not checks:
        print("error: the expectation gives nothing to check", file=sys.stderr)
        return 2
    print(report(checks, args.json), file=out)
    out.close()
    return exit_code(checks)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    commands = {"sample": run_sample, "executor": run_executor, "check": run_check}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
