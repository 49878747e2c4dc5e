"""Run one job locally: `python -m usage_backfill JOB --warehouse DIR --param KEY=VALUE ...`.

JOB is `backfill-partition`, `promotion` or `rollback`; tables resolve to the warehouse
directory; the result JSON is printed. Exit 2 for bad parameters or a refused partition.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

from usage_backfill.errors import ParameterError, PartitionRefused
from usage_backfill.jobs import run_backfill_partition, run_promotion, run_rollback
from usage_backfill.params import BackfillParams, PromotionParams, RollbackParams

JOBS = {
    "backfill-partition": run_backfill_partition,
    "promotion": run_promotion,
    "rollback": run_rollback,
}
# Checked before Spark starts, so a bad parameter fails in a second.
PARSERS = {
    "backfill-partition": BackfillParams.parse,
    "promotion": PromotionParams.parse,
    "rollback": RollbackParams.parse,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m usage_backfill", description=__doc__)
    parser.add_argument("job", choices=sorted(JOBS))
    parser.add_argument("--warehouse", required=True, help="local warehouse directory")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a job parameter"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    params: dict[str, str] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"--param {item!r} must look like KEY=VALUE", file=sys.stderr)
            return 2
        params[key] = value
    params["warehouse_dir"] = args.warehouse
    try:
        PARSERS[args.job](params)
    except ParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from usage_backfill.local import local_spark

    with tempfile.TemporaryDirectory(prefix="usage-backfill-") as scratch:
        spark = local_spark(scratch)
        try:
            result = JOBS[args.job](spark, params)
        except (ParameterError, PartitionRefused) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        finally:
            spark.stop()
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
