"""Arrow schemas derived from the record models, and the conversions between records and Arrow tables.

Nested models become structs, lists become lists, `Literal`s become strings (ints for numeric literals),
`JsonBlob` fields become JSON text tagged `valuecorpus.json`. Nothing here is written by hand per kind.
"""

from __future__ import annotations

import hashlib
import json
import types
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.records import RECORD_TYPES
from valuecorpus.schemas.records.base import JsonBlob, ordered_json

JSON_META = {b"valuecorpus.json": b"true"}
KIND_META = b"valuecorpus.kind"

_SCALARS: dict[Any, pa.DataType] = {
    str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_(),
}


def _is_json(info: FieldInfo | None) -> bool:
    return info is not None and any(isinstance(m, JsonBlob) for m in info.metadata)


def _arrow_type(tp: Any) -> tuple[pa.DataType, bool]:
    """(type, nullable) for a Python annotation."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {tp}")
        return _arrow_type(args[0])[0], True
    if origin is Literal:
        values = get_args(tp)
        return (pa.int64() if all(isinstance(v, int) for v in values) else pa.string()), False
    if origin is list:
        (item,) = get_args(tp)
        item_type, _ = _arrow_type(item)
        return pa.list_(pa.field("item", item_type, nullable=True)), False
    if origin is dict:
        key, value = get_args(tp)
        return pa.map_(_arrow_type(key)[0], _arrow_type(value)[0]), False
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return pa.struct(_fields(tp)), False
    if tp in _SCALARS:
        return _SCALARS[tp], False
    raise TypeError(f"no Arrow mapping for {tp!r}")


def _fields(model: type[BaseModel]) -> list[pa.Field]:
    fields = []
    for name, info in model.model_fields.items():
        if _is_json(info):
            fields.append(pa.field(name, pa.string(), nullable=True, metadata=JSON_META))
            continue
        arrow_type, _ = _arrow_type(info.annotation)
        # Every column is nullable in Arrow; the record model is what enforces required-ness.
        fields.append(pa.field(name, arrow_type, nullable=True))
    return fields


@cache
def arrow_schema(model: type[BaseModel]) -> pa.Schema:
    """The Arrow schema of a record kind (or of any side-table model, e.g. dead letters)."""
    kind = getattr(model, "kind", "") or model.__name__
    return pa.schema(_fields(model), metadata={KIND_META: kind.encode()})


def _canonical_type(t: pa.DataType) -> pa.DataType:
    """Parquet readers name list items `element`, Arrow writers `item`: the fingerprint ignores such names."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(pa.field("item", _canonical_type(t.value_type)))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _canonical_type(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_canonical_type(t.key_type), _canonical_type(t.item_type))
    return t


def schema_fingerprint(schema: pa.Schema) -> str:
    """Same value for a model's schema and for that schema read back from Parquet."""
    canonical = pa.schema([pa.field(f.name, _canonical_type(f.type)) for f in schema])
    return hashlib.sha256(canonical.to_string().encode()).hexdigest()


@cache
def _json_paths(model: type[BaseModel]) -> tuple[tuple[str, ...], ...]:
    """Paths (through nested models and lists) of JsonBlob fields."""
    paths: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        if _is_json(info):
            paths.append((name,))
            continue
        for sub in _nested_models(info.annotation):
            paths.extend((name, *p) for p in _json_paths(sub))
    return tuple(paths)


def _nested_models(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for a in get_args(tp) for m in _nested_models(a)]


def _map_path(obj: Any, path: tuple[str, ...], fn: Any) -> None:
    if isinstance(obj, list):
        for item in obj:
            _map_path(item, path, fn)
        return
    if not isinstance(obj, dict) or path[0] not in obj:
        return
    if len(path) == 1:
        obj[path[0]] = fn(obj[path[0]])
    else:
        _map_path(obj[path[0]], path[1:], fn)


def record_to_row(record: BaseModel) -> dict[str, Any]:
    row = record.model_dump(mode="python")
    for path in _json_paths(type(record)):
        _map_path(row, path, lambda v: None if v is None else ordered_json(v))
    return row


def _from_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def row_to_record(model: type[BaseModel], row: dict[str, Any]) -> Any:
    for path in _json_paths(model):
        _map_path(row, path, _from_json)
    return model.model_validate(row)


def to_table(records: list[BaseModel], model: type[BaseModel] | None = None) -> pa.Table:
    if model is None:
        if not records:
            raise ValueError("an empty table needs its model")
        model = type(records[0])
    schema = arrow_schema(model)
    return pa.Table.from_pylist([record_to_row(r) for r in records], schema=schema)


def from_table(table: pa.Table, model: type[BaseModel] | None = None) -> list[Any]:
    model = model or model_of(table.schema)
    return [row_to_record(model, row) for row in table.to_pylist()]


def model_of(schema: pa.Schema) -> type[BaseModel]:
    """The model a Parquet file holds: a record kind, or a run's side table (dead letters, filtered)."""
    from valuecorpus.schemas.run_tables import DeadLetter, FilteredSample, SeedRow

    kind = (schema.metadata or {}).get(KIND_META, b"").decode()
    known: dict[str, type[BaseModel]] = {**RECORD_TYPES, "DeadLetter": DeadLetter, "FilteredSample": FilteredSample,
                                         "SeedRow": SeedRow}
    if kind not in known:
        raise ValueCorpusError(f"Parquet schema names no known record kind ('{kind}')")
    return known[kind]


def write_records(path: str | Path | Any, records: list[BaseModel], model: type[BaseModel] | None = None) -> int:
    """Write a Parquet file aside and rename it into place (on an object store: one PUT, atomic by itself)."""
    from valuecorpus.schemas import storage

    table = to_table(records, model)
    path = storage.as_path(path)
    if storage.is_remote(path):
        write_parquet(path, table)
        return table.num_rows
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return table.num_rows


def write_parquet(path: Any, table: pa.Table) -> None:
    """A table to a Parquet file on any filesystem (written whole, then put in one piece)."""
    from valuecorpus.schemas import storage

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    storage.write_bytes(storage.as_path(path), sink.getvalue().to_pybytes())


def read_table(path: str | Path | Any) -> pa.Table:
    """One Parquet file. (`pq.read_table` would import pandas, ~1 s of start-up for nothing.)"""
    from valuecorpus.schemas import storage

    path = storage.as_path(path)
    if not storage.is_remote(path):
        return pq.ParquetFile(path).read()
    with path.open("rb") as fh:
        return pq.ParquetFile(fh).read()


def read_records(path: str | Path, model: type[BaseModel] | None = None) -> list[Any]:
    return from_table(read_table(path), model)


@cache
def _column_adapter(model: type[BaseModel], name: str) -> Any:
    """A `TypeAdapter` validating one column of a model's field (a list of its values), built once."""
    from pydantic import TypeAdapter

    return TypeAdapter(list[model.model_fields[name].annotation])  # type: ignore[name-defined]


def partial_record(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """A `model` instance holding only `values` (already validated), for code that reads just those fields.
    `model_construct` would also build every other field's default (pydantic inspects each default factory's
    signature per call: ~0.2 ms a record)."""
    record = model.__new__(model)
    object.__setattr__(record, "__dict__", values)
    object.__setattr__(record, "__pydantic_fields_set__", set(values))
    object.__setattr__(record, "__pydantic_extra__", None)
    object.__setattr__(record, "__pydantic_private__", None)
    return record


def partial_batches(path: str | Path | Any, fields: tuple[str, ...], batch_rows: int = 65_536
                    ) -> Iterator[list[Any]]:
    """The records of one Parquet file, batch by batch, each holding `id` and those of `fields` its kind has
    (read by column; each column validated against its field's annotation). Nothing for a kind with none."""
    from valuecorpus.schemas import storage

    with storage.as_path(path).open("rb") as fh:
        file = pq.ParquetFile(fh)
        model = model_of(file.schema_arrow)
        wanted = [f for f in fields if f in model.model_fields and f in file.schema_arrow.names]
        if not wanted:
            return
        json_paths = {name: [p for p in _json_paths(model) if p[0] == name] for name in wanted}
        for batch in file.iter_batches(batch_size=batch_rows, columns=["id", *wanted]):
            columns = {"id": _column_adapter(model, "id").validate_python(batch.column("id").to_pylist())}
            for name in wanted:
                values = batch.column(name).to_pylist()
                if json_paths[name]:  # JsonBlob fields are JSON text in Arrow: decoded as `row_to_record` does
                    rows = [{name: v} for v in values]
                    for path in json_paths[name]:
                        _map_path(rows, path, _from_json)
                    values = [r[name] for r in rows]
                try:
                    columns[name] = _column_adapter(model, name).validate_python(values)
                except ValidationError as err:
                    first = err.errors()[0]
                    row = int(first["loc"][0]) if first["loc"] else 0
                    raise ValueCorpusError(f"{path}: record {columns['id'][row]!r}: {name}: {first['msg']}") from None
            names = list(columns)
            yield [partial_record(model, dict(zip(names, row, strict=True)))
                   for row in zip(*columns.values(), strict=True)]
