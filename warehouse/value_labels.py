"""The value-label companion of a published kind: one flat row per value label of every record, so a value count
over a version is a plain `GROUP BY` rather than an unnest of nested lists.

Derived, never written by hand: the label paths are the kind's `ValueLabel` declarations
(`schemas.constraints.labels_of`), the rows are computed by DuckDB from the version's own data parts when it
is published, and the file sits beside them as `data/<kind>__values/part-0000.parquet` (listed in the manifest
with its checksum, outside the card's `configs`, so `datasets.load_dataset` of a version still sees one table
per kind). The catalog exposes it as the view `<kind view>__values`.

Columns: `id` (the record), `label` (the label's path, e.g. `actions[].values[].name`), `taxonomy` (the
taxonomy the label belongs to: the declared one, or the record's own taxonomy field), `value`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valuecorpus.schemas.constraints import labels_of
from valuecorpus.warehouse.validation.sql import list_expr, scalar_expr, sql_str

SUFFIX = "__values"


def companion_kind(kind: str) -> str:
    return f"{kind}{SUFFIX}"


def is_companion(rel: str) -> bool:
    """Whether a version file (`data/<kind>__values/...`) is a derived companion rather than records."""
    parts = rel.split("/")
    return len(parts) > 2 and parts[0] == "data" and parts[1].endswith(SUFFIX)


def labels_sql(kind: str, source: str) -> str | None:
    """SELECT of the label rows of `kind` from the relation `source` (None when the kind declares no labels)."""
    parts = []
    for label in labels_of(kind):
        taxonomy = (scalar_expr(label.taxonomy_path) or "NULL") if label.taxonomy_path else sql_str(
            label.taxonomy or "")
        parts.append(f"SELECT id, {sql_str(label.path)} AS label, {taxonomy}::VARCHAR AS taxonomy, "
                     f"unnest({list_expr(label.path)})::VARCHAR AS value FROM {source}")
    if not parts:
        return None
    return "SELECT * FROM (" + " UNION ALL ".join(parts) + ") WHERE value IS NOT NULL"


def write_value_labels(kind: str, files: list[Any], out: Path, filesystem: Any = None) -> int | None:
    """Write the companion of `kind`'s data parts (local paths, or objects of the fsspec `filesystem`) to the
    local file `out`; its row count (None: no labels, nothing written). Rows follow the parts' order (DuckDB
    keeps insertion order), so the same data gives the same bytes."""
    import duckdb

    listing = ", ".join(sql_str(str(p)) for p in files)
    sql = labels_sql(kind, f"read_parquet([{listing}])")
    if sql is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    try:
        if filesystem is not None:  # an object-store home: DuckDB reads it through fsspec, as the catalog does
            con.register_filesystem(filesystem)
        con.execute("SET preserve_insertion_order = true")
        con.execute(f"COPY ({sql}) TO {sql_str(str(out))} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)")
        return int(con.execute(f"SELECT count(*) FROM read_parquet({sql_str(str(out))})").fetchone()[0])
    finally:
        con.close()
