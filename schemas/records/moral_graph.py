"""Moral Graph Elicitation: interviews, values cards (per collection and canonical), contexts, "wiser than"
votes, card deduplication verdicts, aggregated edges and value ranks.

Card identity: a card's `card_key` is `<collection>:<id in that collection>` (`card_key()`), so a participant
card, a canonical card, a card of an example graph and a generated card never share a key even when their
source ids collide (the DFT data numbers participant and canonical cards independently). Every reference to a
card (a vote's ends, an edge's ends, a rank, a card's canonical card) holds such a key, and each record kind
declares its reference fields in `references` (field → the `kind.field` it points at) for integrity checks.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from valuecorpus.schemas.records.base import Record

CardCollection = Literal["participant", "canonical", "example", "generated"]
CARD_COLLECTIONS: tuple[str, ...] = ("participant", "canonical", "example", "generated")
# A card reference may point at a card of either card table.
CARD_TABLES = ("values_card.card_key", "canonical_values_card.card_key")
Relationship = Literal["upgrade", "no_upgrade", "not_sure"]


def card_key(collection: str, source_id: object) -> str:
    """The key of a card: its collection and its id there (`participant:82`, `canonical:169`)."""
    if collection not in CARD_COLLECTIONS:
        raise ValueError(f"unknown card collection '{collection}' (known: {', '.join(CARD_COLLECTIONS)})")
    return f"{collection}:{source_id}"


def card_collection(key: str) -> str:
    """The collection a card key names (the part before the first colon)."""
    collection, sep, _ = key.partition(":")
    if not sep or collection not in CARD_COLLECTIONS:
        raise ValueError(f"'{key}' is not a card key (expected <collection>:<id>, collection one of "
                         f"{', '.join(CARD_COLLECTIONS)})")
    return collection


class Turn(BaseModel):
    role: Literal["interviewer", "participant", "system"]
    content: str


class Interview(Record):
    """One interview about a contested prompt; a generated interview's participant is a persona from the plan
    (a stance and a life situation, never demographic attributes)."""

    kind: ClassVar[str] = "interview"
    references: ClassVar[dict[str, tuple[str, ...]]] = {"card_key": ("values_card.card_key",)}

    question_key: str | None = Field(None, description="the prompt's key (`moral_graph_question.question_key`)")
    question: str | None = Field(None, description="the contentious prompt the interview is about")
    participant: str | None = Field(None, description="pseudonymised participant id, or the persona's id")
    stance: str | None = Field(None, description="the persona's stance on the prompt (generated interviews)")
    life_situation: str | None = Field(None, description="the persona's life situation (generated interviews)")
    interviewer_model: str | None = None
    participant_model: str | None = None
    turns: list[Turn] = Field(default_factory=list)
    ended_by: Literal["interviewer", "turn_cap"] | None = Field(
        None, description="interviewer: it found a source of meaning; turn_cap: the turn limit was reached")
    card_key: str | None = Field(None, description="the values card the interview produced")


class ValuesCard(Record):
    """MGE v2 card (`title`, `description`, `policies`). v1 cards import with `evaluationCriteria` as policies
    and keep their instructions fields."""

    kind: ClassVar[str] = "values_card"
    references: ClassVar[dict[str, tuple[str, ...]]] = {
        "canonical_card_key": ("canonical_values_card.card_key",)}

    card_key: str = Field(description="<collection>:<id>: unique across every collection (see card_key())")
    collection: CardCollection = Field(description="participant | canonical | example | generated")
    source_id: str | None = Field(None, description="the card's own id in its source, as text (imports)")
    title: str
    description: str | None = None
    policies: list[str] = Field(default_factory=list, description="attentional policies, CAPS-prefixed")
    contexts: list[str] = Field(default_factory=list)
    instructions_short: str | None = None
    instructions_detailed: str | None = None
    canonical_card_key: str | None = Field(None, description="the canonical card this card was merged into")
    context: str | None = Field(None, description="the context the card was articulated for (v2 `context`)")
    question_key: str | None = Field(None, description="the question it answers (v2 `questionId`)")
    chat_id: str | None = None
    quality: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class CanonicalValuesCard(ValuesCard):
    """A deduplicated card: votes and edges of a moral graph are cast on these (collection `canonical`)."""

    kind: ClassVar[str] = "canonical_values_card"
    references: ClassVar[dict[str, tuple[str, ...]]] = {}

    collection: CardCollection = "canonical"
    member_cards: list[str] = Field(default_factory=list, description="card keys merged into this card")


class ValuesCardMatch(Record):
    """A deduplication verdict on two cards: text similarity, then an LLM same / different verification."""

    kind: ClassVar[str] = "values_card_match"
    references: ClassVar[dict[str, tuple[str, ...]]] = {
        "card_a": ("values_card.card_key",), "card_b": ("values_card.card_key",)}

    card_a: str
    card_b: str
    similarity: float
    verdict: Literal["same", "different"]
    reason: str | None = None


class MoralGraphVote(Record):
    """One participant's judgment of an upgrade story from one card to another in a context; or an
    LLM-generated hypothesis (relationship None)."""

    kind: ClassVar[str] = "moral_graph_vote"
    references: ClassVar[dict[str, tuple[str, ...]]] = {"from_card": CARD_TABLES, "to_card": CARD_TABLES}

    from_card: str = Field(description="card key of the value upgraded from")
    to_card: str = Field(description="card key of the value upgraded to (the wiser one, if upgrade)")
    from_title: str | None = Field(None, description="the from card's title as the voter saw it (generated votes)")
    to_title: str | None = Field(None, description="the to card's title as the voter saw it (generated votes)")
    context: str | None = None
    relationship: Relationship | None = None
    story: str | None = None
    comment: str | None = None
    voter: str | None = Field(None, description="pseudonymised voter id (people) or the voter persona's id")
    graph_run: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class EdgeCounts(BaseModel):
    marked_wiser: int = 0
    marked_not_wiser: int = 0
    marked_less_wise: int = 0
    marked_unsure: int = 0
    impressions: int = 0


class AggregatedEdge(Record):
    """Votes aggregated per (from, to) card pair; `wiser_likelihood` and `entropy` are computed from `counts`
    by the toolkit (`schemas.moral_graph_aggregation`), never copied."""

    kind: ClassVar[str] = "moral_graph_edge"
    references: ClassVar[dict[str, tuple[str, ...]]] = {"source_card": CARD_TABLES, "wiser_card": CARD_TABLES}

    source_card: str
    wiser_card: str
    contexts: list[str] = Field(default_factory=list)
    counts: EdgeCounts = Field(default_factory=EdgeCounts)
    wiser_likelihood: float
    entropy: float


class ValueRank(Record):
    """A value's PageRank in the moral graph (edges weighted by wiserLikelihood)."""

    kind: ClassVar[str] = "value_rank"
    references: ClassVar[dict[str, tuple[str, ...]]] = {"card": CARD_TABLES}

    card: str
    title: str | None = None
    rank: int = Field(description="1 = the highest PageRank")
    pagerank: float
    edges_in: int = 0
    edges_out: int = 0


class MoralGraphQuestion(Record):
    """A contentious prompt participants are interviewed about: a DFT `case` (`id`, `title`, `question`,
    `seedMessage`) or an MGE `question` (`id`, `title`, `question`)."""

    kind: ClassVar[str] = "moral_graph_question"

    question_key: str = Field(description="the case's or question's id in its source, as text")
    title: str
    question: str
    seed_message: str | None = Field(None, description="the interview's opening message (DFT `seedMessage`)")


class MoralGraphContext(Record):
    """A context ("When ...") votes and cards are scoped to; with `question_key`, one link of a context to the
    case it arose in (DFT `contextsOnCases`); with `card_key`, a context generated for a card."""

    kind: ClassVar[str] = "moral_graph_context"
    references: ClassVar[dict[str, tuple[str, ...]]] = {"card_key": ("values_card.card_key",)}

    context: str
    question_key: str | None = None
    card_key: str | None = Field(None, description="the card the context was generated from (generated runs)")
    created_at: str | None = None
    updated_at: str | None = None
