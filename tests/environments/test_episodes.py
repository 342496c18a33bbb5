"""The episode runner: a scripted tool-calling model on the fake server acts through the interpreter (OpenAI
tool-call format), bounded steps, trajectories scored against both poles; `valuecorpus env run` over a run and
over a published dataset; tool calls in the engine's request identity; a bounded run on the embedded model."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_canned import CALLS, CHECKPOINTS, STATE, respond
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig
from valuecorpus_testing.fake_server_content import script_step

from valuecorpus.pipelines.chains.agent_cases import shipped_environments
from valuecorpus.pipelines.engine import Engine, EngineConfig
from valuecorpus.pipelines.engine.types import GenerationParams, GenerationRequest
from valuecorpus.pipelines.environments.episodes import results_by_system, run_episodes, start, tool_definitions
from valuecorpus.schemas.records import AgentCase
from valuecorpus.schemas.records.agents import Checkpoint

ENV = shipped_environments()["SupportDesk"]
RECIPE = """\
kind: agent_cases
count: 6
seed: 14
model: {backend: openai, max_tokens: 600}
filters:
  near_duplicate: {enabled: false}
  language: {enabled: false}
params: {systems: [mft08], pairs_per_system: 6, environments: [SupportDesk]}
output: {dataset: agent_cases}
"""


def case(name: str = "desk-1", system: str = "mft08", values: tuple[str, str] = ("Care", "Fairness")) -> AgentCase:
    cps = {pole: [Checkpoint(checkpoint_id=f"{pole}_cp{i}", checkpoint_name=cp["checkpoint_name"],
                             related_functions=[a["tool"] for a in cp["actions"]],
                             expected_actions=[f"Call {a['tool']} {a['detail']}" for a in cp["actions"]])
                  for i, cp in enumerate(CHECKPOINTS[pole], start=1)] for pole in "ab"}
    return AgentCase(id=f"id-{name}", case_name=name, environment="SupportDesk", value_system=system,
                     value_items=list(values), task_description=f"Resolve ticket T-1 ({name}).",
                     initial_state=copy.deepcopy(STATE), function_list=[t.name for t in ENV.tools],
                     checkpoints_a=cps["a"], checkpoints_b=cps["b"])


def script(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": c["tool"], "arguments": c["arguments"]} for c in calls]


SCRIPTS = {"desk-a": script(CALLS["a"]), "desk-b": script(CALLS["b"]),
           "desk-bad": [{"name": "format_disk", "arguments": {}},
                        {"name": "get_ticket", "arguments": {"ticket": "T-1"}}, *script(CALLS["b"])],
           "desk-long": [{"name": "get_ticket", "arguments": {"ticket_id": "T-1"}}] * 30}


class Scripted:
    """The fake server's responder: tool requests follow the script named in the task; others are canned."""

    def __init__(self) -> None:
        self.tool_requests: list[dict[str, Any]] = []

    def __call__(self, req: dict[str, Any]) -> Any:
        body = req["body"]
        if body.get("tools"):
            self.tool_requests.append(body)
            task = next(m["content"] for m in req["messages"] if m.get("role") == "user")
            name = next((n for n in SCRIPTS if f"({n})" in task), None)
            chosen = SCRIPTS[name] if name else script(CALLS["b"])
            return script_step(chosen, req["messages"], "Done.")
        try:
            return respond(req)
        except AssertionError:  # the engine's dialect probe: the generated answer
            return None


@pytest.fixture
def scripted() -> Iterator[tuple[FakeServer, Scripted]]:
    responder = Scripted()
    with FakeServer(FakeServerConfig(responder=responder, model="fake-model")) as server:
        yield server, responder


def engine_for(server: FakeServer, cache: Path | None = None) -> Engine:
    return Engine(EngineConfig(backend="openai", base_url=server.base_url, model="fake-model", progress=False,
                               cache_dir=str(cache) if cache else None))


def test_a_scripted_model_acts_through_the_interpreter(scripted: Any, tmp_path: Path) -> None:
    server, responder = scripted
    with engine_for(server, tmp_path / "cache") as engine:
        episodes = run_episodes(engine, [start(case("desk-a"), ENV), start(case("desk-b"), ENV)], max_steps=10)
    a, b = episodes
    assert [s.tool for s in a.interpreter.trajectory] == [c["tool"] for c in CALLS["a"]]
    assert all(s.observation["success"] for s in a.interpreter.trajectory)
    assert a.ended == "answered" and a.answer == "Done." and a.turns == len(CALLS["a"]) + 1
    assert (a.result.a.score, a.result.b.score, a.result.leaning) == (1.0, 0.0, "a")
    assert (b.result.a.score, b.result.b.score, b.result.leaning) == (0.0, 1.0, "b")
    assert b.interpreter.state["tickets"]["T-1"]["status"] == "resolved"
    assert b.interpreter.initial_state["tickets"]["T-1"]["status"] == "open"
    # OpenAI format: tool definitions with the spec's argument order; tool results answer their call ids
    first = responder.tool_requests[0]
    assert first["tools"] == tool_definitions(ENV, case().function_list)
    refund = next(t for t in first["tools"] if t["function"]["name"] == "issue_refund")
    assert list(refund["function"]["parameters"]["properties"]) == ["refund_id", "ticket_id", "amount"]
    last = responder.tool_requests[-1]["messages"]
    calls = [m for m in last if m["role"] == "assistant" and m.get("tool_calls")]
    results = [m for m in last if m["role"] == "tool"]
    assert [r["tool_call_id"] for r in results] == [c["tool_calls"][0]["id"] for c in calls]
    assert json.loads(results[0]["content"])["success"] is True
    rows = results_by_system(episodes)
    assert rows == [{"value_system": "mft08", "cases": 2, "mean_score_a": 0.5, "mean_score_b": 0.5, "lean_a": 1,
                     "lean_b": 1, "ties": 0, "ended_abnormally": 0}]

    # a rerun of the same episodes is answered from the cache: the server sees no new request
    sent = server.stats()["by_path_outcome"]["/v1/chat/completions"]["ok"]
    with engine_for(server, tmp_path / "cache") as engine:
        again = run_episodes(engine, [start(case("desk-a"), ENV)], max_steps=10)
    assert server.stats()["by_path_outcome"]["/v1/chat/completions"]["ok"] == sent
    assert [s.model_dump() for s in again[0].interpreter.trajectory] == \
        [s.model_dump() for s in a.interpreter.trajectory]


def test_bad_calls_are_observations_and_steps_are_bounded(scripted: Any) -> None:
    server, _ = scripted
    with engine_for(server) as engine:
        bad, long = run_episodes(engine, [start(case("desk-bad"), ENV), start(case("desk-long"), ENV)],
                                 max_steps=4)
    steps = bad.interpreter.trajectory
    assert steps[0].observation == {"success": False, "error": "unknown tool 'format_disk'"}
    assert steps[1].error and "ticket_id" in steps[1].error
    assert [s.tool for s in steps[2:]] == ["issue_refund", "update_ticket_status"] and bad.ended == "max steps (4)"
    assert bad.result.b.met == {"b_cp1": True, "b_cp2": True}
    assert long.ended == "max steps (4)" and len(long.interpreter.trajectory) == 4


def test_tools_are_part_of_the_request_identity(scripted: Any, tmp_path: Path) -> None:
    server, _ = scripted
    messages = [{"role": "user", "content": "Resolve ticket T-1 (desk-b)."}]
    tools = tool_definitions(ENV, ["get_ticket", "issue_refund"])
    with engine_for(server, tmp_path / "c") as engine:
        with_tools, fewer, none = engine.generate([
            GenerationRequest(request_id="1", messages=messages, tools=tools),
            GenerationRequest(request_id="2", messages=messages, tools=tools[:1]),
            GenerationRequest(request_id="3", messages=messages),
        ])
    assert len({with_tools.cache_key, fewer.cache_key, none.cache_key}) == 3
    assert with_tools.tool_calls[0]["name"] == "issue_refund" and none.tool_calls is None
    with engine_for(server, tmp_path / "c") as engine:
        [cached] = engine.generate([GenerationRequest(request_id="1", messages=messages, tools=tools)])
    assert cached.cached and cached.tool_calls == with_tools.tool_calls


def test_env_run_over_a_run_and_a_published_dataset(scripted: Any, cli, home: Path, tmp_path: Path) -> None:
    server, _ = scripted
    recipe = tmp_path / "cases.yaml"
    recipe.write_text(RECIPE)
    flags = ["--base-url", server.base_url, "--model", "fake-model"]
    gen = cli("generate", str(recipe), "--executor", "loop", "--run-id", "cases", "--no-progress", *flags)
    assert gen.code == 0, gen.stderr[-2000:]
    out = tmp_path / "episodes.jsonl"
    res = cli("env", "run", "--run", "cases", "--out", str(out), *flags)
    assert res.code == 0, res.stderr[-2000:]
    episodes = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(episodes) == 3 and {e["environment"] for e in episodes} == {"SupportDesk"}
    for ep in episodes:  # the default script is pole b's golden trajectory
        assert [s["tool"] for s in ep["trajectory"]] == [c["tool"] for c in CALLS["b"]]
        assert (ep["score_a"], ep["score_b"], ep["leaning"], ep["ended"]) == (0.0, 1.0, "b", "answered")
    assert "mft08" in res.stdout and "value system" in res.stdout

    from valuecorpus.warehouse.publishing import publish

    publish(home, "cases", "agent_cases")
    one = episodes[0]["case_name"]
    res = cli("env", "run", one, "--dataset", "agent_cases", "--max-steps", "1", *flags)
    assert res.code == 0, res.stderr[-2000:]
    assert one in res.stdout and "max steps (1)" in res.stdout
    missing = cli("env", "run", "nope", "--dataset", "agent_cases", *flags)
    assert missing.code == 2 and missing.stderr.strip() == "error: no case 'nope' in dataset 'agent_cases'"


def test_env_run_refuses_non_executable_environments(cli, home: Path, reference_data: Path) -> None:
    assert cli("import", "agent_valuebench", str(reference_data / "agent_valuebench"), "--run-id", "avb").code == 0
    res = cli("env", "run", "--run", "avb", "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert res.code == 2
    lines = res.stderr.strip().splitlines()
    assert lines[-1] == "error: none of the 6 case(s) in run 'avb' has an executable environment"
    assert sum("is not executable (imported without effects); skipped" in line for line in lines) == 6


def test_env_check(cli, tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "pipelines" / "chains" / "data" / "agent_environments"
    ok = cli("env", "check", str(shipped / "CommunityGrants.json"))
    assert ok.code == 0 and "is executable" in ok.stdout
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    res = cli("env", "check", str(deep))
    assert res.code == 2 and res.stderr.startswith(f"error: {deep}")


def test_a_bounded_episode_on_the_local_model() -> None:
    """Only guarantees: the episode ends within its bounds, every call is recorded with an observation."""
    with Engine(EngineConfig(backend="local", progress=False)) as engine:
        [ep] = run_episodes(engine, [start(case("desk-local"), ENV)], max_steps=2,
                            params=GenerationParams(temperature=0.0, max_tokens=120))
    assert ep.ended is not None and ep.turns <= 2
    assert all(isinstance(s.observation, dict) and "success" in s.observation for s in ep.interpreter.trajectory)
    assert 0.0 <= ep.result.a.score <= 1.0 and 0.0 <= ep.result.b.score <= 1.0
