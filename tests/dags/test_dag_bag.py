"""The DAG files load into a real Airflow DagBag with no import errors, with the expected task graphs and
params, and without importing the heavy libraries at parse time."""

from __future__ import annotations

import json
import subprocess
import sys

from airflow_harness import REPO, Airflow

HEAVY = ("apache_beam", "great_expectations", "llama_cpp", "duckdb", "pyarrow", "datasets")

LOAD = f"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
t0 = time.perf_counter()
bag = DagBag(dag_folder={str(REPO / "dags")!r})
seconds = time.perf_counter() - t0
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "dags": {{d.dag_id: {{"tasks": {{t.task_id: sorted(t.downstream_task_ids) for t in d.tasks}},
                         "params": sorted(d.params), "schedule": type(d.timetable).__name__}}
             for d in bag.dags.values()}},
    "heavy": [m for m in {HEAVY!r} if m in sys.modules],
    "seconds": seconds,
}}))
"""


def _load(airflow: Airflow) -> dict:
    proc = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, timeout=300,
                          env=airflow.env(), cwd=airflow.home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_dag_bag_loads_the_three_dags_with_their_task_graphs(airflow: Airflow) -> None:
    bag = _load(airflow)
    assert bag["errors"] == {}
    assert set(bag["dags"]) == {"valuecorpus_generate", "valuecorpus_curate", "valuecorpus_import"}
    chains = {
        "valuecorpus_generate": ["generate", "quality", "push"],
        "valuecorpus_curate": ["find_runs", "pull", "select", "adjudicate", "finalize", "validate", "publish"],
        "valuecorpus_import": ["stage", "validate", "publish"],
    }
    for dag_id, chain in chains.items():
        expected = {task: ([chain[i + 1]] if i + 1 < len(chain) else []) for i, task in enumerate(chain)}
        assert bag["dags"][dag_id]["tasks"] == expected, dag_id
    assert bag["dags"]["valuecorpus_generate"]["params"] == ["base_url", "batch", "count", "model", "overlap",
                                                              "recipe"]
    assert bag["dags"]["valuecorpus_import"]["params"] == ["dataset", "kind", "path"]
    assert bag["dags"]["valuecorpus_generate"]["schedule"] != "NullTimetable"  # scheduled
    assert bag["dags"]["valuecorpus_curate"]["schedule"] != "NullTimetable"
    assert bag["dags"]["valuecorpus_import"]["schedule"] == "NullTimetable"  # triggered


def test_parsing_the_dags_imports_no_heavy_library(airflow: Airflow) -> None:
    assert _load(airflow)["heavy"] == []


def test_dag_files_hold_no_setting_values() -> None:
    """Endpoints, keys and Label Studio settings come from connections, variables or the environment."""
    for path in (REPO / "dags").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in ("http://", "https://", "127.0.0.1", "localhost", "\"sk-", "password="):
            assert needle not in text, f"{path.name} holds {needle!r}"
