"""What consumers take from a published version: `export` (training and evaluation files) and `report` (one
self-contained HTML page for a reviewer). Heavy libraries load inside the commands."""

from __future__ import annotations

from pathlib import Path

import typer

from valuecorpus.cli.common import settings

FORMATS_HELP = ("dpo | sft (training); dilemma-choice | clash | cvc-abc | avb-choice | avb-bundle | outcome-pairs "
                "(evaluation)")


def split_ref(ref: str) -> tuple[str, str | None]:
    """`dilemmas@v3` → ("dilemmas", "v3"); `dilemmas` → ("dilemmas", None): the latest version."""
    name, _, version = ref.partition("@")
    return name, version or None


def export_cmd(
    ref: str = typer.Argument(None, metavar="DATASET[@vN]", help="Dataset name, optionally @version (default latest)."),
    fmt: str = typer.Option(None, "--format", "-f", help=FORMATS_HELP),
    out: Path = typer.Option(None, "--out", "-o", help="Output file: .jsonl or .parquet."),
    list_formats: bool = typer.Option(False, "--list", help="List the formats, what each reads, and exit."),
) -> None:
    """Export a published version for training or evaluation (deterministic: same version, same bytes)."""
    from valuecorpus.schemas.errors import ValueCorpusError
    from valuecorpus.warehouse.exports import FORMATS, export

    if list_formats:
        for spec in FORMATS.values():
            reads = " + ".join((spec.needs, *spec.joins))
            print(f"{spec.name:<15} {spec.family:<10} {reads:<45} {spec.description}")
        return
    missing = [name for name, value in (("DATASET", ref), ("--format", fmt), ("--out", out)) if value is None]
    if missing:
        raise ValueCorpusError(f"export needs {', '.join(missing)} (see valuecorpus export --help; --list)")
    dataset, version = split_ref(ref)
    result = export(settings().data_home, dataset, version, fmt, out)
    print(f"exported {result.dataset} v{result.version} as {result.format}: {result.rows} rows "
          f"({result.file_type}) → {result.path}")
    for reason, n in result.skipped.items():
        print(f"  skipped {n}: {reason}")
    for text, n in result.notes.items():
        print(f"  note ({n}): {text}")
    print(f"  sha256 {result.sha256}")


def report_cmd(
    ref: str = typer.Argument(..., metavar="DATASET[@vN]", help="Dataset name, optionally @version (default latest)."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write."),
) -> None:
    """One self-contained HTML page with plots of a version: coverage, conflicts, lengths, agreement, acceptance,
    dead letters, cost."""
    from valuecorpus.warehouse.report import write_report

    dataset, version = split_ref(ref)
    result = write_report(settings().data_home, dataset, version, out)
    print(f"report of {dataset} v{result.version}: {len(result.plots)} plots → {result.path}")
    for section, why in result.empty.items():
        print(f"  {section}: {why}")


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
    app.command("report")(report_cmd)
