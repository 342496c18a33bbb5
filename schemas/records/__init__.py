"""The one record model. Arrow schemas (`schemas.arrow`) and JSON Schemas (`schemas.jsonschema`) derive from it."""

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.records.agents import AgentCase, AgentEnvironment, Rubric
from valuecorpus.schemas.records.base import Provenance, Record, canonical_json, stable_id
from valuecorpus.schemas.records.dilemmas import Dilemma, Perspective
from valuecorpus.schemas.records.moral_graph import (
    AggregatedEdge,
    CanonicalValuesCard,
    Interview,
    MoralGraphContext,
    MoralGraphQuestion,
    MoralGraphVote,
    ValueRank,
    ValuesCard,
    ValuesCardMatch,
)
from valuecorpus.schemas.records.preferences import Outcome, OutcomeComparison, PreferencePair
from valuecorpus.schemas.records.value_rules import RulePairDilemma, ValueRule

RECORD_TYPES: dict[str, type[Record]] = {
    cls.kind: cls
    for cls in (
        ValueRule, RulePairDilemma, Dilemma, Perspective, Interview, ValuesCard, CanonicalValuesCard,
        ValuesCardMatch, MoralGraphVote, AggregatedEdge, ValueRank, MoralGraphQuestion, MoralGraphContext,
        AgentEnvironment, AgentCase, Rubric, PreferencePair, Outcome, OutcomeComparison,
    )
}


def reference_fields() -> list[tuple[str, str, tuple[str, ...]]]:
    """(kind, field, targets) for every field that holds another record's key (see `Record.references`)."""
    return [(kind, name, targets) for kind, cls in sorted(RECORD_TYPES.items())
            for name, targets in sorted(cls.references.items())]


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
    "CanonicalValuesCard",
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
    "ValueRank",
    "ValueRule",
    "ValuesCard",
    "ValuesCardMatch",
    "canonical_json",
    "record_type",
    "reference_fields",
    "stable_id",
]
