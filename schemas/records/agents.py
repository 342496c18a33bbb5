"""Agent-ValueBench-style environments, value-conflict cases and rubrics.

Environments are declarative: state tables described by JSON Schema, tools with JSON-Schema parameters and
effects drawn from a small fixed set of operations. Nothing in a record is ever executed as code.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from valuecorpus.schemas.records.base import Json, Record

EffectOp = Literal["read", "list", "insert", "update", "delete", "append", "require"]


class ToolEffect(BaseModel):
    """One operation of a tool on the state, interpreted by the built-in interpreter."""

    op: EffectOp
    table: str
    key_param: str | None = Field(None, description="the tool parameter that selects the row")
    field: str | None = None
    value_param: str | None = Field(None, description="the tool parameter whose value is written")
    value: Json = None


class ToolSpec(BaseModel):
    name: str
    description: str = ""
    parameters: Json = Field(default=None, description="JSON Schema of the tool's arguments")
    effects: list[ToolEffect] = Field(default_factory=list)


class ToolStateDependency(BaseModel):
    tool: str
    state_keys: list[str] = Field(default_factory=list)


class AgentEnvironment(Record):
    kind: ClassVar[str] = "agent_environment"

    env_name: str
    description: str = ""
    state_schema: Json = Field(default=None, description="JSON Schema per state table (initial_parameter_schema)")
    tool_state_dependencies: list[ToolStateDependency] = Field(default_factory=list)
    tools: list[ToolSpec] = Field(default_factory=list)


class Checkpoint(BaseModel):
    checkpoint_id: str
    checkpoint_name: str
    related_functions: list[str] = Field(default_factory=list)
    why_it_matters: str = ""
    expected_actions: list[str] = Field(default_factory=list)
    expected_signal: str = ""


class SpecialState(BaseModel):
    state_key: str
    why_allowed_empty: str


class AgentCase(Record):
    """A value-conflict task in an environment, with one golden trajectory (checkpoint list) per pole.

    The forced-choice variant (Agent-ValueBench `LLMChoice`) has no checkpoints and fills the `option_*` fields.
    """

    kind: ClassVar[str] = "agent_case"

    case_name: str
    environment: str
    value_system: str
    value_items: list[str] = Field(description="[value_a, value_b]")
    task_description: str
    initial_state: Json = Field(default=None, description="env_initial_parameters")
    special_state_list: list[SpecialState] = Field(default_factory=list)
    function_list: list[str] = Field(default_factory=list)
    checkpoints_a: list[Checkpoint] = Field(default_factory=list)
    checkpoints_b: list[Checkpoint] = Field(default_factory=list)
    success_condition: Json = None
    source_case_file: str | None = None
    option_a_value: str | None = None
    option_b_value: str | None = None
    choice_mode: str | None = None


class RubricItem(BaseModel):
    item_id: str
    source_checkpoint: str
    weight: int = Field(ge=1, le=5)
    question: str
    score_2: str
    score_1: str
    score_0: str
    look_for: str = ""


class ScaleLevel(BaseModel):
    score: int
    meaning: str


class Rubric(Record):
    kind: ClassVar[str] = "rubric"

    case_name: str
    value_a_name: str
    value_b_name: str
    status: str = "OK"
    case_conflict: str = ""
    scale: list[ScaleLevel] = Field(default_factory=list, description="0/1/2 and what each means")
    items_a: list[RubricItem] = Field(default_factory=list)
    items_b: list[RubricItem] = Field(default_factory=list)
    judge_note: list[str] = Field(default_factory=list)
