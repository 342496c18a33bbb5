"""CVC value rules: the chain on the fake server with canned answers, field by field against the record model
and the `cvc` taxonomy; the -1 rewrite path, relevance/label filtering, hierarchy repair; bad recipes; one
small run on the embedded local model."""

from __future__ import annotations

import re
from typing import Any

import pytest
from corpus_chains_harness import run, system_and_user

from valuecorpus.pipelines.chains.value_rules import repair_hierarchy, scenes
from valuecorpus.pipelines.prompts import load_template
from valuecorpus.pipelines.recipes import load_recipe
from valuecorpus.schemas.errors import RecipeError
from valuecorpus.schemas.records import ValueRule
from valuecorpus.schemas.taxonomies.loader import load_taxonomy

TAX = load_taxonomy("cvc")
SEED_TOPIC = {seed: topic for topic, langs in scenes().items() for seeds in langs.values() for seed in seeds}

# Canned rules per topic and language; the responder maps texts back to their topic.
RULES = {
    "law": {"zh": "帮朋友在合同上代签名字没什么大不了", "en": "Signing a contract in a friend's name is no big deal."},
    "online": {"zh": "发朋友圈时可以多用表情", "en": "Using many emojis in posts is fine."},
    "commerce": {"zh": "买东西时可以货比三家", "en": "Comparing prices before buying is sensible."},
    "family": {"zh": "子女应该关心年迈的父母", "en": "Children should look after their ageing parents."},
    "school": {"zh": "同学之间应该互相帮助完成作业", "en": "Classmates should help each other with group work."},
    "workplace": {"zh": "工作中应该尊重同事的劳动成果", "en": "You should respect your colleagues' work."},
    "public_life": {"zh": "在公共场所应该遵守秩序", "en": "It is right to keep order in public places."},
    "environment": {"zh": "保护河流不受污染是每个人的责任", "en": "Keeping rivers clean is everyone's duty."},
    "community": {"zh": "邻里之间应该互相体谅", "en": "Neighbours should be considerate of each other."},
}
REWRITES = {"zh": "不应该替别人在合同上代签名字", "en": "You should not sign a contract in someone else's name."}
CLASSES = {  # family and school leave out parents: the chain repairs the hierarchy
    "family": {"levels": ["个人"], "core_values": [], "derived_values": ["尊重他人", "关爱他人"]},
    "school": {"levels": ["社会"], "core_values": [], "derived_values": ["团队合作"]},
    "law": {"levels": ["个人"], "core_values": ["诚信"], "derived_values": ["真诚无欺"]},
}
DEFAULT_CLASS = {"levels": ["社会"], "core_values": ["法治"], "derived_values": ["严格守法"]}


def _topic_of_rule(text: str) -> str:
    for topic, by_lang in RULES.items():
        if text in by_lang.values():
            return topic
    if text in REWRITES.values():
        return "law"
    return "other"


def respond(req: dict[str, Any]) -> Any:
    system, user = system_and_user(req)
    lang = "zh" if "Chinese" in user else "en"
    if "concrete everyday scenes" in system:
        return {"scene": re.search(r"Seed: (.+?)\.\n", user).group(1)}
    if "You write rules of thumb" in system:
        topic = SEED_TOPIC[re.search(r"Scene: (.+)", user).group(1).strip()]
        rule = RULES[topic][lang]
        return {"judgment": "judgment", "action": "action", "rule": rule + " "}  # refine tidies it
    rule = re.search(r"Rule: (.+)", user).group(1).strip()
    topic = _topic_of_rule(rule)
    if "You edit rules" in system:
        return {"judgment": "应该" if lang == "zh" else "should", "action": rule[:6], "rule": rule}
    if "concerns the values" in system:
        return {"relevant": 0 if topic == "online" else 1, "reason": "a one-sentence reason"}
    if "You classify" in system:
        return CLASSES.get(topic, DEFAULT_CLASS)
    if "You check rules" in system:
        label = {"law": -1, "commerce": 0}.get(topic, 1)
        if rule in REWRITES.values():
            label = 1
        return {"label": label, "reason": "it approves of signing in another's name"}
    if "You rewrite" in system:
        return {"judgment": "不应该" if lang == "zh" else "should not", "action": "代签", "rule": REWRITES[lang]}
    if "You translate" in system:
        return {"translation": f"translation of: {rule}"}
    raise AssertionError(f"unexpected request: {system[:80]}")


@pytest.fixture(scope="module")
def vr_run() -> Any:
    return run("value_rules", respond, {"count": 18})


def test_records_field_by_field(vr_run: Any) -> None:
    plan = {it["sample_id"]: it for it in vr_run.plan}
    assert not vr_run.dead
    assert len(vr_run.records) == len(plan) == 18
    assert {it["language"] for it in plan.values()} == {"zh", "en"}
    for rec in vr_run.kept:
        assert isinstance(rec, ValueRule)
        ValueRule.model_validate(rec.model_dump(mode="json"))
        item = plan[rec.id]
        assert rec.language == item["language"]
        assert SEED_TOPIC[rec.scene] == item["topic_group"]
        assert rec.relevance == 1 and rec.label in (1, -1)
        assert rec.translation == f"translation of: {rec.rule}"
        assert rec.judgment and rec.action and rec.rule == rec.rule.strip()
        for level, names in (("level", rec.levels), ("core", rec.core_values), ("derived", rec.derived_values)):
            assert names and all(TAX.get(n, level) is not None and TAX.canonical(n, level) == n for n in names)
        assert TAX.check_hierarchy({"level": rec.levels, "core": rec.core_values, "derived": rec.derived_values}) == []
        prov = rec.provenance
        assert prov.recipe == "value_rules" and prov.generator_model == "fake-model" and prov.plan_item == rec.id
        assert prov.taxonomy_versions == [TAX.ref]
        steps = ["classify", "label", "refine", "relevance", "rule", "scene", "translate"]
        steps += ["rewrite"] if rec.label == -1 else []
        assert prov.prompt_templates == sorted(load_template(f"value_rules/{s}").ref for s in steps)


def test_minus_one_is_rewritten_and_keeps_the_original(vr_run: Any) -> None:
    law = [r for r in vr_run.kept if SEED_TOPIC[r.scene] == "law"]
    assert len(law) == 2
    for rec in law:
        assert rec.label == -1
        assert rec.original_rule == RULES["law"][rec.language]
        assert rec.rule == REWRITES[rec.language]
        assert rec.judgment in ("不应该", "should not")
    assert all(r.original_rule is None for r in vr_run.kept if r not in law)


def test_irrelevant_and_unrelated_rules_are_filtered_with_reasons(vr_run: Any) -> None:
    by_topic = {r.id: SEED_TOPIC[r.scene] for r in vr_run.records}
    dropped = {(by_topic[f.sample_id], f.filter, f.reason) for f in vr_run.filtered}
    assert dropped == {
        ("online", "relevance", "judged not relevant to the CVC value framework"),
        ("commerce", "label", "labelled 0: unrelated to the value system"),
    }
    assert len(vr_run.filtered) == 4 and len(vr_run.kept) == 14
    # irrelevant rules made no classification, label or translation request
    irrelevant = [r for r in vr_run.records if by_topic[r.id] == "online"]
    assert all(r.relevance == 0 and r.levels == [] and r.label is None for r in irrelevant)
    # scene/rule/refine/relevance for all; classify + label for relevant; one rewrite per -1; translate the rest
    assert len(vr_run.chain_requests()) == 18 * 4 + 16 * 2 + 2 * 1 + 14 * 1


def test_hierarchy_repaired_by_adding_parents(vr_run: Any) -> None:
    family = next(r for r in vr_run.kept if SEED_TOPIC[r.scene] == "family")
    assert family.levels == ["个人"] and family.core_values == ["友善"]
    assert family.derived_values == ["尊重他人", "关爱他人"]
    school = next(r for r in vr_run.kept if SEED_TOPIC[r.scene] == "school")
    assert school.levels == ["社会", "个人"] and school.core_values == ["敬业"]


def test_classification_schema_is_constrained_to_the_taxonomy(vr_run: Any) -> None:
    req = next(r for r in vr_run.chain_requests() if "You classify" in system_and_user(r)[0])
    props = req["schema"]["properties"]
    assert props["levels"]["items"]["enum"] == TAX.names("level")
    assert props["core_values"]["items"]["enum"] == TAX.names("core")
    assert props["derived_values"]["items"]["enum"] == TAX.names("derived")


def test_hierarchy_filter_mode_drops_inconsistent_rules() -> None:
    res = run("value_rules", respond, {"count": 18, "params": {"hierarchy": "filter"}})
    hier = {f.sample_id: f.reason for f in res.filtered if f.filter == "hierarchy"}
    topics = {SEED_TOPIC[r.scene] for r in res.records if r.id in hier}
    assert topics == {"family", "school"} and len(hier) == 4
    assert all("needs its parent" in reason for reason in hier.values())


def test_repair_helper() -> None:
    fixed, problems = repair_hierarchy({"level": [], "core": [], "derived": ["Teamwork"]})
    assert problems == [] and fixed == {"level": ["个人"], "core": ["敬业"], "derived": ["团队合作"]}
    kept, problems = repair_hierarchy({"level": [], "core": [], "derived": ["团队合作"]}, repair=False)
    assert problems and kept["level"] == []


@pytest.mark.parametrize(("overrides", "key"), [
    ({"taxonomy": "schwartz"}, "taxonomy"),
    ({"strata": {"languages": ["zh", "fr"]}}, "strata.languages[1]"),
    ({"strata": {"topic_groups": ["family", "space_travel"]}}, "strata.topic_groups[1]"),
    ({"params": {"hierarchy": "ignore"}}, "params.hierarchy"),
    ({"params": {"rewrites": True}}, "params.rewrites"),
])
def test_bad_recipe_values_fail_naming_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(RecipeError, match=re.escape(f"key '{key}'")):
        load_recipe("value_rules", overrides)


def test_local_model_small_run(tmp_path: Any) -> None:
    """One sample on the embedded model: weak output, but every sample is accounted for and whatever it
    classifies is in the taxonomy (the grammar constrains it)."""
    overrides = {
        "count": 1, "strata": {"languages": ["en"], "topic_groups": ["public_life"]},
        "model": {"backend": "local", "max_tokens": 48, "step_max_tokens": {"classify": 96}},
        "params": {"translate": False, "text_max_chars": 40, "max_values": 1},
    }
    res = run("value_rules", None, overrides, local=True, cache_dir=tmp_path)
    res.assert_accounted(closed=True)
    for rec in res.records:
        ValueRule.model_validate(rec.model_dump(mode="json"))
        assert all(TAX.get(n, "derived") for n in rec.derived_values)
        assert rec.provenance.endpoint_kind == "local"


def test_cli_generate_on_beam(cli: Any, home: Any) -> None:
    """`valuecorpus generate value_rules` on the default Beam executor stages the same outcome as the loop."""
    from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

    from valuecorpus.schemas.layout import RunLayout

    def hook(req: dict[str, Any]) -> Any:  # the engine's dialect probe has no system message
        return respond(req) if system_and_user(req)[0] else None

    with FakeServer(FakeServerConfig(responder=hook)) as server:
        res = cli("generate", "value_rules", "--n", "18", "--base-url", server.base_url, "--model", "fake-model",
                  "--run-id", "vr", "--no-progress")
    assert res.code == 0, res.stderr
    layout = RunLayout(home / "runs" / "vr")
    manifest = layout.read_manifest()
    assert manifest.counts == {"value_rule": 14} and manifest.filtered == 4 and manifest.dead_letters == 0
    assert TAX.ref.split("@")[0] in manifest.taxonomy_versions
    rules = layout.read_records("records/value_rule")
    assert sorted(r.label for r in rules).count(-1) == 2 and all(r.levels for r in rules)

    filtered = layout.read_table("filtered").to_pylist()
    assert sorted(f["filter"] for f in filtered) == ["label", "label", "relevance", "relevance"]
