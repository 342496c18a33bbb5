"""valuecorpus_import: stage a reference corpus → validate → publish it as a version.

Triggered with params (`kind`, `path`, `dataset`); no schedule. Each task runs the `valuecorpus` command line
and hands the next one the run id, never data.

- **stage**: `valuecorpus import KIND PATH --run-id <derived from the DAG run> --skip-existing` (a run appears
  only when complete, so a retry after a kill imports again, and one after success imports nothing);
- **validate**: `valuecorpus validate RUN --dataset D` (the dataset's suite) where the CLI has the gate;
  `publish` validates first in any case;
- **publish**: `valuecorpus publish RUN --dataset D --once`: a retry finds the version it made.

Settings: variable `valuecorpus_home` (the data home), else VALUECORPUS_HOME in the worker's environment.
"""

from __future__ import annotations

import json
from datetime import datetime

from airflow.sdk import Param, dag, get_current_context, task

from valuecorpus.airflow_tasks import run_task, task_env
from valuecorpus.scheduling import derived_run_id, has_command

try:  # Airflow ≥ 3.2 keeps task exceptions in the SDK
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # pragma: no cover
    from airflow.exceptions import AirflowFailException

KINDS = ["dailydilemmas", "agent_valuebench", "moral_graph", "emergent_values"]


def _valuecorpus(*args: str) -> str:
    return run_task(*args, env=task_env())


@dag(
    dag_id="valuecorpus_import",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 2},  # delay between tries: Airflow's [core] default_task_retry_delay
    params={
        "kind": Param("dailydilemmas", enum=KINDS, description="Which reference corpus."),
        "path": Param("", type="string", description="A file of that corpus, or a directory of its files."),
        "dataset": Param(None, type=["null", "string"], description="Dataset to publish to (default: the kind)."),
    },
    tags=["valuecorpus"],
    doc_md=__doc__,
)
def valuecorpus_import() -> None:
    @task
    def stage() -> str:
        context = get_current_context()
        params = context["params"]
        if not params["path"]:
            raise AirflowFailException("param 'path' is empty: name the corpus file or directory to import")
        run_id = derived_run_id(f"import-{params['kind']}", context["dag_run"].run_id)
        _valuecorpus("import", params["kind"], params["path"], "--run-id", run_id, "--skip-existing")
        return run_id

    @task
    def validate(run: str) -> str:
        params = get_current_context()["params"]
        if has_command("validate"):
            _valuecorpus("validate", run, "--dataset", params["dataset"] or params["kind"])
        else:
            print("this valuecorpus has no `validate` command: publish applies its own checks")
        return run

    @task
    def publish(run: str) -> str:
        params = get_current_context()["params"]
        dataset = params["dataset"] or params["kind"]
        result = json.loads(_valuecorpus("publish", run, "--dataset", dataset, "--once", "--json"))
        return f"{result['dataset']}@v{result['version']}"

    publish(validate(stage()))


valuecorpus_import()
