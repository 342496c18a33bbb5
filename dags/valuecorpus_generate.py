"""valuecorpus_generate: generate a recipe's samples → check their quality → push them to Label Studio.

Scheduled (`VALUECORPUS_GENERATE_SCHEDULE`, default daily; also triggered with params). Each task runs the
`valuecorpus` command line; tasks hand each other the run id, never data.

- **generate**: `valuecorpus generate RECIPE --run-id <derived from the DAG run> --skip-existing`. A retry after
  a failure or a kill finds the staged run (a run appears only when complete) or generates again, paying only
  for what the request cache does not hold.
- **quality**: `valuecorpus run check RUN`: fails (no retry) when the schema-valid or dead-letter rate crosses
  the recipe's `quality` thresholds.
- **push**: `valuecorpus curate push RUN`: idempotent by sample id, so a retry adds no Label Studio task.

Settings come from Airflow, else from the worker's environment (never from this file):
- connection `valuecorpus_llm`: host = the OpenAI-compatible base URL, password = API key, extra `{"model": …}`;
  unset = OPENAI_BASE_URL / OPENAI_API_KEY / VALUECORPUS_MODEL, or the embedded local model;
- connection `valuecorpus_label_studio`: host = URL, password = API key; unset = LABEL_STUDIO_URL /
  LABEL_STUDIO_API_KEY, or the managed server under the data home;
- variable `valuecorpus_home`: the data home; unset = VALUECORPUS_HOME.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import PurePath

from airflow.sdk import Param, dag, get_current_context, task

from valuecorpus.airflow_tasks import run_task, task_env
from valuecorpus.scheduling import derived_run_id


def _valuecorpus(*args: str) -> str:
    return run_task(*args, env=task_env(llm=True, label_studio=True))


@dag(
    dag_id="valuecorpus_generate",
    schedule=os.environ.get("VALUECORPUS_GENERATE_SCHEDULE", "@daily"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2},  # delay between tries: Airflow's [core] default_task_retry_delay
    params={
        "recipe": Param("demo", type="string", minLength=1, description="Recipe file, or a shipped recipe's name."),
        "count": Param(None, type=["null", "integer"], minimum=1, description="Samples (default: the recipe's)."),
        "model": Param(None, type=["null", "string"], description="Model name at the endpoint."),
        "base_url": Param(None, type=["null", "string"], description="OpenAI-compatible endpoint URL."),
        "batch": Param("main", type="string", minLength=1, description="Label Studio batch."),
        "overlap": Param(1, type="integer", minimum=1, description="Annotations wanted per sample."),
    },
    tags=["valuecorpus"],
    doc_md=__doc__,
)
def valuecorpus_generate() -> None:
    @task
    def generate() -> str:
        context = get_current_context()
        params = context["params"]
        recipe = str(params["recipe"])
        run_id = derived_run_id(PurePath(recipe).stem, context["dag_run"].run_id)
        args = ["generate", recipe, "--run-id", run_id, "--skip-existing", "--no-progress"]
        if params.get("count"):
            args += ["--n", str(params["count"])]
        if params.get("model"):
            args += ["--model", str(params["model"])]
        if params.get("base_url"):
            args += ["--base-url", str(params["base_url"])]
        _valuecorpus(*args)
        return run_id

    @task
    def quality(run: str) -> str:
        result = json.loads(_valuecorpus("run", "check", run, "--json"))
        print(f"run {run}: quality within the recipe's thresholds ({result['thresholds']})")
        return run

    @task
    def push(run: str) -> str:
        params = get_current_context()["params"]
        _valuecorpus("curate", "push", run, "--batch", str(params["batch"]), "--overlap", str(params["overlap"]))
        return run

    push(quality(generate()))


valuecorpus_generate()
