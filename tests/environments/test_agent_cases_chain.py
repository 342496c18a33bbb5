"""The agent-case chain on the fake server (canned answers with planted faults), and one tiny run on the
embedded local model (only what the toolkit guarantees: every plan item accounted for)."""

from __future__ import annotations

from typing import Any

import pytest
from agent_canned import BAD_COVERAGE, BAD_STEP, LEAK, respond
from corpus_chains_harness import run

from valuecorpus.pipelines.chains.agent_cases import leakage_terms, shipped_environments
from valuecorpus.pipelines.environments import state_problem
from valuecorpus.pipelines.filters.text import find_terms
from valuecorpus.schemas.records import AgentCase, Rubric
from valuecorpus.schemas.taxonomies.loader import load_taxonomy

OVERRIDES = {
    "count": 6, "params": {"systems": ["mft08"], "pairs_per_system": 6, "environments": ["SupportDesk"]},
    "filters": {"near_duplicate": {"enabled": False}, "language": {"enabled": False}},
}


@pytest.fixture(scope="module")
def cases_run() -> Any:
    return run("agent_cases", respond, OVERRIDES)


def pairs(records: list[Any]) -> set[tuple[str, str]]:
    return {tuple(r.value_items) for r in records if isinstance(r, AgentCase)}


def test_every_plan_item_is_accounted_for(cases_run: Any) -> None:
    cases_run.assert_accounted()
    assert cases_run.dead == []
    assert len(cases_run.plan) == 6 and len({tuple(it["value_conflict"]) for it in cases_run.plan}) == 6


def test_kept_cases_are_whole(cases_run: Any) -> None:
    env = shipped_environments()["SupportDesk"]
    tools = {t.name for t in env.tools}
    mft = {n.name for n in load_taxonomy("agent_valuebench").values_of("mft08")}
    cases = [r for r in cases_run.kept if isinstance(r, AgentCase)]
    rubrics = {r.case_name: r for r in cases_run.kept if isinstance(r, Rubric)}
    assert len(cases) == 3 and set(rubrics) == {c.case_name for c in cases}
    for case in cases:
        AgentCase.model_validate(case.model_dump(mode="json"))
        assert case.environment == "SupportDesk" and case.value_system == "mft08"
        assert set(case.value_items) <= mft and len(set(case.value_items)) == 2
        assert set(case.function_list) <= tools
        assert state_problem(env, case.initial_state) is None
        for pole in "ab":
            cps = getattr(case, f"checkpoints_{pole}")
            assert 2 <= len(cps) <= 5
            assert [cp.checkpoint_id for cp in cps] == [f"{pole}_cp{i}" for i in range(1, len(cps) + 1)]
            assert all(set(cp.related_functions) <= tools and cp.expected_actions for cp in cps)
            golden = getattr(case, f"golden_{pole}")
            assert golden and all(s.error is None and s.observation["success"] for s in golden)
        assert not find_terms(case.task_description, leakage_terms(case.value_system, case.value_items))
        rubric = rubrics[case.case_name]
        assert [s.score for s in rubric.scale] == [0, 1, 2]
        assert (rubric.value_a_name, rubric.value_b_name) == tuple(case.value_items)
        for pole in "ab":
            ids = [cp.checkpoint_id for cp in getattr(case, f"checkpoints_{pole}")]
            items = getattr(rubric, f"items_{pole}")
            assert [i.source_checkpoint for i in items] == ids
            assert all(1 <= i.weight <= 5 and i.question and i.score_2 and i.score_0 for i in items)


def test_planted_faults_are_filtered_with_their_reasons(cases_run: Any) -> None:
    by_pair = {tuple(r.value_items): r.id for r in cases_run.records if isinstance(r, AgentCase)}
    reasons = {f.sample_id: f for f in cases_run.filtered}
    leak = reasons[by_pair[LEAK]]
    assert leak.filter == "leakage" and "Loyalty" in leak.reason
    step = reasons[by_pair[BAD_STEP]]
    assert step.filter == "replay" and step.reason == "pole b (Purity): step 1 (issue_refund): ticket not found"
    coverage = reasons[by_pair[BAD_COVERAGE]]
    assert coverage.filter == "replay" and coverage.reason.startswith("pole a (Loyalty): checkpoint a_cp2 expects")
    # the leaked case's rubric goes with it; the failed replays never made one
    dependents = [f for f in cases_run.filtered if f.filter == "dependent"]
    assert len(dependents) == 1 and dependents[0].matched_id == by_pair[LEAK] and dependents[0].kind == "rubric"
    assert pairs(cases_run.kept).isdisjoint({LEAK, BAD_STEP, BAD_COVERAGE})


def test_requests_constrain_tools_and_state(cases_run: Any) -> None:
    env = shipped_environments()["SupportDesk"]
    names = [t.name for t in env.tools]
    schemas = [r["schema"] for r in cases_run.chain_requests()]
    checkpoints = [s for s in schemas if "checkpoints" in s.get("properties", {})]
    golden = [s for s in schemas if "calls" in s.get("properties", {})]
    state = [s for s in schemas if set(s.get("properties", {})) == {"customers", "tickets", "refunds"}]
    assert len(checkpoints) == len(golden) == 12 and len(state) == 6
    tool_enum = checkpoints[0]["properties"]["checkpoints"]["items"]["properties"]["actions"]["items"]
    assert tool_enum["properties"]["tool"]["enum"] == names
    call = golden[0]["properties"]["calls"]["items"]
    assert call["properties"]["tool"]["enum"] == names and golden[0]["properties"]["calls"]["maxItems"] == 8
    # the golden prompt lists each tool's parameters in the spec's key order
    golden_prompts = [r["last_user"] for r in cases_run.chain_requests()
                      if "calls" in r["schema"].get("properties", {})]
    assert '"refund_id": {"type": "string"}, "ticket_id": {"type": "string"}, "amount"' in golden_prompts[0]


def test_leakage_terms_are_the_values_names_and_synonyms() -> None:
    tax = load_taxonomy("agent_valuebench")
    with_synonyms = next((n for n in tax.nodes_at("value") if n.synonyms), None)
    terms = leakage_terms("mft08", ["Care", "Fairness"])
    assert {"Care", "Fairness"} <= set(terms)
    if with_synonyms is not None:
        system = tax.nodes[with_synonyms.parent].name
        assert set(with_synonyms.synonyms) <= set(leakage_terms(system, [with_synonyms.name]))
    assert find_terms("Please take care of ticket T-1.", terms) == ["Care"]
    assert find_terms("Treat it fairly and carefully.", terms) == []


def test_unknown_system_and_environment_are_recipe_errors() -> None:
    from valuecorpus.pipelines.chains import chain_class
    from valuecorpus.pipelines.recipes import load_recipe
    from valuecorpus.schemas.errors import RecipeError

    with pytest.raises(RecipeError, match=r"params\.systems"):
        load_recipe("agent_cases", {"params": {"systems": ["nope"]}})
    recipe = load_recipe("agent_cases", {"params": {"environments": ["Atlantis"]}})
    with pytest.raises(RecipeError, match="Atlantis"):
        chain_class("agent_cases")(recipe)
    imported = {"id": "x", "env_name": "Imported", "tools": [], "executable": False}
    with pytest.raises(RecipeError, match="executable"):
        chain_class("agent_cases")(load_recipe("agent_cases"), [imported])


def test_one_case_on_the_local_model() -> None:
    overrides = {
        "count": 1, "params": {"systems": ["mft08"], "pairs_per_system": 1, "environments": ["SupportDesk"],
                               "max_calls": 3},
        "model": {"backend": "local", "max_tokens": 120,
                  "step_max_tokens": {"task": 120, "state": 180, "checkpoints": 160, "golden": 140, "rubric": 180}},
    }
    result = run("agent_cases", None, overrides, local=True)
    result.assert_accounted()
    assert len(result.plan) == 1
