"""One generation run, end to end: plan → chain (plain loop or Beam) → filters → judge → stage.

The caller (the CLI) hands over what lives elsewhere: the engine config (built from settings, with the key),
input records (perspectives on dilemmas) and the latest published version's Parquet files of the output
dataset (near-duplicate filter; Beam reads them on its workers). This module imports neither the warehouse
nor settings.

On Beam the run is staged by the pipeline itself (`stage.stage_sharded`): the workers write its tables into
the staging location and the manifest is written when the pipeline has succeeded. The loop and a run answered
from the cache keep everything in this process and stage it at the end (`stage.stage_run`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from valuecorpus.pipelines.chains import chain_class
from valuecorpus.pipelines.chains.runner import CacheOnly, NotCached, execute, initial_states
from valuecorpus.pipelines.filters import apply_filters
from valuecorpus.pipelines.filters.judge import apply_judge
from valuecorpus.pipelines.planner import coverage, item_axes, kept_coverage, make_plan
from valuecorpus.pipelines.seeds import SeedPool, seed_plan
from valuecorpus.pipelines.stage import RunOutput, add_spend, kept_rows, stage_run, stage_sharded
from valuecorpus.schemas.layout import DataHome, RunLayout
from valuecorpus.schemas.storage import url_of

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
    published: list[tuple[str, str]] = field(default_factory=list)  # (id, text) handed over directly
    published_files: list[str] = field(default_factory=list)  # Parquet files of the latest published version
    published_ref: str | None = None
    parent_runs: list[str] = field(default_factory=list)
    input_source: str | None = None  # the run or dataset the inputs came from (recorded as the seeds' source)
    toolkit_version: str = ""
    progress: bool = False  # the engine's progress display (on a terminal: rich; otherwise plain lines)
    resume: dict[str, Any] = field(default_factory=dict)  # batch executor: what `run resume` rebuilds it from
    debug: bool = False  # show the runner's own logs and tracebacks (--debug)


def summarise_states(out: RunOutput, states: list[SampleState]) -> None:
    spend: dict[str, dict[str, float]] = {}
    for s in states:
        for k, v in s.tokens.items():
            out.tokens[k] = out.tokens.get(k, 0) + v
        out.cost_usd += s.cost_usd
        out.prompt_versions.update(s.prompt_versions)
        out.models.extend(m for m in s.models if m not in out.models)
        add_spend(spend, s.spend)
    out.extra["spend"] = [*out.extra.get("spend", []), *spend_rows(spend)]  # after the seed stage's


def spend_rows(spend: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The manifest's `spend`: one row per (step, endpoint, model), in step order of first appearance."""
    rows = []
    for key, row in spend.items():
        step, endpoint, model = key.split("|", 2)
        rows.append({"step": step, "endpoint": endpoint, "model": model, "requests": int(row["requests"]),
                     "cached": int(row["cached"]), "prompt_tokens": int(row["prompt_tokens"]),
                     "completion_tokens": int(row["completion_tokens"]), "cost_usd": round(row["cost_usd"], 6)})
    return rows


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


def _published_compared(options: GenerateOptions) -> dict[str, Any]:
    """What the near-duplicate filter compared against: the version, its files and their rows (footers only)."""
    import pyarrow.parquet as pq

    from valuecorpus.schemas.storage import as_path

    rows = 0
    for url in options.published_files:
        with as_path(url).open("rb") as fh:
            rows += pq.ParquetFile(fh).metadata.num_rows
    out: dict[str, Any] = {"ref": options.published_ref, "files": len(options.published_files), "rows": rows}
    if options.published:
        out["texts"] = len(options.published)
    return out


def published_texts(chain: Chain, options: GenerateOptions) -> list[tuple[str, str]]:
    """(id, text) of the published version, for the executors that filter in this process."""
    from valuecorpus.pipelines.filters.stored_texts import stored_texts

    return [*options.published, *stored_texts(chain, options.published_files)]


def add_seed_stage(out: RunOutput, pool: SeedPool) -> None:
    """The seed stage's share of the run: its seeds table, its dead letters, what it spent and with what.
    The executors add the chain's own to these."""
    out.seeds = pool.rows
    out.dead_letters = [*pool.dead_letters, *out.dead_letters]
    for k, v in pool.tokens.items():
        out.tokens[k] = out.tokens.get(k, 0) + v
    out.cost_usd += pool.cost_usd
    out.prompt_versions.update(pool.prompt_versions)
    out.models.extend(m for m in pool.models if m not in out.models)
    out.extra["spend"] = spend_rows(pool.spend)


def generate(recipe: Recipe, home: DataHome, config: EngineConfig, options: GenerateOptions) -> RunLayout:
    """Run a recipe and stage the run. Raises BudgetExhausted after staging if the cost cap stopped requests."""
    from valuecorpus.pipelines.engine.gc_tuning import fewer_collections

    # the collector's thresholds of the engine's calls for the whole run: between them (building each step's
    # requests over every sample, filtering, staging) the default ones made a full pass over the heap every few
    # thousand requests, a third of the run's CPU
    with fewer_collections():
        return _generate(recipe, home, config, options)


def _generate(recipe: Recipe, home: DataHome, config: EngineConfig, options: GenerateOptions) -> RunLayout:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    home.clean_stale_partials()
    chain = chain_class(recipe.kind)(recipe, options.inputs)
    chain.input_source = options.input_source
    skeleton = make_plan(recipe, chain.extra_axes(), chain.planned_count())
    run_id = options.run_id
    batch_print = None
    if options.executor == "batch":  # a rerun of a killed submission continues it (found by the recipe's plan)
        from valuecorpus.pipelines.batch_run import find_pending, fingerprint

        batch_print = fingerprint(chain, skeleton, config)
        run_id = run_id or find_pending(home, batch_print)
    run_id = run_id or home.new_run_id(recipe.name)
    home.run(run_id)  # validates the id before any work
    # fresh answers' cache entries name the run that paid for them: a resumed run counts them once, at cost
    config = config.model_copy(update={"spend_scope": run_id})
    capped = config.max_cost_usd is not None or config.max_tokens_total is not None
    if capped and config.budget_scope is None:  # a scope set in the settings may be shared by live runs: as is
        from valuecorpus.pipelines.engine.accounting import reclaim_budget

        # one cap for the whole run, however many Beam worker processes spend against it
        config = config.model_copy(update={"budget_scope": f"run:{run_id}"})
        reclaim_budget(config)  # a killed attempt of this run leased budget it will never settle
    # the seed stage: a distinct seed per plan item (proposed through the engine when the pool is short), paid
    # for and capped as part of the run
    plan, seed_pool, seed_report = seed_plan(chain, skeleton, config)
    timings["plan_s"] = time.perf_counter() - started

    t = time.perf_counter()
    resolved = resolve_cached(chain, plan, config) if options.executor == "auto" else None
    executor = "cache" if resolved is not None else options.executor if options.executor in (
        "loop", "batch") else "beam"
    if executor == "beam" and options.executor == "auto" and config.backend == "local":
        # one in-process model answers one request at a time: Beam adds its start-up and interleaves the steps'
        # prompts (which defeats llama.cpp's prompt-prefix reuse) and parallelises nothing
        executor = "loop"
    out = RunOutput(plan=plan)
    out.extra = {
        "executor": executor, "beam_args": options.beam_args, "endpoint": config.describe(),
        "coverage": coverage(plan, item_axes(plan)),  # planned only; the executor adds what was kept
        "published_compared": _published_compared(options), "seed_pool": seed_report,
    }
    if seed_pool is not None:
        add_seed_stage(out, seed_pool)
    if options.parent_runs:
        out.extra["parent_runs"] = options.parent_runs
    taxonomies = {}
    if recipe.taxonomy or recipe.kind == "dilemmas":
        from valuecorpus.schemas.taxonomies.loader import load_taxonomy

        tax = load_taxonomy(recipe.taxonomy or "dailydilemmas_values")
        taxonomies[tax.name] = tax.version

    if executor == "beam":
        layout = _generate_on_beam(recipe, home, run_id, chain, config, options, out, taxonomies, timings,
                                   started, t)
    else:
        layout = _generate_here(recipe, home, run_id, chain, config, options, out, taxonomies, timings, started,
                                t, resolved, batch_print)
    if executor == "batch":
        from valuecorpus.pipelines.batch_run import finish_batched

        finish_batched(home, layout)
    manifest = layout.read_manifest()
    budget_hits = manifest.model_extra.get("dead_letter_classes", {}).get("budget_exhausted", 0)
    if budget_hits:
        from valuecorpus.pipelines.engine.accounting import budget_exhausted_error

        raise budget_exhausted_error(config, budget_hits, manifest.cost_usd, sum(manifest.tokens.values()), run_id)
    return layout


def _generate_here(recipe: Recipe, home: DataHome, run_id: str, chain: Chain, config: EngineConfig,
                   options: GenerateOptions, out: RunOutput, taxonomies: dict[str, str], timings: dict[str, float],
                   started: float, t: float, resolved: Any, batch_print: str | None = None) -> RunLayout:
    plan = out.plan
    languages = {it["sample_id"]: it["language"] for it in plan if "language" in it}
    if out.extra["executor"] == "batch":
        from valuecorpus.pipelines.batch_run import run_batched
        from valuecorpus.pipelines.engine.batch_runner import BatchPending

        try:
            records, dead, states, engine_stats = run_batched(chain, plan, config, home, run_id, options.resume,
                                                                  batch_print)
        except BatchPending as pending:
            pending.run_id = run_id
            raise
    else:
        records, dead, states, engine_stats = resolved or run_loop(chain, plan, config, options.progress)
    filtered = apply_filters(chain, records, published_texts(chain, options), languages)
    kept, dropped = filtered.kept, filtered.filtered
    generated = len(kept) + len(dropped)
    timings["generate_s"] = time.perf_counter() - t

    t = time.perf_counter()
    if recipe.filters.judge is not None:
        from valuecorpus.pipelines.engine.core import Engine

        with Engine(config) as engine:
            judged, judge_dead = apply_judge(chain, kept, engine)
        kept, dropped, dead = judged.kept, dropped + judged.filtered, dead + judge_dead
    kept = kept + chain.shared_records(kept)
    timings["filter_s"] = time.perf_counter() - t

    out.records, out.dead_letters, out.filtered = kept, out.dead_letters + dead, dropped
    summarise_states(out, states)
    out.extra.update(engine=engine_stats, generated=generated, samples_failed=sum(1 for s in states if s.failed),
                     coverage=kept_coverage(plan, item_axes(plan), kept, chain.stratum_fields))
    timings["total_s"] = time.perf_counter() - started
    out.timings = timings
    return stage_run(home, run_id, recipe, chain.record_kinds, out, taxonomies, options.toolkit_version)


def _generate_on_beam(recipe: Recipe, home: DataHome, run_id: str, chain: Chain, config: EngineConfig,
                      options: GenerateOptions, out: RunOutput, taxonomies: dict[str, str],
                      timings: dict[str, float], started: float, t: float) -> RunLayout:
    logging.disable(logging.WARNING)  # Beam's import warns about optional GCP clients: noise for users
    try:
        from valuecorpus.pipelines.beam_io import shard_count
        from valuecorpus.pipelines.beam_pipeline import run_beam
    finally:
        logging.disable(logging.NOTSET)
    summary: dict[str, Any] = {}
    staged: list[RunLayout] = []

    def produce(layout: RunLayout) -> dict[str, int]:
        staged.append(layout)
        summary.update(run_beam(
            chain, config, options.beam_args, url_of(layout.plan), url_of(layout.path),
            shard_count(len(out.plan)), options.published_files, options.published, options.progress, run_id,
            len(out.plan), options.debug))
        return summary["counts"]

    def after(out: RunOutput) -> None:
        counts = summary["counts"]
        timings["generate_s"] = time.perf_counter() - t
        for k, v in summary["tokens"].items():  # added to the seed stage's
            out.tokens[k] = out.tokens.get(k, 0) + v
        out.cost_usd += summary["cost_usd"]
        out.prompt_versions.update(summary["prompt_versions"])
        out.models.extend(m for m in summary["models"] if m not in out.models)
        out.extra["spend"] = [*out.extra.get("spend", []), *spend_rows(summary.get("spend", {}))]
        out.extra.update(engine=summary["engine"], samples_failed=summary["failed"],
                         generated=sum(v for k, v in counts.items() if k.startswith("records/"))
                         + counts.get("filtered", 0),
                         coverage=kept_coverage(out.plan, item_axes(out.plan),
                                                kept_rows(staged[0], chain.record_kinds, chain.stratum_fields),
                                                chain.stratum_fields))
        timings["total_s"] = time.perf_counter() - started
        out.timings = timings

    return stage_sharded(home, run_id, recipe, chain.record_kinds, out, produce, taxonomies,
                         options.toolkit_version, after)
