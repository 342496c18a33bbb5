"""Distinct first-step requests per sample: how varied a run can be, given its seeds.

    python -m bench.seed_pools --n 1000 [--recipes dilemmas,value_rules,preferences]

Runs `valuecorpus generate RECIPE --n N --executor loop` (temperature 0, as the shipped recipes are) against the
fake OpenAI-compatible server with 0 latency, in a fresh data home, and counts the distinct request bodies the
server saw for the chain's first step and for the seed stage, and the distinct records kept. Writes
`bench/results/seed_pools.json`. A count, not a time: the test suite asserts the same figure
(`tests/pipelines/test_seed_pools.py`); this script reports it for any N, and for the code before a change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

FIRST_STEP = {
    "dilemmas": {"background", "conflict", "question", "action", "alternative"},
    "value_rules": {"scene"},
    "preferences": {"question"},
}
RESULTS = Path(__file__).parent / "results"


def measure(recipe: str, n: int) -> dict[str, Any]:
    first: Counter[str] = Counter()
    seeds: Counter[str] = Counter()
    total: Counter[str] = Counter()

    def hook(request: dict[str, Any]) -> None:
        props = set((request["schema"] or {}).get("properties") or {})
        body = hashlib.sha256(json.dumps(request["body"], sort_keys=True).encode()).hexdigest()
        total[body] += 1
        if props == FIRST_STEP[recipe]:
            first[body] += 1
        elif props == {"seeds"}:
            seeds[body] += 1

    with tempfile.TemporaryDirectory() as home, FakeServer(FakeServerConfig(responder=hook, latency=0)) as server:
        env = {**os.environ, "VALUECORPUS_HOME": home}
        proc = subprocess.run(
            [sys.executable, "-m", "valuecorpus", "generate", recipe, "--n", str(n), "--executor", "loop",
             "--base-url", server.base_url, "--model", "fake-model", "--no-progress", "--run-id", "bench"],
            capture_output=True, text=True, env=env, timeout=3600, cwd=home)
        manifest = {}
        path = Path(home) / "runs" / "bench" / "manifest.json"
        if path.exists():
            manifest = json.loads(path.read_text())
    return {
        "recipe": recipe, "n": n, "exit_code": proc.returncode,
        "error": proc.stderr.strip().splitlines()[-1] if proc.returncode else None,
        "distinct_first_step_requests": len(first), "distinct_requests": len(total),
        "seed_proposal_requests": len(seeds), "records": manifest.get("counts"),
        "filtered_by": manifest.get("filtered_by"), "seed_pool": manifest.get("seed_pool"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--recipes", default=",".join(FIRST_STEP))
    parser.add_argument("--out", type=Path, default=RESULTS / "seed_pools.json")
    args = parser.parse_args()
    rows = [measure(r, args.n) for r in args.recipes.split(",")]
    for row in rows:
        print(f"{row['recipe']:>12} n={row['n']}: {row['distinct_first_step_requests']} distinct first-step "
              f"requests, {row['distinct_requests']} distinct requests, {row['seed_proposal_requests']} seed "
              f"proposals, records {row['records']}" + (f"  error: {row['error']}" if row["error"] else ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
