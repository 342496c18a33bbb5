"""The optional LLM judge: one request per surviving record (its own prompt template), through the engine;
a score under the recipe's `filters.judge.min_score` drops the record. A judge request that dead-letters drops
its record too (recorded as such): a record is only kept when it was judged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from valuecorpus.pipelines.engine.types import GenerationParams, GenerationRequest
from valuecorpus.pipelines.filters.core import FilterResult
from valuecorpus.schemas.jsonschema import model_json_schema
from valuecorpus.schemas.records import Record, stable_id
from valuecorpus.schemas.run_tables import DeadLetter, FilteredSample

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain


class JudgeOut(BaseModel):
    score: int = Field(ge=0, le=10)
    reason: str = Field(max_length=200)


def judge_requests(chain: Chain, records: list[Record]) -> list[GenerationRequest]:
    make = judge_request_maker(chain)
    return [make(r) for r in records]


def judge_request_maker(chain: Chain) -> Any:
    """A function record → its judge request (the template and schema loaded once)."""
    from valuecorpus.pipelines.prompts import load_template

    spec = chain.recipe.filters.judge
    assert spec is not None
    tmpl = load_template(chain.recipe.prompts.get("judge") or spec.template, chain.recipe.base_dir)
    schema = model_json_schema(JudgeOut)
    schema["properties"]["score"].update(minimum=0, maximum=10)
    m = chain.recipe.model
    params = GenerationParams(temperature=0.0, seed=chain.recipe.seed,
                              max_tokens=m.step_max_tokens.get("judge", 96), repeat_penalty=m.repeat_penalty)

    def make(r: Record) -> GenerationRequest:
        return GenerationRequest(request_id=judge_request_id(r), json_schema=schema, params=params,
                                 messages=tmpl.render(text=chain.text_of(r), record=r.model_dump(mode="json")),
                                 metadata={"record_id": r.id, "step": "judge"})

    return make


def judge_request_id(record: Record) -> str:
    return stable_id(record.id, "judge")


def judge_verdict(chain: Chain, record: Record, res: Any) -> tuple[bool, FilteredSample | None, DeadLetter | None]:
    """(kept, why filtered, dead letter) for one record and its judge outcome."""
    spec = chain.recipe.filters.judge
    assert spec is not None
    if isinstance(res, DeadLetter):
        return False, FilteredSample(sample_id=record.id, kind=record.kind, filter="judge",
                                     reason=f"not judged: {res.error_class}"), \
            res.model_copy(update={"plan_item": record.provenance.plan_item})
    verdict = JudgeOut.model_validate(res.parsed)
    if verdict.score < spec.min_score:
        return False, FilteredSample(sample_id=record.id, kind=record.kind, filter="judge",
                                     reason=f"judge score {verdict.score} < {spec.min_score}: {verdict.reason}",
                                     score=float(verdict.score)), None
    return True, None, None


def apply_judge(chain: Chain, records: list[Record], engine: Any) -> tuple[FilterResult, list[DeadLetter]]:
    spec = chain.recipe.filters.judge
    out = FilterResult()
    if spec is None or not records:
        out.kept = list(records)
        return out, []
    reqs = judge_requests(chain, records)
    outcomes = {o.request_id: o for o in engine.generate(reqs)}
    dead: list[DeadLetter] = []
    for record, req in zip(records, reqs, strict=True):
        kept, filtered, dead_letter = judge_verdict(chain, record, outcomes[req.request_id])
        if kept:
            out.kept.append(record)
        if filtered is not None:
            out.filtered.append(filtered)
        if dead_letter is not None:
            dead.append(dead_letter)
    return out, dead
