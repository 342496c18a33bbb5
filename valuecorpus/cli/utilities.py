"""`valuecorpus utilities fit RUN|DATASET`: Thurstonian utilities from outcome comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from valuecorpus.cli.common import settings

if TYPE_CHECKING:
    from valuecorpus.schemas.layout import DataHome

KIND = "outcome_comparison"


def _comparisons(home: DataHome, ref: str, version: str | None) -> tuple[list[Any], Any, str]:
    """Records from a run (by id or path) or, failing that, a published dataset. Returns (records, run layout
    or None, a label)."""
    from valuecorpus.schemas.errors import NotFoundError
    from valuecorpus.schemas.layout import DATASET_RE, RUN_ID_RE

    layout = None
    if Path(ref).is_dir():
        layout = home.resolve_run(ref)
    elif RUN_ID_RE.match(ref) and home.run(ref).exists():
        layout = home.run(ref)
    if layout is not None:
        if not layout.has_table(f"records/{KIND}"):
            raise NotFoundError(f"run '{layout.run_id}' has no {KIND} records ({layout.records(KIND)})")
        return layout.read_records(f"records/{KIND}"), layout, f"run {layout.run_id}"
    from valuecorpus.warehouse import latest_version, load_records

    if not DATASET_RE.match(ref) or latest_version(home, ref) is None:
        raise NotFoundError(f"'{ref}' is neither a run under {home.runs_dir} nor a published dataset")
    return load_records(home, ref, version, KIND), None, f"dataset {ref}" + (f" v{version}" if version else "")


def _write(path: Path, fit: Any) -> None:
    from valuecorpus.schemas.layout import write_json_atomic

    if path.suffix == ".parquet":
        import os

        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = [u.__dict__ for u in fit.utilities]
        table = pa.table({k: [r[k] for r in rows] for k in ("outcome_id", "mean", "variance", "description")})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    else:
        write_json_atomic(path, fit.as_dict())


def _print(fit: Any, label: str, top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    console = Console()
    table = Table(title=f"Thurstonian utilities ({label})")
    for col in ("rank", "outcome", "mean", "variance", "description"):
        table.add_column(col)
    shown = fit.utilities if top <= 0 else fit.utilities[:top]
    for i, u in enumerate(shown, 1):
        table.add_row(str(i), u.outcome_id, f"{u.mean:.3f}", f"{u.variance:.3f}", u.description[:70])
    console.print(table)
    tr, ho = fit.train, fit.holdout
    console.print(f"outcomes {fit.config['outcomes']}, edges {fit.config['edges']} "
                  f"(train {tr.edges}, held out {ho.edges}); converged: {fit.converged}")
    console.print(f"train accuracy {fmt(tr.accuracy)}, log-loss {fmt(tr.log_loss)}; "
                  f"held-out accuracy {fmt(ho.accuracy)}, log-loss {fmt(ho.log_loss)}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Utilities fitted to outcome comparisons (Utility Engineering).", no_args_is_help=True)
    app.add_typer(group, name="utilities")

    @group.command("fit")
    def fit_cmd(
        ref: str = typer.Argument(..., metavar="RUN|DATASET", help="A run (id or path) or a published dataset."),
        version: str | None = typer.Option(None, "--version", help="Dataset version (default: latest)."),
        holdout: float = typer.Option(0.05, "--holdout", help="Fraction of comparison pairs held out."),
        seed: int = typer.Option(42, "--seed", help="Seed of the held-out split."),
        output: Path | None = typer.Option(None, "--output", "-o",
                                           help="Write the utilities here (.json, or .parquet) instead of the run."),
        top: int = typer.Option(20, "--top", help="Rows to print (0 = all)."),
    ) -> None:
        """Fit Thurstonian utilities (mean and variance per outcome) and report held-out accuracy and log-loss.

        Writes utilities.json into the run (or --output); a published dataset is read-only, so its utilities
        are printed, and written only with --output."""
        from valuecorpus.pipelines.utilities import edges_from_comparisons, fit_thurstonian
        from valuecorpus.schemas.errors import ValueCorpusError

        if not 0.0 <= holdout < 1.0:
            raise ValueCorpusError(f"--holdout must be in [0, 1), got {holdout}")
        home = settings().data_home
        records, layout, label = _comparisons(home, ref, version)
        edges, descriptions = edges_from_comparisons(records)
        fit = fit_thurstonian(edges, descriptions, holdout=holdout, seed=seed)
        _print(fit, label, top)
        target = output or (layout.utilities if layout is not None else None)
        if target is not None:
            _write(Path(target), fit)
            print(f"utilities written to {target}")
