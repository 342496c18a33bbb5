"""How fast Airflow parses the DAG files in dags/: wall time of filling a DagBag from the folder (what the DAG
processor does on every parse loop), per run in a fresh process, and which heavy libraries the parse imported.

    python -m bench.dag_parse [--runs 5]

Needs the `airflow` extra (`make setup` installs it). Airflow's own import (`airflow.dag_processing.dagbag`, several
seconds on this machine) is outside the clock, as it is in a running DAG processor. Writes
bench/results/dag_parse.json. The target is < 2 s for the bag.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
HEAVY = ("apache_beam", "great_expectations", "llama_cpp", "duckdb", "pyarrow", "datasets")

ONE_PARSE = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
t0 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "dags": sorted(bag.dags), "errors": len(bag.import_errors),
                  "heavy": [m for m in sys.argv[2].split(",") if m in sys.modules]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="airflow-home-") as airflow_home:
        env = {**os.environ, "AIRFLOW_HOME": airflow_home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags")}
        for _ in range(args.runs):
            proc = subprocess.run([sys.executable, "-c", ONE_PARSE, str(REPO / "dags"), ",".join(HEAVY)],
                                  capture_output=True, text=True, env=env, check=True)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    seconds = [r["seconds"] for r in runs]
    result = {
        "dags": runs[0]["dags"], "import_errors": max(r["errors"] for r in runs),
        "heavy_imported": sorted({m for r in runs for m in r["heavy"]}),
        "bag_seconds_median": round(statistics.median(seconds), 3), "bag_seconds_max": round(max(seconds), 3),
        "runs": args.runs, "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dag_parse.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
