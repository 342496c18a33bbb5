"""`valuecorpus annotation server start|stop|status` and `valuecorpus curate push|pull|status|adjudicate|finalize`.

The Label Studio connection comes from settings (LABEL_STUDIO_URL + LABEL_STUDIO_API_KEY) or, when those are
unset, from the managed server under the data home. It is checked before anything is written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import typer

server_app = typer.Typer(help="The managed local Label Studio server.", no_args_is_help=True)
annotation_app = typer.Typer(help="Label Studio for expert curation.", no_args_is_help=True)
curate_app = typer.Typer(help="Expert curation of a staged run in Label Studio.", no_args_is_help=True)
annotation_app.add_typer(server_app, name="server")


def register(app: typer.Typer) -> None:
    app.add_typer(annotation_app, name="annotation")
    app.add_typer(curate_app, name="curate")


def default_executable() -> str:
    """The `label-studio` of the repository's `.venv-labelstudio` (what `make` builds), else one on PATH."""
    import valuecorpus

    repo_venv = Path(valuecorpus.__file__).resolve().parents[1] / ".venv-labelstudio" / "bin" / "label-studio"
    if repo_venv.exists():
        return str(repo_venv)
    return shutil.which("label-studio") or str(repo_venv)


def _files() -> Any:
    from valuecorpus.annotation.server import ServerFiles
    from valuecorpus.cli.common import settings

    return ServerFiles(settings().data_home.annotation_dir)


def _client() -> Any:
    from valuecorpus.annotation.client import connect, resolve_connection
    from valuecorpus.cli.common import settings

    s = settings()
    key = s.label_studio_api_key.get_secret_value() if s.label_studio_api_key else None
    return connect(resolve_connection(_files(), s.label_studio_url, key))


def _run(ref: str) -> Any:
    from valuecorpus.cli.common import settings

    return settings().data_home.resolve_run(ref)


@server_app.command("start")
def server_start(
    port: int | None = typer.Option(None, "--port", help="Loopback port (default: setting label_studio_port)."),
    executable: str | None = typer.Option(
        None, "--label-studio", envvar="VALUECORPUS_LABEL_STUDIO_BIN",
        help="The label-studio executable (default: .venv-labelstudio/bin/label-studio).",
    ),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds to wait until the server is healthy."),
) -> None:
    """Start Label Studio on 127.0.0.1 with its data under <home>/annotation/labelstudio/ (first start: ~1 min)."""
    from valuecorpus.annotation.server import start
    from valuecorpus.cli.common import settings

    files = _files()
    state = start(files, executable or default_executable(), port or settings().label_studio_port, timeout)
    verb = "already running" if state.get("already_running") else "started"
    typer.echo(f"Label Studio {verb} at {state['url']} (pid {state['pid']})")
    typer.echo(f"log in as {files.read_credentials().username}; password and API token: {files.credentials}")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the managed server (SIGTERM, then SIGKILL after a grace period)."""
    from valuecorpus.annotation.server import stop

    typer.echo("Label Studio stopped" if stop(_files()) else "no managed Label Studio was running")


@server_app.command("status")
def server_status() -> None:
    """Whether the managed server runs and answers (exit code 0 only when it does)."""
    from valuecorpus.annotation.server import status

    st = status(_files())
    if not st.get("running"):
        typer.echo("not running")
        raise typer.Exit(1)
    typer.echo(f"running at {st['url']} (pid {st['pid']}, {'healthy' if st['healthy'] else 'NOT healthy'})")
    if not st["healthy"]:  # scripts and DAGs wait on this exit code
        raise typer.Exit(1)


@curate_app.command("push")
def push_command(
    run: str = typer.Argument(..., help="Run id or run directory."),
    overlap: int = typer.Option(1, "--overlap", help="Annotations wanted per task (K annotators see each)."),
    batch: str = typer.Option("main", "--batch", help="Batch name: one project per kind and batch."),
    kinds: list[str] = typer.Option(None, "--kind", help="Only these record kinds (repeatable)."),
    chunk_size: int = typer.Option(200, "--chunk-size", help="Tasks per import request."),
) -> None:
    """Send a run's samples to Label Studio (pushing again adds no task)."""
    from valuecorpus.annotation.push import push

    layout = _run(run)
    layout.read_manifest()
    client = _client()
    report = push(client, layout, batch=batch, overlap=overlap, kinds=kinds or None, chunk_size=chunk_size,
                  on_chunk=lambda k, done, total: typer.echo(f"  {k}: {done}/{total} imported", err=True))
    for k in report.kinds:
        typer.echo(f"{k.kind}: project {k.project_id}{' (new)' if k.project_created else ''}, {k.records} samples, "
                   f"{k.added} added, {k.already_present} already there, {k.predictions} with predictions")


@curate_app.command("pull")
def pull_command(
    run: str = typer.Argument(..., help="Run id or run directory."),
    min_majority: float = typer.Option(0.6, "--min-majority",
                                       help="Majority share under which a sample goes to adjudication."),
) -> None:
    """Fetch annotations into <run>/curation/decisions.parquet and resolve them (pulling twice changes nothing)."""
    from valuecorpus.annotation.pull import pull, salt_for
    from valuecorpus.annotation.resolve import resolve
    from valuecorpus.cli.common import settings

    layout = _run(run)
    client = _client()
    report = pull(client, layout, salt_for(settings().data_home.annotation_dir))
    from valuecorpus.annotation.pull import read_decisions

    rows = resolve(layout, read_decisions(layout), min_majority)
    typer.echo(f"{report.annotations} annotations on {report.tasks} tasks"
               f"{f' ({report.cancelled} skipped)' if report.cancelled else ''}; "
               f"decisions {'updated' if report.changed else 'unchanged'}: {report.path}")
    for key, ids in report.missing_tasks.items():
        typer.echo(f"warning: {len(ids)} task(s) of {key} are gone from Label Studio (deleted in the UI?): "
                   f"{', '.join(ids[:5])}{' …' if len(ids) > 5 else ''}", err=True)
    for p in report.missing_projects:
        typer.echo(f"warning: project {p} is gone from Label Studio", err=True)
    _print_status_counts(rows)


def _print_status_counts(rows: list[dict[str, Any]]) -> None:
    from collections import Counter

    counts = Counter(r["status"] for r in rows)
    typer.echo(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no samples")


@curate_app.command("status")
def status_command(
    run: str = typer.Argument(..., help="Run id or run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Tasks, annotated, pending and agreement per kind/batch, as of the last pull."""
    from collections import Counter

    from rich.console import Console
    from rich.table import Table

    from valuecorpus.annotation.pull import read_decisions
    from valuecorpus.annotation.resolve import agreement, read_resolutions

    layout = _run(run)
    resolutions = read_resolutions(layout)
    decisions = read_decisions(layout)
    if not resolutions:
        typer.echo(f"run {layout.run_id}: nothing pulled yet (run `valuecorpus curate push` and `curate pull`)")
        raise typer.Exit(1)
    per: dict[str, Counter[str]] = {}
    for r in resolutions:
        c = per.setdefault(f"{r['kind']}/{r['batch']}", Counter())
        c["tasks"] += 1
        c["annotated"] += r["annotations"] >= r["required"]
        c[r["status"]] += 1
        c["annotations"] += r["annotations"]
    agree = agreement(decisions)
    if as_json:
        from valuecorpus.annotation.curated import AGREEMENT_STATISTICS

        typer.echo(json.dumps({"run": layout.run_id, "batches": {k: dict(v) for k, v in per.items()},
                               "agreement": agree, "agreement_statistics": AGREEMENT_STATISTICS},
                              indent=2, sort_keys=True, ensure_ascii=False))
        return
    console = Console()
    if not console.is_terminal:  # piped output: do not squeeze the tables to 80 columns
        console = Console(width=200)
    table = Table(title=f"curation of {layout.run_id}")
    cols = ["tasks", "annotations", "annotated", "pending", "needs_adjudication", "adjudicated", "resolved"]
    table.add_column("kind/batch")
    for c in cols:
        table.add_column(c, justify="right")
    for key, c in sorted(per.items()):
        table.add_row(key, *(str(c[x]) for x in cols))
    console.print(table)
    stats = Table(title="agreement (review annotations)")
    for c in ("kind/batch", "field", "items ≥2", "annotators", "Cohen κ", "Fleiss κ", "Krippendorff α (level)"):
        stats.add_column(c)
    for key, fields in agree.items():
        for name, s in fields.items():
            fmt = [("–" if v is None else f"{v:.3f}") for v in (s["cohen_kappa"], s["fleiss_kappa"],
                                                                 s["krippendorff_alpha"])]
            stats.add_row(key, name, str(s["items_multiply_rated"]), str(s["annotators"]), fmt[0], fmt[1],
                          f"{fmt[2]} ({s['level']})")
    console.print(stats)
    from valuecorpus.annotation.curated import AGREEMENT_STATISTICS

    for name, what in AGREEMENT_STATISTICS.items():
        console.print(f"[bold]{name}[/bold]: {what}", highlight=False)


@curate_app.command("adjudicate")
def adjudicate_command(run: str = typer.Argument(..., help="Run id or run directory.")) -> None:
    """Send ties and weak majorities (as of the last pull) to an adjudication project per kind and batch."""
    from valuecorpus.annotation.pull import read_decisions
    from valuecorpus.annotation.push import adjudicate
    from valuecorpus.annotation.resolve import read_resolutions

    layout = _run(run)
    resolutions = read_resolutions(layout)
    client = _client()
    reports = adjudicate(client, layout, resolutions, read_decisions(layout))
    if not reports:
        typer.echo("nothing needs adjudication")
    for rep in reports:
        for k in rep.kinds:
            typer.echo(f"{k.kind}/{rep.batch}: adjudication project {k.project_id}, {k.added} added, "
                       f"{k.already_present} already there")


@curate_app.command("finalize")
def finalize_command(
    run: str = typer.Argument(..., help="Run id or run directory."),
    run_id: str | None = typer.Option(None, "--run-id", help="Id of the curated run (default: <run>-curated-<time>)."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing",
        help="With --run-id: when that curated run of RUN is already staged, print it and stage nothing "
             "(reruns by a scheduler)."),
) -> None:
    """Stage the curated run: accepted and edited records with annotation provenance, ready for publish."""
    from valuecorpus.annotation.curated import finalize
    from valuecorpus.annotation.pull import read_decisions
    from valuecorpus.annotation.resolve import read_resolutions
    from valuecorpus.cli.common import settings
    from valuecorpus.schemas.errors import ValueCorpusError

    layout = _run(run)
    if skip_existing and run_id is None:
        raise ValueCorpusError("--skip-existing needs --run-id (the curated run to look for)")
    if skip_existing and run_id and (existing := settings().data_home.run(run_id)).exists():
        m = existing.read_manifest()
        if m.origin != "curate" or layout.run_id not in m.parent_runs:
            raise ValueCorpusError(f"run '{run_id}' already exists and is not a curated run of '{layout.run_id}': "
                                   "choose another --run-id")
        typer.echo(f"curated run {run_id} already staged: nothing finalized", err=True)
        typer.echo(run_id)
        return
    target, stats = finalize(settings().data_home, layout, read_resolutions(layout), read_decisions(layout), run_id)
    typer.echo(f"staged curated run {target.run_id}: {stats['accepted']} accepted, {stats['edited']} edited, "
               f"{stats['rejected']} rejected, {stats['unresolved']} unresolved, {stats['relabelled']} relabelled")
    typer.echo(target.run_id)
