"""The interpreter on valid specs (every operation, argument checks, all-or-nothing calls) and on hostile ones:
each hostile spec or call ends in a clear error within a bounded time and memory."""

from __future__ import annotations

import copy
import json
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from valuecorpus.pipelines.chains.agent_cases import shipped_environments
from valuecorpus.pipelines.environments import (
    CallLimitReached,
    EnvironmentSpecError,
    Interpreter,
    load_environment,
    read_spec,
)
from valuecorpus.schemas.environment_spec import LIMITS
from valuecorpus.schemas.errors import InputFileError

STATE = {
    "customers": {"C-1": {"customer_id": "C-1", "name": "Dana", "tier": "standard", "notes": []},
                  "C-2": {"customer_id": "C-2", "name": "Ari", "tier": "premium", "notes": ["vip"]}},
    "tickets": {"T-1": {"ticket_id": "T-1", "customer_id": "C-1", "subject": "double charge", "status": "open",
                        "priority": "normal", "messages": []},
                "T-2": {"ticket_id": "T-2", "customer_id": "C-2", "subject": "late parcel", "status": "open",
                        "priority": "low", "messages": []},
                "T-3": {"ticket_id": "T-3", "customer_id": "C-1", "subject": "login", "status": "closed",
                        "priority": "low", "messages": []}},
    "refunds": {},
}

# Hostile inputs end within these: generous, for a loaded 2-core machine with tracemalloc on (it slows Python
# about threefold); unbounded work would run for minutes or exhaust memory instead.
TIME_BOUND_S = 15.0
MEMORY_BOUND = 96 * 2**20


def desk() -> Interpreter:
    return Interpreter(shipped_environments()["SupportDesk"], copy.deepcopy(STATE))


def spec(tools: list[dict[str, Any]], tables: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"env_name": "Hostile", "description": "", "tool_state_dependencies": {},
            "initial_parameter_schema": tables or {"rows": {"type": "object"}}, "tools": tools}


def tool(effects: list[dict[str, Any]], props: dict[str, Any] | None = None, name: str = "t") -> dict[str, Any]:
    return {"name": name, "description": "", "effects": effects,
            "parameters": {"type": "object", "properties": props or {"id": {"type": "string"}}}}


def bounded(fn: Callable[[], Any]) -> Any:
    """Run fn; assert it returned or raised within the time and memory bounds; return (result, error)."""
    tracemalloc.start()
    started = time.perf_counter()
    result, error = None, None
    try:
        result = fn()
    except Exception as exc:  # the error itself is checked by the caller
        error = exc
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < TIME_BOUND_S, f"took {elapsed:.2f} s"
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.1f} MiB"
    return result, error


# ------------------------------------------------------------------------------------------------ valid specs
def test_get_list_and_error_observations() -> None:
    it = desk()
    assert it.call("get_ticket", {"ticket_id": "T-1"}) == {"success": True, "data": STATE["tickets"]["T-1"]}
    assert it.call("get_ticket", {"ticket_id": "T-9"}) == {"success": False, "error": "ticket not found"}
    listed = it.call("list_customer_tickets", {"customer_id": "C-1"})
    assert [t["ticket_id"] for t in listed["data"]] == ["T-1", "T-3"]
    assert it.call("list_customer_tickets", {"customer_id": "C-9"})["error"] == "customer not found"
    assert [s.tool for s in it.trajectory] == ["get_ticket", "get_ticket", "list_customer_tickets",
                                               "list_customer_tickets"]
    assert [s.error is None for s in it.trajectory] == [True, False, True, False]


def test_writes_change_a_copy_of_the_state_only() -> None:
    it = desk()
    initial = copy.deepcopy(it.initial_state)
    assert it.call("update_ticket_status", {"ticket_id": "T-1", "status": "resolved"})["success"]
    assert it.call("reply_to_ticket", {"ticket_id": "T-1", "message": "done"})["data"]["messages"] == ["done"]
    assert it.call("add_customer_note", {"customer_id": "C-2", "note": "called"})["data"]["notes"] == ["vip", "called"]
    refund = it.call("issue_refund", {"refund_id": "R-1", "ticket_id": "T-1", "amount": 12.5})
    assert refund["data"] == {"refund_id": "R-1", "ticket_id": "T-1", "amount": 12.5, "status": "issued"}
    assert it.state["tickets"]["T-1"]["status"] == "resolved"
    assert it.initial_state == initial  # the case's state is never changed


def test_a_failed_precondition_leaves_the_state_as_it_was() -> None:
    it = desk()
    assert it.call("issue_refund", {"refund_id": "R-1", "ticket_id": "T-1", "amount": 5})["success"]
    before = copy.deepcopy(it.state)
    again = it.call("issue_refund", {"refund_id": "R-1", "ticket_id": "T-2", "amount": 5})
    assert again == {"success": False, "error": "refund id already used"}
    assert it.call("issue_refund", {"refund_id": "R-2", "ticket_id": "T-9", "amount": 5})["error"] == "ticket not found"
    assert it.state == before


def test_arguments_are_checked_against_the_tool_schema() -> None:
    it = desk()
    missing = it.call("get_ticket", {})
    assert not missing["success"] and "ticket_id" in missing["error"]
    wrong = it.call("update_ticket_status", {"ticket_id": "T-1", "status": "deleted"})
    assert not wrong["success"] and "status" in wrong["error"]
    assert it.call("get_ticket", '{"ticket_id": "T-2"}')["success"]  # OpenAI sends arguments as JSON text
    assert it.call("get_ticket", "{not json")["error"] == "the arguments are not valid JSON"
    assert it.call("delete_everything", {})["error"] == "unknown tool 'delete_everything'"


def test_function_list_restricts_the_tools() -> None:
    it = Interpreter(shipped_environments()["SupportDesk"], STATE, ["get_ticket"])
    assert it.call("get_ticket", {"ticket_id": "T-1"})["success"]
    assert it.call("issue_refund", {"refund_id": "R", "ticket_id": "T-1", "amount": 1})["error"] == \
        "unknown tool 'issue_refund'"


def test_delete_and_require_with_where() -> None:
    env = load_environment(spec([
        tool([{"op": "require", "table": "rows", "path": ["{id}"], "where": {"locked": False},
               "error": "row is locked"},
              {"op": "delete", "table": "rows", "path": ["{id}"]}], name="remove"),
    ], {"rows": {"type": "object"}}))
    it = Interpreter(env, {"rows": {"a": {"locked": False}, "b": {"locked": True}}})
    assert it.call("remove", {"id": "a"})["success"]
    assert it.call("remove", {"id": "b"}) == {"success": False, "error": "row is locked"}
    assert it.call("remove", {"id": "a"})["error"] == "row is locked"
    assert it.state == {"rows": {"b": {"locked": True}}}


def test_initial_state_must_fit_the_schema() -> None:
    bad = copy.deepcopy(STATE)
    bad["tickets"]["T-1"]["status"] = "exploded"
    with pytest.raises(EnvironmentSpecError, match="tickets/T-1/status"):
        Interpreter(shipped_environments()["SupportDesk"], bad)


# ------------------------------------------------------------------------------------------------ hostile specs
@pytest.mark.parametrize("effects, message", [
    ([{"op": "exec", "table": "rows", "value": "import os"}], "op"),
    ([{"op": "eval", "table": "rows"}], "op"),
    ([{"op": "get", "table": "__class__", "path": ["{id}"]}], "table '__class__' is not a state table"),
    ([{"op": "get", "table": "../../etc/passwd"}], "is not a state table"),
    ([{"op": "get", "table": "rows", "path": ["{secret}"]}], "'{secret}' is not a parameter"),
    ([{"op": "get", "table": "rows"}] * (LIMITS.max_effects + 1), f"limit {LIMITS.max_effects}"),
    ([{"op": "get", "table": "rows", "path": ["x"] * (LIMITS.max_path + 1)}], f"limit {LIMITS.max_path}"),
    ([{"op": "update", "table": "rows", "path": ["{id}"]}], "update needs"),
])
def test_hostile_effects_are_refused(effects: list[dict[str, Any]], message: str) -> None:
    _, error = bounded(lambda: load_environment(spec([tool(effects)])))
    assert isinstance(error, EnvironmentSpecError) and message in str(error), error


def test_a_path_value_cannot_escape_the_state() -> None:
    env = load_environment(spec([tool([{"op": "get", "table": "rows", "path": ["{id}"]}])]))
    it = Interpreter(env, {"rows": {"a": 1}})
    for hostile in ("__class__", "../a", "/etc/passwd", "__globals__", "a/../../b"):
        assert it.call("t", {"id": hostile}) == {"success": False, "error": f"rows/{hostile} not found"}


def test_deeply_nested_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    depth = 200_000
    path.write_text('{"env_name": "x", "tools": ' + "[" * depth + "]" * depth + "}")
    _, error = bounded(lambda: load_environment(read_spec(path)))
    assert isinstance(error, InputFileError | EnvironmentSpecError), error
    assert "nested deeper" in str(error) or "levels" in str(error)


def test_deeply_nested_values_in_spec_state_and_arguments() -> None:
    deep: Any = "x"
    for _ in range(5_000):
        deep = {"k": deep}
    _, error = bounded(lambda: load_environment(spec([tool([{"op": "insert", "table": "rows", "path": ["{id}"],
                                                              "value": deep}])])))
    assert isinstance(error, EnvironmentSpecError) and f"deeper than {LIMITS.max_depth}" in str(error)
    env = load_environment(spec([tool([{"op": "get", "table": "rows", "path": ["{id}"]}])]))
    _, error = bounded(lambda: Interpreter(env, {"rows": {"a": deep}}))
    assert isinstance(error, EnvironmentSpecError) and "nested deeper" in str(error)
    it = Interpreter(env, {"rows": {}})
    obs, _ = bounded(lambda: it.call("t", {"id": deep}))
    assert not obs["success"] and "nested deeper" in obs["error"]
    text = "[" * 100_000 + "]" * 100_000
    obs, _ = bounded(lambda: it.call("t", '{"id": ' + text + "}"))
    assert not obs["success"]


def test_enormous_strings() -> None:
    huge = "x" * 5_000_000
    described = {**tool([{"op": "get", "table": "rows"}]), "description": huge}
    _, error = bounded(lambda: load_environment(spec([described])))
    assert isinstance(error, EnvironmentSpecError) and "characters" in str(error)
    env = load_environment(spec([tool([{"op": "insert", "table": "rows", "path": ["{id}"],
                                        "value": {"text": "{id}"}}])]))
    it = Interpreter(env, {"rows": {}})
    obs, _ = bounded(lambda: it.call("t", {"id": huge}))
    assert not obs["success"] and f"limit {LIMITS.max_string}" in obs["error"]
    obs, _ = bounded(lambda: it.call("t", json.dumps({"id": huge})))
    assert not obs["success"] and "too long" in obs["error"]


def test_state_growth_is_bounded() -> None:
    env = load_environment(spec([tool([{"op": "append", "table": "rows", "path": ["log"], "field": "lines",
                                        "value": ["{id}"] * 8}])]))  # each call writes 8 copies of the argument
    it = Interpreter(env, {"rows": {"log": {"lines": []}}})
    line = "y" * (LIMITS.max_string - 10)
    started = time.perf_counter()
    failure = None
    for _ in range(LIMITS.max_calls):
        obs = it.call("t", {"id": line})
        if not obs["success"]:
            failure = obs["error"]
            break
    assert failure is not None and f"limit {LIMITS.max_state_bytes}" in failure
    assert time.perf_counter() - started < 60  # bounded: at most max_calls calls of one bounded copy each
    assert len(json.dumps(it.state, separators=(",", ":")).encode()) <= LIMITS.max_state_bytes


def test_huge_loops_are_bounded() -> None:
    """No loop construct exists; what iterates (a list over a table, an episode's calls) is bounded."""
    env = load_environment(spec([tool([{"op": "list", "table": "rows", "where": {"k": "{id}"}}] * 4)]))
    rows = {str(i): {"k": "v"} for i in range(LIMITS.max_scan // 2)}
    it = Interpreter(env, {"rows": rows})
    obs, _ = bounded(lambda: it.call("t", {"id": "v"}))
    assert obs == {"success": False, "error": f"the call visited more than {LIMITS.max_scan} rows"}
    small = Interpreter(env, {"rows": {str(i): {"k": "v"} for i in range(LIMITS.max_rows_out + 5)}})
    out = small.call("t", {"id": "v"})["data"]
    assert out["list_0"]["truncated"] and len(out["list_0"]["rows"]) == LIMITS.max_rows_out
    it = Interpreter(env, {"rows": {}})
    for _ in range(LIMITS.max_calls):
        it.call("t", {"id": "v"})
    with pytest.raises(CallLimitReached):
        it.call("t", {"id": "v"})


def test_catastrophic_regex_in_a_parameter_schema() -> None:
    env = load_environment(spec([tool([{"op": "get", "table": "rows", "path": ["{id}"]}],
                                      {"id": {"type": "string", "pattern": "^(a+)+$"}})]))
    it = Interpreter(env, {"rows": {}})
    obs, _ = bounded(lambda: it.call("t", {"id": "a" * 5000 + "!"}))
    assert not obs["success"]


def test_too_many_tools() -> None:
    tools = [tool([{"op": "get", "table": "rows"}], name=f"t{i}") for i in range(LIMITS.max_tools + 1)]
    _, error = bounded(lambda: load_environment(spec(tools)))
    assert isinstance(error, EnvironmentSpecError) and f"limit {LIMITS.max_tools}" in str(error)
