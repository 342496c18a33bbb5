"""CLASH-style character perspectives on a dilemma: the action under judgment with a rationale for and against
it, then eleven character descriptions over six categories. Gold answers follow from the category by
construction (CLASH Fig. 2) and are never asked of a model.

Dilemmas come from the caller (`inputs`: dilemma records of a run or a published version, as dicts); without
inputs the chain first writes a short case per plan item (from its topic group)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from valuecorpus.pipelines.chains.base import Chain, SampleState, Step
from valuecorpus.pipelines.chains.bounds import bound_strings
from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult
from valuecorpus.schemas.jsonschema import model_json_schema
from valuecorpus.schemas.records import Perspective, Record
from valuecorpus.schemas.records.dilemmas import GoldAnswers

# (category, variant, gold answers): S = the rationale for the action, O = the one against it.
VARIANTS: tuple[tuple[str, str, GoldAnswers], ...] = (
    ("straightforward", "S>>O", GoldAnswers(general="yes", discomfort="no")),
    ("straightforward", "O>>S", GoldAnswers(general="no", discomfort="no")),
    ("simple_contrast", "S=O", GoldAnswers(general="ambiguous")),
    ("swayed_contrast", "S>O", GoldAnswers(general="yes", discomfort="yes")),
    ("swayed_contrast", "O>S", GoldAnswers(general="no", discomfort="yes")),
    ("shift", "S->O", GoldAnswers(previous="yes", current="no")),
    ("shift", "O->S", GoldAnswers(previous="no", current="yes")),
    ("half_shift", "S->S=O", GoldAnswers(previous="yes", current="ambiguous")),
    ("half_shift", "O->S=O", GoldAnswers(previous="no", current="ambiguous")),
    ("false_shift", "S~S", GoldAnswers(previous="yes", current="yes")),
    ("false_shift", "O~O", GoldAnswers(previous="no", current="no")),
)
# Words that would give the category away to a model asked about the description.
CATEGORY_TERMS = ["straightforward", "simple contrast", "swayed", "half-shift", "half shift", "false-shift",
                  "false shift", "gold answer"]
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


@cache
def seed_cases() -> dict[str, list[str]]:
    path = resources.files("valuecorpus.pipelines.chains") / "data" / "perspective_cases.yaml"
    return yaml.safe_load(path.read_text("utf-8"))["fields"]


DEFAULT_FIELD = "professional life"


def sentence_count(text: str) -> int:
    return len([s for s in _SENTENCE_END.split(text.strip()) if s.strip()])


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dilemmas_from_run: str | None = Field(None, description="run whose dilemma records get perspectives")
    dilemmas_from_dataset: str | None = Field(None, description="published dataset (latest version) instead")
    min_sentences: int = Field(3, ge=1)
    max_sentences: int = Field(5, ge=1)
    description_max_chars: int = Field(700, ge=100)


class SituationOut(BaseModel):
    situation: str


class ActionOut(BaseModel):
    action: str
    acceptable: str
    unacceptable: str


class DescriptionOut(BaseModel):
    description: str


def _clean(text: str) -> str:
    return " ".join(text.split()).strip()


class SituationStep(Step):
    """Only without an input dilemma: a short case for the plan item's topic."""

    name = "situation"
    template = "perspectives/situation"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        source = state.plan_item.get("dilemma")
        if source:
            state.data["situation"] = source["situation"]
            state.data["given_action"] = source.get("action") or ""
            state.data["dilemma_id"] = source["id"]
            return []
        schema = model_json_schema(SituationOut)
        schema["properties"]["situation"].update(minLength=40, maxLength=600)
        bound_strings(schema, self.chain.generation_params(self.name).max_tokens)
        topic = str(state.plan_item.get("topic_group") or DEFAULT_FIELD)
        return [self.request(state, {"topic": topic.replace("_", " "), "seed": self.chain.seed_text(state)},
                             schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        if results:
            state.data["situation"] = _clean(SituationOut.model_validate(results[0].parsed).situation)
            state.data["given_action"] = ""
            state.data["dilemma_id"] = state.sample_id
        return state


class ActionStep(Step):
    name = "action"
    template = "perspectives/action"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        schema = model_json_schema(ActionOut)
        schema["properties"]["action"].update(minLength=4, maxLength=70)
        for key in ("acceptable", "unacceptable"):
            schema["properties"][key].update(minLength=4, maxLength=80)
        bound_strings(schema, self.chain.generation_params(self.name).max_tokens)
        return [self.request(state, {"situation": state.data["situation"],
                                     "action": state.data["given_action"]}, schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        out = ActionOut.model_validate(results[0].parsed)
        action = _clean(out.action).rstrip(".")
        if len(action.split()) >= 10:
            return state.fail(f"action has {len(action.split())} words (must be under 10)", "check", action)
        state.data.update(action=action[:1].upper() + action[1:],
                          acceptable=_clean(out.acceptable).rstrip("."),
                          unacceptable=_clean(out.unacceptable).rstrip("."))
        return state


class DescriptionStep(Step):
    name = "description"
    template = "perspectives/description"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        schema = model_json_schema(DescriptionOut)
        schema["properties"]["description"].update(minLength=60,
                                                   maxLength=self.chain.params.description_max_chars)
        bound_strings(schema, self.chain.generation_params(self.name).max_tokens)
        variables = {k: state.data[k] for k in ("action", "acceptable", "unacceptable")}
        return [self.request(state, {**variables, "variant": variant, "category": category}, schema, index=i)
                for i, (category, variant, _gold) in enumerate(VARIANTS)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        state.data["descriptions"] = [_clean(DescriptionOut.model_validate(r.parsed).description)
                                      for r in results]
        return state


class PerspectiveChain(Chain):
    kind = "perspectives"
    record_kinds = ("perspective",)
    text_fields = ("description",)  # what `text_of` reads
    input_kind = "dilemma"
    Params = Params
    step_classes = (SituationStep, ActionStep, DescriptionStep)
    seed_template = "perspectives/seeds"
    when_short = "cap"  # with input dilemmas, one item per dilemma: the recipe's count is an upper bound

    def seed_keys(self, plan_item: dict[str, Any]) -> list[str]:
        """Without input dilemmas, a seed case per item from the pool of its field."""
        return [] if self.inputs else [str(plan_item.get("topic_group") or DEFAULT_FIELD)]

    def shipped_seeds(self) -> dict[str, list[str]]:
        return {} if self.inputs else {k: list(v) for k, v in seed_cases().items()}

    def capacity_note(self) -> str:
        return f"one item per input dilemma ({len(self.inputs)} handed over)"

    @classmethod
    def validate_recipe(cls, recipe: Any) -> list[tuple[str, str]]:
        p = recipe.params
        if p.get("dilemmas_from_run") and p.get("dilemmas_from_dataset"):
            return [("params.dilemmas_from_dataset", "use dilemmas_from_run or this, not both")]
        return []

    def extra_axes(self) -> dict[str, list[Any]]:
        if not self.inputs:
            return {}
        return {"dilemma": [dilemma_input(d) for d in self.inputs]}

    def planned_count(self) -> int:
        return min(self.recipe.count, len(self.inputs)) if self.inputs else self.recipe.count

    def finish(self, state: SampleState) -> list[Record]:
        prov = self.provenance(state)
        records: list[Record] = []
        for (category, variant, gold), text in zip(VARIANTS, state.data["descriptions"], strict=True):
            records.append(Perspective(
                id=self.record_id(state, variant), provenance=prov, dilemma_id=state.data["dilemma_id"],
                action=state.data["action"], acceptable=state.data["acceptable"],
                unacceptable=state.data["unacceptable"], category=category, variant=variant,
                description=text, gold=gold,
            ))
        return records

    def text_of(self, record: Record) -> str:
        assert isinstance(record, Perspective)
        return record.description

    def echo_fields(self, record: Record) -> list[tuple[str, str, bool]]:
        assert isinstance(record, Perspective)
        return [("description", record.description, False)]

    def leakage(self, record: Record) -> list[tuple[str, list[str]]]:
        assert isinstance(record, Perspective)
        return [(record.description, CATEGORY_TERMS)]

    def check(self, record: Record) -> tuple[str, str] | None:
        assert isinstance(record, Perspective)
        from valuecorpus.pipelines.filters.demographics import demographic_terms_in

        n = sentence_count(record.description)
        if not self.params.min_sentences <= n <= self.params.max_sentences:
            return "sentences", (f"{n} sentences (expected {self.params.min_sentences}-"
                                 f"{self.params.max_sentences})")
        found = demographic_terms_in(record.description)
        if found and self.recipe.filters.demographics:
            return "demographics", f"names demographic attributes: {', '.join(found[:5])}"
        return None


def dilemma_input(record: dict[str, Any]) -> dict[str, Any]:
    """What the chain needs of a dilemma record (a dict, as the caller hands it over)."""
    actions = record.get("actions") or []
    to_do = next((a for a in actions if a.get("action_type") == "to_do"), None)
    return {"id": record["id"], "situation": record["dilemma_situation"],
            "action": (to_do or {}).get("action") or ""}
