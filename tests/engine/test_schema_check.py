"""A request's schema is checked against the JSON Schema meta-schema in Rust first: a schema is refused exactly
when Python's `jsonschema` refuses it, with Python's message."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from valuecorpus.pipelines.engine.structured import compile_schema

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"a": {"type": "string", "maxLength": 5}}, "required": ["a"]},
    {"type": "array", "items": {"enum": ["x", "y"]}, "minItems": 1, "maxItems": 3},
    {"anyOf": [{"type": "string"}, {"type": "null"}]},
    {"type": "no-such-type"},
    {"type": "string", "maxLength": -1},
    {"type": "object", "required": "a"},
    {"properties": {"a": {"type": 3}}},
    {"type": "array", "minItems": "2"},
    {"enum": "not a list"},
    {"type": ["string", "null"], "pattern": "^[a-z]+$"},
]


@pytest.mark.parametrize("index", range(len(SCHEMAS)))
def test_a_schema_is_refused_exactly_when_jsonschema_refuses_it(index: int) -> None:
    schema = {**SCHEMAS[index], "description": f"case {index}"}  # a text of its own: not compiled before
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        with pytest.raises(ValueError) as refused:
            compile_schema(schema)
        assert str(refused.value) == f"not a valid JSON Schema: {err.message}"
    else:
        assert compile_schema(schema).schema == schema
