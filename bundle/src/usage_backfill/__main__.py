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

JOBS = {
    "backfill-partition": run_backfill_partition,
    "promotion": run_promotion,
    "rollback": run_rollback,
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

    from usage_backfill.local import local_spark

    spark = local_spark(tempfile.mkdtemp(prefix="usage-backfill-"))
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
