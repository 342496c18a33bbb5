"""What a chain is: an ordered list of steps over a per-sample state.

A step turns the state into engine requests (rendered from its prompt template), and folds the engine's
results back into the state. The same step list runs outside Beam (a plain loop, `runner.run_chain`) and
inside Beam (the pipeline expands each step into build → Generate → absorb), so chains never know which
executor runs them. Both executors call `runner.prepare` / `runner.apply` around a step: one code path.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Collection
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from valuecorpus.pipelines.engine.types import GenerationParams, GenerationRequest, GenerationResult
from valuecorpus.schemas.records import Provenance, Record, stable_id

if TYPE_CHECKING:
    from valuecorpus.pipelines.prompts import Template
    from valuecorpus.pipelines.recipes import Recipe


class SampleState(BaseModel):
    """Everything known about one sample while its chain runs. Serializable: Beam moves it between workers"""

    sample_id: str = Field(description="stable id: hash of recipe, plan item and seed")
    plan_item: dict[str, Any] = Field(description="the planner's item: strata values, seed…")
    data: dict[str, Any] = Field(default_factory=dict, description="what earlier steps produced")
    prompt_versions: dict[str, str] = Field(default_factory=dict, description="template name -> content hash")
    cache_keys: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    endpoint_kinds: list[str] = Field(default_factory=list)
    tokens: dict[str, int] = Field(default_factory=dict, description="prompt / completion tokens this run paid")
    cost_usd: float = Field(0.0, description="what this run paid for this sample")
    spend: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="'step|endpoint|model' -> requests, cached, tokens and cost paid")
    failed: str | None = Field(None, description="why the sample stopped (it becomes a dead letter)")
    failed_class: str | None = Field(None, description="dead-letter error class: schema, check…")
    failed_raw: str | None = Field(None, description="the output that failed the check, truncated")

    def clone(self) -> SampleState:
        """A deep copy, as `model_copy(deep=True)` makes it (shared sub-objects stay shared), built for what a
        state holds: dicts, lists and scalars are copied directly, anything else by `copy.deepcopy`. A step
        copies each state before it changes it; deepcopy's generic dispatch cost ~0.3 ms per state."""
        new = self.model_copy()
        fields = new.__dict__
        memo: dict[int, Any] = {}
        for name, value in fields.items():
            if type(value) not in _ATOMS:
                fields[name] = _clone(value, memo)
        return new

    def fail(self, reason: str, error_class: str = "check", raw: str | None = None) -> SampleState:
        """Stop this sample; it becomes a dead letter with this reason."""
        self.failed, self.failed_class = reason, error_class
        self.failed_raw = raw[:2000] if raw else None
        return self


_ATOMS = frozenset({str, int, float, bool, type(None), bytes})


def _clone(value: Any, memo: dict[int, Any]) -> Any:
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is not dict and kind is not list:
        return copy.deepcopy(value, memo)  # the same memo: an object reached twice is copied once
    done = memo.get(id(value))
    if done is not None:
        return done
    if kind is dict:
        out: Any = {}
        memo[id(value)] = out
        for k, v in value.items():
            out[k] = v if type(v) in _ATOMS else _clone(v, memo)
    else:
        out = []
        memo[id(value)] = out
        out.extend(v if type(v) in _ATOMS else _clone(v, memo) for v in value)
    return out


class Step(ABC):
    """One step of a chain. `requests` may return several requests (fan-out) or none (a pure transform)."""

    name: ClassVar[str]
    template: ClassVar[str | None] = None  # template under pipelines/prompts/, if the step calls the LLM

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    @property
    def base_name(self) -> str:
        """The name a recipe addresses the step by (prompts, step_max_tokens); a repeated step's turns share it."""
        return self.name

    @cached_property
    def prompt(self) -> Template:
        """The step's template, resolved once per step (asked for twice per request)."""
        return self.chain.template_for(self)

    def request(self, state: SampleState, variables: dict[str, Any],
                json_schema: dict[str, Any] | None = None, index: int = 0) -> GenerationRequest:
        """A request rendered from this step's template; its id is stable (sample, step, index). A template
        with examples shows one, rotated by the plan item's seed and the request's index."""
        template = self.prompt
        if template.examples and "example" not in variables:
            variables = {**variables, "example": template.example(int(state.plan_item.get("seed", 0)) + index)}
        return GenerationRequest(
            request_id=stable_id(state.sample_id, self.name, index),
            messages=template.render(**variables),
            json_schema=json_schema,
            params=self.chain.generation_params(self.base_name),
            metadata={"plan_item": state.sample_id, "step": self.name, "index": index},
        )

    @abstractmethod
    def requests(self, state: SampleState) -> list[GenerationRequest]: ...

    @abstractmethod
    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        """Fold results (same order as `requests`) into the state; `state.fail(...)` stops the sample."""


class _StepNames:
    """`Chain.step_names()`. On the class: the names a recipe may address (each step once; a repeated group's
    steps once, not per turn). On a chain: the names of its step list, one per step instance in `steps()`
    order (a repeated step once per turn: `ask[1]`, `ask[2]`, …)."""

    def __get__(self, chain: Chain | None, cls: type[Chain]) -> Any:
        if chain is not None:
            return lambda: [s.name for s in chain.steps()]

        def names() -> list[str]:
            out: list[str] = []
            for entry in cls.step_classes:
                out.extend(entry.step_names() if hasattr(entry, "expand") else [entry.name])
            return out
        return names


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Chain(ABC):
    """A corpus kind's generation chain: steps, then `finish` builds the records from the final state.

    Constructed from a validated recipe and, for chains that build on existing records (perspectives on
    dilemmas), `inputs` handed over by the caller (a list of plain dicts). Chains must be picklable."""

    kind: ClassVar[str]
    record_kinds: ClassVar[tuple[str, ...]] = ()
    input_kind: ClassVar[str | None] = None  # record kind handed over as `inputs` (--from-run/--from-dataset)
    Params: ClassVar[type[BaseModel]] = NoParams  # validates recipe.params
    step_classes: ClassVar[tuple[Any, ...]] = ()  # Step classes and `repeat.Repeat` groups, in order
    seed_template: ClassVar[str | None] = None  # the seed stage's prompt, for chains that draw seed situations
    when_short: ClassVar[str] = "refuse"  # more items than distinct seeds: refuse | cap (recipe may override)
    # plan axis (the plan item's key) -> the record field that carries its value: coverage is counted from the
    # records through these, and a record's field holds exactly what the planner planned
    stratum_fields: ClassVar[dict[str, str]] = {}
    # the top-level record fields `text_of` reads: stored texts (a published version's, a staged run's) are read
    # by these columns alone (`filters/stored_texts.py`), with `text_of` applied to a record holding just them
    text_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, recipe: Recipe, inputs: list[dict[str, Any]] | None = None) -> None:
        self.recipe = recipe
        self.params = self.Params.model_validate(recipe.params)
        self.inputs = inputs or []

    step_names = _StepNames()

    def steps(self) -> list[Step]:
        """The step list both executors run: a `Repeat` group expands into one step per turn, up to its cap."""
        from valuecorpus.pipelines.chains.repeat import expand_steps

        return expand_steps(self, self.step_classes)

    @abstractmethod
    def finish(self, state: SampleState) -> list[Record]:
        """Records for one sample (e.g. a dilemma; or eleven perspectives)."""

    # --- hooks with defaults ---------------------------------------------------------------------------

    @classmethod
    def validate_recipe(cls, recipe: Recipe) -> list[tuple[str, str]]:
        """Chain-specific recipe problems as (key path, message); checked when the recipe loads."""
        return []

    def extra_axes(self) -> dict[str, list[Any]]:
        """Axes the planner stratifies over besides the recipe's strata (e.g. one per input dilemma)."""
        return {}

    def planned_count(self) -> int:
        """Plan items this chain can make distinct (input-driven chains: what their inputs give)."""
        return self.recipe.count

    def capacity_note(self) -> str:
        """What bounds `planned_count`, for the message when the recipe asks for more."""
        return "the chain's inputs"

    # --- seed situations (pipelines/seeds.py) --------------------------------------------------------------

    input_source: str | None = None  # set by the caller: the run or dataset the inputs came from

    def seed_keys(self, plan_item: dict[str, Any]) -> list[str]:
        """The seed pools a plan item may draw from (e.g. the topics of its topic group); [] = no seed."""
        return []

    def shipped_seeds(self) -> dict[str, list[str]]:
        """Pool key -> the seeds shipped with the chain."""
        return {}

    def input_seeds(self) -> dict[str, list[str]]:
        """Pool key -> seeds taken from the input records (e.g. an imported corpus' basic situations)."""
        return {}

    def seed_variables(self, key: str) -> dict[str, Any]:
        """Variables of the seed-proposal template for one pool."""
        return {"topic": key.replace("_", " ")}

    def seed_prompt(self) -> Template:
        from valuecorpus.pipelines.prompts import load_template

        name = self.recipe.prompts.get("seeds") or self.seed_template
        if not name:
            raise TypeError(f"chain '{self.kind}' has no seed-proposal template")
        return load_template(name, self.recipe.base_dir)

    @staticmethod
    def seed_text(state: SampleState) -> str:
        """The plan item's own seed situation."""
        return str(state.plan_item["seed_situation"]["text"])

    def text_of(self, record: Record) -> str:
        """The text that identifies a record's content: deduplication, length and language run on it."""
        return ""

    def leakage(self, record: Record) -> list[tuple[str, list[str]]]:
        """(text, terms that must not appear in it) pairs for the leakage filter."""
        return []

    def check(self, record: Record) -> tuple[str, str] | None:
        """A chain-specific content check: (filter name, reason) to drop the record, or None."""
        return None

    def echo_fields(self, record: Record) -> list[tuple[str, str, bool]]:
        """(field, text, checked across samples) for the echo filter: each field is checked against the
        prompt's own text; those marked True also against the same field of the run's other samples."""
        return [("text", self.text_of(record), False)]

    def distinct_fields(self, record: Record) -> list[tuple[str, str, str, str]]:
        """(field a, text a, field b, text b): pairs of fields of one record that must not be the same text."""
        return []

    def shared_records(self, kept: list[Record]) -> list[Record]:
        """Records the kept ones refer to and the run must carry once, not per sample (agent cases: their
        environments), so a published version is whole."""
        return []

    def depends_on(self, record: Record) -> str | None:
        """The id of the record this one is part of (a rubric: its case): dropped with it, never an orphan."""
        return None

    # --- helpers for subclasses -----------------------------------------------------------------------

    def template_for(self, step: Step) -> Template:
        from valuecorpus.pipelines.prompts import load_template

        name = self.recipe.prompts.get(step.base_name) or step.template
        if not name:
            raise TypeError(f"step '{step.name}' of chain '{self.kind}' has no prompt template")
        return load_template(name, self.recipe.base_dir)

    def generation_params(self, step_name: str) -> GenerationParams:
        m = self.recipe.model
        return GenerationParams(temperature=m.temperature, seed=self.recipe.seed,
                                max_tokens=m.step_max_tokens.get(step_name, m.max_tokens),
                                repeat_penalty=m.repeat_penalty, model=m.step_models.get(step_name))

    def provenance(self, state: SampleState) -> Provenance:
        taxonomies = []
        if self.recipe.taxonomy:
            from valuecorpus.schemas.taxonomies.loader import load_taxonomy

            taxonomies.append(load_taxonomy(self.recipe.taxonomy).ref)
        return Provenance(
            origin="generate", recipe=self.recipe.name, plan_item=state.sample_id,
            seed=int(state.plan_item.get("seed", self.recipe.seed)),
            generator_model=state.models[0] if state.models else None,
            endpoint_kind=state.endpoint_kinds[0] if state.endpoint_kinds else None,
            prompt_templates=[f"{n}@{v}" for n, v in sorted(state.prompt_versions.items())],
            taxonomy_versions=taxonomies, cache_keys=list(state.cache_keys),
        )

    def record_id(self, state: SampleState, index: Any = None) -> str:
        return state.sample_id if index is None else stable_id(state.sample_id, index)


def strata_problems(recipe: Any, axis: str, allowed: Collection[str], message: str) -> list[tuple[str, str]]:
    """(key path, problem) for each value of `recipe.strata.<axis>` not in `allowed`; `message` has `{value}`."""
    values = getattr(recipe.strata, axis) or []
    return [(f"strata.{axis}[{i}]", message.format(value=v)) for i, v in enumerate(values) if v not in allowed]
