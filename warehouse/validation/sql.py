"""DuckDB expressions over nested record columns: a field path becomes a list of its values per record.

`list_expr("actions[].values[].name")` → `flatten(list_transform("actions", lambda x1: list_transform(x1."values",
lambda x2: [x2."name"])))`-style SQL: every record yields the list of that leaf's values, whatever the nesting,
so checks can count nulls, take min/max lengths, or `unnest` into flat (id, value) rows.
"""

from __future__ import annotations

from valuecorpus.schemas.constraints import Step, parse_path


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _expr(base: str | None, steps: list[Step], depth: int) -> str:
    step, rest = steps[0], steps[1:]
    field = quote(step.name) if base is None else f"{base}.{quote(step.name)}"
    if step.into_list:
        if not rest:
            return field
        var = f"x{depth}"
        inner = _expr(var, rest, depth + 1)
        return f"flatten(list_transform({field}, lambda {var}: {inner}))"
    if not rest:
        return f"[{field}]"
    return _expr(field, rest, depth)


def list_expr(path: str) -> str:
    """SQL for the list of values at `path` in the current row (NULL-free parents give [] rather than NULL)."""
    return _expr(None, parse_path(path), 1)


def scalar_expr(path: str) -> str | None:
    """SQL for a path that steps into no list (`rule_1.rule_id`), else None."""
    steps = parse_path(path)
    if any(s.into_list for s in steps):
        return None
    return ".".join(quote(s.name) for s in steps)
