"""Pairwise outcome comparisons (Utility Engineering): for a pair of outcomes from an outcome set, the paper's
prompt is asked in both orders (original: A = first, B = second; flipped: swapped), K samples per order; each
answer is parsed as "A" or "B" (anything else is counted as unparsed, never guessed). One `OutcomeComparison`
record per order carries P(A) over the parsed samples. `valuecorpus utilities fit` turns them into
Thurstonian utilities (`pipelines/utilities.py`).

Outcomes come from the caller (`inputs`: Outcome records of a run or published version, e.g. imported from
emergent-values) or from the recipe's `params.outcomes` (a small inline set).
"""

from __future__ import annotations

import itertools
import random
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from valuecorpus.pipelines.chains.base import Chain, SampleState, Step
from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult
from valuecorpus.schemas.errors import RecipeError
from valuecorpus.schemas.records import OutcomeComparison, Record, stable_id
from valuecorpus.schemas.records.preferences import OutcomeRef

ORDERS = ("original", "flipped")
_ANSWER = re.compile(r"answer\s*[:：]\s*\W{0,3}\s*(?:option\s+)?([AB])\b", re.IGNORECASE)
_LEADING = re.compile(r"^\W{0,4}(?i:option\s+)?([AB])(?:\W|$)")


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples_per_order: int = Field(10, ge=1, le=100, description="K: samples per order (the paper: 10)")
    max_pairs: int = Field(20000, ge=1, description="above this many possible pairs, a seeded sample")
    outcomes: list[str] = Field(default_factory=list, description="an inline outcome set, used without inputs")
    outcome_set: str = Field("inline", description="name recorded for the inline outcome set")


def parse_answer(text: str) -> str | None:
    """'A' or 'B' from a reply: a leading letter ("A", "**B**", "Option A."), or the last "Answer: X" of a
    reasoning reply. Anything else (both, neither, lower-case prose) is unparsed: None."""
    found = _ANSWER.findall(text)
    if found:
        return found[-1].upper()
    m = _LEADING.match(text.strip())
    return m.group(1) if m else None


def outcome_input(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "description": record["description"], "index": record.get("index", 0)}


def pair_axis(outcomes: list[dict[str, Any]], max_pairs: int, seed: int) -> list[dict[str, Any]]:
    """Unordered pairs of outcomes (by set position): all of them, or a seeded sample of `max_pairs`."""
    ordered = sorted(outcomes, key=lambda o: (o["index"], o["id"]))
    n = len(ordered)
    total = n * (n - 1) // 2
    if total <= max_pairs:
        idx = list(itertools.combinations(range(n), 2))
    else:  # sample without building every pair: 510 outcomes already make 130k pairs
        rng, chosen = random.Random(seed), set()
        while len(chosen) < max_pairs:
            i, j = sorted(rng.sample(range(n), 2))
            chosen.add((i, j))
        idx = sorted(chosen)
    return [{"a": ordered[i], "b": ordered[j]} for i, j in idx]


class CompareStep(Step):
    """2 × K requests per pair: K samples of the original order, then K of the flipped order."""

    name = "compare"
    template = "outcomes/compare"

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        pair = state.plan_item["outcome_pair"]
        k = self.chain.params.samples_per_order
        reqs = []
        for o, (first, second) in enumerate(((pair["a"], pair["b"]), (pair["b"], pair["a"]))):
            for s in range(k):
                req = self.request(state, {"option_a": first["description"], "option_b": second["description"]},
                                   index=o * k + s)
                # each sample its own sampling seed: K identical answers would only be a temperature-0 artefact
                base = req.params.seed or 0
                req.params = req.params.model_copy(update={"seed": base + s})
                reqs.append(req)
        return reqs

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        k = self.chain.params.samples_per_order
        counts = {}
        for o, order in enumerate(ORDERS):
            answers = [parse_answer(r.content) for r in results[o * k:(o + 1) * k]]
            counts[order] = {"A": answers.count("A"), "B": answers.count("B"), "unparsed": answers.count(None)}
        state.data["counts"] = counts
        return state


class OutcomeComparisonChain(Chain):
    kind = "outcome_comparisons"
    record_kinds = ("outcome_comparison",)
    text_fields = ("option_a", "option_b")  # what `text_of` reads
    Params = Params
    step_classes = (CompareStep,)

    @classmethod
    def validate_recipe(cls, recipe: Any) -> list[tuple[str, str]]:
        problems = []
        if recipe.filters.near_duplicate.enabled:
            problems.append(("filters.near_duplicate.enabled", "outcome comparisons ask each pair in both "
                             "orders, so near-duplicate filtering would drop the flipped twin: set it to false"))
        if recipe.filters.exact_duplicate:
            problems.append(("filters.exact_duplicate", "a pair's records share their outcome texts: set it to false"))
        outcomes = recipe.params.get("outcomes") or []
        if len(outcomes) == 1 or len(set(outcomes)) != len(outcomes):
            problems.append(("params.outcomes", "needs at least two distinct outcomes"))
        return problems

    def outcomes(self) -> list[dict[str, Any]]:
        if self.inputs:
            return [outcome_input(r) for r in self.inputs]
        name = self.params.outcome_set
        return [{"id": stable_id("outcome", name, i, text), "description": text, "index": i}
                for i, text in enumerate(self.params.outcomes)]

    def extra_axes(self) -> dict[str, list[Any]]:
        outcomes = self.outcomes()
        if len(outcomes) < 2:
            raise RecipeError(f"{self.recipe.source_path or self.recipe.name}: key 'params.outcomes': outcome "
                              "comparisons need at least two outcomes: hand over Outcome records (a run or "
                              "dataset of outcomes) or list them in params.outcomes")
        return {"outcome_pair": pair_axis(outcomes, self.params.max_pairs, self.recipe.seed)}

    when_short = "cap"  # every pair once: the recipe's count is an upper bound

    def planned_count(self) -> int:
        n = len(self.outcomes())
        return min(self.recipe.count, n * (n - 1) // 2, self.params.max_pairs)

    def capacity_note(self) -> str:
        n = len(self.outcomes())
        return (f"{n} outcomes give {n * (n - 1) // 2} distinct pairs (params.max_pairs: "
                f"{self.params.max_pairs}), each asked in both orders")

    def finish(self, state: SampleState) -> list[Record]:
        pair, counts = state.plan_item["outcome_pair"], state.data["counts"]
        prov = self.provenance(state)
        records: list[Record] = []
        for order, (first, second) in zip(ORDERS, ((pair["a"], pair["b"]), (pair["b"], pair["a"])), strict=True):
            c = counts[order]
            parsed = c["A"] + c["B"]
            records.append(OutcomeComparison(
                id=self.record_id(state, order), provenance=prov,
                option_a=OutcomeRef(outcome_id=first["id"], description=first["description"]),
                option_b=OutcomeRef(outcome_id=second["id"], description=second["description"]),
                order=order, probability_a=c["A"] / parsed if parsed else None,
                samples=self.params.samples_per_order, unparsed=c["unparsed"],
                model=state.models[0] if state.models else None,
            ))
        return records

    def echo_fields(self, record: Record) -> list[tuple[str, str, bool]]:
        return []  # the outcome texts are the inputs, and the answers are letters

    def text_of(self, record: Record) -> str:
        assert isinstance(record, OutcomeComparison)
        return f"A: {record.option_a.description}\nB: {record.option_b.description}"
