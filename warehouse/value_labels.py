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
from typing import TYPE_CHECKING, Any

from valuecorpus.schemas.constraints import labels_of
from valuecorpus.warehouse.validation.sql import list_expr, scalar_expr, sql_str

SUFFIX = "__values"
COLUMNS = ("id", "label", "taxonomy", "value")  # all strings
BATCH_ROWS = 1_000_000

if TYPE_CHECKING:
    import pyarrow as pa


def schema() -> pa.Schema:
    import pyarrow as pa  # not at import: the catalog (and so `--help`) does not need it

    return pa.schema([(name, pa.string()) for name in COLUMNS])


def companion_kind(kind: str) -> str:
    return f"{kind}{SUFFIX}"


def is_companion(rel: str) -> bool:
    """Whether a version file (`data/<kind>__values/...`) is a derived companion rather than records."""
    parts = rel.split("/")
    return len(parts) > 2 and parts[0] == "data" and parts[1].endswith(SUFFIX)


def label_queries(kind: str, source: str) -> list[str]:
    """One SELECT per value label of `kind` over the relation `source`, in declaration order (none: no labels)."""
    queries = []
    for label in labels_of(kind):
        taxonomy = (scalar_expr(label.taxonomy_path) or "NULL") if label.taxonomy_path else sql_str(
            label.taxonomy or "")
        queries.append(f"SELECT * FROM (SELECT id, {sql_str(label.path)} AS label, {taxonomy}::VARCHAR AS taxonomy, "
                       f"unnest({list_expr(label.path)})::VARCHAR AS value FROM {source}) WHERE value IS NOT NULL")
    return queries


def write_value_labels(kind: str, files: list[Any], out: Path, filesystem: Any = None) -> int | None:
    """Write the companion of `kind`'s data parts (local paths, or objects of the fsspec `filesystem`) to the
    local file `out`; its row count (None: no labels, nothing written).

    One label at a time, streamed from DuckDB into the Parquet writer in batches: memory stays at a batch
    whatever the version's size (one COPY of all labels held ~3.5 GiB at 1M dilemmas, 17M label rows). Rows
    follow the labels' and the parts' order (DuckDB keeps insertion order)."""
    import duckdb
    import pyarrow.parquet as pq

    listing = ", ".join(sql_str(str(p)) for p in files)
    queries = label_queries(kind, f"read_parquet([{listing}])")
    if not queries:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    rows = 0
    try:
        if filesystem is not None:  # an object-store home: DuckDB reads it through fsspec, as the catalog does
            con.register_filesystem(filesystem)
        con.execute("SET preserve_insertion_order = true")
        columns = schema()
        with pq.ParquetWriter(out, columns, compression="zstd") as writer:
            for sql in queries:
                for batch in con.sql(sql).to_arrow_reader(BATCH_ROWS):
                    writer.write_batch(batch.cast(columns))
                    rows += batch.num_rows
    finally:
        con.close()
    return rows
