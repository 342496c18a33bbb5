"""Warehouse commands: `publish`, `versions`, `sql`, `diff`. Heavy libraries load inside the commands."""

from __future__ import annotations

import csv
import json
import os
import sys
from enum import StrEnum
from typing import Any

import typer

from valuecorpus.cli.common import settings

# Test hook: stop the process (as kill -9 would) at a named publish step, to prove publishing is atomic.
CRASH_ENV = "VALUECORPUS_TEST_CRASH_AT"


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _print_rows(columns: list[str], rows: list[dict[str, Any]], fmt: OutputFormat, max_rows: int,
                title: str | None = None) -> None:
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, default=str) + "\n")
        return
    if fmt is OutputFormat.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row[c]) for c in columns])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows[:max_rows]:
        table.add_row(*(_cell(row[c]) for c in columns))
    console = Console()
    console.print(table)
    if len(rows) > max_rows:
        console.print(f"… {len(rows) - max_rows} more rows (use --max-rows, LIMIT, or --format csv/json)")


def _step_hook() -> Any:
    crash_at = os.environ.get(CRASH_ENV)
    if not crash_at:
        return None

    def hook(step: str) -> None:
        if step == crash_at:
            os._exit(137)

    return hook


def publish_cmd(
    run: str = typer.Argument(..., help="Run id (under <home>/runs) or path to a run directory."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name (a-z, 0-9, '_')."),
    once: bool = typer.Option(
        False, "--once",
        help="Publish this run at most once: when a version was already published from it, print that version "
             "and publish nothing (reruns by a scheduler)."),
    as_json: bool = typer.Option(False, "--json", help="Print {dataset, version, row_counts, already_published}."),
) -> None:
    """Validate a staged run against the dataset's suite, then publish it as the next immutable version.

    Nothing is published when an expectation fails (exit code 5); no option skips the suite."""
    from valuecorpus.schemas.layout import sha256_file
    from valuecorpus.warehouse.publishing import publish
    from valuecorpus.warehouse.versions import published_from

    home = settings().data_home
    layout = home.resolve_run(run)
    before = published_from(home, dataset, layout.run_id, sha256_file(layout.manifest_path)) if once else None
    manifest = before.manifest if before else publish(home, layout, dataset, on_step=_step_hook(), once=once)
    counts = ", ".join(f"{k}={n}" for k, n in manifest.row_counts.items())
    if as_json:
        print(json.dumps({"dataset": dataset, "version": manifest.version, "row_counts": manifest.row_counts,
                          "already_published": before is not None, "run_id": layout.run_id}))
        return
    if before:
        print(f"already published: {dataset} v{manifest.version} is run {layout.run_id} ({counts})")
        return
    print(f"published {dataset} v{manifest.version}: {counts}")
    if manifest.validation:
        v = manifest.validation
        print(f"  validated: suite '{v['suite']}' {v['suite_version']}, {len(v['expectations'])} expectations passed")
    same = (manifest.model_extra or {}).get("same_content_as")
    if same:
        print(f"note: same data as v{same}")
    print(f"  {home.version_dir(dataset, manifest.version)}")


def _print_validation(result: dict[str, Any], label: str, home: Any) -> None:
    failed = [e for e in result["expectations"] if not e["success"]]
    print(f"{label}: suite '{result['suite']}' {result['suite_version']}: "
          f"{len(result['expectations']) - len(failed)} of {len(result['expectations'])} expectations passed")
    for e in failed:
        count = e["observed"].get("unexpected_records", e["observed"].get("unexpected"))
        print(f"  FAILED [{e['kind']}] {e['name']}: {count} unexpected; threshold: "
              f"{json.dumps(e['threshold'], ensure_ascii=False, default=str)[:200]}")
        values = e["observed"].get("unexpected_values")
        if values:
            print(f"    values: {json.dumps(values, ensure_ascii=False, default=str)[:300]}")
        if e["unexpected_ids"]:
            print(f"    ids: {', '.join(e['unexpected_ids'])}")
    if result.get("data_docs"):
        print(f"  Data Docs: {home.root / result['data_docs']}")


def validate_cmd(
    target: str = typer.Argument(..., help="A run (id or path), or DATASET[@vN] (latest version without @)."),
    dataset: str | None = typer.Option(None, "--dataset", "-d",
                                       help="For a run: validate it against this dataset's suite file."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table | json"),
) -> None:
    """Run the expectation suite on a run or a published version; write Data Docs beside it. Exit 5 on failure."""
    from valuecorpus.schemas.errors import NotFoundError, ValueCorpusError
    from valuecorpus.warehouse.validation import ValidationFailed, failure_message, run_target, validate
    from valuecorpus.warehouse.validation.gate import version_target
    from valuecorpus.warehouse.versions import version_numbers

    home = settings().data_home
    name, _, version = target.partition("@")
    run_path = None
    if not version:
        try:
            run_path = home.resolve_run(target)
        except ValueCorpusError:  # not a run: maybe a dataset
            run_path = None
    try:
        published = bool(version) or bool(version_numbers(home, name))
    except ValueCorpusError:  # not a dataset name either
        published = False
    if run_path is not None:
        tgt, suite = run_target(run_path), dataset
    elif published:
        tgt, suite = version_target(home, name, version or None), name
    else:
        raise NotFoundError(f"'{target}' is neither a run under {home.runs_dir} nor a published dataset "
                            "(DATASET or DATASET@vN)")
    result = validate(home, tgt, suite, create_suite=suite is not None)
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
    else:
        _print_validation(result, tgt.label, home)
    if not result["success"]:
        raise ValidationFailed(failure_message(tgt.label, result, limit=3))


def versions_cmd(
    dataset: str = typer.Argument(..., help="Dataset name."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table | csv | json"),
) -> None:
    """List the versions of a dataset: number, created, rows per kind, manifest sha256."""
    from valuecorpus.warehouse.versions import list_versions

    rows = [
        {"version": f"v{v.version}", "created_at": v.manifest.created_at,
         "rows": ", ".join(f"{k}={n}" for k, n in v.manifest.row_counts.items()),
         "manifest_sha256": v.manifest_sha256 if fmt is not OutputFormat.table else v.manifest_sha256[:16],
         "same_as": f"v{s}" if (s := (v.manifest.model_extra or {}).get("same_content_as")) else ""}
        for v in list_versions(settings().data_home, dataset)
    ]
    _print_rows(list(rows[0]), rows, fmt, max_rows=10_000, title=f"{dataset}: {len(rows)} version(s)")


def sql_cmd(
    query: str = typer.Argument(..., help="SQL (SELECT / EXPLAIN). Views: <dataset>, <dataset>__v2, "
                                          "<dataset>_<kind> when it has several kinds, <view>__values (flat "
                                          "value labels); warehouse_versions."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table | csv | json"),
    max_rows: int = typer.Option(200, "--max-rows", help="Rows shown in table format."),
) -> None:
    """Query the warehouse with DuckDB, read-only."""
    from valuecorpus.warehouse.catalog import query as run_query

    table = run_query(settings().data_home, query)
    _print_rows(table.column_names, table.to_pylist(), fmt, max_rows=max_rows)


def diff_cmd(
    dataset: str = typer.Argument(..., help="Dataset name."),
    old: str = typer.Argument(..., help="Old version (v1 or 1)."),
    new: str = typer.Argument(..., help="New version."),
    kind: str | None = typer.Option(None, "--kind", help="Only this record kind."),
    ignore: list[str] = typer.Option([], "--ignore", help="Column not to compare (repeatable)."),
    ids: bool = typer.Option(False, "--ids", help="List the added / removed / changed ids."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table | json"),
) -> None:
    """Ids added, removed and changed between two versions, per-column change counts, value labels added and
    removed, and curation verdicts that changed."""
    from valuecorpus.warehouse.diff import diff_versions

    result = diff_versions(settings().data_home, dataset, old, new, kind=kind, ignore=frozenset(ignore))
    if fmt is not OutputFormat.table:
        sys.stdout.write(json.dumps(result.to_dict(ids=ids), ensure_ascii=False) + "\n")
        return
    print(f"{dataset} v{result.old} → v{result.new}")
    for k in result.kinds:
        print(f"  {k.kind}: {len(k.added)} added, {len(k.removed)} removed, {len(k.changed)} changed, "
              f"{k.unchanged} unchanged")
        for column, n in sorted(k.column_changes.items(), key=lambda item: (-item[1], item[0])):
            print(f"    {column}: {n} changed")
        for path, change in k.label_changes.items():
            shown = [f"+{label} ×{n}" for label, n in change["added"].items()][:8] + \
                    [f"-{label} ×{n}" for label, n in change["removed"].items()][:8]
            print(f"    labels {path}: {change['records']} records ({', '.join(shown)})")
        for move, n in k.verdict_changes.items():
            print(f"    verdict {move}: {n}")
        if ids:
            for label, values in (("added", k.added), ("removed", k.removed), ("changed", k.changed)):
                for rid in values:
                    print(f"    {label} {rid}")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_cmd)
    app.command("publish")(publish_cmd)
    app.command("versions")(versions_cmd)
    app.command("sql")(sql_cmd)
    app.command("diff")(diff_cmd)
