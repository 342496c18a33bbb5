"""CVC rule-pair dilemmas: value rules (handed over by the caller) → candidate pairs that are similar
(text similarity; `pipelines/similarity.py`) and serve different values → an LLM contradiction check → a scene
with three options written for labelled slots (follows rule 1, follows rule 2, irrelevant distractor), which
the toolkit shuffles with the sample's seed. The answer key (`RuleOption.follows`) is set by construction and
never asked of the model.

A pair the model judges compatible becomes a record with `contradiction` 0 and no scene, which `check` drops
with its reason (the run's filtered table), so no pair disappears silently.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from valuecorpus.pipelines.chains.base import Chain, SampleState, Step
from valuecorpus.pipelines.chains.bounds import bound_chars
from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult
from valuecorpus.schemas.errors import RecipeError
from valuecorpus.schemas.jsonschema import model_json_schema
from valuecorpus.schemas.records import Record, RulePairDilemma
from valuecorpus.schemas.records.value_rules import RuleOption, RuleRef

SLOTS = ("rule_1", "rule_2", "distractor")
LETTERS = ("A", "B", "C")
LANGUAGE_NAMES = {"zh": "Chinese (简体中文)", "en": "English"}


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    similarity: Literal["char_ngram", "minilm"] = Field(
        "char_ngram", description="char_ngram: built in; minilm: all-MiniLM-L6-v2 (needs torch, English text)")
    min_similarity: float = Field(0.3, ge=-1, le=1, description="pairs at least this similar are candidates")
    max_similarity: float = Field(0.95, ge=-1, le=1, description="pairs this similar are paraphrases: left out")
    different_values: bool = Field(True, description="keep pairs whose derived (or core) values differ")
    text_max_chars: int = Field(300, ge=20, le=2000)

    @field_validator("max_similarity")
    @classmethod
    def _band(cls, v: float, info: ValidationInfo) -> float:
        if v <= info.data.get("min_similarity", -1):
            raise ValueError("must be above min_similarity")
        return v


class ConflictOut(BaseModel):
    conflict: Literal[0, 1]
    reason: str


class SceneOut(BaseModel):
    scene: str
    option_rule_1: str
    option_rule_2: str
    option_distractor: str


def rule_ref(record: dict[str, Any]) -> dict[str, Any]:
    """What the chain needs of a value rule (a dict, as the caller hands it over)."""
    return {k: record.get(k) for k in ("id", "rule", "translation", "language", "levels", "core_values",
                                       "derived_values")}


def _values(rule: dict[str, Any]) -> set[str]:
    return set(rule.get("derived_values") or []) or set(rule.get("core_values") or [])


def candidate_pairs(rules: list[dict[str, Any]], params: Params) -> list[dict[str, Any]]:
    """Pairs of rules within the similarity band (most similar first), optionally serving different values."""
    from valuecorpus.pipelines.similarity import similar_pairs

    rules = sorted(rules, key=lambda r: r["id"])
    if params.similarity == "minilm":  # an English model: compare English text
        texts = [r["rule"] if r.get("language") == "en" or not r.get("translation") else r["translation"]
                 for r in rules]
    else:
        texts = [r["rule"] for r in rules]
    out = []
    for i, j, sim in similar_pairs(texts, params.min_similarity, params.similarity, params.max_similarity):
        a, b = rules[i], rules[j]
        if params.different_values and _values(a) == _values(b):
            continue
        out.append({"rule_1": a, "rule_2": b, "similarity": sim})
    return out


def _rule_text(rule: dict[str, Any], language: str) -> str:
    if rule.get("language", "zh") != language and rule.get("translation"):
        return rule["translation"]
    return rule["rule"]


def _language(state: SampleState) -> str:
    return state.plan_item.get("language") or state.plan_item["rule_pair"]["rule_1"].get("language") or "zh"


class ContradictionStep(Step):
    name = "contradiction"
    template = "rule_pairs/contradiction"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        pair = state.plan_item["rule_pair"]
        schema = bound_chars(model_json_schema(ConflictOut), self.chain.params.text_max_chars)
        return [self.request(state, {"rule_1": pair["rule_1"]["rule"], "rule_2": pair["rule_2"]["rule"]}, schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        out = ConflictOut.model_validate(results[0].parsed)
        state.data.update(conflict=out.conflict, conflict_reason=" ".join(out.reason.split()))
        return state


class SceneStep(Step):
    """The model writes the scene and one option per labelled slot; it never sees letters or an order."""

    name = "scene"
    template = "rule_pairs/scene"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        if state.data.get("conflict") != 1:
            return []
        pair, lang = state.plan_item["rule_pair"], _language(state)
        schema = bound_chars(model_json_schema(SceneOut), self.chain.params.text_max_chars)
        return [self.request(state, {"rule_1": _rule_text(pair["rule_1"], lang),
                                     "rule_2": _rule_text(pair["rule_2"], lang),
                                     "conflict": state.data.get("conflict_reason", ""),
                                     "language": LANGUAGE_NAMES.get(lang, lang)}, schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        if not results:
            return state
        out = SceneOut.model_validate(results[0].parsed)
        texts = {s: " ".join(getattr(out, f"option_{s}").split()) for s in SLOTS}
        if len(set(texts.values())) < len(SLOTS):
            raise ValueError("two options have the same text")
        state.data.update(scene=" ".join(out.scene.split()), options=texts)
        return state


def shuffled_options(texts: dict[str, str], seed: int) -> list[RuleOption]:
    """Slots → letters by a seeded permutation: the key is known by construction, its letter varies."""
    order = list(SLOTS)
    random.Random(seed).shuffle(order)
    return [RuleOption(letter=letter, text=texts[slot], follows=slot)
            for letter, slot in zip(LETTERS, order, strict=True)]


class RulePairChain(Chain):
    kind = "rule_pair_dilemmas"
    record_kinds = ("rule_pair_dilemma",)
    text_fields = ("scene",)  # what `text_of` reads
    Params = Params
    step_classes = (ContradictionStep, SceneStep)

    @classmethod
    def validate_recipe(cls, recipe: Any) -> list[tuple[str, str]]:
        return [(f"strata.languages[{i}]", f"unsupported language '{lang}' (zh or en)")
                for i, lang in enumerate(recipe.strata.languages or []) if lang not in LANGUAGE_NAMES]

    def _pairs(self) -> list[dict[str, Any]]:
        if not hasattr(self, "_pair_cache"):
            self._pair_cache = candidate_pairs([rule_ref(r) for r in self.inputs], self.params)
        return self._pair_cache

    def extra_axes(self) -> dict[str, list[Any]]:
        if len(self.inputs) < 2:
            raise RecipeError(f"{self.recipe.source_path or self.recipe.name}: rule-pair dilemmas are built from "
                              "value rules: hand over a run or dataset of at least two value_rule records")
        pairs = self._pairs()
        if not pairs:
            raise RecipeError(
                f"{self.recipe.source_path or self.recipe.name}: key 'params.min_similarity': no pair of the "
                f"{len(self.inputs)} value rules is within the similarity band "
                f"[{self.params.min_similarity}, {self.params.max_similarity})")
        return {"rule_pair": pairs}

    when_short = "cap"  # one item per candidate pair: the recipe's count is an upper bound

    def planned_count(self) -> int:
        return min(self.recipe.count, len(self._pairs())) if self.inputs else self.recipe.count

    def capacity_note(self) -> str:
        return (f"the {len(self.inputs)} value rules give {len(self._pairs())} candidate pairs in the similarity "
                f"band [{self.params.min_similarity}, {self.params.max_similarity})")

    def finish(self, state: SampleState) -> list[Record]:
        pair, d = state.plan_item["rule_pair"], state.data
        refs = [RuleRef(rule_id=r["id"], rule=r["rule"], translation=r.get("translation"),
                        levels=r.get("levels") or [], core_values=r.get("core_values") or [],
                        derived_values=r.get("derived_values") or [])
                for r in (pair["rule_1"], pair["rule_2"])]
        options = shuffled_options(d["options"], int(state.plan_item["seed"])) if d.get("conflict") == 1 else []
        return [RulePairDilemma(
            id=self.record_id(state), provenance=self.provenance(state), rule_1=refs[0], rule_2=refs[1],
            similarity=pair["similarity"], contradiction=float(d["conflict"]), scene=d.get("scene", ""),
            options=options, language=_language(state),
        )]

    def text_of(self, record: Record) -> str:
        assert isinstance(record, RulePairDilemma)
        return record.scene

    def echo_fields(self, record: Record) -> list[tuple[str, str, bool]]:
        assert isinstance(record, RulePairDilemma)
        return [("scene", record.scene, False), *((f"option ({o.follows})", o.text, False) for o in record.options)]

    def check(self, record: Record) -> tuple[str, str] | None:
        assert isinstance(record, RulePairDilemma)
        if not record.contradiction:
            return "contradiction", "the model judged the two rules compatible (no conflict)"
        if sorted(o.follows for o in record.options) != sorted(SLOTS):
            return "options", "the options do not cover rule 1, rule 2 and a distractor exactly once"
        return None
