"""CVC-style value rules: seed (topic, language from the plan) → scene → rule of thumb (judgment + action) →
refine → relevance check (0/1) → classification into levels / core / derived values (constrained to the `cvc`
taxonomy; hierarchy repaired by adding missing parents) → label −1/0/1 → rewrite (−1 only) → translation.

Relevance 0 and label 0 ("unrelated to the value system") end as records that `check` drops with their reason,
so every filtered rule is in the run's filtered table; the later steps skip such samples (no request).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from valuecorpus.pipelines.chains.base import Chain, SampleState, Step, strata_problems
from valuecorpus.pipelines.chains.bounds import bound_chars
from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult
from valuecorpus.schemas.jsonschema import constrain, model_json_schema
from valuecorpus.schemas.records import Record, ValueRule

TAXONOMY = "cvc"
LEVELS = ("level", "core", "derived")
LANGUAGES = ("zh", "en")
LANGUAGE_NAMES = {"zh": "Chinese (简体中文)", "en": "English"}


@cache
def scenes() -> dict[str, dict[str, list[str]]]:
    path = resources.files("valuecorpus.pipelines.chains") / "data" / "cvc_scenes.yaml"
    return yaml.safe_load(path.read_text("utf-8"))["topics"]


def taxonomy() -> Any:
    from valuecorpus.schemas.taxonomies.loader import load_taxonomy

    return load_taxonomy(TAXONOMY)


def pool_key(topic: str, language: str) -> str:
    return f"{topic}/{language}"


def seed_scene(plan_item: dict[str, Any]) -> tuple[str, str]:
    """(topic, seed) for a plan item: the seed situation the planner gave it, and the topic of its pool."""
    seed = plan_item["seed_situation"]
    return seed["pool"].rsplit("/", 1)[0], seed["text"]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hierarchy: Literal["repair", "filter"] = Field(
        "repair", description="a value chosen without its parent: add the parent (repair) or drop the rule")
    rewrite: bool = Field(True, description="rewrite rules labelled -1 (the original is kept in original_rule)")
    translate: bool = Field(True, description="fill `translation` with the rule in the other language")
    max_values: int = Field(3, ge=1, le=6, description="most values per level")
    text_max_chars: int = Field(200, ge=20, le=2000)


# --- structured outputs ------------------------------------------------------------------------------------

class SceneOut(BaseModel):
    scene: str


class RuleOut(BaseModel):
    judgment: str
    action: str
    rule: str


class RelevanceOut(BaseModel):
    relevant: Literal[0, 1]
    reason: str


class ClassOut(BaseModel):
    levels: list[str]
    core_values: list[str]
    derived_values: list[str]


class LabelOut(BaseModel):
    label: Literal[-1, 0, 1]
    reason: str


class TranslationOut(BaseModel):
    translation: str


# --- steps -------------------------------------------------------------------------------------------------

def _language(state: SampleState) -> str:
    return state.plan_item.get("language") or "zh"


def _vars(state: SampleState, **extra: Any) -> dict[str, Any]:
    lang = _language(state)
    return {"language": LANGUAGE_NAMES[lang], "lang": lang, **extra}


def _skipped(state: SampleState) -> bool:
    """Samples already judged irrelevant or unrelated make no more requests (their record gets filtered)."""
    return state.data.get("relevance") == 0 or state.data.get("label") == 0


class SceneStep(Step):
    name = "scene"
    template = "value_rules/scene"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        topic, seed = seed_scene(state.plan_item)
        state.data.update(topic=topic, seed=seed)
        schema = bound_chars(model_json_schema(SceneOut), self.chain.params.text_max_chars * 2)
        return [self.request(state, _vars(state, topic=topic.replace("_", " "), seed=seed), schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        state.data["scene"] = " ".join(SceneOut.model_validate(results[0].parsed).scene.split())
        return state


class _RuleWriting(Step):
    """Writes a rule from one field of the sample (`source`): the scene first, then the rule itself to refine."""

    source = ""

    def schema(self) -> dict[str, Any]:
        return bound_chars(model_json_schema(RuleOut), self.chain.params.text_max_chars)

    def store(self, state: SampleState, result: GenerationResult) -> None:
        out = RuleOut.model_validate(result.parsed)
        rule = " ".join(out.rule.split())
        if not rule:
            raise ValueError("empty rule")
        state.data.update(rule=rule, judgment=" ".join(out.judgment.split()), action=" ".join(out.action.split()))

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        return [self.request(state, _vars(state, **{self.source: state.data[self.source]}), self.schema())]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        self.store(state, results[0])
        return state


class RuleStep(_RuleWriting):
    name = "rule"
    template = "value_rules/rule"
    source = "scene"


class RefineStep(_RuleWriting):
    name = "refine"
    template = "value_rules/refine"
    source = "rule"


class RelevanceStep(Step):
    name = "relevance"
    template = "value_rules/relevance"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        schema = bound_chars(model_json_schema(RelevanceOut), self.chain.params.text_max_chars)
        return [self.request(state, _vars(state, rule=state.data["rule"], framework=framework_listing()), schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        out = RelevanceOut.model_validate(results[0].parsed)
        state.data.update(relevance=out.relevant, relevance_reason=" ".join(out.reason.split()))
        return state


class ClassifyStep(Step):
    name = "classify"
    template = "value_rules/classify"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        if _skipped(state):
            return []
        tax, n = taxonomy(), self.chain.params.max_values
        schema = model_json_schema(ClassOut)
        for key, level in zip(("levels", "core_values", "derived_values"), LEVELS, strict=True):
            # only a level is required: a derived value alone implies its core value and level (repair)
            schema["properties"][key].update(minItems=1 if key == "levels" else 0, maxItems=n)
            schema = constrain(schema, f"{key}[]", tax.names(level))
        return [self.request(state, _vars(state, rule=state.data["rule"], framework=framework_listing()), schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        if not results:
            return state
        out = ClassOut.model_validate(results[0].parsed)
        chosen, problems = repair_hierarchy(
            {"level": out.levels, "core": out.core_values, "derived": out.derived_values},
            repair=self.chain.params.hierarchy == "repair",
        )
        state.data["classification"] = chosen
        if problems:
            state.data["hierarchy_problems"] = problems
        return state


class LabelStep(Step):
    name = "label"
    template = "value_rules/label"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        if _skipped(state):
            return []
        schema = bound_chars(model_json_schema(LabelOut), self.chain.params.text_max_chars)
        return [self.request(state, _vars(state, rule=state.data["rule"]), schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        if results:
            out = LabelOut.model_validate(results[0].parsed)
            state.data.update(label=out.label, label_reason=" ".join(out.reason.split()))
        return state


class RewriteStep(_RuleWriting):
    name = "rewrite"
    template = "value_rules/rewrite"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        if _skipped(state) or state.data.get("label") != -1 or not self.chain.params.rewrite:
            return []
        return [self.request(state, _vars(state, rule=state.data["rule"], reason=state.data.get("label_reason", "")),
                             self.schema())]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        if results:
            state.data["original_rule"] = state.data["rule"]
            self.store(state, results[0])
        return state


class TranslateStep(Step):
    name = "translate"
    template = "value_rules/translate"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        if _skipped(state) or not self.chain.params.translate:
            return []
        target = "en" if _language(state) == "zh" else "zh"
        schema = bound_chars(model_json_schema(TranslationOut), self.chain.params.text_max_chars * 2)
        return [self.request(state, {"rule": state.data["rule"], "target": LANGUAGE_NAMES[target]}, schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        if results:
            state.data["translation"] = " ".join(TranslationOut.model_validate(results[0].parsed).translation.split())
        return state


# --- taxonomy helpers --------------------------------------------------------------------------------------

@cache
def framework_listing() -> str:
    """The CVC framework as the prompts show it: level → core (English) → derived values, one line per core."""
    tax = taxonomy()
    lines = []
    for level in tax.nodes_at("level"):
        for core in tax.children(level.id):
            derived = "、".join(d.name for d in tax.children(core.id))
            lines.append(f"{level.name} > {core.name} ({core.names.get('en', '')}): {derived}")
    return "\n".join(lines)


def repair_hierarchy(chosen: dict[str, list[str]], repair: bool = True) -> tuple[dict[str, list[str]], list[str]]:
    """Canonical, de-duplicated names per level; with `repair`, every chosen node's missing ancestors are added
    (a derived value implies its core value and level). Returns the classification and the problems found
    (empty when consistent or repaired)."""
    tax = taxonomy()
    out = {lvl: list(dict.fromkeys(tax.lookup(v, lvl).name for v in chosen.get(lvl, []))) for lvl in LEVELS}
    problems = tax.check_hierarchy(out)
    if problems and repair:
        for lvl in ("derived", "core"):
            for name in list(out[lvl]):
                for anc in tax.ancestors(tax.lookup(name, lvl)):
                    if anc.name not in out[anc.level]:
                        out[anc.level].append(anc.name)
        return out, []
    return out, problems


# --- the chain ---------------------------------------------------------------------------------------------

class ValueRuleChain(Chain):
    kind = "value_rules"
    record_kinds = ("value_rule",)
    text_fields = ("rule",)  # what `text_of` reads
    Params = Params
    step_classes = (SceneStep, RuleStep, RefineStep, RelevanceStep, ClassifyStep, LabelStep, RewriteStep,
                    TranslateStep)
    stratum_fields: ClassVar[dict[str, str]] = {"language": "language"}
    seed_template = "value_rules/seeds"

    def seed_keys(self, plan_item: dict[str, Any]) -> list[str]:
        """Seed scenes are written per language: the pools of the item's topic (or of every topic)."""
        language = plan_item.get("language") or "zh"
        chosen = plan_item.get("topic_group")
        return [pool_key(t, language) for t in ([chosen] if chosen else sorted(scenes()))]

    def shipped_seeds(self) -> dict[str, list[str]]:
        return {pool_key(t, lang): list(seeds) for t, by_lang in scenes().items() for lang, seeds in by_lang.items()}

    def seed_variables(self, key: str) -> dict[str, Any]:
        topic, lang = key.rsplit("/", 1)
        return {"topic": topic.replace("_", " "), "language": LANGUAGE_NAMES.get(lang, lang)}

    @classmethod
    def validate_recipe(cls, recipe: Any) -> list[tuple[str, str]]:
        problems = []
        if recipe.taxonomy not in (None, TAXONOMY):
            problems.append(("taxonomy", f"the value_rules chain classifies into '{TAXONOMY}'"))
        topic = "unknown scene topic '{value}' (known: " + ", ".join(sorted(scenes())) + ")"
        problems += strata_problems(recipe, "topic_groups", scenes(), topic)
        problems += strata_problems(recipe, "languages", LANGUAGES, "unsupported language '{value}' (zh or en)")
        return problems

    def provenance(self, state: SampleState) -> Any:
        prov = super().provenance(state)
        ref = taxonomy().ref
        if ref not in prov.taxonomy_versions:
            prov.taxonomy_versions.append(ref)
        return prov

    def finish(self, state: SampleState) -> list[Record]:
        d = state.data
        cls = d.get("classification") or {lvl: [] for lvl in LEVELS}
        return [ValueRule(
            id=self.record_id(state), provenance=self.provenance(state), rule=d["rule"],
            translation=d.get("translation"), language=_language(state), scene=d["scene"],
            judgment=d.get("judgment"), action=d.get("action"), levels=cls["level"],
            core_values=cls["core"], derived_values=cls["derived"], relevance=d.get("relevance"),
            label=d.get("label"), original_rule=d.get("original_rule"),
        )]

    def text_of(self, record: Record) -> str:
        assert isinstance(record, ValueRule)
        return record.rule

    def echo_fields(self, record: Record) -> list[tuple[str, str, bool]]:
        assert isinstance(record, ValueRule)
        return [("rule", record.rule, False), ("scene", record.scene, True),
                ("translation", record.translation or "", False)]

    def check(self, record: Record) -> tuple[str, str] | None:
        assert isinstance(record, ValueRule)
        if record.relevance == 0:
            return "relevance", "judged not relevant to the CVC value framework"
        if record.label == 0:
            return "label", "labelled 0: unrelated to the value system"
        if self.params.hierarchy == "filter":
            problems = taxonomy().check_hierarchy(
                {"level": record.levels, "core": record.core_values, "derived": record.derived_values})
            if problems:
                return "hierarchy", "; ".join(problems)
        if not record.levels or not record.core_values:
            return "classification", "no level or core value"
        if record.label == -1 and self.params.rewrite and not record.original_rule:
            return "rewrite", "labelled -1 but not rewritten"
        return None
