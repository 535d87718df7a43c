"""What the per-account lock costs: acquiring a Prefect global concurrency slot per changing call.

Runs N sequential `with account_lock(uid)` around an empty body against a temporary Prefect
server (SQLite), then N plain API round trips (`GET /hello`) as the baseline, and prints the
per-call cost and the ratio.
Usage: .venv/bin/python bench/bench_prefect_account_lock.py [N]
"""

from __future__ import annotations

import sys
import time

from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness

from tourniquet.flows.locks import account_lock


def main(count: int) -> None:
    with prefect_test_harness(server_startup_timeout=90):
        with account_lock("warmup"):
            pass
        start = time.perf_counter()
        for index in range(count):
            with account_lock(f"user{index % 10}"):
                pass
        locked = time.perf_counter() - start
        with get_client(sync_client=True) as client:
            start = time.perf_counter()
            for _ in range(count):
                client.hello()
            plain = time.perf_counter() - start
    print(f"prefect: per-account lock {1000 * locked / count:.0f} ms per changing call ({count} acquire+release, "
          f"SQLite server) vs {1000 * plain / count:.1f} ms per plain API call: {locked / plain:.0f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
