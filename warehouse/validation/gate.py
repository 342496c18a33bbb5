"""Validating a staged run or a published version against its dataset's suite: the result the gate stores in
the version manifest (`validation`), and the Data Docs site beside the run or the version."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from valuecorpus.schemas.arrow import arrow_schema, schema_fingerprint
from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import DataHome, RunLayout, RunManifest
from valuecorpus.schemas.records import RECORD_TYPES
from valuecorpus.warehouse.validation.checks import (
    Check,
    Table,
    distribution_tables,
    kind_tables,
    level_tables,
    records_view,
)
from valuecorpus.warehouse.validation.sql import sql_str
from valuecorpus.warehouse.validation.suite import SUITE_FILE, SuiteSettings, settings_for

DEFAULT_SUITE = "default"
MEMORY_LIMIT = "1GB"


class ValidationFailed(ValueCorpusError):
    """A suite failed: nothing is published. The message lists the failed expectations and offending ids."""

    exit_code = 5


@dataclass
class Target:
    """What is validated: record files per kind, and the run whose plan and counts the distribution checks use."""

    label: str
    files: dict[str, list[Path]]
    run: RunLayout | None
    docs_dir: Path | None
    timings: dict[str, float] = field(default_factory=dict)


def suite_path(home: DataHome, dataset: str | None) -> Path | None:
    return None if dataset is None else home.dataset_dir(dataset) / SUITE_FILE


def _chain(home: DataHome, layout: RunLayout) -> list[tuple[RunLayout, RunManifest]]:
    """The run and the runs it derives from (curated → generated), nearest first."""
    out, seen = [], set()
    current: RunLayout | None = layout
    while current is not None and current.run_id not in seen and current.exists():
        seen.add(current.run_id)
        manifest = current.read_manifest()
        out.append((current, manifest))
        parent = manifest.parent_runs[0] if manifest.parent_runs else None
        try:
            current = home.run(parent) if parent else None
        except ValueCorpusError:
            current = None
    return out


def _curation(manifest: RunManifest) -> dict[str, Any] | None:
    stats = manifest.annotation
    if manifest.origin != "curate" or not isinstance(stats, dict):
        return None
    decided = sum(int(stats.get(k) or 0) for k in ("accepted", "edited", "rejected"))
    alphas = {}
    for batch, fields in (stats.get("agreement") or {}).items():
        verdict = fields.get("verdict") if isinstance(fields, dict) else None
        if isinstance(verdict, dict):
            alphas[batch] = verdict.get("krippendorff_alpha")
    return {"acceptance_rate": (int(stats.get("accepted") or 0) + int(stats.get("edited") or 0)) / decided
            if decided else None, "agreement": alphas}


def _run_checks(home: DataHome, target: Target, settings: SuiteSettings) -> list[Table]:
    if target.run is None:
        return []
    chain = _chain(home, target.run)
    if not chain:
        return []
    generating = next(((lay, man) for lay, man in chain if lay.plan.is_file()), chain[-1])
    lay, man = generating
    plan_sql = (f"SELECT sample_id, stratum FROM read_parquet({sql_str(str(lay.plan))})"
                if lay.plan.is_file() else None)  # through the connection's registered filesystem on a store
    records_sql = " UNION ALL ".join(
        f"SELECT provenance.plan_item AS plan_item FROM {records_view(k)}" for k in target.files)
    records = sum(man.counts.values())
    requests = records + man.filtered + man.dead_letters
    rates = {"dead_letter_rate": man.dead_letters / requests if requests else 0.0,
             "filtered_rate": man.filtered / (records + man.filtered) if records + man.filtered else 0.0}
    return distribution_tables(settings, plan_sql, records_sql, rates, _curation(chain[0][1]))


def _type_of(f: pa.Field) -> str:
    """A column's type, blind to list item names (Parquet says `element` where Arrow says `item`)."""
    return schema_fingerprint(pa.schema([f]))[:16]


def _schema_table(target: Target) -> tuple[Table, list[dict[str, Any]]]:
    """Column types of every file against the record model (GE compares the pairs)."""
    rows = []
    for kind, files in target.files.items():
        expected = arrow_schema(RECORD_TYPES[kind])
        for path in files:
            with path.open("rb") as fh:  # a local file or an object on the store
                actual = pq.read_schema(fh)
            for f in expected:
                got = actual.field(f.name) if f.name in actual.names else None
                rows.append({"where": f"{kind}.{f.name} ({path.name})", "expected": _type_of(f),
                             "actual": _type_of(got) if got is not None else "missing"})
            for name in actual.names:
                if name not in expected.names:
                    rows.append({"where": f"{kind}.{name} ({path.name})", "expected": "absent", "actual": "present"})
    values = " UNION ALL ".join(
        f"SELECT {sql_str(r['where'])} AS column_name, {sql_str(r['expected'])} AS expected, "
        f"{sql_str(r['actual'])} AS actual" for r in rows) or \
        "SELECT NULL::VARCHAR AS column_name, NULL::VARCHAR AS expected, NULL::VARCHAR AS actual LIMIT 0"
    check = Check("column types match the record model", "type", None, "ExpectColumnPairValuesToBeEqual",
                  {"column_A": "actual", "column_B": "expected"}, threshold="the Arrow schema of each kind's model",
                  ids_column="column_name")
    return Table("schema", values, [check]), rows


def validate(home: DataHome, target: Target, dataset: str | None = None, create_suite: bool = False
             ) -> dict[str, Any]:
    """Run the suite on the target; the result mapping (success, suite, suite_version, expectations, data_docs)."""
    import duckdb

    from valuecorpus.warehouse.validation.ge_run import Runner

    kinds = sorted(target.files)
    settings, _used = settings_for(suite_path(home, dataset), dataset or DEFAULT_SUITE, kinds, create_suite)
    started = time.perf_counter()
    # Data Docs are built on a local disk (GE's filesystem site), then copied next to a run on an object store
    local_docs = target.docs_dir if target.docs_dir is None or not home.remote else Path(
        tempfile.mkdtemp(prefix="valuecorpus-docs-")) / "data_docs"
    if local_docs is not None:
        shutil.rmtree(local_docs, ignore_errors=True)
    runner = Runner(settings.suite, local_docs)
    con = duckdb.connect(":memory:")
    if home.remote:  # DuckDB reads the store through fsspec (its httpfs extension would be downloaded)
        con.register_filesystem(home.root.fs)
    scratch = tempfile.mkdtemp(prefix="valuecorpus-validate-")
    # Unnested levels of a large run may not fit in memory next to GE's frames: DuckDB spills to scratch.
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = {sql_str(scratch)}")
    con.execute("SET preserve_insertion_order = false")
    try:
        for kind, files in target.files.items():
            listing = ", ".join(sql_str(str(p)) for p in files)
            con.execute(f"CREATE VIEW {records_view(kind)} AS SELECT * FROM read_parquet([{listing}])")
        schema_table, _rows = _schema_table(target)
        expectations = runner.run_table(con, schema_table)
        if all(e["success"] for e in expectations):  # the other tables need the model's columns
            t0 = time.perf_counter()
            for kind in kinds:
                for sql in level_tables(kind).values():
                    con.execute(sql)
            target.timings["flatten"] = round(time.perf_counter() - t0, 3)
            for table in [*kind_tables(kinds, settings), *_run_checks(home, target, settings)]:
                t0 = time.perf_counter()
                expectations.extend(runner.run_table(con, table))
                target.timings[table.name] = round(time.perf_counter() - t0, 3)
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    docs = runner.build_docs()
    if docs is not None and local_docs is not None and local_docs != target.docs_dir:
        remote_docs = target.docs_dir
        remote_docs.fs.put(str(local_docs), remote_docs.path, recursive=True)
        shutil.rmtree(local_docs.parent, ignore_errors=True)
        docs = str(remote_docs / Path(docs).relative_to(local_docs))
    target.timings["total"] = round(time.perf_counter() - started, 3)
    return {
        "success": all(e["success"] for e in expectations),
        "suite": settings.suite,
        "suite_version": settings.version(kinds),
        "expectations": expectations,
        "data_docs": _relative(home, docs),
    }


def _relative(home: DataHome, path: str | None) -> str | None:
    if path is None:
        return None
    if home.remote:
        return path.removeprefix(home.url.rstrip("/") + "/")
    try:
        return Path(path).resolve().relative_to(home.root.resolve()).as_posix()
    except ValueError:
        return path


def failure_message(label: str, result: dict[str, Any], limit: int = 20) -> str:
    failed = [e for e in result["expectations"] if not e["success"]]
    parts = []
    for e in failed[:limit]:
        ids = ", ".join(e["unexpected_ids"]) or "-"
        extra = ""
        values = e["observed"].get("unexpected_values")
        if values:
            extra = "; values: " + ", ".join(
                f"{v['record']}: {v['value']!r}" if isinstance(v, dict) else repr(v) for v in values)
        count = e["observed"].get("unexpected_records", e["observed"].get("unexpected"))
        parts.append(f"[{e['kind']}] {e['name']} ({count} unexpected; ids: {ids}{extra})")
    more = f"; and {len(failed) - limit} more" if len(failed) > limit else ""
    return (f"validation failed for {label} (suite '{result['suite']}' {result['suite_version']}): "
            f"{len(failed)} of {len(result['expectations'])} expectations failed: " + "; ".join(parts) + more)


def run_target(layout: RunLayout) -> Target:
    kinds = layout.kinds()
    if not kinds:
        raise ValueCorpusError(f"run '{layout.run_id}' has no records to validate (nothing in {layout.records_dir})")
    unknown = [k for k in kinds if k not in RECORD_TYPES]
    if unknown:
        raise ValueCorpusError(f"run '{layout.run_id}': unknown record kind(s) {', '.join(unknown)}")
    # a run's records are one file per kind, or shards a pipeline wrote (`RunLayout.table_files`)
    return Target(f"run '{layout.run_id}'", {k: layout.table_files(f"records/{k}") for k in kinds}, layout,
                  layout.path / "validation" / "data_docs")


def version_target(home: DataHome, dataset: str, version: int | str | None) -> Target:
    from valuecorpus.warehouse.versions import kind_files, version_info

    info = version_info(home, dataset, version)
    runs = info.manifest.lineage.get("runs") or []
    layout = None
    if runs:
        try:
            candidate = home.run(runs[0]["run_id"])
            layout = candidate if candidate.exists() else None
        except ValueCorpusError:
            layout = None
    return Target(f"{dataset} v{info.version}", {k: kind_files(info, k) for k in info.manifest.kinds}, layout,
                  home.dataset_dir(dataset) / "validation" / f"v{info.version}" / "data_docs")


__all__ = ["ValidationFailed", "failure_message", "run_target", "validate", "version_target"]
