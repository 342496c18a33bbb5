"""`valuecorpus import`: read a reference corpus into records and stage it as a run."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

KINDS_HELP = "dailydilemmas | agent_valuebench | moral_graph | emergent_values"


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)


def import_command(
    kind: str = typer.Argument(..., help=f"Which corpus: {KINDS_HELP}."),
    path: Path = typer.Argument(..., help="A file of that corpus, or a directory of its files."),
    run_id: str | None = typer.Option(None, "--run-id", help="Run id (default: import-KIND-<UTC time>)."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing",
        help="With --run-id: when that run is already staged by an import, print it and import nothing "
             "(reruns by a scheduler)."),
) -> None:
    """Import a reference corpus file or directory and stage it as a run under <home>/runs/."""
    from rich.console import Console
    from rich.table import Table

    from valuecorpus import __version__
    from valuecorpus.cli.common import settings
    from valuecorpus.schemas.importers import import_path, importer_name
    from valuecorpus.schemas.importers.staging import stage_import

    name = importer_name(kind)
    home = settings().data_home
    if skip_existing and run_id is None:
        from valuecorpus.schemas.errors import ValueCorpusError

        raise ValueCorpusError("--skip-existing needs --run-id (the run to look for)")
    if run_id is not None:
        existing = home.run(run_id)  # an invalid id fails before any file is read
        if skip_existing and existing.exists():
            from valuecorpus.schemas.errors import ValueCorpusError

            if existing.read_manifest().origin != "import":
                raise ValueCorpusError(f"run '{run_id}' already exists and is not an import: choose another --run-id")
            typer.echo(f"run {run_id} already staged: nothing imported", err=True)
            typer.echo(run_id)
            return
    result = import_path(name, path)
    layout = stage_import(result, home, name, run_id=run_id, toolkit_version=__version__)

    console = Console(soft_wrap=True)
    files = len(result.source_files)
    console.print(f"staged run {layout.run_id} at {layout.path} from {files} source file(s)")
    table = Table()
    table.add_column("record kind")
    table.add_column("rows", justify="right")
    for record_kind, count in result.counts().items():
        table.add_row(record_kind, str(count))
    console.print(table)
    for skipped, reason in result.skipped:
        console.print(f"skipped {skipped.name}: {reason}")
    for warning in result.warnings:  # cross-file problems: reported, the import stands (exit 0)
        print(f"warning: {warning}", file=sys.stderr)
    typer.echo(layout.run_id)
