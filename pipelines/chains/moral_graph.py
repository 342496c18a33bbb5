"""Moral-graph interviews (Moral Graph Elicitation): an interviewer model and a participant model hold a bounded
multi-turn interview about a contested prompt; a values card is articulated from the transcript; contexts
("When …") are named from transcript and card.

The plan gives each sample a question (the recipe's `params.questions` from `data/moral_graph.yaml`, or
`moral_graph_question` records handed over with --from-run / --from-dataset), and a persona: a stance and a
life situation (never demographic attributes; the recipe loader checks them against the demographics word
list). The turn loop is a `Repeat` of (interviewer, participant) up to `params.max_turns` turns: it stops when
the interviewer says the participant's source of meaning is clear, or at the cap. Interviewer and participant
may be different models at the same endpoint (`model.step_models: {participant: NAME}`).

Records per sample: an `interview`, a `values_card` (collection `generated`), and its `moral_graph_context`s.
Checks, each a filtered row with its reason: attentional policies must be plural noun phrases that start with
capitalised words ("MOMENTS when …") and never say "meaningful" (`policies`; a card that fails gets no
contexts and its interview keeps no `card_key`, so nothing references a filtered card); a context must start
with "When" (`context_form`); participant turns must not name demographic attributes (`demographics`).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from valuecorpus.pipelines.chains.base import Chain, SampleState, Step
from valuecorpus.pipelines.chains.bounds import bound_strings
from valuecorpus.pipelines.chains.repeat import Repeat, TurnStep
from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult
from valuecorpus.schemas.jsonschema import model_json_schema
from valuecorpus.schemas.records import Interview, MoralGraphContext, Record, ValuesCard, stable_id
from valuecorpus.schemas.records.moral_graph import Turn, card_key

_HEAD = re.compile(r"^([A-Z][A-Z'’\-]+(?:\s+[A-Z][A-Z'’\-]+)*)(?=\s|$|[,.:;])")


@cache
def catalogue() -> dict[str, Any]:
    path = resources.files("valuecorpus.pipelines.chains") / "data" / "moral_graph.yaml"
    return yaml.safe_load(path.read_text("utf-8"))


def policy_problem(policy: str, plural: bool = True) -> str | None:
    """Why an attentional policy breaks the convention, or None: it must start with one or more capitalised
    words ("MOMENTS", "CREATIVE APPROACHES"), the last of them plural, followed by the rest of the phrase, and
    must not use the word "meaningful"."""
    text = " ".join(policy.split())
    m = _HEAD.match(text)
    if not m:
        return f"'{text[:60]}' does not start with a capitalised word (e.g. 'MOMENTS when …')"
    if plural and not m.group(1).split()[-1].rstrip("'’").endswith("S"):
        return f"'{text[:60]}' does not start with a plural noun phrase ('{m.group(1)}')"
    if len(text) <= len(m.group(1)) + 1:
        return f"'{text[:60]}' is only a heading, not a policy"
    if re.search(r"\bmeaningful\b", text, re.IGNORECASE):
        return f"'{text[:60]}' uses the word 'meaningful'"
    return None


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_turns: int = Field(4, ge=1, le=12, description="turn cap: participant answers at most this many questions")
    questions: list[str] = Field(default_factory=list, description="question keys of data/moral_graph.yaml; "
                                 "empty = all (unused when question records are handed over)")
    stances: list[str] = Field(default_factory=list, description="persona stances; empty = the shipped ones")
    life_situations: list[str] = Field(default_factory=list, description="persona life situations; empty = shipped")
    min_policies: int = Field(2, ge=1, le=10)
    max_policies: int = Field(5, ge=1, le=10)
    max_contexts: int = Field(3, ge=1, le=10)
    plural_policies: bool = Field(True, description="policies must start with a plural CAPS noun phrase")
    message_max_chars: int = Field(300, ge=40, le=2000)
    reply_max_chars: int = Field(500, ge=40, le=4000)


class InterviewerOut(BaseModel):
    ready: bool
    message: str


class ParticipantOut(BaseModel):
    reply: str


class CardOut(BaseModel):
    title: str
    description: str
    policies: list[str]


class ContextsOut(BaseModel):
    contexts: list[str]


def _clean(text: str) -> str:
    return " ".join(text.split()).strip()


def transcript(state: SampleState) -> str:
    turns = state.data.get("turns") or []
    if not turns:
        return "(the interview has not started)"
    return "\n".join(f"{t['role'].capitalize()}: {t['content']}" for t in turns)


def _question(state: SampleState) -> dict[str, Any]:
    return state.plan_item["question"]


def _note_model(state: SampleState, role: str, results: list[GenerationResult]) -> None:
    if results and results[0].model:
        state.data.setdefault(f"{role}_model", results[0].model)


class InterviewerStep(TurnStep):
    name = "interviewer"
    template = "moral_graph/interviewer"

    def turn_requests(self, state: SampleState) -> list[GenerationRequest]:
        p = self.chain.params
        schema = model_json_schema(InterviewerOut)
        schema["properties"]["message"].update(minLength=8, maxLength=p.message_max_chars)
        bound_strings(schema, self.chain.generation_params(self.base_name).max_tokens)
        return [self.request(state, {"question": _question(state)["question"], "transcript": transcript(state),
                                     "turn": self.turn, "max_turns": p.max_turns}, schema)]

    def turn_absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        out = InterviewerOut.model_validate(results[0].parsed)
        state.data.setdefault("turns", []).append({"role": "interviewer", "content": _clean(out.message)})
        _note_model(state, "interviewer", results)
        # the first turn cannot end the interview: nobody has said anything yet
        state.data["ready"] = bool(out.ready) and self.turn > 1
        return state


class ParticipantStep(TurnStep):
    name = "participant"
    template = "moral_graph/participant"

    def turn_requests(self, state: SampleState) -> list[GenerationRequest]:
        schema = model_json_schema(ParticipantOut)
        schema["properties"]["reply"].update(minLength=8, maxLength=self.chain.params.reply_max_chars)
        bound_strings(schema, self.chain.generation_params(self.base_name).max_tokens)
        item = state.plan_item
        return [self.request(state, {"question": _question(state)["question"], "transcript": transcript(state),
                                     "stance": item["stance"], "life_situation": item["life_situation"]}, schema)]

    def turn_absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        reply = _clean(ParticipantOut.model_validate(results[0].parsed).reply)
        state.data.setdefault("turns", []).append({"role": "participant", "content": reply})
        _note_model(state, "participant", results)
        return state


class ArticulateStep(Step):
    name = "articulate"
    template = "moral_graph/articulate"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        p = self.chain.params
        schema = model_json_schema(CardOut)
        props = schema["properties"]
        props["title"].update(minLength=3, maxLength=60)
        props["description"].update(minLength=10, maxLength=300)
        props["policies"].update(minItems=p.min_policies, maxItems=p.max_policies)
        props["policies"]["items"].update(minLength=10, maxLength=160)
        bound_strings(schema, self.chain.generation_params(self.name).max_tokens)
        return [self.request(state, {"question": _question(state)["question"], "transcript": transcript(state)},
                             schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        out = CardOut.model_validate(results[0].parsed)
        policies = [_clean(x) for x in out.policies if _clean(x)]
        state.data["card"] = {"title": _clean(out.title), "description": _clean(out.description),
                              "policies": policies}
        problems = [p for p in (policy_problem(x, self.chain.params.plural_policies) for x in policies) if p]
        state.data["card_problem"] = ("; ".join(problems[:3]) if problems
                                      else None if policies else "no attentional policies")
        return state


class ContextsStep(Step):
    name = "contexts"
    template = "moral_graph/contexts"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        if state.data.get("card_problem"):  # a card that is filtered gets no contexts: nothing to pay for
            return []
        card = state.data["card"]
        schema = model_json_schema(ContextsOut)
        schema["properties"]["contexts"].update(minItems=1, maxItems=self.chain.params.max_contexts)
        schema["properties"]["contexts"]["items"].update(minLength=6, maxLength=80)
        bound_strings(schema, self.chain.generation_params(self.name).max_tokens)
        return [self.request(state, {"question": _question(state)["question"], "transcript": transcript(state),
                                     "title": card["title"], "description": card["description"],
                                     "policies": "; ".join(card["policies"])}, schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        seen: list[str] = []
        for r in results:
            for text in ContextsOut.model_validate(r.parsed).contexts:
                text = _clean(text).rstrip(".")
                if text and text not in seen:
                    seen.append(text)
        state.data["contexts"] = seen
        return state


def persona_id(stance: str, situation: str) -> str:
    return "persona-" + stable_id("moral_graph", "persona", stance, situation)[:12]


class MoralGraphInterviewChain(Chain):
    kind = "moral_graph"
    record_kinds = ("interview", "values_card", "moral_graph_context")
    text_fields = ("turns",)  # what `text_of` reads
    input_kind = "moral_graph_question"
    Params = Params
    interview = Repeat((InterviewerStep, ParticipantStep), until="interview_done", turns="max_turns",
                       name="interview")
    step_classes = (interview, ArticulateStep, ContextsStep)

    @classmethod
    def validate_recipe(cls, recipe: Any) -> list[tuple[str, str]]:
        from valuecorpus.pipelines.filters.demographics import demographic_terms_in

        p = recipe.params
        problems = []
        known = catalogue()["questions"]
        for i, key in enumerate(p.get("questions") or []):
            if key not in known:
                problems.append((f"params.questions[{i}]", f"unknown question '{key}' (known: {', '.join(known)})"))
        for axis in ("stances", "life_situations"):
            for i, text in enumerate(p.get(axis) or []):
                if found := demographic_terms_in(str(text)):
                    problems.append((f"params.{axis}[{i}]", "a persona has no demographic attributes; "
                                     f"'{text}' names {', '.join(found)}"))
        if p.get("min_policies", 2) > p.get("max_policies", 5):
            problems.append(("params.min_policies", "must not exceed params.max_policies"))
        return problems

    def interview_done(self, state: SampleState) -> bool:
        return bool(state.data.get("ready"))

    def questions(self) -> list[dict[str, Any]]:
        if self.inputs:
            return [{"key": r["question_key"], "title": r.get("title") or "", "question": r["question"]}
                    for r in sorted(self.inputs, key=lambda r: r["question_key"])]
        known = catalogue()["questions"]
        keys = self.params.questions or list(known)
        return [{"key": k, "title": known[k]["title"], "question": known[k]["question"]} for k in keys]

    def extra_axes(self) -> dict[str, list[Any]]:
        cat = catalogue()
        return {"question": self.questions(), "stance": self.params.stances or list(cat["stances"]),
                "life_situation": self.params.life_situations or list(cat["life_situations"])}

    def finish(self, state: SampleState) -> list[Record]:
        prov = self.provenance(state)
        item, d = state.plan_item, state.data
        question = _question(state)
        card_id = self.record_id(state, "card")
        key = card_key("generated", card_id)
        card = d["card"]
        contexts = d.get("contexts") or []
        ended_by = self.interview.ended_by(state)
        records: list[Record] = [
            Interview(
                id=self.record_id(state), provenance=prov, question_key=question["key"],
                question=question["question"], participant=persona_id(item["stance"], item["life_situation"]),
                stance=item["stance"], life_situation=item["life_situation"],
                interviewer_model=d.get("interviewer_model"), participant_model=d.get("participant_model"),
                turns=[Turn(**t) for t in d.get("turns", [])],
                ended_by="interviewer" if ended_by == "condition" else "turn_cap",
                card_key=None if d.get("card_problem") else key,
            ),
            ValuesCard(
                id=card_id, provenance=prov, card_key=key, collection="generated", title=card["title"],
                description=card["description"], policies=card["policies"], contexts=contexts,
                question_key=question["key"],
            ),
        ]
        for i, text in enumerate(contexts):
            records.append(MoralGraphContext(id=self.record_id(state, f"context:{i}"), provenance=prov,
                                             context=text, question_key=question["key"], card_key=key))
        return records

    def text_of(self, record: Record) -> str:
        # cards are not deduplicated by the run's filters: similar cards are merged into canonical cards
        # (same/different verification, then `valuecorpus moral-graph aggregate`), never dropped
        if isinstance(record, Interview):
            return "\n".join(t.content for t in record.turns if t.role == "participant")
        return ""

    def check(self, record: Record) -> tuple[str, str] | None:
        if isinstance(record, ValuesCard):
            problems = [p for p in (policy_problem(x, self.params.plural_policies) for x in record.policies) if p]
            if problems or not record.policies:
                return "policies", "; ".join(problems[:3]) or "no attentional policies"
        if isinstance(record, MoralGraphContext) and not record.context.startswith("When "):
            return "context_form", f"'{record.context[:60]}' does not start with 'When'"
        if isinstance(record, Interview) and self.recipe.filters.demographics:
            from valuecorpus.pipelines.filters.demographics import demographic_terms_in

            found = demographic_terms_in(self.text_of(record))
            if found:
                return "demographics", f"the participant names demographic attributes: {', '.join(found[:5])}"
        return None
