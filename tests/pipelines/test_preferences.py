"""Stance-controlled preference pairs: the chain on the fake server with canned answers; style and length
filters drop with reasons; the stance judge; DPO export loads in `datasets`; bad recipes; a local-model run."""

from __future__ import annotations

import re
from typing import Any

import pytest
from corpus_chains_harness import run, system_and_user

from valuecorpus.pipelines.chains.preferences import DPO_COLUMNS, topics, write_dpo
from valuecorpus.pipelines.prompts import load_template
from valuecorpus.pipelines.recipes import load_recipe
from valuecorpus.pipelines.style_checks import StyleBounds, length_ratio, style_problem
from valuecorpus.schemas.errors import RecipeError
from valuecorpus.schemas.records import PreferencePair

POSITION_TOPIC = {t["position"]: name for name, t in topics().items()}


def response_text(topic: str, side: str) -> str:
    """Matched responses: same shape and length, opposite stance; some topics carry one style difference."""
    pos = topics()[topic]["position"]
    support = (f"I support the view that {pos}. It helps people plan their days and it saves money for many "
               f"families. It also gives communities more time for what matters most to them.")
    oppose = (f"I oppose the view that {pos}. It makes daily planning harder and it costs many families more "
              f"money. It also takes time away from what matters most to them.")
    if topic == "remote_work" and side == "oppose":
        return f"I oppose the view that {pos}."
    if topic == "nuclear_energy" and side == "oppose":
        return (f"I oppose the view that {pos}, perhaps. It might make planning harder and it depends on the "
                f"family. It could be that it takes time away from what matters most to them.")
    if topic == "basic_income" and side == "support":
        return (f"I support the view that {pos}.\n- It helps people plan their days and saves money.\n"
                f"- It gives communities more time for what matters most to them.")
    if topic == "animal_testing" and side == "support":
        return support.replace("It helps", "It REALLY helps").replace("them.", "them!!")
    if topic == "school_uniforms" and side == "oppose":
        return (f"As an AI I cannot take sides, but I oppose the view that {pos}. It makes planning harder "
                f"and it costs families more money. It takes time away from what matters.")
    return support if side == "support" else oppose


def respond(req: dict[str, Any]) -> Any:
    system, user = system_and_user(req)
    if "You write questions" in system:
        pos = re.search(r"The position under debate: (.+?)\.\n", user).group(1)
        return {"question": f"What do you make of the idea that {pos}?"}
    if "You answer questions" in system:
        pos = re.search(r"the idea that (.+)\?", user).group(1)
        side = "support" if "support the position" in user else "oppose"
        return {"response": response_text(POSITION_TOPIC[pos], side)}
    if "which side it takes" in system:
        response = re.search(r"Response: (.+)", user, re.DOTALL).group(1)
        pos = re.search(r"The position under debate: (.+)", user).group(1)
        if POSITION_TOPIC[pos] == "tourism_limits" and "I support" in response:
            return {"side": "neutral"}
        return {"side": "support" if "I support" in response else "oppose"}
    raise AssertionError(f"unexpected request: {system[:80]}")


EXPECTED_DROPS = {
    "remote_work": "length_ratio", "nuclear_energy": "hedging", "basic_income": "format",
    "animal_testing": "register", "school_uniforms": "refusal", "tourism_limits": "stance",
}


@pytest.fixture(scope="module")
def pp_run() -> Any:
    return run("preferences", respond, {"count": 12})


def test_records_field_by_field(pp_run: Any) -> None:
    plan = {it["sample_id"]: it for it in pp_run.plan}
    assert not pp_run.dead and len(pp_run.records) == 12
    assert {r.topic for r in pp_run.records} == set(topics())
    for rec in pp_run.records:
        assert isinstance(rec, PreferencePair)
        PreferencePair.model_validate(rec.model_dump(mode="json"))
        assert rec.topic == plan[rec.id]["topic_group"]
        assert rec.prompt == f"What do you make of the idea that {topics()[rec.topic]['position']}?"
        assert rec.chosen == response_text(rec.topic, "support")
        assert rec.rejected == response_text(rec.topic, "oppose")
        assert (rec.chosen_value, rec.rejected_value) == ("support", "oppose")
        assert rec.length_ratio == length_ratio(rec.chosen, rec.rejected)
        assert rec.taxonomy is None
        assert rec.provenance.prompt_templates == sorted(
            load_template(f"preferences/{s}").ref for s in ("question", "response", "stance"))
    for rec in pp_run.kept:
        assert rec.chosen_judged == "support" and rec.rejected_judged == "oppose"


def test_style_and_stance_failures_are_filtered_with_reasons(pp_run: Any) -> None:
    topic_of = {r.id: r.topic for r in pp_run.records}
    dropped = {topic_of[f.sample_id]: f for f in pp_run.filtered}
    assert {t: f.filter for t, f in dropped.items()} == EXPECTED_DROPS
    assert "length ratio" in dropped["remote_work"].reason
    assert dropped["nuclear_energy"].reason == "hedging asymmetry: 0 hedges in chosen vs 4 in rejected"
    assert dropped["tourism_limits"].reason == "the judge read 'neutral' in the chosen response (meant 'support')"
    assert len(pp_run.kept) == 6


def test_both_responses_come_from_one_template_differing_only_in_side(pp_run: Any) -> None:
    answers = [r for r in pp_run.chain_requests() if "You answer questions" in system_and_user(r)[0]]
    assert len(answers) == 24
    by_question: dict[str, list[str]] = {}
    for r in answers:
        system, user = system_and_user(r)
        by_question.setdefault(system + re.sub(r"from this side: .+?\.", "", user), []).append(user)
    assert len(by_question) == 12 and all(len(v) == 2 for v in by_question.values())


def test_stance_judge_is_constrained(pp_run: Any) -> None:
    judge = next(r for r in pp_run.chain_requests() if "which side it takes" in system_and_user(r)[0])
    assert judge["schema"]["properties"]["side"]["enum"] == ["support", "oppose", "neutral"]


def test_dpo_export_loads_in_datasets(pp_run: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    path = write_dpo(pp_run.kept, tmp_path / "dpo.parquet")
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.column_names == list(DPO_COLUMNS)
    assert ds.num_rows == len(pp_run.kept)
    assert ds[0] == {c: getattr(pp_run.kept[0], c) for c in DPO_COLUMNS}


def test_value_pair_mode_serves_two_values() -> None:
    res = run("preferences", _value_mode_respond, {
        "count": 2, "taxonomy": "schwartz", "strata": {"topic_groups": ["meat_tax", "voting_age"],
                                                      "value_pairs": [["Tradition", "Universalism"]]}})
    assert not res.dead and len(res.kept) == 2
    for rec in res.kept:
        assert (rec.chosen_value, rec.rejected_value) == ("Tradition", "Universalism")
        assert rec.taxonomy == "schwartz" and rec.chosen_judged == "Tradition"


def _value_mode_respond(req: dict[str, Any]) -> Any:
    system, user = system_and_user(req)
    if "You write questions" in system:
        return {"question": f"What should be done about {re.search(r'Topic: (.+?)[.]', user).group(1)}?"}
    if "You answer questions" in system:
        value = re.search(r"serves the value '(.+?)'", user).group(1)
        question = re.search(r"Question: (.+)", user).group(1)
        return {"response": f"On {question.lower()} the answer that serves {value} keeps what matters to people "
                            f"and treats them fairly in daily life, with {value.lower()} first."}
    if "which side it takes" in system:
        return {"side": "Tradition" if "serves Tradition" in user else "Universalism"}
    raise AssertionError(system)


def test_style_checks_directly() -> None:
    a = "Cities should welcome visitors because tourism pays for museums and keeps small shops open all year."
    b = "Cities should limit visitors because crowds push out residents and wear down old streets every year."
    assert style_problem(a, b) is None
    assert style_problem(a, a)[0] == "no_value_gap"
    assert style_problem(a, b + " " + b)[0] == "length_ratio"
    assert style_problem(a, b + " Truly.", StyleBounds(max_length_ratio=1.0))[0] == "length_ratio"
    assert style_problem(a + " Perhaps it depends.", b)[0] == "hedging"
    zh_a = "应该限制游客，因为人太多会影响居民生活和古老街道。"
    zh_b = "应该欢迎游客，因为旅游收入能支持博物馆和小商店。"
    assert style_problem(zh_a, zh_b) is None


@pytest.mark.parametrize(("overrides", "key"), [
    ({"strata": {"topic_groups": ["remote_work", "moon_base"]}}, "strata.topic_groups[1]"),
    ({"strata": {"languages": ["de"]}}, "strata.languages[0]"),
    ({"params": {"chosen_stance": "neutral"}}, "params.chosen_stance"),
    ({"params": {"max_length_ratio": 0.5}}, "params.max_length_ratio"),
    ({"params": {"length_ratio": 1.2}}, "params.length_ratio"),
])
def test_bad_recipe_values_fail_naming_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(RecipeError, match=re.escape(f"key '{key}'")):
        load_recipe("preferences", overrides)


def test_local_model_small_run(tmp_path: Any) -> None:
    res = run("preferences", None, {"count": 1, "strata": {"topic_groups": ["four_day_week"], "languages": ["en"]},
                                    "model": {"backend": "local", "max_tokens": 64,
                                              "step_max_tokens": {"question": 40, "stance": 16}},
                                    "params": {"words": 30}}, local=True, cache_dir=tmp_path)
    res.assert_accounted(closed=True)
    for rec in res.records:
        PreferencePair.model_validate(rec.model_dump(mode="json"))
        assert rec.chosen_judged in ("support", "oppose", "neutral")
        assert rec.provenance.endpoint_kind == "local"
