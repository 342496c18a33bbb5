"""The static check of an agent environment's spec, and the limits every environment lives within.

An environment is executable when every tool carries effects and the spec passes this check: each effect's
operation is one of the fixed set, names a declared state table, refers only to the tool's own parameters, and
every JSON value in it (parameter schemas, effect values, the state schema) is within the size limits. The
interpreter (`pipelines/environments`) checks again at run time what only a call can show (argument values,
the state a call leaves). Importers and the case chain both call `spec_problems` before trusting a spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from valuecorpus.schemas.records.agents import EFFECT_OPS, AgentEnvironment, ToolEffect

PARAM_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")


@dataclass(frozen=True)
class Limits:
    """Every bound an environment and an episode in it are held to (see docs/corpora.md)."""

    max_depth: int = 32  # nesting levels of any JSON value: schema, state, argument, effect value
    max_string: int = 20_000  # characters of any one string
    max_nodes: int = 200_000  # JSON values in one document (a state, a call's arguments, a schema)
    max_state_bytes: int = 4 * 2**20  # the state after a call, as JSON text
    max_tools: int = 256
    max_effects: int = 32  # per tool: a call is at most this many operations
    max_path: int = 8  # keys below a table
    max_scan: int = 100_000  # rows a call's list / require may visit
    max_rows_out: int = 200  # rows one list returns (more: the first ones and "truncated": true)
    max_calls: int = 200  # tool calls in one episode or trajectory


LIMITS = Limits()


class SpecLimitError(ValueError):
    """A value over a limit; the message says which and where."""


def measure(value: Any, limits: Limits = LIMITS, where: str = "value") -> int:
    """Check depth, string length and node count of a JSON value without recursion (a hostile value deeper
    than Python's stack must end in this error, not a RecursionError). Returns the node count."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            raise SpecLimitError(f"{where}: more than {limits.max_nodes} JSON values")
        if depth > limits.max_depth:
            raise SpecLimitError(f"{where}: nested deeper than {limits.max_depth} levels")
        if isinstance(item, str):
            if len(item) > limits.max_string:
                raise SpecLimitError(f"{where}: a string of {len(item)} characters (limit {limits.max_string})")
        elif isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str) or len(k) > limits.max_string:
                    raise SpecLimitError(f"{where}: a key that is not a short string")
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif item is not None and not isinstance(item, bool | int | float):
            raise SpecLimitError(f"{where}: {type(item).__name__} is not a JSON value")
    return nodes


def state_tables(env: AgentEnvironment) -> list[str]:
    schema = env.state_schema
    if isinstance(schema, dict) and schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
        return list(schema["properties"])  # a whole-state JSON Schema
    return list(schema) if isinstance(schema, dict) else []


def state_json_schema(env: AgentEnvironment) -> dict[str, Any]:
    """The state schema as one JSON Schema (Agent-ValueBench gives one schema per table)."""
    schema = env.state_schema
    if isinstance(schema, dict) and schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
        return schema
    tables = schema if isinstance(schema, dict) else {}
    return {"type": "object", "properties": dict(tables)}


def _strings(value: Any) -> list[str]:
    out, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


def _effect_problems(effect: ToolEffect, tables: set[str], params: set[str], limits: Limits) -> list[str]:
    problems = []
    if effect.op not in EFFECT_OPS:
        problems.append(f"unknown operation '{effect.op}' (known: {', '.join(EFFECT_OPS)})")
    if effect.table not in tables:
        problems.append(f"table '{effect.table}' is not a state table (tables: {', '.join(sorted(tables))})")
    if len(effect.path) > limits.max_path:
        problems.append(f"a path of {len(effect.path)} keys (limit {limits.max_path})")
    for part in ("where", "value"):
        try:
            measure(getattr(effect, part), limits, part)
        except SpecLimitError as err:
            problems.append(str(err))
    for text in [*effect.path, *_strings(effect.where), *_strings(effect.value)]:
        for name in PARAM_REF.findall(text):
            if name not in params:
                problems.append(f"'{{{name}}}' is not a parameter of the tool")
    if effect.op in ("insert", "update", "delete", "append") and not effect.path:
        problems.append(f"{effect.op} needs a path to a row")
    if effect.op == "insert" and not isinstance(effect.value, dict):
        problems.append("insert needs a row (an object) as value")
    if effect.op == "update" and not (isinstance(effect.value, dict) and effect.value):
        problems.append("update needs {field: value} as value")
    if effect.op == "append" and not effect.field:
        problems.append("append needs the list field of the row")
    if effect.where is not None and not isinstance(effect.where, dict):
        problems.append("where must be an object {field: value}")
    return problems


def spec_problems(env: AgentEnvironment, limits: Limits = LIMITS) -> list[str]:
    """Everything that keeps the spec from being executed, one line each naming the tool and effect."""
    problems: list[str] = []
    try:
        measure(env.state_schema, limits, "state schema")
    except SpecLimitError as err:
        return [str(err)]
    tables = set(state_tables(env))
    if not tables:
        problems.append("the state schema declares no tables")
    if len(env.tools) > limits.max_tools:
        return [*problems, f"{len(env.tools)} tools (limit {limits.max_tools})"]
    names = [t.name for t in env.tools]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"tool '{dup}' is defined twice")
    for tool in env.tools:
        try:
            measure(tool.parameters, limits, f"tool '{tool.name}' parameters")
        except SpecLimitError as err:
            problems.append(str(err))
            continue
        params = tool.parameters if isinstance(tool.parameters, dict) else {}
        if params.get("type", "object") != "object":
            problems.append(f"tool '{tool.name}': parameters must be an object schema")
        props = params.get("properties") or {}
        if not tool.effects:
            problems.append(f"tool '{tool.name}' has no effects")
        if len(tool.effects) > limits.max_effects:
            problems.append(f"tool '{tool.name}': {len(tool.effects)} effects (limit {limits.max_effects})")
            continue
        for i, effect in enumerate(tool.effects):
            for problem in _effect_problems(effect, tables, set(props), limits):
                problems.append(f"tool '{tool.name}' effect {i} ({effect.op}): {problem}")
    return problems


def is_executable(env: AgentEnvironment) -> bool:
    return bool(env.tools) and not spec_problems(env)


__all__ = ["LIMITS", "Limits", "SpecLimitError", "is_executable", "measure", "spec_problems", "state_json_schema",
           "state_tables"]
