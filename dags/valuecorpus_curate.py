"""valuecorpus_curate: pull expert decisions → when a run's curation is complete or its deadline has passed →
adjudicate what needs it → finalize → validate → publish.

Scheduled (`VALUECORPUS_CURATE_SCHEDULE`, default hourly). Each task runs the `valuecorpus` command line and
hands the next one run ids, never data. When there is nothing to do — no pushed run awaiting curation, or every
such run still waiting for its annotators — the remaining tasks are skipped, not failed.

- **find_runs**: runs pushed to Label Studio (`valuecorpus runs --json`) that have no curated run yet (param
  `runs` limits them).
- **pull**: `valuecorpus curate pull RUN` (pulling twice changes nothing).
- **select**: from `valuecorpus curate status RUN --json`: a run is *ready* when no sample is pending or awaits
  adjudication, or when its deadline (`deadline_hours` after the run was staged) has passed — then what is not
  resolved is left out of the curated run, and counted. A run with ties or weak majorities before its deadline
  goes to adjudication and waits for the adjudicators' decisions (a later DAG run pulls them).
- **adjudicate**: `valuecorpus curate adjudicate RUN` (idempotent: a sample is sent once).
- **finalize**: `valuecorpus curate finalize RUN --run-id RUN-curated --skip-existing`: one curated run per
  source run, however often the task is retried.
- **validate**: `valuecorpus validate RUN --dataset D` (the dataset's suite) where the CLI has the gate;
  `publish` validates first in any case.
- **publish**: `valuecorpus publish RUN --dataset D --once`: a retry finds the version it made.

Settings: as in valuecorpus_generate (connection `valuecorpus_label_studio`, variable `valuecorpus_home`, else
the worker's environment).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from valuecorpus.airflow_tasks import run_task, task_env
from valuecorpus.scheduling import derived_run_id, has_command

try:  # Airflow ≥ 3.2 keeps task exceptions in the SDK
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
except ImportError:  # pragma: no cover
    from airflow.exceptions import AirflowFailException, AirflowSkipException

def _valuecorpus(*args: str, quiet: bool = False) -> str:
    return run_task(*args, env=task_env(label_studio=True), quiet=quiet)


def _runs() -> dict[str, dict[str, Any]]:
    return {r["run_id"]: r for r in json.loads(_valuecorpus("runs", "--json", quiet=True))}


def curated_id(run_id: str) -> str:
    """The one curated run of a source run (stable, so a retried finalize finds it)."""
    return derived_run_id(run_id, "curated")


@dag(
    dag_id="valuecorpus_curate",
    schedule=os.environ.get("VALUECORPUS_CURATE_SCHEDULE", "@hourly"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2},  # delay between tries: Airflow's [core] default_task_retry_delay
    params={
        "runs": Param([], type="array", items={"type": "string"}, description="Only these runs (default: all)."),
        "deadline_hours": Param(168, type="number", minimum=0,
                                description="Hours after a run was staged when it is curated with what it has."),
        "min_majority": Param(0.6, type="number", minimum=0, maximum=1,
                              description="Majority share under which a sample goes to adjudication."),
        "dataset": Param(None, type=["null", "string"],
                         description="Dataset to publish to (default: the output dataset of the run's recipe)."),
    },
    tags=["valuecorpus"],
    doc_md=__doc__,
)
def valuecorpus_curate() -> None:
    @task
    def find_runs() -> list[str]:
        wanted = set(get_current_context()["params"]["runs"] or [])
        runs = _runs()
        curated = {p for r in runs.values() if r["origin"] == "curate" for p in r["parent_runs"]}
        todo = [rid for rid, r in sorted(runs.items())
                if r["curation_batches"] and r["origin"] != "curate" and rid not in curated
                and curated_id(rid) not in runs and (not wanted or rid in wanted)]
        if not todo:
            raise AirflowSkipException("nothing to curate: no pushed run is waiting for curation")
        print(f"runs awaiting curation: {', '.join(todo)}")
        return todo

    @task
    def pull(runs: list[str]) -> list[str]:
        min_majority = str(get_current_context()["params"]["min_majority"])
        for run in runs:
            _valuecorpus("curate", "pull", run, "--min-majority", min_majority)
        return runs

    @task
    def select(runs: list[str]) -> dict[str, list[str]]:
        hours = float(get_current_context()["params"]["deadline_hours"])
        staged = _runs()
        now = datetime.now(UTC)
        ready, to_adjudicate = [], []
        for run in runs:
            status = json.loads(_valuecorpus("curate", "status", run, "--json", quiet=True))
            totals: Counter[str] = Counter()
            for counts in status["batches"].values():
                totals.update(counts)
            created = datetime.fromisoformat(staged[run]["created_at"].replace("Z", "+00:00"))
            overdue = now >= created + timedelta(hours=hours)
            waiting = totals["pending"] + totals["needs_adjudication"]
            print(f"{run}: {totals['tasks']} samples, {totals['pending']} pending, "
                  f"{totals['needs_adjudication']} awaiting adjudication{', deadline passed' if overdue else ''}")
            if overdue or not waiting:
                ready.append(run)
            elif totals["needs_adjudication"]:
                to_adjudicate.append(run)
        if not ready and not to_adjudicate:
            raise AirflowSkipException("nothing to do yet: every run is waiting for annotations")
        return {"ready": ready, "adjudicate": to_adjudicate}

    @task
    def adjudicate(selection: dict[str, list[str]]) -> list[str]:
        for run in selection["adjudicate"]:
            _valuecorpus("curate", "adjudicate", run)
        return selection["ready"]

    @task
    def finalize(ready: list[str]) -> list[str]:
        if not ready:
            raise AirflowSkipException("nothing to finalize: the runs sent to adjudication wait for its decisions")
        for run in ready:
            _valuecorpus("curate", "finalize", run, "--run-id", curated_id(run), "--skip-existing")
        return [curated_id(run) for run in ready]

    def _targets(curated: list[str]) -> dict[str, str]:
        """Curated run -> the dataset it is published to (runs in which nothing was accepted are left out)."""
        chosen = get_current_context()["params"]["dataset"]
        runs = _runs()
        out = {}
        for run in curated:
            if not sum(runs[run]["counts"].values()):
                print(f"{run}: no sample was accepted; nothing to validate or publish")
                continue
            source = runs.get(runs[run]["parent_runs"][0], {}) if runs[run]["parent_runs"] else {}
            dataset = chosen or source.get("dataset")
            if not dataset:
                raise AirflowFailException(f"{run}: its recipe names no output dataset; set the param 'dataset'")
            out[run] = dataset
        return out

    @task
    def validate(curated: list[str]) -> list[str]:
        if has_command("validate"):
            for run, dataset in _targets(curated).items():
                _valuecorpus("validate", run, "--dataset", dataset)
        else:
            print("this valuecorpus has no `validate` command: publish applies its own checks")
        return curated

    @task
    def publish(curated: list[str]) -> list[str]:
        published = []
        for run, dataset in _targets(curated).items():
            result = json.loads(_valuecorpus("publish", run, "--dataset", dataset, "--once", "--json"))
            published.append(f"{result['dataset']}@v{result['version']}")
        return published

    publish(validate(finalize(adjudicate(select(pull(find_runs()))))))


valuecorpus_curate()
