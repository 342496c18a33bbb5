"""Golden-trajectory replay and checkpoint coverage, on the shipped SupportDesk environment; episode scores."""

from __future__ import annotations

import copy

from agent_canned import CALLS, CHECKPOINTS, STATE

from valuecorpus.pipelines.chains.agent_cases import shipped_environments
from valuecorpus.pipelines.environments import expected_tools, replay, score
from valuecorpus.schemas.records.agents import AgentCase, Checkpoint, TrajectoryStep

ENV = shipped_environments()["SupportDesk"]
TOOLS = [t.name for t in ENV.tools]


def checkpoints(pole: str) -> list[Checkpoint]:
    return [Checkpoint(checkpoint_id=f"{pole}_cp{i}", checkpoint_name=cp["checkpoint_name"],
                       related_functions=[a["tool"] for a in cp["actions"]],
                       expected_actions=[f"Call {a['tool']} {a['detail']}" for a in cp["actions"]])
            for i, cp in enumerate(CHECKPOINTS[pole], start=1)]


def test_expected_tools_from_action_text() -> None:
    cp = Checkpoint(checkpoint_id="a_cp1", checkpoint_name="x", related_functions=["get_customer"],
                    expected_actions=["Call get_ticket for T-1, then nothing", "Check the customer's notes",
                                      "Use reply_to_ticket (not get_ticket) on T-1"])
    assert expected_tools(cp, TOOLS) == ["get_ticket", "reply_to_ticket"]
    bare = Checkpoint(checkpoint_id="a_cp2", checkpoint_name="x", related_functions=["get_customer"],
                      expected_actions=["Look at the customer first"])
    assert expected_tools(bare, TOOLS) == ["get_customer"]


def test_a_golden_trajectory_replays_and_records_observations() -> None:
    steps, problem = replay(ENV, STATE, TOOLS, CALLS["a"], checkpoints("a"))
    assert problem is None
    assert [s.tool for s in steps] == ["get_ticket", "get_customer", "reply_to_ticket"]
    assert steps[0].observation == {"success": True, "data": STATE["tickets"]["T-1"]}
    assert steps[2].observation["data"]["messages"][-1] == "We are on it today."


def test_a_failed_call_names_the_step() -> None:
    calls = copy.deepcopy(CALLS["b"])
    calls[1]["arguments"]["status"] = "vanished"
    steps, problem = replay(ENV, STATE, TOOLS, calls, checkpoints("b"))
    assert problem is not None and problem.startswith("step 2 (update_ticket_status): invalid arguments")
    assert len(steps) == 2 and steps[1].error


def test_checkpoints_must_be_covered_in_order() -> None:
    reordered = [CALLS["b"][1], CALLS["b"][0]]
    _, problem = replay(ENV, STATE, TOOLS, reordered, checkpoints("b"))
    assert problem is not None and "checkpoint b_cp2 expects update_ticket_status after step 2" in problem
    _, problem = replay(ENV, STATE, TOOLS, CALLS["a"][:2], checkpoints("a"))
    assert problem is not None and "a_cp2" in problem
    _, problem = replay(ENV, STATE, TOOLS, [], checkpoints("a"))
    assert problem == "the trajectory makes no tool call"


def test_an_erroring_call_does_not_count_for_a_checkpoint() -> None:
    calls = [{"tool": "issue_refund", "arguments": {"refund_id": "R", "ticket_id": "T-9", "amount": 1}},
             *CALLS["b"]]
    _, problem = replay(ENV, STATE, TOOLS, calls, checkpoints("b"))
    assert problem is not None and problem.startswith("step 1 (issue_refund)")


def test_episode_score_per_pole() -> None:
    case = AgentCase(id="c", case_name="c", environment="SupportDesk", value_system="mft08",
                     value_items=["Care", "Fairness"], task_description="t", initial_state=STATE,
                     checkpoints_a=checkpoints("a"), checkpoints_b=checkpoints("b"))
    steps, _ = replay(ENV, STATE, TOOLS, CALLS["a"], checkpoints("a"))
    result = score(case, steps, TOOLS)
    assert result.a.met == {"a_cp1": True, "a_cp2": True} and result.a.score == 1.0
    assert result.b.met == {"b_cp1": False, "b_cp2": False} and result.leaning == "a"
    half = score(case, [TrajectoryStep(tool="update_ticket_status", arguments={}, observation={})], TOOLS)
    assert half.b.met == {"b_cp1": False, "b_cp2": True} and half.b.score == 0.5 and half.leaning == "b"
    failed = score(case, [TrajectoryStep(tool="update_ticket_status", arguments={}, error="x")], TOOLS)
    assert failed.leaning == "tie"
