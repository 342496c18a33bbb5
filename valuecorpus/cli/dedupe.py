"""`valuecorpus dedupe RUN`: re-check a staged run for duplicates against the latest published version."""

from __future__ import annotations

import sys

import typer

from valuecorpus.cli.common import settings


def register(app: typer.Typer) -> None:
    @app.command("dedupe")
    def dedupe_cmd(
        run: str = typer.Argument(..., help="Run id or path of a generated run."),
        dataset: str | None = typer.Option(
            None, "--dataset", help="Dataset whose latest version the run is checked against (default: the "
            "recipe's output.dataset)."),
        as_run: str | None = typer.Option(None, "--as", help="Id of the new run (default: RUN-dedupe-<time>)."),
    ) -> None:
        """Drop a run's exact and near-duplicates, within the run and against the latest published version of its
        dataset (one published after the run was generated), with the run's recipe filters; the rest is staged
        as a new run (records streamed by column, never loaded as models), the drops added to its filtered
        table. Without a published version the run is checked within itself (said on stderr)."""
        from valuecorpus.cli.generate import latest_files
        from valuecorpus.pipelines.dedupe import dedupe_run, run_chain
        from valuecorpus.schemas.errors import ValueCorpusError
        from valuecorpus.warehouse.lineage import lineage_runs

        home = settings().data_home
        source = home.resolve_run(run)
        chain = run_chain(source)
        name = dataset or chain.recipe.output.dataset
        files, ref, lineage = latest_files(home, name, chain.record_kinds)
        if ref is not None and source.run_id in {r.get("run_id") for _d, r in lineage_runs(lineage)}:
            raise ValueCorpusError(f"run '{source.run_id}' is already published in {ref}: checking it against its "
                                   "own records would drop all of them")
        if ref is None:
            print(f"dataset '{name}' has no published version: checking run '{source.run_id}' within itself",
                  file=sys.stderr)
        nd = chain.recipe.filters.near_duplicate
        if ref is not None and not (nd.enabled and nd.against_published):
            print(f"the recipe does not filter near-duplicates against the published version: {ref} not read",
                  file=sys.stderr)
            files, ref = [], None
        new_id = as_run or home.new_run_id(f"{source.run_id}-dedupe")
        layout, summary = dedupe_run(home, source, new_id, files, ref)
        m = layout.read_manifest()
        by = ", ".join(f"{k} {v}" for k, v in summary["dropped_by"].items()) or "none"
        counts = ", ".join(f"{k}: {v}" for k, v in m.counts.items())
        where = f"against {ref} ({summary['published_texts']} texts) and" if ref else ""
        print(f"run {m.run_id}: {counts}; dropped {summary['dropped']} ({by}) {where} within run {source.run_id}"
              .replace("  ", " "))
        print(f"  {layout.path}")
