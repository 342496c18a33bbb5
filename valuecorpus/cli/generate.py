"""`valuecorpus generate RECIPE`, `valuecorpus runs`, `valuecorpus run show RUN`."""

from __future__ import annotations

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
    from valuecorpus.warehouse import latest_version, version_info
    from valuecorpus.warehouse.versions import kind_files

    dataset = recipe.output.dataset
    version = latest_version(home, dataset)
    if version is None:
        return [], None
    info = version_info(home, dataset, version)
    files = [str(p) for kind in chain_class(recipe.kind).record_kinds if kind in info.manifest.kinds
             for p in kind_files(info, kind)]
    return files, f"{dataset}@v{version}"


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
    ) -> None:
        """Run a recipe: plan, generate, filter, stage a run. Beam options go after `--`."""
        from valuecorpus.cli.engine import engine_config
        from valuecorpus.pipelines.generation import GenerateOptions, generate
        from valuecorpus.pipelines.recipes import load_recipe
        from valuecorpus.schemas.errors import ValueCorpusError

        if executor not in ("auto", "beam", "loop"):
            raise ValueCorpusError(f"--executor must be 'auto', 'beam' or 'loop', not '{executor}'")
        overrides: dict[str, Any] = {}
        if n is not None:
            overrides["count"] = n
        if seed is not None:
            overrides["seed"] = seed
        recipe = load_recipe(recipe_ref, overrides)
        s = settings()
        home = s.data_home
        config = engine_config(s, **engine_overrides(recipe, s, model, base_url, max_cost, refresh))
        inputs, parents, input_source = _inputs(recipe, home, from_run, from_dataset)
        published_files, published_ref = _published_files(recipe, home)
        from valuecorpus.warehouse.publishing import toolkit_version

        options = GenerateOptions(
            executor=executor, beam_args=list(ctx.args), run_id=run_id, inputs=inputs, published_files=published_files,
            published_ref=published_ref, parent_runs=parents, input_source=input_source,
            toolkit_version=toolkit_version(), progress=progress, debug=debugging(),
        )
        print(f"generating {recipe.count} × {recipe.kind} with {config.describe()} ({executor})", file=sys.stderr)
        layout = generate(recipe, home, config, options)
        _print_summary(layout)

    @app.command("runs")
    def runs_cmd() -> None:
        """List the staged runs."""
        from rich.console import Console
        from rich.table import Table

        home = settings().data_home
        table = Table("run", "created", "origin", "records", "filtered", "dead letters", "cost $")
        for layout in home.list_runs():
            if not layout.exists():
                continue
            m = layout.read_manifest()
            records = ", ".join(f"{k} {v}" for k, v in m.counts.items())
            table.add_row(m.run_id, m.created_at, m.origin, records, str(m.filtered), str(m.dead_letters),
                          f"{m.cost_usd:.4f}")
        Console().print(table)

    @run_app.command("show")
    def show_cmd(run: str = typer.Argument(..., help="Run id or path.")) -> None:
        """Quality summary of a run: schema-valid rate, duplicates, coverage per stratum, tokens, cost."""
        from rich.console import Console

        from valuecorpus.pipelines.quality import quality_report, render_report

        layout = settings().data_home.resolve_run(run)
        Console().print(render_report(quality_report(layout)))

    attach(app)

