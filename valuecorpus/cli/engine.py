"""Wiring settings to the generation engine, and `valuecorpus run resume` (Batch API runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from valuecorpus.cli.common import settings
from valuecorpus.cli.runs_group import attach, run_app

if TYPE_CHECKING:
    from valuecorpus.pipelines.engine.config import EngineConfig
    from valuecorpus.settings import Settings

LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct-Q4_1"


def engine_config(s: Settings | None = None, **overrides: Any) -> EngineConfig:
    """The engine config for these settings: an endpoint when `openai_base_url` is set, else the embedded local
    model; the cache under `<home>/cache/`. `overrides` are EngineConfig fields (CLI flags); None is ignored."""
    from valuecorpus.pipelines.engine.config import EngineConfig

    s = s or settings()
    remote = bool(s.openai_base_url)
    values: dict[str, Any] = {
        "backend": "openai" if remote else "local",
        "base_url": s.openai_base_url,
        "model": s.model or ("" if remote else LOCAL_MODEL_NAME),
        "api_key": s.openai_api_key,
        "dialect": s.structured_output,
        "cache_dir": str(s.data_home.cache_dir),
        "prices": s.prices,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return EngineConfig.model_validate(values)


def register(app: typer.Typer) -> None:
    @run_app.command("resume")
    def resume(
        run_id: str = typer.Argument(..., help="The run whose Batch API jobs to poll and collect."),
        wait: bool = typer.Option(False, "--wait", help="Poll until every batch has ended."),
        interval: float = typer.Option(30.0, "--interval", help="Seconds between polls with --wait.", min=0.1),
    ) -> None:
        """Poll a run's Batch API jobs, collect what ended into the cache, resubmit failed or expired items and
        go on with the chain's next step; once every step is answered, the run is filtered and staged."""
        import time

        from valuecorpus.cli.generate import run_generation
        from valuecorpus.pipelines.batch_run import pending_run, read_resume
        from valuecorpus.pipelines.engine.batch import load_state, resume_batches
        from valuecorpus.schemas.errors import NotFoundError

        s = settings()
        home = s.data_home
        args = read_resume(home, run_id) if pending_run(home, run_id).batches.exists() else None
        if args is not None:  # a `generate --batch` run: every pass collects, resubmits and submits the next step
            while run_generation(args, run_id=run_id, batch=True, progress=False) is None and wait:
                time.sleep(interval)
            return
        layout = home.run(run_id)
        if not layout.batches.exists():
            raise NotFoundError(f"run '{run_id}' has no Batch API jobs ({layout.batches} does not exist)")
        if layout.exists() and layout.read_manifest().model_extra.get("executor") == "batch":
            print(f"run {run_id} is staged: every Batch API job of it was collected")
            return
        state = load_state(layout.batches)
        config = engine_config(s, backend="openai",
                               **{k: v for k, v in state.config.items() if k in ("base_url", "model", "dialect")})
        while True:
            report = resume_batches(config, layout.batches)
            print(report.summary())
            if not wait or report.pending == 0:
                break
            time.sleep(interval)
        if report.pending:
            print(f"{report.pending} batches still running: run `valuecorpus run resume {run_id}` again later")

    attach(app)
