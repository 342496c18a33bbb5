"""Moral-graph votes: values cards (handed over by the caller) → card pairs → deduplication verdict → upgrade
story A → B for a context → votes by participant models.

Planning pairs the cards that answer the same question (every pair, or a seeded sample of `count`), each in one
direction chosen by the pair's seed, with its text similarity (character n-gram cosine, as rule pairs use).
Steps, one engine call each, skipped where they do not apply:

1. **same** — only for pairs at least `dedup_threshold` similar: an LLM verification, same or different. A
   `values_card_match` record keeps every verdict; a "same" pair gets no story and no votes (the aggregation
   merges the two cards into one canonical card instead).
2. **story** — the upgrade story of someone moving from card A to card B in a context the cards share (else
   one of B's, else A's, else `default_context`).
3. **vote** — `voters` requests, each a participant model with a voter persona (`model.step_models: {vote:
   NAME}` for another model), answering upgrade / no_upgrade / not_sure with a comment.

Records: the story as a hypothesis (`moral_graph_vote`, relationship None, as the DFT `edgeHypothesis`), one
`moral_graph_vote` per voter, and the match verdict. `valuecorpus moral-graph aggregate` turns them into
canonical cards, edges and value ranks (`pipelines/moral_graph_aggregate.py`).
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from valuecorpus.pipelines.chains.base import Chain, SampleState, Step
from valuecorpus.pipelines.chains.bounds import bound_strings
from valuecorpus.pipelines.chains.moral_graph import catalogue
from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult
from valuecorpus.schemas.jsonschema import model_json_schema
from valuecorpus.schemas.records import MoralGraphVote, Record, ValuesCardMatch, stable_id


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dedup_threshold: float = Field(0.6, ge=0, le=1, description="pairs this similar get a same/different check")
    voters: int = Field(3, ge=1, le=50, description="votes per pair")
    voter_personas: list[str] = Field(default_factory=list, description="empty = the shipped ones")
    default_context: str = Field("When facing this question", description="when neither card names a context")
    same_question: bool = Field(True, description="pair only cards that answer the same question")
    story_max_chars: int = Field(700, ge=80, le=4000)


class SameOut(BaseModel):
    verdict: Literal["same", "different"]
    reason: str


class StoryOut(BaseModel):
    story: str


class VoteOut(BaseModel):
    relationship: Literal["upgrade", "no_upgrade", "not_sure"]
    comment: str


def card_input(record: dict[str, Any]) -> dict[str, Any]:
    """What the chain needs of a values card (a dict, as the caller hands it over)."""
    return {k: record.get(k) for k in ("id", "card_key", "title", "description", "policies", "contexts",
                                       "question_key")}


def card_text(card: dict[str, Any]) -> str:
    return " ".join([card.get("title") or "", card.get("description") or "", *(card.get("policies") or [])])


def card_pairs(cards: list[dict[str, Any]], seed: int, same_question: bool) -> list[dict[str, Any]]:
    """Every unordered pair of cards (of one question), most similar first, each in a seeded direction."""
    from valuecorpus.pipelines.similarity import vectors

    cards = sorted(cards, key=lambda c: c["card_key"])
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, c in enumerate(cards):
        groups[c.get("question_key") if same_question else None].append(i)
    vec = vectors([card_text(c) for c in cards]) if len(cards) > 1 else None
    pairs = []
    for members in groups.values():
        for x, i in enumerate(members):
            for j in members[x + 1:]:
                a, b = cards[i], cards[j]
                if random.Random(stable_id(seed, a["card_key"], b["card_key"])).random() < 0.5:
                    a, b = b, a
                sim = round(float(vec[i] @ vec[j]), 6) if vec is not None else 0.0
                pairs.append({"a": a, "b": b, "similarity": sim})
    return sorted(pairs, key=lambda p: (-p["similarity"], p["a"]["card_key"], p["b"]["card_key"]))


def _policies(card: dict[str, Any]) -> str:
    return "; ".join(card.get("policies") or [])


def _pair_vars(state: SampleState) -> dict[str, str]:
    a, b = state.plan_item["card_pair"]["a"], state.plan_item["card_pair"]["b"]
    return {"title_a": a["title"], "description_a": a.get("description") or "", "policies_a": _policies(a),
            "title_b": b["title"], "description_b": b.get("description") or "", "policies_b": _policies(b)}


def pair_context(pair: dict[str, Any], default: str) -> str:
    a, b = pair["a"].get("contexts") or [], pair["b"].get("contexts") or []
    shared = [c for c in b if c in a]
    return (shared or b or a or [default])[0]


class SameStep(Step):
    name = "same"
    template = "moral_graph/same"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        if state.plan_item["card_pair"]["similarity"] < self.chain.params.dedup_threshold:
            state.data["verdict"] = None  # different by text alone: no verification asked, no match record
            return []
        schema = bound_strings(model_json_schema(SameOut), self.chain.generation_params(self.name).max_tokens)
        return [self.request(state, _pair_vars(state), schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        if results:
            out = SameOut.model_validate(results[0].parsed)
            state.data.update(verdict=out.verdict, verdict_reason=" ".join(out.reason.split()))
        return state


class StoryStep(Step):
    name = "story"
    template = "moral_graph/story"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        if state.data.get("verdict") == "same":
            return []
        context = pair_context(state.plan_item["card_pair"], self.chain.params.default_context)
        state.data["context"] = context
        schema = model_json_schema(StoryOut)
        schema["properties"]["story"].update(minLength=40, maxLength=self.chain.params.story_max_chars)
        bound_strings(schema, self.chain.generation_params(self.name).max_tokens)
        return [self.request(state, {**_pair_vars(state), "context": context}, schema)]

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        if results:
            state.data["story"] = " ".join(StoryOut.model_validate(results[0].parsed).story.split())
        return state


class VoteStep(Step):
    """`voters` requests, each with its own voter persona and sampling seed."""

    name = "vote"
    template = "moral_graph/vote"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        if state.data.get("verdict") == "same":
            return []
        schema = bound_strings(model_json_schema(VoteOut), self.chain.generation_params(self.name).max_tokens)
        personas = self.chain.voter_personas()
        voters = [personas[(int(state.plan_item["seed"]) + i) % len(personas)]
                  for i in range(self.chain.params.voters)]
        state.data["voters"] = voters
        reqs = []
        for i, voter in enumerate(voters):
            req = self.request(state, {**_pair_vars(state), "context": state.data["context"],
                                       "story": state.data["story"], "voter": voter}, schema, index=i)
            # each voter its own sampling seed: identical votes would only be a temperature-0 artefact
            req.params = req.params.model_copy(update={"seed": (req.params.seed or 0) + i})
            reqs.append(req)
        return reqs

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        state.data["votes"] = [VoteOut.model_validate(r.parsed).model_dump() for r in results]
        return state


def voter_id(persona: str) -> str:
    return "voter-model-" + stable_id("moral_graph", "voter", persona)[:12]


class MoralGraphVoteChain(Chain):
    kind = "moral_graph_votes"
    record_kinds = ("moral_graph_vote", "values_card_match")
    input_kind = "values_card"
    Params = Params
    step_classes = (SameStep, StoryStep, VoteStep)

    @classmethod
    def validate_recipe(cls, recipe: Any) -> list[tuple[str, str]]:
        from valuecorpus.pipelines.filters.demographics import demographic_terms_in

        problems = []
        for i, text in enumerate(recipe.params.get("voter_personas") or []):
            if found := demographic_terms_in(str(text)):
                problems.append((f"params.voter_personas[{i}]", f"'{text}' names {', '.join(found)}"))
        return problems

    def voter_personas(self) -> list[str]:
        return self.params.voter_personas or list(catalogue()["voters"])

    def extra_axes(self) -> dict[str, list[Any]]:
        from valuecorpus.schemas.errors import RecipeError

        cards = [card_input(r) for r in self.inputs]
        pairs = card_pairs(cards, self.recipe.seed, self.params.same_question)
        if not pairs:
            raise RecipeError(f"{self.recipe.source_path or self.recipe.name}: moral-graph votes need at least two "
                              "values cards of one question: hand over a run or dataset of values cards "
                              "(--from-run / --from-dataset)")
        return {"card_pair": pairs}

    def planned_count(self) -> int:
        cards = [card_input(r) for r in self.inputs]
        return min(self.recipe.count, len(card_pairs(cards, self.recipe.seed, self.params.same_question)))

    def finish(self, state: SampleState) -> list[Record]:
        prov = self.provenance(state)
        pair, d = state.plan_item["card_pair"], state.data
        a, b = pair["a"]["card_key"], pair["b"]["card_key"]
        titles = {"from_title": pair["a"]["title"], "to_title": pair["b"]["title"]}
        records: list[Record] = []
        if d.get("verdict") is not None:
            records.append(ValuesCardMatch(id=self.record_id(state, "match"), provenance=prov, card_a=a, card_b=b,
                                           similarity=pair["similarity"], verdict=d["verdict"],
                                           reason=d.get("verdict_reason")))
        if d.get("verdict") == "same":
            return records
        records.append(MoralGraphVote(id=self.record_id(state, "hypothesis"), provenance=prov, from_card=a,
                                      to_card=b, **titles, context=d["context"], relationship=None,
                                      story=d["story"]))
        for i, (vote, persona) in enumerate(zip(d["votes"], d["voters"], strict=True)):
            records.append(MoralGraphVote(
                id=self.record_id(state, f"vote:{i}"), provenance=prov, from_card=a, to_card=b, **titles,
                context=d["context"], relationship=vote["relationship"], story=d["story"],
                comment=" ".join(vote["comment"].split()), voter=voter_id(persona),
            ))
        return records
