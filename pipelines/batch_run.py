"""A generation run in Batch API mode: the chain's steps as Batch API jobs, across as many resumes as it takes.

While its jobs run, a run lives in a hidden folder `runs/.<run_id>.batch/` (`batches.json`: every submission,
batch id, attempt and failure; `_work/`: the exact input files; `resume.json`: what `run resume` needs to
build the same chain again). Each pass runs the chain from the top through `BatchRunner`: steps whose
answers are all cached go by at once, the first step that is not submits what is missing and the pass stops
(`BatchPending`). When a pass gets through every step, the run is filtered and staged like any other, its
`batches.json` kept in the run directory, and the hidden folder removed.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from valuecorpus.pipelines.chains.runner import execute, initial_states
from valuecorpus.schemas.layout import DataHome, RunLayout, write_json_atomic

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain, SampleState
    from valuecorpus.pipelines.engine.config import EngineConfig

PENDING_SUFFIX = ".batch"


def pending_run(home: DataHome, run_id: str) -> RunLayout:
    home.run(run_id)  # validates the id
    return RunLayout(home.runs_dir / f".{run_id}{PENDING_SUFFIX}")


def pending_runs(home: DataHome) -> list[str]:
    """Run ids whose Batch API jobs are still being collected."""
    if not home.runs_dir.exists():
        return []
    return sorted(p.name[1:-len(PENDING_SUFFIX)] for p in home.runs_dir.iterdir()
                  if p.name.startswith(".") and p.name.endswith(PENDING_SUFFIX) and (p / "batches.json").exists())


def fingerprint(chain: Chain, plan: list[dict[str, Any]], config: EngineConfig) -> str:
    """What makes two submissions the same run: the recipe, the plan and the endpoint (never the key)."""
    blob = orjson.dumps({"recipe": chain.recipe.model_dump(mode="json"), "plan": [it["sample_id"] for it in plan],
                         "endpoint": config.endpoint_label, "model": config.model}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()[:32]


def find_pending(home: DataHome, print_: str) -> str | None:
    """The pending run with this fingerprint: a rerun of a killed `generate --batch` continues it instead of
    submitting the same requests again under a new run id."""
    from valuecorpus.pipelines.engine.batch import load_state

    for run_id in pending_runs(home):
        state = load_state(pending_run(home, run_id).batches)
        if state.extra.get("fingerprint") == print_:
            return run_id
    return None


def run_batched(chain: Chain, plan: list[dict[str, Any]], config: EngineConfig, home: DataHome, run_id: str,
                resume: dict[str, Any], print_: str | None = None
                ) -> tuple[list[Any], list[Any], list[SampleState], dict[str, Any]]:
    """One pass of the chain through the Batch API; raises `BatchPending` once it has submitted what it waits
    for. `resume` (the command's arguments, no secrets) is saved for `run resume` before anything is sent.
    `print_`: the run's fingerprint (`fingerprint` of the recipe's plan before the seed stage gave it seeds,
    which `find_pending` can compute before any request); default: of `plan`."""
    from valuecorpus.pipelines.engine.batch import load_state, new_state, resume_batches, save_state
    from valuecorpus.pipelines.engine.batch_runner import BatchPending, BatchRunner
    from valuecorpus.pipelines.engine.core import Engine

    if home.run(run_id).exists():
        from valuecorpus.schemas.errors import ValueCorpusError

        raise ValueCorpusError(f"run '{run_id}' already exists at {home.run(run_id).path}")
    pending = pending_run(home, run_id)
    if pending.batches.exists():
        state = load_state(pending.batches)
    else:
        state = new_state(config, run_id=run_id, fingerprint=print_ or fingerprint(chain, plan, config))
        pending.path.mkdir(parents=True, exist_ok=True)
        save_state(pending.batches, state)
    write_json_atomic(pending.path / "resume.json", resume)
    collected = ""
    if state.jobs:  # finish killed submissions, poll, collect what ended; failed items go again below
        collected = resume_batches(config, pending.batches, resubmit=False).summary()
        state = load_state(pending.batches)
    with Engine(config.model_copy(update={"progress": False})) as engine:
        runner = BatchRunner(engine, state, pending.batches, pending.work_dir)
        try:
            records, dead, states = execute(chain, initial_states(plan), runner)
        except BatchPending as waiting:
            waiting.collected = collected
            raise
        stats = engine.stats.as_dict()
    stats["batch_jobs"] = len(state.jobs)
    return records, dead, states, stats


def finish_batched(home: DataHome, layout: RunLayout) -> None:
    """After staging: the run keeps its batch record; the hidden folder goes."""
    pending = pending_run(home, layout.run_id)
    if pending.batches.exists():
        shutil.copyfile(pending.batches, layout.batches)
    shutil.rmtree(pending.path, ignore_errors=True)


def read_resume(home: DataHome, run_id: str) -> dict[str, Any] | None:
    path = pending_run(home, run_id).path / "resume.json"
    return orjson.loads(Path(path).read_bytes()) if path.exists() else None
