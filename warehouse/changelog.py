"""The card's "changes since the previous version": the warehouse diff of the previous version against the
records being published. This is the one place the card asks `warehouse.diff` for changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from valuecorpus.schemas.layout import DataHome
from valuecorpus.warehouse.diff import diff_rows
from valuecorpus.warehouse.versions import kind_files, version_info

# Above this many rows (old + new, per kind) rows are matched by id only: a full comparison turns every row into
# Python objects, which at a million nested rows costs gigabytes and minutes inside a publish.
FULL_DIFF_MAX_ROWS = 100_000


def _read(files: list[Path], columns: list[str] | None = None) -> pa.Table:
    tables = [pq.ParquetFile(p).read(columns=columns) for p in files]
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _ids_only(kind: str, old: pa.Table | None, new: pa.Table | None) -> dict[str, Any]:
    old_ids = set(old.column("id").to_pylist()) if old is not None else set()
    new_ids = set(new.column("id").to_pylist()) if new is not None else set()
    return {"kind": kind, "added": len(new_ids - old_ids), "removed": len(old_ids - new_ids),
            "changed": None, "unchanged": None, "column_changes": {}, "compared": "ids"}


def changelog(home: DataHome, dataset: str, previous: int | None,
              new_files: dict[str, list[Path]]) -> dict[str, Any] | None:
    """{previous, kinds: [diff summary per kind]} of `previous` against the new records; None for a first
    version. Each kind's entry is `KindDiff.summary()` (plus `compared`: rows or ids), so whatever the diff
    learns to report reaches the card."""
    if previous is None:
        return None
    info = version_info(home, dataset, previous)
    kinds = sorted(set(info.manifest.kinds) | set(new_files))
    out = []
    for kind in kinds:
        old_files = kind_files(info, kind) if kind in info.manifest.kinds else []
        rows = info.manifest.row_counts.get(kind, 0) + sum(
            pq.ParquetFile(p).metadata.num_rows for p in new_files.get(kind, []))
        # Only the id columns are read when the rows are too many to compare: memory stays flat.
        columns = ["id"] if rows > FULL_DIFF_MAX_ROWS else None
        old = _read(old_files, columns) if old_files else None
        new = _read(new_files[kind], columns) if kind in new_files else None
        if columns:
            out.append(_ids_only(kind, old, new))
            continue
        where = (f"{dataset} v{previous}", f"{dataset} (new version)")
        result = diff_rows(kind, old.to_pylist() if old is not None else [],
                           new.to_pylist() if new is not None else [], where=where)
        out.append({**result.summary(), "compared": "rows"})
    return {"previous": previous, "kinds": out}
