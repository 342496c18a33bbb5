"""A publisher process for the crash and concurrency tests: imports everything, says `ready`, waits for the
publishes, prints the version number and the seconds it took."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import great_expectations  # noqa: F401  (the gate's library, loaded before `ready` like everything else)

from valuecorpus.warehouse.publishing import publish


def main() -> None:
    home, run, dataset, go = sys.argv[1:5]
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.001)
    started = time.perf_counter()
    manifest = publish(home, run, dataset)
    print(f"{manifest.version} {time.perf_counter() - started:.4f}", flush=True)


if __name__ == "__main__":
    main()
