"""Agent-ValueBench-style environments, value-conflict cases and rubrics.

Environments are declarative: state tables described by JSON Schema, tools with JSON-Schema parameters and
effects drawn from a small fixed set of operations. Nothing in a record is ever executed as code.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, Field

from valuecorpus.schemas.records.base import Json, Record

EffectOp = Literal["get", "list", "insert", "update", "delete", "append", "require"]
EFFECT_OPS: tuple[str, ...] = get_args(EffectOp)

# Reference fields (what points at what), declared once here for the validation suites and the importers:
# `json_schema_extra={"references": "<kind>.<field>"}`; `same_case` narrows the target to records of the
# same case (a rubric item's checkpoint is one of its own case's checkpoints).
REFERENCES = "references"


def ref(target: str, **extra: Any) -> dict[str, Any]:
    return {REFERENCES: target, **extra}


class ToolEffect(BaseModel):
    """One operation of a tool on the state, from a fixed set; the interpreter executes nothing else.

    `table` names a state table; `path` goes below it, one segment per level (a row key, then a nested key).
    Any string in `path`, `where` or `value` may hold `{param}`: a string that is exactly `{param}` becomes the
    argument's value (of any type), otherwise the argument is written into the text.

    - get: the row at `path` (missing: the error observation `error`), shown as `output` in the observation
    - list: the rows of `table`/`path` whose fields equal `where` (all rows without `where`)
    - insert: `value` (a row) at `path`; a row already there is an error
    - update: the fields of `value` set on the row at `path`; a missing row is an error
    - delete: the row at `path` removed; a missing row is an error
    - append: `value` appended to the list `field` of the row at `path`
    - require: a precondition. `exists` (default) or `absent` at `path`, and, when `where` is given, the row's
      fields equal it; otherwise the call ends with the error observation `error` and the state is unchanged
    """

    op: EffectOp
    table: str
    path: list[str] = Field(default_factory=list, description="keys below the table; '{param}' substitutes")
    where: Json = Field(None, description="list / require: {field: value} the row must match")
    value: Json = Field(None, description="insert: the row; update: {field: value}; append: the item")
    field: str | None = Field(None, description="append: the list field of the row")
    expect: Literal["exists", "absent"] | None = Field(None, description="require: exists (default) or absent")
    error: str | None = Field(None, description="the error observation when the effect cannot apply")
    output: str | None = Field(None, description="get / list: the name of the result in the observation")


class ToolSpec(BaseModel):
    name: str
    description: str = ""
    parameters: Json = Field(default=None, description="JSON Schema of the tool's arguments (key order kept)")
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
    executable: bool = Field(
        False, description="every tool carries effects that passed the spec check: the interpreter runs it")


class Checkpoint(BaseModel):
    checkpoint_id: str
    checkpoint_name: str
    related_functions: list[str] = Field(default_factory=list)
    why_it_matters: str = ""
    expected_actions: list[str] = Field(default_factory=list)
    expected_signal: str = ""


class TrajectoryStep(BaseModel):
    """One tool call of a trajectory and what the interpreter answered."""

    tool: str
    arguments: Json = Field(None, description="the call's arguments (key order kept)")
    observation: Json = Field(None, description="{success: true, data: …} or {success: false, error: …}")
    error: str | None = Field(None, description="set when the call failed (bad arguments, precondition)")


class SpecialState(BaseModel):
    state_key: str
    why_allowed_empty: str


class AgentCase(Record):
    """A value-conflict task in an environment, with one golden trajectory (checkpoint list) per pole.

    The forced-choice variant (Agent-ValueBench `LLMChoice`) has no checkpoints and fills the `option_*` fields.
    """

    kind: ClassVar[str] = "agent_case"

    case_name: str
    environment: str = Field(json_schema_extra=ref("agent_environment.env_name"))
    value_system: str
    value_items: list[str] = Field(description="[value_a, value_b]")
    task_description: str
    initial_state: Json = Field(default=None, description="env_initial_parameters")
    special_state_list: list[SpecialState] = Field(default_factory=list)
    function_list: list[str] = Field(default_factory=list)
    checkpoints_a: list[Checkpoint] = Field(default_factory=list)
    checkpoints_b: list[Checkpoint] = Field(default_factory=list)
    golden_a: list[TrajectoryStep] = Field(
        default_factory=list, description="pole A's golden trajectory, replayed by the interpreter")
    golden_b: list[TrajectoryStep] = Field(default_factory=list, description="pole B's golden trajectory")
    success_condition: Json = None
    source_case_file: str | None = Field(None, description="forced-choice variant: the case it rewrites")
    option_a_value: str | None = None
    option_b_value: str | None = None
    choice_mode: str | None = None


class RubricItem(BaseModel):
    item_id: str
    source_checkpoint: str = Field(json_schema_extra=ref("agent_case.checkpoints.checkpoint_id", same_case=True))
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

    case_name: str = Field(json_schema_extra=ref("agent_case.case_name"))
    value_a_name: str
    value_b_name: str
    status: str = "OK"
    case_conflict: str = ""
    scale: list[ScaleLevel] = Field(default_factory=list, description="0/1/2 and what each means")
    items_a: list[RubricItem] = Field(default_factory=list)
    items_b: list[RubricItem] = Field(default_factory=list)
    judge_note: list[str] = Field(default_factory=list)
