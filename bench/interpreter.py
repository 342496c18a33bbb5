"""Interpreter throughput and the cost of its bounds, on the shipped SupportDesk environment.

    python -m bench.interpreter            # writes bench/results/interpreter.json

Figures: tool calls per second (a read, a write, a failed precondition), a golden-trajectory replay (five calls
plus the checkpoint check), and the wall time of the hostile cases that hit a limit (a 50,000-row scan, a
state grown to its 4 MiB bound, 5,000-deep arguments). Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any

from valuecorpus.pipelines.chains.agent_cases import shipped_environments
from valuecorpus.pipelines.environments import Interpreter, load_environment, replay
from valuecorpus.schemas.environment_spec import LIMITS
from valuecorpus.schemas.records.agents import Checkpoint

STATE = {
    "customers": {f"C-{i}": {"customer_id": f"C-{i}", "name": f"n{i}", "tier": "standard", "notes": []}
                  for i in range(50)},
    "tickets": {f"T-{i}": {"ticket_id": f"T-{i}", "customer_id": f"C-{i % 50}", "subject": "s", "status": "open",
                           "priority": "normal", "messages": []} for i in range(200)},
    "refunds": {},
}


def rate(fn: Any, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - started)


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return round(time.perf_counter() - started, 4)


def main() -> None:
    env = shipped_environments()["SupportDesk"]
    it = Interpreter(env, copy.deepcopy(STATE))
    it.limits = LIMITS.__class__(max_calls=10**9)
    out: dict[str, Any] = {"load_average": os.getloadavg()[0]}
    out["get_calls_per_s"] = round(rate(lambda i: it.call("get_ticket", {"ticket_id": f"T-{i % 200}"}), 5000))
    out["update_calls_per_s"] = round(rate(
        lambda i: it.call("set_ticket_priority", {"ticket_id": f"T-{i % 200}", "priority": "urgent"}), 2000))
    out["failed_precondition_calls_per_s"] = round(rate(
        lambda i: it.call("issue_refund", {"refund_id": "R", "ticket_id": "T-none", "amount": 1}), 5000))
    calls = [{"tool": "get_ticket", "arguments": {"ticket_id": "T-1"}},
             {"tool": "get_customer", "arguments": {"customer_id": "C-1"}},
             {"tool": "issue_refund", "arguments": {"refund_id": "R-1", "ticket_id": "T-1", "amount": 5}},
             {"tool": "reply_to_ticket", "arguments": {"ticket_id": "T-1", "message": "done"}},
             {"tool": "update_ticket_status", "arguments": {"ticket_id": "T-1", "status": "resolved"}}]
    cps = [Checkpoint(checkpoint_id="a_cp1", checkpoint_name="x",
                      expected_actions=["Call get_ticket", "Call issue_refund"]),
           Checkpoint(checkpoint_id="a_cp2", checkpoint_name="y", expected_actions=["Call update_ticket_status"])]
    names = [t.name for t in env.tools]
    out["replays_per_s"] = round(rate(lambda i: replay(env, STATE, names, calls, cps), 200), 1)

    spec = {"env_name": "B", "description": "", "tool_state_dependencies": {},
            "initial_parameter_schema": {"rows": {"type": "object"}},
            "tools": [{"name": "scan", "description": "", "parameters": {"type": "object", "properties": {"k": {}}},
                       "effects": [{"op": "list", "table": "rows", "where": {"k": "{k}"}}] * 4},
                      {"name": "grow", "description": "", "parameters": {"type": "object", "properties": {"k": {}}},
                       "effects": [{"op": "append", "table": "rows", "path": ["log"], "field": "lines",
                                    "value": ["{k}"] * 8}]}]}
    bench_env = load_environment(spec)
    big = Interpreter(bench_env, {"rows": {str(i): {"k": "v"} for i in range(LIMITS.max_scan // 2)}})
    out["scan_to_limit_s"] = timed(lambda: big.call("scan", {"k": "v"}))
    grow = Interpreter(bench_env, {"rows": {"log": {"lines": []}}})
    line = "y" * (LIMITS.max_string - 10)

    def fill() -> None:
        while grow.call("grow", {"k": line})["success"]:
            pass
    out["grow_state_to_limit_s"] = timed(fill)
    out["grow_calls_until_limit"] = len(grow.trajectory)
    deep: Any = "x"
    for _ in range(5000):
        deep = {"k": deep}
    out["deep_arguments_s"] = timed(lambda: big.call("scan", {"k": deep}))
    path = Path(__file__).resolve().parent / "results" / "interpreter.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
