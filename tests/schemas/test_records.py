"""Every record kind: model → Arrow → Parquet → model is the identity (unicode, empty lists, nested structs,
JSON blobs), and the derived JSON Schema accepts what the model produces."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from valuecorpus.schemas.arrow import (
    arrow_schema,
    from_table,
    read_records,
    schema_fingerprint,
    to_table,
    write_records,
)
from valuecorpus.schemas.jsonschema import constrain, model_json_schema
from valuecorpus.schemas.records import RECORD_TYPES, Dilemma, ValueRule
from valuecorpus.schemas.records.base import JsonBlob

# Text that exercises what real corpora contain: CJK (CVC), accents, emoji, quotes, newlines.
TEXT = st.text(alphabet=st.sampled_from(list("ab 尊重他人诚信友善éü😀\"'\n<>&")), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def strategy(tp: Any, meta: list[Any] | None = None) -> st.SearchStrategy[Any]:
    if meta and any(isinstance(m, JsonBlob) for m in meta):
        return JSON
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return st.one_of(*(strategy(a, meta) for a in get_args(tp)))
    if tp is type(None):
        return st.none()
    if origin is Literal:
        return st.sampled_from(get_args(tp))
    if origin is list:
        return st.lists(strategy(get_args(tp)[0]), max_size=3)
    if origin is dict:
        k, v = get_args(tp)
        return st.dictionaries(strategy(k), strategy(v), max_size=3)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return st.fixed_dictionaries(
            {name: strategy(f.annotation, list(f.metadata)) for name, f in tp.model_fields.items()}
        )
    bounds = {k: getattr(m, k) for m in meta or [] for k in ("ge", "le") if getattr(m, k, None) is not None}
    if tp is int:
        return st.integers(bounds.get("ge", -(2**62)), bounds.get("le", 2**62))
    if tp is float:
        return st.floats(bounds.get("ge"), bounds.get("le"), allow_nan=False, allow_infinity=False, width=64)
    return {str: TEXT, bool: st.booleans()}[tp]


def instances(model: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    def build(data: dict[str, Any]) -> BaseModel | None:
        try:
            return model.model_validate(data)
        except ValidationError:  # field constraints (e.g. rubric weight 1–5) the generic strategy ignores
            return None

    return strategy(model).map(build).filter(lambda x: x is not None)


@pytest.mark.parametrize("kind", sorted(RECORD_TYPES))
def test_round_trip_every_kind(kind: str, tmp_path: Path) -> None:
    model = RECORD_TYPES[kind]
    path = tmp_path / f"{kind}.parquet"

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(instances(model), min_size=1, max_size=4))
    def check(records: list[BaseModel]) -> None:
        write_records(path, records)
        back = read_records(path)
        assert [type(r) for r in back] == [model] * len(records)
        assert [r.model_dump() for r in back] == [r.model_dump() for r in records]

    check()


@pytest.mark.parametrize("kind", sorted(RECORD_TYPES))
def test_arrow_schema_is_nested_not_json_text(kind: str) -> None:
    """Structs and lists stay typed; only fields marked as free-form JSON are text."""
    model = RECORD_TYPES[kind]
    schema = arrow_schema(model)
    assert schema.names == list(model.model_fields)
    assert pa.types.is_struct(schema.field("provenance").type)
    for field in schema:
        if pa.types.is_string(field.type) and field.metadata:
            assert field.metadata == {b"valuecorpus.json": b"true"}
            info = model.model_fields[field.name]
            assert any(isinstance(m, JsonBlob) for m in info.metadata)


def test_dilemma_actions_are_list_of_structs() -> None:
    actions = arrow_schema(Dilemma).field("actions").type
    assert pa.types.is_list(actions)
    values = actions.value_type.field("values").type
    assert pa.types.is_list(values) and pa.types.is_struct(values.value_type)
    assert values.value_type.names == ["name", "type", "wvs", "mft", "virtue", "emotion", "maslow"]


def test_chinese_rule_and_empty_lists_survive(tmp_path: Path) -> None:
    rule = ValueRule(
        id="r1", rule="尊重其他种族的传统文化是应该的",
        translation="Respecting other ethnic groups' traditions is right.",
        levels=["国家", "个人"], core_values=["文明", "友善"], derived_values=[], label=1,
    )
    write_records(tmp_path / "r.parquet", [rule])
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.column("rule").to_pylist() == ["尊重其他种族的传统文化是应该的"]
    assert table.column("derived_values").to_pylist() == [[]]
    assert read_records(tmp_path / "r.parquet") == [rule]


def test_empty_table_keeps_schema() -> None:
    table = to_table([], Dilemma)
    assert table.num_rows == 0 and table.schema == arrow_schema(Dilemma)
    assert from_table(table) == []


@pytest.mark.parametrize("kind", sorted(RECORD_TYPES))
def test_json_schema_accepts_model_output(kind: str) -> None:
    model = RECORD_TYPES[kind]
    schema = model_json_schema(model)
    assert "id" not in schema["properties"] and "provenance" not in schema["properties"]
    assert schema["additionalProperties"] is False
    validator = jsonschema.Draft202012Validator(schema)

    @settings(max_examples=25, deadline=None)
    @given(instances(model))
    def check(record: BaseModel) -> None:
        content = record.model_dump(mode="json", exclude={"id", "provenance"})
        validator.validate(content)

    check()


def test_constrain_puts_taxonomy_values_into_the_schema() -> None:
    schema = constrain(model_json_schema(Dilemma), "actions[].values[].name", ["trust", "honesty"])
    validator = jsonschema.Draft202012Validator(schema)
    base = {"basic_situation": "s", "dilemma_situation": "d"}
    ok = {**base, "actions": [{"action_type": "to_do", "action": "a", "values": [{"name": "trust"}]}]}
    bad = {**base, "actions": [{"action_type": "to_do", "action": "a", "values": [{"name": "greed"}]}]}
    validator.validate(ok)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)


@pytest.mark.parametrize("kind", sorted(RECORD_TYPES))
def test_fingerprint_is_the_same_after_a_parquet_round_trip(kind: str, tmp_path: Path) -> None:
    model = RECORD_TYPES[kind]
    pq.write_table(to_table([], model), tmp_path / "empty.parquet")
    assert schema_fingerprint(pq.read_schema(tmp_path / "empty.parquet")) == schema_fingerprint(arrow_schema(model))


def test_side_tables_read_back_without_naming_their_model(tmp_path: Path) -> None:
    from valuecorpus.schemas.run_tables import DeadLetter, FilteredSample

    dead = [DeadLetter(request_id="r1", error_class="timeout", reason="no answer in 30 s", attempts=3)]
    filtered = [FilteredSample(sample_id="s1", kind="dilemma", filter="near_duplicate", reason="0.91 ≥ 0.8",
                               matched_id="s0", score=0.91)]
    write_records(tmp_path / "dead.parquet", dead, DeadLetter)
    write_records(tmp_path / "filtered.parquet", filtered, FilteredSample)
    assert read_records(tmp_path / "dead.parquet") == dead
    assert read_records(tmp_path / "filtered.parquet") == filtered
