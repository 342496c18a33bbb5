"""What every importer shares: the result type, reading files with errors that name the file and the row or
key, and the provenance and ids of imported records.

Imports are lossless by contract: a key or column that no record field holds is an error, not dropped data.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from valuecorpus.schemas.errors import InputFileError, NotFoundError, TaxonomyError, ValueCorpusError
from valuecorpus.schemas.records import Provenance, Record, stable_id

R = TypeVar("R", bound=Record)

# The pandas index column a CSV export starts with (header "" or "Unnamed: 0"): a row position, no data.
PANDAS_INDEX_COLUMNS = frozenset({"", "Unnamed: 0"})


@dataclass
class ImportResult:
    """The records one import produced, by kind, and what it read or passed over."""

    source_dataset: str
    records: dict[str, list[Record]] = field(default_factory=dict)
    source_files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list, repr=False)
    taxonomy_versions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # cross-file problems, one line each: the import goes on
    _seen: dict[str, str] = field(default_factory=dict, repr=False)
    _first: dict[str, Record] = field(default_factory=dict, repr=False)

    def add(self, records: Iterable[Record], merge_identical: bool = False) -> None:
        """Add records; a second record with an id already seen is an error, or, with `merge_identical`, is
        dropped when its content (everything but provenance) equals the first one's (the same card in a
        graph export and in the card table)."""
        for record in records:
            where = f"{record.provenance.source_file}, {record.provenance.source_key}"
            if record.id in self._seen:
                if merge_identical and _content(self._first[record.id]) == _content(record):
                    continue
                what = "with different content " if merge_identical else ""
                raise ValueCorpusError(
                    f"{where}: same record id {record.id} {what}as {self._seen[record.id]} "
                    "(a record imported twice?)"
                )
            self._seen[record.id] = where
            self._first[record.id] = record
            self.records.setdefault(record.kind, []).append(record)

    def counts(self) -> dict[str, int]:
        return {kind: len(rows) for kind, rows in sorted(self.records.items())}

    def skip_taxonomy_source(self, requested: Path, file: Path, taxonomy: str) -> None:
        """A taxonomy's source file inside a corpus folder is passed over (recorded); asked for alone, an error."""
        reason = f"source of the taxonomy '{taxonomy}', not records"
        if requested.is_file():
            raise InputFileError(file, None, reason)
        self.skipped.append((file, reason))


@dataclass
class ImportContext:
    """Per-file state: which file, and which taxonomies the records were checked against."""

    result: ImportResult
    path: Path

    @property
    def source_dataset(self) -> str:
        return self.result.source_dataset

    def provenance(self, source_key: str, taxonomies: Iterable[Any] = ()) -> Provenance:
        refs = []
        for tax in taxonomies:
            self.result.taxonomy_versions[tax.name] = tax.version
            refs.append(tax.ref)
        return Provenance(
            origin="import", source_dataset=self.source_dataset, source_file=self.path.name,
            source_key=source_key, taxonomy_versions=refs,
        )

    def record_id(self, source_key: str) -> str:
        """Stable across re-imports of the same file: dataset, file name and position or key."""
        return stable_id(self.source_dataset, self.path.name, source_key)

    def natural_id(self, *parts: Any) -> str:
        """Stable wherever the file lies and whatever it is called: dataset and the record's own name."""
        return stable_id(self.source_dataset, *parts)

    def fail(self, where: str | None, problem: str) -> InputFileError:
        return InputFileError(self.path, where, problem)

    def build(self, model: type[R], where: str, **values: Any) -> R:
        """Validate one record; a type error names the file, the row or key, and the field."""
        try:
            return model(**values)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise self.fail(where, f"field '{loc}': {first['msg']}") from None


def _content(record: Record) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude={"provenance"})


def check_file(path: Path) -> None:
    if not path.exists():
        raise NotFoundError(f"{path}: no such file or directory")
    if not path.is_file():
        raise InputFileError(path, None, "not a file")


def read_json(path: Path) -> Any:
    check_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputFileError(path, f"byte {err.start}", "not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise InputFileError(path, where, f"not valid JSON ({err.msg})") from None


def read_csv(
    path: Path, required: Iterable[str], optional: Iterable[str] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows as (row number from 1 after the header, {column: text}). Every required column must be in the
    header; a column that is neither required, optional nor a pandas index is an error (it would be lost)."""
    check_file(path)
    required, optional = list(required), set(optional)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, None)
            if header is None:
                raise InputFileError(path, None, "empty file (no header row)")
            missing = [c for c in required if c not in header]
            if missing:
                raise InputFileError(path, "header", f"missing column(s) {_names(missing)}")
            known = set(required) | optional | PANDAS_INDEX_COLUMNS
            unknown = [c for c in header if c not in known]
            if unknown:
                problem = f"unexpected column(s) {_names(unknown)}: no field holds them"
                raise InputFileError(path, "header", problem)
            for number, cells in enumerate(reader, start=1):
                if len(cells) != len(header):
                    raise InputFileError(
                        path, f"row {number} (line {reader.line_num})",
                        f"{len(cells)} cells, the header has {len(header)}",
                    )
                yield number, dict(zip(header, cells, strict=True))
    except UnicodeDecodeError as err:
        raise InputFileError(path, f"byte {err.start}", "not UTF-8 text") from None
    except csv.Error as err:
        raise InputFileError(path, None, f"malformed CSV ({err})") from None


def csv_header(path: Path) -> list[str]:
    check_file(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return next(csv.reader(fh), [])
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputFileError(path, "header", f"not a readable CSV ({err.__class__.__name__})") from None


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def obj_keys(
    ctx: ImportContext, obj: Any, where: str, required: Iterable[str], optional: Iterable[str] = ()
) -> dict:
    """Check a JSON object: it is an object, has every required key, and no key that no field holds."""
    if not isinstance(obj, dict):
        raise ctx.fail(where, f"expected a JSON object, found {type(obj).__name__}")
    required = list(required)
    missing = [k for k in required if k not in obj]
    if missing:
        raise ctx.fail(where, f"missing key(s) {_names(missing)}")
    allowed = set(required) | set(optional)
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise ctx.fail(where, f"unexpected key(s) {_names(unknown)}: no field holds them")
    return obj


def expect_list(ctx: ImportContext, value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise ctx.fail(where, f"expected a JSON list, found {type(value).__name__}")
    return value


def taxonomy_check(ctx: ImportContext, where: str, check: Callable[[], Any]) -> Any:
    """Run a taxonomy lookup; an unknown value names the file and the row or key as well as the taxonomy."""
    try:
        return check()
    except TaxonomyError as err:
        raise TaxonomyError(f"{ctx.path}, {where}: {err}") from None


def expand(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """A file, or every file with one of the suffixes under a directory (sorted, hidden files excluded)."""
    if not path.exists():
        raise NotFoundError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    found = sorted(
        p for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in suffixes
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not found:
        raise ValueCorpusError(f"{path}: no {' or '.join(suffixes)} files found")
    return found


def import_json_files(path: Path, source_dataset: str, read: Callable[[ImportContext, Any], Iterable[Record]],
                      merge_identical: bool = False) -> ImportResult:
    """Every `.json` file under `path` through `read(ctx, data)`, in sorted order."""
    result = ImportResult(source_dataset)
    for file in expand(path, (".json",)):
        result.add(read(ImportContext(result, file), read_json(file)), merge_identical)
        result.source_files.append(file)
    return result
