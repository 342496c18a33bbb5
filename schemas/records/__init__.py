"""The one record model. Arrow schemas (`schemas.arrow`) and JSON Schemas (`schemas.jsonschema`) derive from it."""

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.records.agents import AgentCase, AgentEnvironment, Rubric
from valuecorpus.schemas.records.base import Provenance, Record, canonical_json, stable_id
from valuecorpus.schemas.records.dilemmas import Dilemma, Perspective
from valuecorpus.schemas.records.moral_graph import (
    AggregatedEdge,
    Interview,
    MoralGraphContext,
    MoralGraphQuestion,
    MoralGraphVote,
    ValuesCard,
)
from valuecorpus.schemas.records.preferences import Outcome, OutcomeComparison, PreferencePair
from valuecorpus.schemas.records.value_rules import RulePairDilemma, ValueRule

RECORD_TYPES: dict[str, type[Record]] = {
    cls.kind: cls
    for cls in (
        ValueRule, RulePairDilemma, Dilemma, Perspective, Interview, ValuesCard, MoralGraphVote, AggregatedEdge,
        MoralGraphQuestion, MoralGraphContext,
        AgentEnvironment, AgentCase, Rubric, PreferencePair, Outcome, OutcomeComparison,
    )
}


def record_type(kind: str) -> type[Record]:
    try:
        return RECORD_TYPES[kind]
    except KeyError:
        raise ValueCorpusError(f"unknown record kind '{kind}' (known: {', '.join(sorted(RECORD_TYPES))})") from None


__all__ = [
    "RECORD_TYPES",
    "AgentCase",
    "AgentEnvironment",
    "AggregatedEdge",
    "Dilemma",
    "Interview",
    "MoralGraphContext",
    "MoralGraphQuestion",
    "MoralGraphVote",
    "Outcome",
    "OutcomeComparison",
    "Perspective",
    "PreferencePair",
    "Provenance",
    "Record",
    "Rubric",
    "RulePairDilemma",
    "ValueRule",
    "ValuesCard",
    "canonical_json",
    "record_type",
    "stable_id",
]
