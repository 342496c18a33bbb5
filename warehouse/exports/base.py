"""What every export shares: the records it reads from a version, its prompt templates, the rows it skips and
why, and a deterministic writer (same version, same format → same bytes) for JSONL and Parquet."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.warehouse.versions import VersionInfo, kind_files

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "exports"
EXPORT_META = b"valuecorpus.export"
SUFFIXES = {".jsonl": "jsonl", ".parquet": "parquet"}

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
STRINGS = pa.list_(pa.string())


def message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


@cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False, trim_blocks=True,
                              lstrip_blocks=True, undefined=jinja2.StrictUndefined)


@cache
def template_ref(name: str) -> str:
    """`name@<content hash>`: which wording a prompt was rendered from."""
    digest = hashlib.sha256((TEMPLATES / f"{name}.j2").read_bytes()).hexdigest()[:12]
    return f"{name}@{digest}"


def render(name: str, **values: Any) -> str:
    return _environment().get_template(f"{name}.j2").render(**values).strip()


@dataclass
class ExportInput:
    """The version an export reads, as Arrow rows (dicts) sorted by id, so row order never depends on file
    order. Rows are read without `provenance` (no export carries it) and are not rebuilt as record models: the
    version's files were checked against the record model's schema when published, and plain rows are several
    times cheaper. Free-form JSON fields stay JSON text, as in the warehouse."""

    info: VersionInfo
    home: Any
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    def has(self, kind: str) -> bool:
        return kind in self.info.manifest.kinds

    def rows(self, kind: str) -> list[dict[str, Any]]:
        if not self.has(kind):
            return []
        files = kind_files(self.info, kind)
        columns = [n for n in pq.read_schema(files[0]).names if n != "provenance"]
        tables = [pq.ParquetFile(p).read(columns=columns) for p in files]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        return sorted(table.to_pylist(), key=lambda r: r["id"])

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def note(self, text: str) -> None:
        self.notes[text] += 1


@dataclass(frozen=True)
class ExportFormat:
    name: str
    family: str  # training | evaluation
    needs: str  # the record kind the rows come from
    description: str
    schema: pa.Schema
    build: Callable[[ExportInput], Iterable[dict[str, Any]]]
    joins: tuple[str, ...] = ()  # kinds read too when the version holds them


def file_type(path: Path) -> str:
    try:
        return SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise ValueCorpusError(f"--out {path}: the file name must end in .jsonl or .parquet") from None


def _jsonl_bytes(table: pa.Table) -> bytes:
    lines = [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in table.to_pylist()]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def write_rows(rows: list[dict[str, Any]], schema: pa.Schema, path: Path, meta: dict[str, Any]) -> pa.Table:
    """Write atomically (aside, then renamed): a killed export leaves the old file or none. The rows go through
    the format's Arrow schema for both file types, so JSONL and Parquet hold the same columns and types."""
    table = pa.Table.from_pylist(rows, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if file_type(path) == "parquet":
            table = table.replace_schema_metadata({EXPORT_META: json.dumps(meta, sort_keys=True).encode()})
            # No statistics timestamps or writer ids beyond the library version: same rows → same bytes.
            pq.write_table(table, tmp, compression="zstd")
        else:
            tmp.write_bytes(_jsonl_bytes(table))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return table
