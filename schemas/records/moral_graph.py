"""Moral Graph Elicitation: interviews, values cards, individual "wiser than" votes and aggregated edges."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from valuecorpus.schemas.records.base import Record


class Turn(BaseModel):
    role: Literal["interviewer", "participant", "system"]
    content: str


class Interview(Record):
    kind: ClassVar[str] = "interview"

    case_id: str | None = None
    question: str | None = Field(None, description="the contentious prompt the interview is about")
    participant: str | None = Field(None, description="pseudonymised participant id")
    turns: list[Turn] = Field(default_factory=list)
    values_card_id: str | None = Field(None, description="id of the card the interview produced")


class ValuesCard(Record):
    """MGE v2 card (`title`, `description`, `policies`). v1 cards import with `evaluationCriteria` as policies
    and keep their instructions fields."""

    kind: ClassVar[str] = "values_card"

    card_key: str = Field(description="the card's id in its graph (source id as text for imports)")
    title: str
    description: str | None = None
    policies: list[str] = Field(default_factory=list, description="attentional policies, CAPS-prefixed")
    contexts: list[str] = Field(default_factory=list)
    instructions_short: str | None = None
    instructions_detailed: str | None = None
    canonical_card_key: str | None = None
    context: str | None = Field(None, description="the context the card was articulated for (v2 `context`)")
    question_key: str | None = Field(None, description="the question it answers (v2 `questionId`)")
    chat_id: str | None = None
    quality: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class MoralGraphVote(Record):
    """One participant's judgment of an upgrade story from one card to another in a context; or an
    LLM-generated hypothesis (relationship None)."""

    kind: ClassVar[str] = "moral_graph_vote"

    from_card: str
    to_card: str
    context: str | None = None
    relationship: Literal["upgrade", "no_upgrade", "not_sure"] | None = None
    story: str | None = None
    comment: str | None = None
    voter: str | None = Field(None, description="pseudonymised voter id")
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
    kind: ClassVar[str] = "moral_graph_edge"

    source_card: str
    wiser_card: str
    contexts: list[str] = Field(default_factory=list)
    counts: EdgeCounts = Field(default_factory=EdgeCounts)
    wiser_likelihood: float
    entropy: float


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
    case it arose in (DFT `contextsOnCases`)."""

    kind: ClassVar[str] = "moral_graph_context"

    context: str
    question_key: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
