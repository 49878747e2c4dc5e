"""Enqueues one message per daily partition into this run's queue, then exits.

    python produce.py BACKFILL_ID START_DATE N

The queue is PEER_QUEUE (a name unique to the run); the outcome table is created first,
so the table can be counted before the first task ends.
"""

import datetime
import os
import sys

from tasks import backfill_partition, open_db


def main():
    backfill_id, start, n = sys.argv[1], datetime.date.fromisoformat(sys.argv[2]), int(sys.argv[3])
    open_db(os.environ["PEER_DB"]).close()
    queue = os.environ["PEER_QUEUE"]
    for i in range(n):
        date = (start + datetime.timedelta(days=i)).isoformat()
        backfill_partition.apply_async((backfill_id, date, 1), queue=queue)


if __name__ == "__main__":
    main()
