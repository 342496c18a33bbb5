"""`valuecorpus dedupe RUN`: re-check a staged run for duplicates against the latest published version."""

from __future__ import annotations

import sys
from typing import Any

import typer

from valuecorpus.cli.common import settings


def _runs_in(entries: list[Any]) -> set[str]:
    """Every run id in a version's lineage (the run it was published from and the runs that one derives from)."""
    found: set[str] = set()
    for entry in entries:
        if isinstance(entry, dict):
            found |= {entry["run_id"]} if entry.get("run_id") else set()
            found |= _runs_in(entry.get("parent_runs", []))
    return found


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

        home = settings().data_home
        source = home.resolve_run(run)
        chain = run_chain(source)
        name = dataset or chain.recipe.output.dataset
        files, ref, lineage = latest_files(home, name, chain.record_kinds)
        if ref is not None and source.run_id in _runs_in(lineage.get("runs", [])):
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
