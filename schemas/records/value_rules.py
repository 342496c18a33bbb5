"""CVC-style value rules and the rule-pair dilemmas built from conflicting rules."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from valuecorpus.schemas.records.base import Record

Language = Literal["zh", "en"]


class ValueRule(Record):
    """A rule of thumb (judgment + action) classified into the CVC framework (CVC `final.csv`)."""

    kind: ClassVar[str] = "value_rule"

    rule: str = Field(description="the rule of thumb (CVC `rot`), in `language`")
    translation: str | None = Field(None, description="the rule in the other language (CVC `translate`)")
    language: Language = "zh"
    scene: str | None = Field(None, description="the scene the rule was written from")
    judgment: str | None = None
    action: str | None = None
    levels: list[str] = Field(default_factory=list, description="CVC levels, e.g. 国家 / 社会 / 个人")
    core_values: list[str] = Field(default_factory=list)
    derived_values: list[str] = Field(default_factory=list)
    relevance: Literal[0, 1] | None = Field(None, description="relevance to the value framework (0 = filtered)")
    label: Literal[-1, 0, 1] | None = Field(None, description="-1 violates (rewritten), 0 unrelated, 1 consistent")
    original_rule: str | None = Field(None, description="the rule before a -1 rewrite")


class RuleRef(BaseModel):
    rule_id: str
    rule: str
    translation: str | None = None
    levels: list[str] = Field(default_factory=list)
    core_values: list[str] = Field(default_factory=list)
    derived_values: list[str] = Field(default_factory=list)


class RuleOption(BaseModel):
    letter: Literal["A", "B", "C"]
    text: str
    follows: Literal["rule_1", "rule_2", "distractor"]


class RulePairDilemma(Record):
    """A scene where two similar but conflicting rules each pick a different option (CVC `moral_dilemma`)."""

    kind: ClassVar[str] = "rule_pair_dilemma"

    rule_1: RuleRef
    rule_2: RuleRef
    similarity: float | None = None
    contradiction: float | None = None
    scene: str
    options: list[RuleOption] = Field(description="three shuffled options; the answer key is `follows`")
    language: Language = "zh"
