"""DailyDilemmas-style dilemmas: seed situation (from the plan) → three-sentence dilemma → negative
consequence per action → direct and indirect parties → values per party (constrained to the 301-value
taxonomy) → one reason per value. The five theory labels are looked up in the taxonomy, never generated.

Seed situations come from the seed pool (`pipelines/seeds.py`), one pool per topic: the shipped seed actions,
the basic situations of input dilemmas (`--from-run` / `--from-dataset`, e.g. an imported DailyDilemmas
version), and seeds the model proposes when the plan needs more. A topic group draws from its topics' pools."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field

from valuecorpus.pipelines.chains.base import Chain, SampleState, Step
from valuecorpus.pipelines.chains.bounds import bound_strings
from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult
from valuecorpus.schemas.jsonschema import constrain, model_json_schema
from valuecorpus.schemas.records import Dilemma, Record
from valuecorpus.schemas.records.dilemmas import DilemmaAction, ValueAnnotation

ACTION_TYPES = ("to_do", "not_to_do")
THEORIES = ("wvs", "mft", "virtue", "emotion", "maslow")
DEFAULT_TAXONOMY = "dailydilemmas_values"


@cache
def topics() -> dict[str, Any]:
    path = resources.files("valuecorpus.pipelines.chains") / "data" / "dilemma_topics.yaml"
    text = path.read_text("utf-8")
    return yaml.safe_load(text)


def topics_of(plan_item: dict[str, Any]) -> list[str]:
    """The topics a plan item may draw its seed from: its topic, the topics of its group, or all."""
    data = topics()
    chosen = plan_item.get("topic_group")
    if chosen in data["topics"]:
        return [chosen]
    return list(data["groups"][chosen]) if chosen in data["groups"] else sorted(data["topics"])


def topic_of_record(record: dict[str, Any]) -> str | None:
    """The topic label of a dilemma record (imported ones carry DailyDilemmas' topic label and number)."""
    data = topics()["topics"]
    label = record.get("topic_group")
    if label in data:
        return str(label)
    by_id = {v["id"]: k for k, v in data.items()}
    return by_id.get(record.get("topic")) if isinstance(record.get("topic"), int) else None


def group_of(topic: str) -> str:
    return next((g for g, members in sorted(topics()["groups"].items()) if topic in members), topic)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consequence_sentences: int = Field(3, ge=1, le=6)
    max_parties: int = Field(2, ge=1, le=4, description="per kind (direct / indirect)")
    max_values: int = Field(4, ge=1, le=8, description="values per action")
    text_max_chars: int = Field(300, ge=40, le=2000, description="bound on each generated sentence or story")


# --- structured outputs of the steps -----------------------------------------------------------------------

class SituationOut(BaseModel):
    background: str
    conflict: str
    question: str
    action: str
    alternative: str


class ConsequenceOut(BaseModel):
    story: str


class PartiesOut(BaseModel):
    direct: list[str]
    indirect: list[str]


class PartyValue(BaseModel):
    party: str
    value: str


class ValuesOut(BaseModel):
    values: list[PartyValue]


class ReasonsOut(BaseModel):
    reasons: list[str]


def _sentence(text: str, end: str = ".") -> str:
    text = " ".join(text.split()).strip()
    if text and text[-1] not in ".!?":
        text += end
    return text[:1].upper() + text[1:]


# --- steps -------------------------------------------------------------------------------------------------

class SituationStep(Step):
    name = "situation"
    template = "dilemmas/situation"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        seed = state.plan_item["seed_situation"]
        topic, action = seed["pool"], seed["text"]
        state.data.update(topic=topic, basic_situation=action)
        schema = model_json_schema(SituationOut)
        for key in ("action", "alternative"):
            schema["properties"][key]["maxLength"] = 60
        self.chain.bound(schema, self.name, self.chain.params.text_max_chars)
        return [self.request(state, {"topic": topic.replace("_", " "), "seed_action": action,
                                     "language": state.plan_item.get("language", "en")}, schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        out = SituationOut.model_validate(results[0].parsed)
        sentences = [_sentence(out.background), _sentence(out.conflict), _sentence(out.question, "?")]
        if not sentences[2].endswith("?"):
            sentences[2] = sentences[2].rstrip(".!") + "?"
        state.data["situation"] = {
            "background": sentences[0], "text": " ".join(sentences),
            "actions": {"to_do": _sentence(out.action, "").rstrip("."),
                        "not_to_do": _sentence(out.alternative, "").rstrip(".")},
        }
        return state


class _PerAction(Step):
    """A step asked once per action (to_do, then not_to_do)."""

    def variables(self, state: SampleState, action_type: str) -> dict[str, Any]:
        sit = state.data["situation"]
        return {"dilemma": sit["text"], "action": sit["actions"][action_type]}

    def schema(self, state: SampleState, action_type: str) -> dict[str, Any]:
        raise NotImplementedError

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        return [self.request(state, self.variables(state, a), self.schema(state, a), index=i)
                for i, a in enumerate(ACTION_TYPES)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        for action_type, res in zip(ACTION_TYPES, results, strict=True):
            slot = state.data.setdefault("actions", {}).setdefault(action_type, {})
            self.fold(state, slot, res)
        return state

    def fold(self, state: SampleState, slot: dict[str, Any], result: GenerationResult) -> None:
        raise NotImplementedError


class ConsequenceStep(_PerAction):
    name = "consequence"
    template = "dilemmas/consequence"

    def variables(self, state: SampleState, action_type: str) -> dict[str, Any]:
        return {**super().variables(state, action_type), "sentences": self.chain.params.consequence_sentences}

    def schema(self, state: SampleState, action_type: str) -> dict[str, Any]:
        return self.chain.bound(model_json_schema(ConsequenceOut), self.name, self.chain.params.text_max_chars * 2)

    def fold(self, state: SampleState, slot: dict[str, Any], result: GenerationResult) -> None:
        slot["negative_consequence"] = _sentence(ConsequenceOut.model_validate(result.parsed).story)


class PartiesStep(_PerAction):
    name = "parties"
    template = "dilemmas/parties"

    def schema(self, state: SampleState, action_type: str) -> dict[str, Any]:
        schema = model_json_schema(PartiesOut)
        for key in ("direct", "indirect"):
            schema["properties"][key].update(minItems=1, maxItems=self.chain.params.max_parties)
        return self.chain.bound(schema, self.name, 40)

    def fold(self, state: SampleState, slot: dict[str, Any], result: GenerationResult) -> None:
        out = PartiesOut.model_validate(result.parsed)
        direct = list(dict.fromkeys(_sentence(p, "") for p in out.direct if p.strip()))
        indirect = [p for p in dict.fromkeys(_sentence(x, "") for x in out.indirect if x.strip())
                    if p not in direct]
        if not direct:
            raise ValueError("no direct party")
        slot["parties"] = {"direct": direct, "indirect": indirect}


class ValuesStep(_PerAction):
    name = "values"
    template = "dilemmas/values"

    def variables(self, state: SampleState, action_type: str) -> dict[str, Any]:
        parties = state.data["actions"][action_type]["parties"]
        return {**super().variables(state, action_type), "parties": parties["direct"] + parties["indirect"]}

    def schema(self, state: SampleState, action_type: str) -> dict[str, Any]:
        parties = state.data["actions"][action_type]["parties"]
        names = parties["direct"] + parties["indirect"]
        schema = model_json_schema(ValuesOut)
        schema["properties"]["values"].update(minItems=1, maxItems=self.chain.params.max_values)
        schema = constrain(schema, "values[].party", names)
        return constrain(schema, "values[].value", self.chain.taxonomy().names())

    def fold(self, state: SampleState, slot: dict[str, Any], result: GenerationResult) -> None:
        out = ValuesOut.model_validate(result.parsed)
        tax = self.chain.taxonomy()
        pairs = []
        for pv in out.values:
            canonical = tax.lookup(pv.value).name
            if (pv.party, canonical) not in [(p["party"], p["value"]) for p in pairs]:
                pairs.append({"party": pv.party, "value": canonical})
        slot["pairs"] = pairs


class ReasonsStep(_PerAction):
    name = "reasons"
    template = "dilemmas/reasons"

    def variables(self, state: SampleState, action_type: str) -> dict[str, Any]:
        return {**super().variables(state, action_type), "pairs": state.data["actions"][action_type]["pairs"]}

    def schema(self, state: SampleState, action_type: str) -> dict[str, Any]:
        n = len(state.data["actions"][action_type]["pairs"])
        schema = model_json_schema(ReasonsOut)
        schema["properties"]["reasons"].update(minItems=n, maxItems=n)
        return self.chain.bound(schema, self.name, min(self.chain.params.text_max_chars, 200))

    def fold(self, state: SampleState, slot: dict[str, Any], result: GenerationResult) -> None:
        reasons = ReasonsOut.model_validate(result.parsed).reasons
        if len(reasons) != len(slot["pairs"]):
            raise ValueError(f"{len(reasons)} reasons for {len(slot['pairs'])} values")
        slot["reasons"] = [_sentence(r) for r in reasons]


# --- the chain ---------------------------------------------------------------------------------------------

class DilemmaChain(Chain):
    kind = "dilemmas"
    record_kinds = ("dilemma",)
    text_fields = ("dilemma_situation",)  # what `text_of` reads
    input_kind = "dilemma"  # input dilemmas give their basic situations as seeds
    Params = Params
    step_classes = (SituationStep, ConsequenceStep, PartiesStep, ValuesStep, ReasonsStep)
    stratum_fields: ClassVar[dict[str, str]] = {"topic_group": "topic_group"}
    seed_template = "dilemmas/seeds"

    def seed_keys(self, plan_item: dict[str, Any]) -> list[str]:
        return topics_of(plan_item)

    def shipped_seeds(self) -> dict[str, list[str]]:
        return {name: list(t["seeds"]) for name, t in topics()["topics"].items()}

    def input_seeds(self) -> dict[str, list[str]]:
        """Input basic situations by topic. Situations without a topic (DailyDilemmas' `dilemma.csv`) are
        dealt in turn to the topics the recipe plans over, so each stratum gets its share."""
        groups = self.recipe.strata.topic_groups or [None]
        planned = sorted({t for g in groups for t in topics_of({"topic_group": g})})
        out: dict[str, list[str]] = {}
        loose = 0
        for record in sorted(self.inputs, key=lambda r: str(r.get("id"))):
            text = record.get("basic_situation")
            if not text:
                continue
            topic = topic_of_record(record)
            if topic is None:
                topic, loose = planned[loose % len(planned)], loose + 1
            out.setdefault(topic, []).append(str(text))
        return out

    @classmethod
    def validate_recipe(cls, recipe: Any) -> list[tuple[str, str]]:
        data = topics()
        known = set(data["topics"]) | set(data["groups"])
        problems = []
        for i, group in enumerate(recipe.strata.topic_groups or []):
            if group not in known:
                problems.append((f"strata.topic_groups[{i}]", f"unknown topic group '{group}' "
                                 f"(known: {', '.join(sorted(known))})"))
        if recipe.taxonomy not in (None, DEFAULT_TAXONOMY):
            problems.append(("taxonomy", f"the dilemmas chain uses '{DEFAULT_TAXONOMY}'"))
        return problems

    def bound(self, schema: dict[str, Any], step: str, max_chars: int) -> dict[str, Any]:
        return bound_strings(schema, self.generation_params(step).max_tokens, max_chars)

    def taxonomy(self) -> Any:
        from valuecorpus.schemas.taxonomies.loader import load_taxonomy

        return load_taxonomy(self.recipe.taxonomy or DEFAULT_TAXONOMY)

    def finish(self, state: SampleState) -> list[Record]:
        tax = self.taxonomy()
        sit = state.data["situation"]
        actions = []
        for action_type in ACTION_TYPES:
            slot = state.data["actions"][action_type]
            parties = slot["parties"]
            cols: dict[str, list[Any]] = {k: [] for k in ("pd", "pi", "vd", "vi", "rd", "ri")}
            annotations: list[ValueAnnotation] = []
            for pair, reason in zip(slot["pairs"], slot["reasons"], strict=True):
                direct = pair["party"] in parties["direct"]
                cols["pd" if direct else "pi"].append(pair["party"])
                cols["vd" if direct else "vi"].append(pair["value"])
                cols["rd" if direct else "ri"].append(reason)
                kind = "direct" if direct else "indirect"
                if all(a.name != pair["value"] or a.type != kind for a in annotations):
                    node = tax.lookup(pair["value"])
                    annotations.append(ValueAnnotation(name=node.name, type=kind,
                                                       **{t: node.labels.get(t) for t in THEORIES}))
            actions.append(DilemmaAction(
                action_type=action_type, action=sit["actions"][action_type],
                negative_consequence=slot["negative_consequence"],
                parties_direct=cols["pd"], parties_indirect=cols["pi"], values_direct=cols["vd"],
                values_indirect=cols["vi"], reason_direct=cols["rd"], reason_indirect=cols["ri"],
                values=annotations, background=sit["background"],
            ))
        topic = state.data["topic"]
        # the planned stratum (a group, or a topic the recipe named); unplanned: the group of the topic drawn
        group = state.plan_item.get("topic_group") or group_of(topic)
        return [Dilemma(
            id=self.record_id(state), provenance=self.provenance(state),
            basic_situation=state.data["basic_situation"], dilemma_situation=sit["text"],
            topic=topics()["topics"][topic]["id"], topic_group=group, actions=actions,
        )]

    def text_of(self, record: Record) -> str:
        assert isinstance(record, Dilemma)
        return record.dilemma_situation

    def echo_fields(self, record: Record) -> list[tuple[str, str, bool]]:
        assert isinstance(record, Dilemma)
        out = [("dilemma_situation", record.dilemma_situation, False)]
        for a in record.actions:
            t = a.action_type
            out += [(f"action ({t})", a.action, False), (f"negative_consequence ({t})", a.negative_consequence, True)]
            out += [(f"reason ({t})", r, False) for r in [*a.reason_direct, *a.reason_indirect]]
            out += [(f"party ({t})", p, False) for p in [*a.parties_direct, *a.parties_indirect]]
        return out

    def distinct_fields(self, record: Record) -> list[tuple[str, str, str, str]]:
        assert isinstance(record, Dilemma)
        by_type = {a.action_type: a for a in record.actions}
        if set(by_type) != set(ACTION_TYPES):
            return []
        a, b = by_type["to_do"], by_type["not_to_do"]
        return [("action (to_do)", a.action, "action (not_to_do)", b.action),
                ("negative_consequence (to_do)", a.negative_consequence,
                 "negative_consequence (not_to_do)", b.negative_consequence)]
