"""DailyDilemmas-style dilemmas (one record holds both actions) and CLASH-style perspectives on them."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from valuecorpus.schemas.records.base import Record


class ValueAnnotation(BaseModel):
    """One value named for an action, with its five theory labels (looked up in the taxonomy, never generated).

    DailyDilemmas `values_names` / `values_types` / `wvs` / `mft` / `virtue` / `emotion` / `maslow`, aligned."""

    name: str
    type: Literal["direct", "indirect"] | None = None
    wvs: str | None = None
    mft: str | None = None
    virtue: str | None = None
    emotion: str | None = None
    maslow: str | None = None


class ModelAnswer(BaseModel):
    model: str
    answer: str


class DilemmaAction(BaseModel):
    """One of the two actions. Party / value / reason lists are aligned index-wise, as in DailyDilemmas;
    `None` items are the source's `nan`."""

    action_type: Literal["to_do", "not_to_do"]
    action: str
    negative_consequence: str = ""
    parties_direct: list[str | None] = Field(default_factory=list)
    parties_indirect: list[str | None] = Field(default_factory=list)
    values_direct: list[str | None] = Field(default_factory=list)
    values_indirect: list[str | None] = Field(default_factory=list)
    reason_direct: list[str | None] = Field(default_factory=list)
    reason_indirect: list[str | None] = Field(default_factory=list)
    values: list[ValueAnnotation] = Field(default_factory=list, description="values in the 301-value taxonomy")
    background: str | None = None
    model_answers: list[ModelAnswer] = Field(default_factory=list)


class Dilemma(Record):
    kind: ClassVar[str] = "dilemma"

    source_idx: int | None = Field(None, description="DailyDilemmas `idx` for imported dilemmas")
    basic_situation: str = Field(description="the seed situation (a Social-Chemistry action)")
    dilemma_situation: str = Field(description="three sentences: background, conflict, a yes/no question")
    topic: int | None = None
    topic_group: str | None = None
    actions: list[DilemmaAction] = Field(default_factory=list, description="to_do and not_to_do")


PerspectiveCategory = Literal[
    "straightforward", "simple_contrast", "swayed_contrast", "shift", "half_shift", "false_shift"
]
Ternary = Literal["yes", "no", "ambiguous"]


class GoldAnswers(BaseModel):
    """Fixed by the category by construction (CLASH Fig. 2), never asked of a model."""

    general: Ternary | None = None
    discomfort: Literal["yes", "no"] | None = None
    previous: Ternary | None = None
    current: Ternary | None = None


class Perspective(Record):
    kind: ClassVar[str] = "perspective"

    dilemma_id: str
    action: str = Field(description="the action under judgment (<10 words, -ing verb)")
    acceptable: str = Field(description="rationale for doing it (2-10-word noun phrase)")
    unacceptable: str = Field(description="rationale against it")
    category: PerspectiveCategory
    variant: str = Field(description="which of the eleven: e.g. 'S>>O', 'O>S', 'S->S=O'")
    description: str = Field(description="3-5 sentences, 'Character A ...', no demographic attributes")
    gold: GoldAnswers = Field(default_factory=GoldAnswers)
