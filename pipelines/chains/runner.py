"""The plain-loop executor of a chain: the reference semantics the Beam pipeline must match.

For each step, the requests of many live samples go to the engine in one call (so the engine can batch, cache
and bound concurrency across samples): all of them in one `generate` call, or, with an engine that runs
concurrent batches, a group's at a time, each group moving through the steps on its own (`execute`). `prepare`
and `apply` are the two halves of a step around the engine call; the Beam pipeline calls the same two
functions, so both executors behave alike.

Accounting: every request ends as a result or a dead letter (the engine guarantees one outcome per request).
A sample whose request dead-lettered, or whose output failed a check in `absorb`/`finish`, stops; the check
failure becomes one dead letter of stage "check". No sample disappears silently.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from pydantic import ValidationError

from valuecorpus.pipelines.chains.base import Chain, SampleState, Step
from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult, Outcome
from valuecorpus.schemas.errors import TaxonomyError
from valuecorpus.schemas.records import Record
from valuecorpus.schemas.run_tables import DeadLetter


class EngineLike(Protocol):
    def generate(self, requests: list[GenerationRequest]) -> list[Outcome]: ...


class NotCached(Exception):
    """A request of the chain is not in the cache: the run needs the model (and its runner)."""


class CacheOnly:
    """An engine that answers from the cache alone and raises `NotCached` instead of sending a request."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def generate(self, requests: list[GenerationRequest]) -> list[Outcome]:
        outcomes = self.engine.cached(requests)
        if outcomes is None:
            raise NotCached
        return outcomes


def initial_state(item: dict[str, Any]) -> SampleState:
    """The state of one plan item; a proposed seed's request already belongs to its provenance."""
    state = SampleState(sample_id=item["sample_id"], plan_item=item)
    seed = item.get("seed_situation")
    if isinstance(seed, dict) and seed.get("cache_key"):
        state.cache_keys.append(seed["cache_key"])
        name, _, version = str(seed.get("prompt_template") or "").partition("@")
        if name:
            state.prompt_versions[name] = version
    return state


def initial_states(items: list[dict[str, Any]]) -> list[SampleState]:
    """One state per plan item."""
    return [initial_state(it) for it in items]


def prepare(step: Step, state: SampleState) -> tuple[SampleState, list[GenerationRequest]]:
    """The step's requests for one sample, with the prompt version recorded in the state."""
    if state.failed:
        return state, []
    state = state.clone()
    reqs = step.requests(state)
    for req in reqs:  # the engine copies it into dead letters: every outcome finds its sample
        req.metadata.setdefault("plan_item", state.sample_id)
    if reqs and (step.template is not None or step.base_name in step.chain.recipe.prompts):
        tmpl = step.prompt
        state.prompt_versions[tmpl.name] = tmpl.version
    return state, reqs


def record_spend(state: SampleState, step_name: str, res: GenerationResult) -> None:
    """Tokens and cost per (step, endpoint, model). Only what this run paid counts: an answer cached by another
    run costs 0 here (its own run paid), one its own killed attempt paid counts once (`GenerationResult.billed`)."""
    key = f"{step_name}|{res.endpoint}|{res.model}"
    row = state.spend.get(key)
    if row is None:
        row = state.spend[key] = {"requests": 0, "cached": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                  "cost_usd": 0.0}
    row["requests"] += 1
    if not res.billed:
        row["cached"] += 1
        return
    row["prompt_tokens"] += res.usage.prompt_tokens
    row["completion_tokens"] += res.usage.completion_tokens
    row["cost_usd"] += res.cost_usd
    state.tokens["prompt"] = state.tokens.get("prompt", 0) + res.usage.prompt_tokens
    state.tokens["completion"] = state.tokens.get("completion", 0) + res.usage.completion_tokens
    state.cost_usd += res.cost_usd


def check_dead_letter(state: SampleState, step_name: str) -> DeadLetter:
    return DeadLetter(
        request_id=f"{state.sample_id}:{step_name}", stage="check", attempts=0,
        error_class=state.failed_class or "check", reason=state.failed or "failed",
        raw_output=state.failed_raw, plan_item=state.sample_id,
    )


def apply(step: Step, state: SampleState, request_ids: list[str],
          outcomes: dict[str, Outcome]) -> tuple[SampleState, list[DeadLetter]]:
    """Fold the outcomes of this sample's requests (their ids, in the order `prepare` made them) into its
    state. Returns the new state and dead letters."""
    if state.failed:
        return state, []
    engine_failures: list[DeadLetter] = []
    results: list[GenerationResult] = []
    for request_id in request_ids:
        out = outcomes[request_id]
        if isinstance(out, DeadLetter):
            engine_failures.append(out.model_copy(update={"plan_item": out.plan_item or state.sample_id}))
        else:
            results.append(out)
    for res in results:  # what was spent counts even if a sibling request failed
        record_spend(state, step.base_name, res)
        if res.cache_key and res.cache_key not in state.cache_keys:
            state.cache_keys.append(res.cache_key)
        if res.model and res.model not in state.models:
            state.models.append(res.model)
        if res.endpoint_kind and res.endpoint_kind not in state.endpoint_kinds:
            state.endpoint_kinds.append(res.endpoint_kind)
    if engine_failures:
        state.fail(f"step '{step.name}': {engine_failures[0].error_class}: {engine_failures[0].reason}",
                   engine_failures[0].error_class)
        return state, engine_failures  # the engine's dead letters already account for this sample
    try:
        state = step.absorb(state, results)
    except TaxonomyError as exc:  # a value outside the taxonomy is a rejected output, never a new node
        state.fail(f"step '{step.name}': {exc}", "taxonomy", results[0].content if results else None)
    except (ValidationError, ValueError, KeyError, TypeError) as exc:  # a malformed output, not a crash
        state.fail(f"step '{step.name}': {exc.__class__.__name__}: {' '.join(str(exc).split())[:500]}",
                   "parse", results[0].content if results else None)
    if state.failed:
        return state, [check_dead_letter(state, step.name)]
    return state, []


def finish(chain: Chain, state: SampleState) -> tuple[list[Record], list[DeadLetter]]:
    if state.failed:
        return [], []
    try:
        return chain.finish(state), []
    except (ValidationError, ValueError, KeyError, TypeError, TaxonomyError) as exc:
        state = state.model_copy(deep=True)
        state.fail(f"finish: {exc.__class__.__name__}: {' '.join(str(exc).split())[:500]}", "schema")
        return [], [check_dead_letter(state, "finish")]


def run_chain(chain: Chain, states: list[SampleState], engine: EngineLike,
              on_step: Any = None) -> tuple[list[Record], list[DeadLetter]]:
    """Run every step over all states (one engine call per step), then finish: (records, dead letters)."""
    records, dead, _ = execute(chain, states, engine, on_step)
    return records, dead


def execute(chain: Chain, states: list[SampleState], engine: EngineLike,
            on_step: Any = None) -> tuple[list[Record], list[DeadLetter], list[SampleState]]:
    """`run_chain`, also returning the final states (their tokens and cost feed the run manifest).

    With an engine that runs concurrent batches (`Engine.drive`), the samples go in groups, each group through
    all the steps on its own: a group's next step starts while others still wait for this one, so the window
    stays full across step boundaries and the CPU of `prepare`/`apply` overlaps the network. The result is the
    step-by-step one: states and records in plan order, dead letters in step order, then plan order."""
    drive = getattr(engine, "drive", None)
    group = _group_size(engine)
    if on_step is not None or drive is None or len(states) <= group:
        states, dead = _in_steps(chain, states, engine, on_step)
    else:
        states, dead = drive(_in_groups(chain, states, engine, group))
    records: list[Record] = []
    for state in states:
        recs, failures = finish(chain, state)
        records.extend(recs)
        dead.extend(failures)
    return records, dead, states


# groups in flight at once: with a group a quarter of the window, about four windows of samples, enough that
# groups drift apart by a step or more while the states held stay bounded
_GROUPS_AT_ONCE = 16


def _group_size(engine: Any) -> int:
    # a quarter of the window: a few groups fill it, and each group's batch is still large enough that the
    # engine's per-batch work (cache lookups, a flush) stays small beside its requests
    window = getattr(getattr(engine, "config", None), "max_in_flight", 0) or 0
    return max(16, int(window) // 4)


def _step_batch(chain: Chain, step: Step, prepared: list[tuple[SampleState, list[GenerationRequest]]],
                seen: set[str]) -> list[GenerationRequest]:
    batch = [r for _, reqs in prepared for r in reqs]
    before = len(seen)
    seen.update(r.request_id for r in batch)
    if len(seen) - before != len(batch):
        raise RuntimeError(f"chain '{chain.kind}' step '{step.name}' produced duplicate request ids")
    return batch


def _fold(step: Step, prepared: list[tuple[SampleState, list[GenerationRequest]]],
          outcomes: dict[str, Outcome]) -> tuple[list[SampleState], list[list[DeadLetter]]]:
    states, dead = [], []
    for state, reqs in prepared:
        state, failures = apply(step, state, [r.request_id for r in reqs], outcomes)
        states.append(state)
        dead.append(failures)
    return states, dead


def _in_steps(chain: Chain, states: list[SampleState], engine: EngineLike,
              on_step: Any) -> tuple[list[SampleState], list[DeadLetter]]:
    """Every step over all states: one engine call per step."""
    dead: list[DeadLetter] = []
    for step in chain.steps():
        prepared = [prepare(step, s) for s in states]
        batch = _step_batch(chain, step, prepared, set())
        outcomes = {o.request_id: o for o in engine.generate(batch)} if batch else {}
        states, failures = _fold(step, prepared, outcomes)
        dead.extend(d for per_sample in failures for d in per_sample)
        if on_step is not None:
            on_step(step.name, states)
    return states, dead


async def _in_groups(chain: Chain, states: list[SampleState], engine: Any,
                     group: int) -> tuple[list[SampleState], list[DeadLetter]]:
    """Groups of `group` samples, each through every step; a bounded number of groups at a time, so that the
    states in flight do not grow with the run."""
    steps = chain.steps()
    seen: list[set[str]] = [set() for _ in steps]
    out = list(states)
    dead: list[list[list[DeadLetter]]] = [[[] for _ in states] for _ in steps]  # [step][sample]
    gate = asyncio.Semaphore(_GROUPS_AT_ONCE)

    async def run(lo: int) -> None:
        async with gate:
            part = out[lo : lo + group]
            for k, step in enumerate(steps):
                prepared = [prepare(step, s) for s in part]
                batch = _step_batch(chain, step, prepared, seen[k])
                outcomes = {o.request_id: o for o in await engine.agenerate(batch)} if batch else {}
                part, failures = _fold(step, prepared, outcomes)
                dead[k][lo : lo + len(failures)] = failures
            out[lo : lo + len(part)] = part

    tasks = [asyncio.ensure_future(run(lo)) for lo in range(0, len(states), group)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:  # one group's fatal error (a wrong key, a dead endpoint) stops the others
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return out, [d for per_step in dead for per_sample in per_step for d in per_sample]
