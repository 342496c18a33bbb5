"""Stance-controlled preference pairs (as in Value Drifts): topic (from the plan) → a neutral value-laden
question → two responses written by the SAME template with the same style instructions, one per side (the
side is the only variable) → optional judge step that reads the side each response takes.

The side is a stance on the topic's position (`chosen_stance`: support / oppose) or, when the plan has a
value pair [a, b], the value each response serves (chosen serves a). `check` drops pairs that differ in style
(length ratio, hedging, format, register, refusal, near-identical; see `pipelines/style_checks.py`) or whose
judged side is not the intended one, each with its reason. Columns prompt / chosen / rejected are TRL's DPO
format; `dpo_table` / `write_dpo` export them.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from valuecorpus.pipelines.chains.base import Chain, SampleState, Step, strata_problems
from valuecorpus.pipelines.chains.bounds import bound_chars
from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult
from valuecorpus.pipelines.style_checks import StyleBounds, length_ratio, style_problem
from valuecorpus.schemas.jsonschema import constrain, model_json_schema
from valuecorpus.schemas.records import PreferencePair, Record

STANCES = ("support", "oppose")
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese (简体中文)"}
DPO_COLUMNS = ("prompt", "chosen", "rejected")


@cache
def topics() -> dict[str, dict[str, Any]]:
    path = resources.files("valuecorpus.pipelines.chains") / "data" / "preference_topics.yaml"
    return yaml.safe_load(path.read_text("utf-8"))["topics"]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chosen_stance: Literal["support", "oppose"] = Field(
        "support", description="without value pairs: the stance of the chosen response (rejected: the other)")
    words: int = Field(80, ge=10, le=400, description="length asked of both responses")
    verify_stance: bool = Field(True, description="ask a judge which side each response takes")
    max_length_ratio: float = Field(1.3, ge=1.0)
    max_hedge_diff: int = Field(1, ge=0)
    max_marker_diff: int = Field(1, ge=0)
    max_sentence_ratio: float = Field(1.8, ge=1.0)

    def bounds(self) -> StyleBounds:
        return StyleBounds(self.max_length_ratio, self.max_hedge_diff, self.max_marker_diff,
                           self.max_sentence_ratio)


class QuestionOut(BaseModel):
    question: str


class ResponseOut(BaseModel):
    response: str


class SideOut(BaseModel):
    side: str


def sides(state: SampleState, params: Params) -> dict[str, Any]:
    """The two sides of this sample: labels (what records store) and what the prompts say."""
    pair = state.plan_item.get("value_pair")
    if pair:
        a, b = pair
        return {"labels": [a, b], "neither": "neither",
                "texts": [f"the answer that best serves the value '{v}'" for v in (a, b)]}
    chosen = params.chosen_stance
    rejected = STANCES[1 - STANCES.index(chosen)]
    text = {"support": "support the position", "oppose": "oppose the position"}
    return {"labels": [chosen, rejected], "neither": "neutral", "texts": [text[chosen], text[rejected]]}


def _topic(state: SampleState) -> str:
    return str(state.plan_item["seed_situation"]["pool"])


def _language(state: SampleState) -> str:
    return LANGUAGE_NAMES[state.plan_item.get("language") or "en"]


class QuestionStep(Step):
    name = "question"
    template = "preferences/question"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        topic = _topic(state)
        state.data["topic"] = topic
        situation = self.chain.seed_text(state)
        state.data["situation"] = situation
        variables = {"topic": topic.replace("_", " "), "position": topics()[topic]["position"],
                     "situation": situation, "language": _language(state)}
        return [self.request(state, variables, bound_chars(model_json_schema(QuestionOut), 300))]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        state.data["question"] = " ".join(QuestionOut.model_validate(results[0].parsed).question.split())
        return state


class ResponsesStep(Step):
    """Two requests from one template; only `side` differs between them."""

    name = "responses"
    template = "preferences/response"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        p = self.chain.params
        schema = bound_chars(model_json_schema(ResponseOut), p.words * 12)
        return [self.request(state, {"question": state.data["question"], "side": text, "words": p.words,
                                     "language": _language(state)}, schema, index=i)
                for i, text in enumerate(sides(state, p)["texts"])]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        chosen, rejected = (ResponseOut.model_validate(r.parsed).response.strip() for r in results)
        state.data.update(chosen=chosen, rejected=rejected)
        return state


class StanceStep(Step):
    """A judge reads the side each response takes (the value gap must be real, as Value Drifts checks)."""

    name = "stance"
    template = "preferences/stance"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        if not self.chain.params.verify_stance:
            return []
        s = sides(state, self.chain.params)
        options = [*s["labels"], s["neither"]]
        schema = constrain(model_json_schema(SideOut), "side", options)
        position = topics()[state.data["topic"]]["position"]
        return [self.request(state, {"position": position, "response": state.data[key], "sides": options},
                             schema, index=i)
                for i, key in enumerate(("chosen", "rejected"))]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        if results:
            judged = [SideOut.model_validate(r.parsed).side for r in results]
            state.data.update(chosen_judged=judged[0], rejected_judged=judged[1])
        return state


class PreferencePairChain(Chain):
    kind = "preference_pairs"
    record_kinds = ("preference_pair",)
    text_fields = ("prompt", "chosen")  # what `text_of` reads
    Params = Params
    step_classes = (QuestionStep, ResponsesStep, StanceStep)
    stratum_fields: ClassVar[dict[str, str]] = {"topic_group": "topic"}
    seed_template = "preferences/seeds"

    def seed_keys(self, plan_item: dict[str, Any]) -> list[str]:
        chosen = plan_item.get("topic_group")
        return [chosen] if chosen else sorted(topics())

    def shipped_seeds(self) -> dict[str, list[str]]:
        return {name: list(t.get("situations") or []) for name, t in topics().items()}

    def seed_variables(self, key: str) -> dict[str, Any]:
        return {"topic": key.replace("_", " "), "position": topics()[key]["position"]}

    @classmethod
    def validate_recipe(cls, recipe: Any) -> list[tuple[str, str]]:
        known = ", ".join(sorted(topics()))
        return [*strata_problems(recipe, "topic_groups", topics(), "unknown topic '{value}' (known: " + known + ")"),
                *strata_problems(recipe, "languages", LANGUAGE_NAMES, "unsupported language '{value}' (en or zh)")]

    def finish(self, state: SampleState) -> list[Record]:
        d = state.data
        labels = sides(state, self.params)["labels"]
        return [PreferencePair(
            id=self.record_id(state), provenance=self.provenance(state), prompt=d["question"],
            chosen=d["chosen"], rejected=d["rejected"], chosen_value=labels[0], rejected_value=labels[1],
            topic=d["topic"], taxonomy=self.recipe.taxonomy if state.plan_item.get("value_pair") else None,
            length_ratio=length_ratio(d["chosen"], d["rejected"]),
            chosen_judged=d.get("chosen_judged"), rejected_judged=d.get("rejected_judged"),
        )]

    def text_of(self, record: Record) -> str:
        assert isinstance(record, PreferencePair)
        return f"{record.prompt}\n{record.chosen}"

    def echo_fields(self, record: Record) -> list[tuple[str, str, bool]]:
        assert isinstance(record, PreferencePair)
        return [("prompt", record.prompt, True), ("chosen", record.chosen, True), ("rejected", record.rejected, True)]

    def check(self, record: Record) -> tuple[str, str] | None:
        assert isinstance(record, PreferencePair)
        for side in ("chosen", "rejected"):
            judged, meant = getattr(record, f"{side}_judged"), getattr(record, f"{side}_value")
            if judged is not None and judged != meant:
                return "stance", f"the judge read '{judged}' in the {side} response (meant '{meant}')"
        return style_problem(record.chosen, record.rejected, self.params.bounds())


def dpo_table(records: list[PreferencePair]) -> Any:
    """TRL's DPO columns (prompt, chosen, rejected) as an Arrow table."""
    import pyarrow as pa

    return pa.table({col: [getattr(r, col) for r in records] for col in DPO_COLUMNS})


def write_dpo(records: list[PreferencePair], path: str | Path) -> Path:
    """A Parquet file that `datasets.load_dataset("parquet", data_files=...)` loads for `DPOTrainer`."""
    import os

    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(dpo_table(records), tmp)
    os.replace(tmp, path)
    return path
