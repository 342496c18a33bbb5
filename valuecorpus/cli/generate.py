"""`valuecorpus generate RECIPE`, `valuecorpus runs`, `valuecorpus run show RUN`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import typer

from valuecorpus.cli.common import debugging, settings
from valuecorpus.cli.runs_group import attach, run_app

if TYPE_CHECKING:
    from valuecorpus.pipelines.recipes import Recipe
    from valuecorpus.schemas.layout import DataHome
    from valuecorpus.settings import Settings


def engine_overrides(recipe: Recipe, s: Settings, model: str | None, base_url: str | None,
                     max_cost: float | None, refresh: bool) -> dict[str, Any]:
    """Flags first, then the recipe's model section, then settings."""
    m = recipe.model
    url = base_url or m.base_url or s.openai_base_url
    remote = bool(url) or m.backend == "openai"
    out: dict[str, Any] = {
        "backend": "openai" if remote else "local",
        "base_url": url,
        "max_in_flight": m.concurrency, "rpm": m.rpm, "timeout_s": m.timeout_s, "max_attempts": m.max_attempts,
        "max_cost_usd": max_cost if max_cost is not None else m.max_cost,
        "max_tokens_total": m.max_tokens_total, "refresh": refresh,
    }
    name = model or m.model or (s.model if remote else None)
    if name:
        out["model"] = name
    if m.dialect != "auto":
        out["dialect"] = m.dialect
    return out


# The record kind each chain builds on, when handed a run or dataset (--from-run / --from-dataset), for
# chains that do not declare `input_kind` themselves.
INPUT_KINDS = {"perspectives": "dilemma", "rule_pair_dilemmas": "value_rule", "outcome_comparisons": "outcome"}


def _inputs(recipe: Recipe, home: DataHome, from_run: str | None, from_dataset: str | None
            ) -> tuple[list[dict[str, Any]], list[str], str | None]:
    """Records a chain builds on (dilemmas for perspectives, value rules for rule pairs, outcomes for
    comparisons; dilemmas whose basic situations seed new dilemmas), from a run or the latest published version
    of a dataset, as plain dicts; with the parent runs and where they came from (`run:ID` / `dataset@vN`)."""
    from valuecorpus.pipelines.chains import chain_class
    from valuecorpus.schemas.errors import NotFoundError, ValueCorpusError

    kind = getattr(chain_class(recipe.kind), "input_kind", None) or INPUT_KINDS.get(recipe.kind)
    params = recipe.params
    run_ref = from_run or params.get("dilemmas_from_run")
    dataset = from_dataset or params.get("dilemmas_from_dataset")
    if not (run_ref or dataset):
        return [], [], None
    if kind is None:
        raise ValueCorpusError(f"--from-run / --from-dataset: recipe kind '{recipe.kind}' takes no input records")
    if run_ref:

        layout = home.resolve_run(run_ref)
        if not layout.has_table(f"records/{kind}"):
            raise NotFoundError(f"run '{run_ref}' has no {kind} records ({layout.records(kind)})")
        rows = layout.read_records(f"records/{kind}")
        return [r.model_dump(mode="json") for r in rows], [layout.run_id], f"run:{layout.run_id}"
    from valuecorpus.warehouse import latest_version, load_records

    rows = load_records(home, dataset, None, kind)
    return [r.model_dump(mode="json") for r in rows], [], f"{dataset}@v{latest_version(home, dataset)}"


def _published_files(recipe: Recipe, home: DataHome) -> tuple[list[str], str | None]:
    """The Parquet files of the latest published version of the recipe's dataset (the kinds its chain makes),
    for the near-duplicate filter: Beam reads them on its workers, the loop in this process."""
    if not (recipe.filters.near_duplicate.enabled and recipe.filters.near_duplicate.against_published):
        return [], None
    from valuecorpus.pipelines.chains import chain_class

    files, ref, _lineage = latest_files(home, recipe.output.dataset, chain_class(recipe.kind).record_kinds)
    return files, ref


def latest_files(home: DataHome, dataset: str, kinds: tuple[str, ...]
                 ) -> tuple[list[str], str | None, dict[str, Any]]:
    """(Parquet files of these kinds, `dataset@vN`, lineage) of the dataset's latest version; ([], None, {})
    when nothing is published yet."""
    from valuecorpus.warehouse import latest_version, version_info
    from valuecorpus.warehouse.versions import kind_files

    version = latest_version(home, dataset)
    if version is None:
        return [], None, {}
    info = version_info(home, dataset, version)
    files = [str(p) for kind in kinds if kind in info.manifest.kinds for p in kind_files(info, kind)]
    return files, f"{dataset}@v{version}", info.manifest.lineage


def _print_summary(layout: Any) -> None:
    m = layout.read_manifest()
    counts = ", ".join(f"{k}: {v}" for k, v in m.counts.items())
    tokens = sum(m.tokens.values())
    print(f"run {m.run_id}: {counts}; filtered {m.filtered}; dead letters {m.dead_letters}; "
          f"{tokens} tokens; ${m.cost_usd:.4f}; {m.timings.get('total_s', 0):.1f} s")
    seeds = (m.model_extra or {}).get("seed_pool") or {}
    if seeds.get("distinct_seeds_used") is not None:
        print(f"  seed situations: {seeds['distinct_seeds_used']} distinct for {seeds['planned']} plan items "
              f"({', '.join(f'{n} {s}' for s, n in seeds.get('by_source', {}).items())} in the pool; "
              f"{seeds.get('proposal_requests', 0)} proposal requests)")
    if seeds.get("note"):
        print(f"  note: {seeds['note']}")
    print(f"  {layout.path}")


def _run_entry(layout: Any) -> dict[str, Any]:
    """What a scheduler needs to know of a run, without reading its records."""
    from valuecorpus.annotation.projects import load as load_projects

    m = layout.read_manifest()
    recipe = m.recipe or {}
    projects = load_projects(layout)
    return {"run_id": m.run_id, "created_at": m.created_at, "origin": m.origin, "parent_runs": m.parent_runs,
            "recipe": recipe.get("name"), "dataset": (recipe.get("output") or {}).get("dataset"),
            "counts": m.counts, "filtered": m.filtered, "dead_letters": m.dead_letters, "cost_usd": m.cost_usd,
            "curation_batches": sorted({p.batch for p in projects.values()})}


def run_generation(args: dict[str, Any], *, refresh: bool = False, run_id: str | None = None,
                   executor: str = "auto", batch: bool = False, beam_args: list[str] | None = None,
                   progress: bool = True, skip_existing: bool = False) -> Any:
    """`generate` and the continuation of a Batch API run (`run resume`): `args` are the command's
    recipe-shaping arguments (saved with a batch run, so its resume builds the same chain; no secrets).
    Returns the staged run, or None while a batch run waits for its jobs."""
    from pathlib import Path

    from valuecorpus.cli.engine import engine_config
    from valuecorpus.pipelines.engine.batch_runner import BatchPending
    from valuecorpus.pipelines.generation import GenerateOptions, generate
    from valuecorpus.pipelines.recipes import load_recipe
    from valuecorpus.schemas.errors import SettingsError, ValueCorpusError
    from valuecorpus.warehouse.publishing import toolkit_version

    if executor not in ("auto", "beam", "loop"):
        raise ValueCorpusError(f"--executor must be 'auto', 'beam' or 'loop', not '{executor}'")
    if skip_existing and not run_id:
        raise ValueCorpusError("--skip-existing needs --run-id (the run to look for)")
    overrides: dict[str, Any] = {}
    if args.get("n") is not None:
        overrides["count"] = args["n"]
    if args.get("seed") is not None:
        overrides["seed"] = args["seed"]
    recipe = load_recipe(args["recipe"], overrides)
    if Path(args["recipe"]).is_file():  # a resume finds the file wherever it is started from
        args = {**args, "recipe": str(Path(args["recipe"]).resolve())}
    s = settings()
    home = s.data_home
    if skip_existing and run_id and home.run(run_id).exists():
        layout = home.run(run_id)
        staged = layout.read_manifest().recipe or {}
        if staged.get("name") != recipe.name or staged.get("count") != recipe.count:
            raise ValueCorpusError(
                f"run '{run_id}' already exists from recipe '{staged.get('name')}' (count "
                f"{staged.get('count')}), not '{recipe.name}' (count {recipe.count}): choose another --run-id")
        print(f"run {run_id} already staged: nothing generated", file=sys.stderr)
        _print_summary(layout)
        return layout
    config = engine_config(s, **engine_overrides(recipe, s, args.get("model"), args.get("base_url"),
                                                 args.get("max_cost"), refresh))
    batch = batch or recipe.model.batch
    if batch:
        if config.backend != "openai":
            raise SettingsError("--batch (recipe key model.batch) needs an OpenAI-compatible endpoint with the "
                                "Batch API: set 'openai_base_url' or --base-url")
        if refresh:
            raise ValueCorpusError("--batch with --refresh would submit cached requests again: drop --refresh")
        executor = "batch"
    inputs, parents, input_source = _inputs(recipe, home, args.get("from_run"), args.get("from_dataset"))
    published_files, published_ref = _published_files(recipe, home)
    options = GenerateOptions(
        executor=executor, beam_args=beam_args or [], run_id=run_id, inputs=inputs, published_files=published_files,
        published_ref=published_ref, parent_runs=parents, input_source=input_source, toolkit_version=toolkit_version(),
        progress=progress and not batch, resume=args, debug=debugging(),
    )
    print(f"generating {recipe.count} × {recipe.kind} with {config.describe()} ({executor})", file=sys.stderr)
    try:
        layout = generate(recipe, home, config, options)
    except BatchPending as pending:
        if pending.collected:
            print(pending.collected)
        print(f"run {pending.run_id}: step '{pending.step}': {pending.submitted} requests submitted as Batch API "
              f"jobs, {pending.waiting} waiting in earlier ones ({pending.jobs} batches open); collect them and "
              f"go on with `valuecorpus run resume {pending.run_id}`")
        return None
    _print_summary(layout)
    return layout


def register(app: typer.Typer) -> None:
    @app.command("generate", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def generate_cmd(
        ctx: typer.Context,
        recipe_ref: str = typer.Argument(..., metavar="RECIPE", help="Recipe file, or a shipped recipe's name."),
        n: int | None = typer.Option(None, "--n", min=1, help="Number of samples (overrides the recipe's count)."),
        model: str | None = typer.Option(None, "--model", help="Model name at the endpoint."),
        base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint URL."),
        max_cost: float | None = typer.Option(None, "--max-cost", min=0, help="Cost cap in USD for this run."),
        refresh: bool = typer.Option(False, "--refresh", help="Ignore cached answers."),
        seed: int | None = typer.Option(None, "--seed", help="Override the recipe's seed."),
        run_id: str | None = typer.Option(None, "--run-id", help="Name of the run (default: recipe-timestamp)."),
        executor: str = typer.Option(
            "auto", "--executor",
            help="auto (default: answered from the cache without Beam when every request is cached, else Beam), "
                 "beam (always Beam) or loop (a plain loop)."),
        from_run: str | None = typer.Option(
            None, "--from-run",
            help="Input records of this run (perspectives: dilemmas; rule pairs: value rules; outcomes; "
                 "dilemmas: seed situations from their basic situations)."),
        from_dataset: str | None = typer.Option(None, "--from-dataset",
                                                help="Input records of this dataset's latest version."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress display."),
        skip_existing: bool = typer.Option(
            False, "--skip-existing",
            help="With --run-id: when that run is already staged from the same recipe, print it and generate "
                 "nothing (reruns by a scheduler)."),
        batch: bool = typer.Option(
            False, "--batch", help="Send each step's requests as Batch API jobs (half the price, answers within "
            "24 h); `valuecorpus run resume RUN` collects them and goes on with the next step. Recipe key: "
            "model.batch."),
    ) -> None:
        """Run a recipe: plan, generate, filter, stage a run. Beam options go after `--`."""
        run_generation({"recipe": recipe_ref, "n": n, "seed": seed, "model": model, "base_url": base_url,
                        "max_cost": max_cost, "from_run": from_run, "from_dataset": from_dataset},
                       refresh=refresh, run_id=run_id, executor=executor, batch=batch, beam_args=list(ctx.args),
                       progress=progress, skip_existing=skip_existing)

    @app.command("runs")
    def runs_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per run).")) -> None:
        """List the staged runs."""
        from rich.console import Console
        from rich.table import Table

        home = settings().data_home
        if as_json:
            print(json.dumps([_run_entry(layout) for layout in home.list_runs() if layout.exists()], indent=1))
            return
        table = Table("run", "created", "origin", "records", "filtered", "dead letters", "cost $")
        for layout in home.list_runs():
            if not layout.exists():
                continue
            m = layout.read_manifest()
            records = ", ".join(f"{k} {v}" for k, v in m.counts.items())
            table.add_row(m.run_id, m.created_at, m.origin, records, str(m.filtered), str(m.dead_letters),
                          f"{m.cost_usd:.4f}")
        Console().print(table)

    @run_app.command("check")
    def check_cmd(
        run: str = typer.Argument(..., help="Run id or path."),
        as_json: bool = typer.Option(False, "--json", help="Print the rates, thresholds and verdict as JSON."),
    ) -> None:
        """Check a run's schema-valid and dead-letter rates against its recipe's `quality` thresholds; exit code
        6 when one is crossed."""
        from valuecorpus.pipelines.quality import check_quality
        from valuecorpus.schemas.errors import QualityBelowThreshold

        result = check_quality(settings().data_home.resolve_run(run))
        if as_json:
            print(json.dumps(result, sort_keys=True))
        else:
            def pct(x: float | None) -> str:
                return "n/a" if x is None else f"{100 * x:.1f}%"

            limits = result["thresholds"]
            print(f"run {result['run_id']}: schema-valid rate {pct(result['schema_valid_rate'])} (min "
                  f"{pct(limits['min_schema_valid_rate'])}), dead-letter rate {pct(result['dead_letter_rate'])} "
                  f"(max {pct(limits['max_dead_letter_rate'])}) over {result['requests']} requests")
        if result["failures"]:
            raise QualityBelowThreshold(f"run {result['run_id']}: " + "; ".join(result["failures"]))

    @run_app.command("show")
    def show_cmd(run: str = typer.Argument(..., help="Run id or path.")) -> None:
        """Quality summary of a run: schema-valid rate, duplicates, coverage per stratum, tokens, cost."""
        from rich.console import Console

        from valuecorpus.pipelines.quality import quality_report, render_report

        layout = settings().data_home.resolve_run(run)
        Console().print(render_report(quality_report(layout)))

    attach(app)

