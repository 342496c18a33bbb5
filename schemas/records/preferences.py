"""Derived sets for training and evaluation: stance-controlled preference pairs, outcomes and comparisons."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from valuecorpus.schemas.records.base import Record


class PreferencePair(Record):
    """Chosen and rejected differ in the value they serve, not in style (Value Drifts). Columns `prompt`,
    `chosen`, `rejected` are TRL's DPO format."""

    kind: ClassVar[str] = "preference_pair"

    prompt: str
    chosen: str
    rejected: str
    chosen_value: str = Field(description="the value or stance the chosen response serves")
    rejected_value: str = Field(description="the value or stance the rejected response serves")
    topic: str | None = None
    taxonomy: str | None = None
    length_ratio: float | None = None
    chosen_judged: str | None = Field(None, description="the value or stance a judge read in the chosen response")
    rejected_judged: str | None = Field(None, description="the value or stance a judge read in the rejected one")


class LotteryBranch(BaseModel):
    """One way an implicit lottery can resolve: a sub-outcome and its probability."""

    outcome_id: str = Field(description="id of the sub-outcome's own Outcome record")
    description: str
    probability: float = Field(ge=0.0, le=1.0)


class Outcome(Record):
    """An outcome sentence from an outcome set (Utility Engineering `options_hierarchical.json`), or an implicit
    lottery (`expected_utility_implicit/.../options.json`: a base option whose `lottery` lists the
    probability-weighted sub-outcomes it stands for)."""

    kind: ClassVar[str] = "outcome"
    references: ClassVar[dict[str, tuple[str, ...]]] = {"lottery.outcome_id": ("outcome.id",)}

    outcome_set: str
    category: str
    index: int = Field(description="position in the flattened set (the paper's option id)")
    description: str
    lottery: list[LotteryBranch] = Field(default_factory=list, description="empty unless an implicit lottery")


class OutcomeRef(BaseModel):
    outcome_id: str
    description: str


class OutcomeComparison(Record):
    kind: ClassVar[str] = "outcome_comparison"

    option_a: OutcomeRef
    option_b: OutcomeRef
    order: Literal["original", "flipped"] = "original"
    probability_a: float | None = Field(None, ge=0.0, le=1.0)
    samples: int = 0
    unparsed: int = 0
    model: str | None = None
