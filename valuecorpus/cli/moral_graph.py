"""`valuecorpus moral-graph aggregate RUN…`: canonical cards, aggregated edges and value ranks of moral-graph
runs (interviews and cards, votes; or an imported study), staged as one run ready to publish."""

from __future__ import annotations

import typer

from valuecorpus.cli.common import settings


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Moral graphs: canonical cards, edges and value ranks.", no_args_is_help=True)
    app.add_typer(group, name="moral-graph")

    @group.command("aggregate")
    def aggregate_cmd(
        runs: list[str] = typer.Argument(..., metavar="RUN...", help="Runs (ids or paths) with cards and votes."),
        run_id: str | None = typer.Option(None, "--run-id", help="Id of the staged graph run."),
        all_edges: bool = typer.Option(False, "--all-edges",
                                       help="Keep every edge, not only those the published rule keeps."),
        min_wiser: int = typer.Option(2, "--min-wiser", help="Rule: an edge needs this many 'wiser' votes."),
        min_likelihood: float = typer.Option(0.33, "--min-likelihood", help="Rule: lowest wiserLikelihood."),
        max_entropy: float = typer.Option(1.69, "--max-entropy", help="Rule: highest entropy."),
    ) -> None:
        """Merge cards judged the same into canonical cards, count the votes per card pair, compute
        wiserLikelihood, entropy and the PageRank of values, and stage it all (with the inputs' interviews,
        cards, contexts and votes) as a run that `valuecorpus publish` turns into a version."""
        from valuecorpus import __version__
        from valuecorpus.pipelines.moral_graph_aggregate import aggregate, read_runs, stage_graph
        from valuecorpus.schemas.moral_graph_aggregation import EdgeRule

        home = settings().data_home
        records, parents = read_runs(home, runs)
        rule = None if all_edges else EdgeRule(min_wiser, min_likelihood, max_entropy)
        result = aggregate(records, rule)
        layout = stage_graph(home, result, run_id or home.new_run_id("moral-graph"), parents, __version__)
        counts = layout.read_manifest().counts
        print(f"staged moral graph {layout.run_id}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        print("  " + ", ".join(f"{k}: {v}" for k, v in result.report.items() if k != "edge_rule"))
        print(layout.run_id)
