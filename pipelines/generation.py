"""One generation run, end to end: plan → chain (plain loop or Beam) → filters → judge → stage.

The caller (the CLI) hands over what lives elsewhere: the engine config (built from settings, with the key),
input records (perspectives on dilemmas) and the latest published texts of the output dataset (near-duplicate
filter). This module imports neither the warehouse nor settings.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from valuecorpus.pipelines.chains import chain_class
from valuecorpus.pipelines.chains.runner import CacheOnly, NotCached, execute, initial_states
from valuecorpus.pipelines.filters import apply_filters
from valuecorpus.pipelines.filters.judge import apply_judge
from valuecorpus.pipelines.planner import coverage, make_plan
from valuecorpus.pipelines.seeds import seed_plan
from valuecorpus.pipelines.stage import RunOutput, stage_run
from valuecorpus.schemas.errors import BudgetExhausted
from valuecorpus.schemas.layout import PARTIAL_MARK, DataHome, RunLayout

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain, SampleState
    from valuecorpus.pipelines.engine.config import EngineConfig
    from valuecorpus.pipelines.recipes import Recipe


@dataclass
class GenerateOptions:
    executor: str = "auto"  # auto (the cache when it answers everything, else beam) | beam | loop
    beam_args: list[str] = field(default_factory=list)
    run_id: str | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    published: list[tuple[str, str]] = field(default_factory=list)
    published_ref: str | None = None
    parent_runs: list[str] = field(default_factory=list)
    input_source: str | None = None  # the run or dataset the inputs came from (recorded as the seeds' source)
    toolkit_version: str = ""
    progress: bool = False  # the engine's progress display (on a terminal: rich; otherwise plain lines)


def summarise_states(out: RunOutput, states: list[SampleState]) -> None:
    for s in states:
        for k, v in s.tokens.items():
            out.tokens[k] = out.tokens.get(k, 0) + v
        out.cost_usd += s.cost_usd
        out.prompt_versions.update(s.prompt_versions)
        out.models.extend(m for m in s.models if m not in out.models)


def run_loop(chain: Chain, plan: list[dict[str, Any]], config: EngineConfig, progress: bool = False,
             cache_only: bool = False) -> tuple[list[Any], list[Any], list[SampleState], dict[str, Any]]:
    """The chain in a plain loop; `cache_only`: answered from the cache alone (raises NotCached otherwise)."""
    from valuecorpus.pipelines.engine.core import Engine
    from valuecorpus.pipelines.engine.progress import Progress

    with Engine(config, progress=Progress() if progress else None) as engine:
        records, dead, states = execute(chain, initial_states(plan), CacheOnly(engine) if cache_only else engine)
        return records, dead, states, engine.stats.as_dict()


def resolve_cached(chain: Chain, plan: list[dict[str, Any]], config: EngineConfig
                   ) -> tuple[list[Any], list[Any], list[SampleState], dict[str, Any]] | None:
    """The whole chain answered from the cache, or None at the first request that is not cached. A finished
    job's rerun needs no runner: Beam's own start and per-element cost would be most of its time."""
    if config.refresh or not config.cache_dir:
        return None
    from valuecorpus.pipelines.engine.gc_tuning import paused_collections

    try:
        with paused_collections():
            return run_loop(chain, plan, config.model_copy(update={"progress": False}), cache_only=True)
    except NotCached:
        return None


def generate(recipe: Recipe, home: DataHome, config: EngineConfig, options: GenerateOptions) -> RunLayout:
    """Run a recipe and stage the run. Raises BudgetExhausted after staging if the cost cap stopped requests."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    home.clean_stale_partials()
    run_id = options.run_id or home.new_run_id(recipe.name)
    home.run(run_id)  # validates the id before any work
    if config.max_cost_usd is not None or config.max_tokens_total is not None:
        # one cap for the whole run, however many Beam worker processes spend against it
        config = config.model_copy(update={"budget_scope": config.budget_scope or f"run:{run_id}"})
    chain = chain_class(recipe.kind)(recipe, options.inputs)
    chain.input_source = options.input_source
    plan = make_plan(recipe, chain.extra_axes(), chain.planned_count())
    # the seed stage: a distinct seed per plan item (proposed through the engine when the pool is short)
    plan, seed_pool, seed_report = seed_plan(chain, plan, config)
    timings["plan_s"] = time.perf_counter() - started

    t = time.perf_counter()
    languages = {it["sample_id"]: it["language"] for it in plan if "language" in it}
    resolved = resolve_cached(chain, plan, config) if options.executor == "auto" else None
    executor = "cache" if resolved is not None else "loop" if options.executor == "loop" else "beam"
    if executor != "beam":
        records, dead, states, engine_stats = resolved or run_loop(chain, plan, config, options.progress)
        filtered = apply_filters(chain, records, options.published, languages)
        kept, dropped = filtered.kept, filtered.filtered
    else:
        logging.disable(logging.WARNING)  # Beam's import warns about optional GCP clients: noise for users
        try:
            from valuecorpus.pipelines.beam_pipeline import run_beam
        finally:
            logging.disable(logging.NOTSET)

        kept, dropped, dead, states, engine_stats = run_beam(
            chain, plan, config, options.beam_args, home.runs_dir / f".{run_id}.beam{PARTIAL_MARK}{os.getpid()}",
            options.published, languages, options.progress)
    generated = len(kept) + len(dropped)
    timings["generate_s"] = time.perf_counter() - t

    t = time.perf_counter()
    if recipe.filters.judge is not None:
        from valuecorpus.pipelines.engine.core import Engine

        with Engine(config) as engine:
            judged, judge_dead = apply_judge(chain, kept, engine)
        kept, dropped, dead = judged.kept, dropped + judged.filtered, dead + judge_dead
    timings["filter_s"] = time.perf_counter() - t

    if seed_pool is not None:
        dead = seed_pool.dead_letters + dead
    out = RunOutput(records=kept, plan=plan, dead_letters=dead, filtered=dropped,
                    seeds=seed_pool.rows if seed_pool is not None else [])
    if seed_pool is not None:
        out.tokens.update(seed_pool.tokens)
        out.cost_usd += seed_pool.cost_usd
        out.prompt_versions.update(seed_pool.prompt_versions)
        out.models.extend(seed_pool.models)
    summarise_states(out, states)
    axes = sorted({k for it in plan for k in it} - {"index", "sample_id", "seed", "stratum"})
    out.extra = {
        "executor": executor, "beam_args": options.beam_args, "engine": engine_stats,
        "endpoint": config.describe(), "coverage": coverage(plan, axes),
        "generated": generated, "samples_failed": sum(1 for s in states if s.failed),
        "published_compared": {"ref": options.published_ref, "texts": len(options.published)},
        "seed_pool": seed_report,
    }
    if options.parent_runs:
        out.extra["parent_runs"] = options.parent_runs
    timings["total_s"] = time.perf_counter() - started
    out.timings = timings
    taxonomies = {}
    if recipe.taxonomy or recipe.kind == "dilemmas":
        from valuecorpus.schemas.taxonomies.loader import load_taxonomy

        tax = load_taxonomy(recipe.taxonomy or "dailydilemmas_values")
        taxonomies[tax.name] = tax.version
    layout = stage_run(home, run_id, recipe, chain.record_kinds, out, taxonomies, options.toolkit_version)
    budget_hits = sum(1 for d in dead if d.error_class == "budget_exhausted")
    if budget_hits:
        raise BudgetExhausted(f"cost or token cap reached: {budget_hits} requests not sent; run '{run_id}' was "
                              f"staged with what was generated (see its dead letters)")
    return layout
