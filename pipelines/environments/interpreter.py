"""The interpreter: tool calls against a copy of an environment's initial state, by its declarative effects.

Nothing here evaluates code, imports a module named by a spec or reaches outside the state: an effect is data
(one of seven operations on the state tables), its paths are keys into dicts and lists, and `{param}`
substitutes an argument value. Every call is checked and bounded (`schemas.environment_spec.Limits`):

- the arguments validate against the tool's JSON Schema (jsonschema_rs: its regex engine has a backtracking
  limit, so a hostile `pattern` cannot hang a call) and are within the size limits;
- the effects run on a working copy; a failed precondition or a missing row ends the call with an error
  observation and leaves the state as it was (a call is all or nothing);
- a `list` visits at most `max_scan` rows and returns at most `max_rows_out`; the state after a call is at most
  `max_state_bytes`; an episode makes at most `max_calls` calls.

Observations follow Agent-ValueBench's convention: `{"success": true, "data": …}` or
`{"success": false, "error": "…"}`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
from pydantic import ValidationError

from valuecorpus.schemas.environment_spec import (
    LIMITS,
    PARAM_REF,
    Limits,
    SpecLimitError,
    measure,
    spec_problems,
    state_json_schema,
)
from valuecorpus.schemas.errors import InputFileError, NotFoundError, ValueCorpusError
from valuecorpus.schemas.records.agents import AgentEnvironment, ToolEffect, ToolSpec, TrajectoryStep


class EnvironmentSpecError(ValueCorpusError):
    """An environment that cannot be executed (its spec, or a state that does not fit it)."""


WRITES = frozenset({"insert", "update", "delete", "append"})


class CallFailed(Exception):
    """A call that ends in an error observation (the agent sees it; the episode goes on)."""


MAX_SPEC_BYTES = 16 * 2**20


def read_spec(path: Path) -> Any:
    """An environment spec file as JSON, read within bounds: a huge or absurdly nested file is one clear error."""
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise InputFileError(path, None, f"{size} bytes: an environment spec is at most {MAX_SPEC_BYTES} bytes")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputFileError(path, None, "not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise InputFileError(path, f"line {err.lineno} column {err.colno}", f"not valid JSON ({err.msg})") from None
    except RecursionError:
        raise InputFileError(path, None, f"nested deeper than {LIMITS.max_depth} levels") from None


def load_environment(data: Any, limits: Limits = LIMITS) -> AgentEnvironment:
    """An environment record from a dict (record JSON or Agent-ValueBench JSON with effects), checked."""
    if isinstance(data, AgentEnvironment):
        env = data
    else:
        if not isinstance(data, dict):
            raise EnvironmentSpecError(f"an environment spec must be a JSON object, not {type(data).__name__}")
        try:
            measure(data, limits, "environment spec")
        except SpecLimitError as err:
            raise EnvironmentSpecError(str(err)) from None
        body = dict(data)
        if "initial_parameter_schema" in body:  # the Agent-ValueBench file layout
            deps = body.get("tool_state_dependencies") or {}
            body = {
                "id": body.get("id") or body.get("env_name", ""), "env_name": body.get("env_name", ""),
                "description": body.get("description", ""), "state_schema": body["initial_parameter_schema"],
                "tool_state_dependencies": [{"tool": t, "state_keys": k} for t, k in deps.items()]
                if isinstance(deps, dict) else deps,
                "tools": body.get("tools", []),
            }
        try:
            env = AgentEnvironment.model_validate(body)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise EnvironmentSpecError(f"environment spec, {loc}: {first['msg']}") from None
    problems = spec_problems(env, limits)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise EnvironmentSpecError(f"environment '{env.env_name}': {problems[0]}{more}")
    return env


def _substitute(template: Any, args: dict[str, Any]) -> Any:
    """`"{p}"` → the argument itself; `"… {p} …"` → its text; containers element by element (bounded: the
    template passed `measure` in the spec check)."""
    if isinstance(template, str):
        whole = PARAM_REF.fullmatch(template)
        if whole:
            return copy.deepcopy(args.get(whole.group(1)))
        return PARAM_REF.sub(lambda m: _text(args.get(m.group(1))), template)
    if isinstance(template, dict):
        return {_text(_substitute(k, args)): _substitute(v, args) for k, v in template.items()}
    if isinstance(template, list):
        return [_substitute(v, args) for v in template]
    return template


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass
class Interpreter:
    """One episode in one environment: `call(tool, arguments)` → observation; `trajectory` records each call.

    `function_list` restricts the callable tools (a case's functions); `initial_state` is copied, never
    changed."""

    env: AgentEnvironment
    initial_state: Any
    function_list: list[str] | None = None
    limits: Limits = LIMITS
    trajectory: list[TrajectoryStep] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.env.executable:
            problems = spec_problems(self.env, self.limits)
            if problems:
                raise EnvironmentSpecError(f"environment '{self.env.env_name}' is not executable: {problems[0]}")
        try:
            measure(self.initial_state, self.limits, "initial state")
        except SpecLimitError as err:
            raise EnvironmentSpecError(str(err)) from None
        if not isinstance(self.initial_state, dict):
            raise EnvironmentSpecError("the initial state must be an object {table: rows}")
        problem = state_problem(self.env, self.initial_state)
        if problem:
            raise EnvironmentSpecError(f"the initial state does not fit environment '{self.env.env_name}': {problem}")
        self.state: dict[str, Any] = _copy(self.initial_state)
        # bytes of each table as compact JSON: a write re-measures only the tables it wrote
        self._sizes: dict[str, int] = {name: _size(rows) for name, rows in self.state.items()}
        self.tools: dict[str, ToolSpec] = {t.name: t for t in self.env.tools}
        self._validators: dict[str, Any] = {}

    # ------------------------------------------------------------------ the one entry point
    def call(self, tool: str, arguments: Any) -> dict[str, Any]:
        if len(self.trajectory) >= self.limits.max_calls:
            raise CallLimitReached(f"the episode reached {self.limits.max_calls} calls")
        try:
            observation = {"success": True, "data": self._execute(tool, arguments)}
            error = None
        except CallFailed as failure:
            error = str(failure)
            observation = {"success": False, "error": error}
        self.trajectory.append(TrajectoryStep(tool=tool, arguments=_jsonable(arguments), observation=observation,
                                              error=error))
        return observation

    def _execute(self, tool_name: str, arguments: Any) -> Any:
        tool = self.tools.get(tool_name)
        if tool is None or (self.function_list is not None and tool_name not in self.function_list):
            raise CallFailed(f"unknown tool '{tool_name}'")
        args = self._check_arguments(tool, arguments)
        # all or nothing: effects work on copies of the tables the tool writes (reads need none), and the state
        # takes them only when every effect applied
        written = {e.table for e in tool.effects if e.op in WRITES}
        work = {name: _copy(rows) if name in written else rows for name, rows in self.state.items()}
        for name in written - set(work):
            work[name] = {}
        outputs: dict[str, Any] = {}
        budget = [self.limits.max_scan]
        last: Any = None
        for i, effect in enumerate(tool.effects):
            result = _apply(effect, work, args, budget, self.limits)
            if effect.op in ("get", "list"):
                last = result
                outputs[effect.output or f"{effect.op}_{i}"] = result
            elif effect.op != "require" and last is None:
                last = result
        sizes = {**self._sizes, **{name: _size(work[name]) for name in written}}
        size = sum(sizes.values())
        if size > self.limits.max_state_bytes:
            raise CallFailed(f"the call would grow the state to {size} bytes (limit {self.limits.max_state_bytes})")
        self.state, self._sizes = work, sizes
        reads = [e for e in tool.effects if e.op in ("get", "list")]
        if len(reads) > 1 or any(e.output for e in reads):
            return outputs
        return last

    def _check_arguments(self, tool: ToolSpec, arguments: Any) -> dict[str, Any]:
        if isinstance(arguments, str):  # the OpenAI format sends arguments as JSON text
            if len(arguments) > self.limits.max_string * 4:
                raise CallFailed("the arguments are too long")
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except (json.JSONDecodeError, RecursionError):
                raise CallFailed("the arguments are not valid JSON") from None
        if arguments is None:
            arguments = {}
        try:
            measure(arguments, self.limits, "arguments")
        except SpecLimitError as err:
            raise CallFailed(str(err)) from None
        if not isinstance(arguments, dict):
            raise CallFailed("the arguments must be an object")
        validator = self._validators.get(tool.name)
        if validator is None:
            schema = tool.parameters if isinstance(tool.parameters, dict) else {"type": "object"}
            try:
                validator = self._validators[tool.name] = jsonschema_rs.validator_for(schema)
            except (ValueError, jsonschema_rs.ValidationError) as err:
                raise CallFailed(f"tool '{tool.name}' has an invalid parameter schema: {str(err)[:200]}") from None
        try:
            errors = list(_first(validator.iter_errors(arguments), 1))
        except ValueError as err:  # e.g. a regex over its backtracking limit
            raise CallFailed(f"the arguments could not be checked: {str(err)[:200]}") from None
        if errors:
            err = errors[0]
            where = "/".join(str(p) for p in err.instance_path) or "(arguments)"
            raise CallFailed(f"invalid arguments for '{tool.name}' at {where}: {err.message[:300]}")
        return arguments


class CallLimitReached(Exception):
    """The episode made `max_calls` calls: it ends (the runner records why)."""


def _copy(value: Any) -> Any:
    """A deep copy of a JSON value: through orjson (several times faster than copy.deepcopy), or deepcopy for
    what orjson cannot write (integers beyond 64 bits)."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:
        return copy.deepcopy(value)


def _size(value: Any) -> int:
    """Bytes of a JSON value as compact UTF-8 JSON (what `max_state_bytes` bounds)."""
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _first(iterator: Any, n: int) -> Any:
    for i, item in enumerate(iterator):
        if i >= n:
            return
        yield item


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
    return value


@lru_cache(maxsize=64)
def _state_validator(schema_text: str) -> Any:
    return jsonschema_rs.validator_for(json.loads(schema_text))


def state_problem(env: AgentEnvironment, state: Any) -> str | None:
    """Why a state does not validate against the environment's state schema, or None."""
    try:
        validator = _state_validator(orjson.dumps(state_json_schema(env)).decode())
        errors = list(_first(validator.iter_errors(state), 1))
    except ValueError as err:
        return f"the state schema cannot be used: {str(err)[:200]}"
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].instance_path) or "(state)"
    return f"at {where}: {errors[0].message[:300]}"


# ---------------------------------------------------------------------------------------------------- effects
_MISSING = object()


def _key(value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CallFailed(f"a key must be a string or an integer, not {json.dumps(value)[:80]}")
    return value


def _walk(node: Any, keys: list[Any]) -> Any:
    for k in keys:
        if isinstance(node, dict) and isinstance(k, str) and k in node:
            node = node[k]
        elif isinstance(node, list) and str(k).isdigit() and int(k) < len(node):
            node = node[int(k)]
        else:
            return _MISSING
    return node


def _fail(effect: ToolEffect, default: str) -> CallFailed:
    return CallFailed(effect.error or default)


def _matches(row: Any, where: dict[str, Any]) -> bool:
    if not isinstance(row, dict):
        return False
    for name, wanted in where.items():
        have = row.get(name, _MISSING)
        if isinstance(have, list) and not isinstance(wanted, list):
            if wanted not in have:  # a list field matches when it holds the value (roles: ["admin", …])
                return False
        elif have != wanted:
            return False
    return True


def _apply(effect: ToolEffect, state: dict[str, Any], args: dict[str, Any], budget: list[int],
           limits: Limits) -> Any:
    keys = [_key(_substitute(p, args)) for p in effect.path]
    op = effect.op
    table = state[effect.table] if op in WRITES else state.get(effect.table, {})
    where_text = "/".join(str(k) for k in [effect.table, *keys])
    if op == "require":
        node = _walk(table, keys)
        if (effect.expect or "exists") == "absent":
            if node is not _MISSING:
                raise _fail(effect, f"{where_text} already exists")
            return None
        if node is _MISSING:
            raise _fail(effect, f"{where_text} not found")
        if effect.where is not None and not _matches(node, _substitute(effect.where, args)):
            raise _fail(effect, f"{where_text} does not meet the condition")
        return None
    if op == "get":
        node = _walk(table, keys)
        if node is _MISSING:
            raise _fail(effect, f"{where_text} not found")
        return _copy(node)
    if op == "list":
        node = _walk(table, keys)
        if node is _MISSING:
            raise _fail(effect, f"{where_text} not found")
        rows = list(node.values()) if isinstance(node, dict) else list(node) if isinstance(node, list) else []
        where = _substitute(effect.where, args) if effect.where is not None else None
        out = []
        for row in rows:
            budget[0] -= 1
            if budget[0] < 0:
                raise CallFailed(f"the call visited more than {limits.max_scan} rows")
            if where is None or _matches(row, where):
                out.append(row)
        if len(out) > limits.max_rows_out:  # only what is returned is copied
            return {"rows": _copy(out[: limits.max_rows_out]), "truncated": True, "total": len(out)}
        return _copy(out)
    parent = _walk(table, keys[:-1])
    last = keys[-1]
    if not isinstance(parent, dict | list) or parent is _MISSING:
        raise _fail(effect, f"{'/'.join(str(k) for k in [effect.table, *keys[:-1]])} not found")
    exists = _walk(parent, [last]) is not _MISSING
    if op == "insert":
        if exists:
            raise _fail(effect, f"{where_text} already exists")
        if not isinstance(parent, dict) or not isinstance(last, str):
            raise CallFailed(f"{where_text}: rows are inserted by key into a table")
        parent[last] = _substitute(effect.value, args)
        return _copy(parent[last])
    if not exists:
        raise _fail(effect, f"{where_text} not found")
    if op == "delete":
        removed = parent.pop(last) if isinstance(parent, dict) else parent.pop(int(last))  # type: ignore[arg-type]
        return _copy(removed)
    row = _walk(parent, [last])
    if op == "update":
        if not isinstance(row, dict):
            raise CallFailed(f"{where_text} is not a row")
        row.update(_substitute(effect.value, args))
        return _copy(row)
    if op == "append":
        if not isinstance(row, dict):
            raise CallFailed(f"{where_text} is not a row")
        target = row.setdefault(effect.field or "", [])
        if not isinstance(target, list):
            raise CallFailed(f"{where_text}.{effect.field} is not a list")
        target.append(_substitute(effect.value, args))
        return _copy(row)
    raise CallFailed(f"unknown operation '{op}'")  # unreachable: the record model admits only the fixed set


__all__ = ["CallFailed", "CallLimitReached", "EnvironmentSpecError", "Interpreter", "load_environment", "read_spec",
           "state_problem"]
