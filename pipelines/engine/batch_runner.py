"""A chain step's requests as Batch API jobs: what the chain runner calls in place of the live engine.

`BatchRunner.generate` answers a step from the cache when every request is there (collected from ended batches,
or from any earlier run), ends the items the Batch API failed on their last allowed submission as dead
letters, and otherwise submits what is neither cached nor already in an open batch, then raises `BatchPending`:
the run waits for `valuecorpus run resume RUN`, which collects and runs the chain again from the top. Earlier
steps are then answered from the cache, so the chain goes on with its next step. Nothing is awaited before
the submissions are in the state file (see `batch.py`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from valuecorpus.pipelines.engine.accounting import estimate_prompt_tokens
from valuecorpus.pipelines.engine.batch import (
    BatchState,
    _client,
    batch_cost,
    plan_submissions,
    save_state,
    send_planned,
)
from valuecorpus.pipelines.engine.types import GenerationRequest, Outcome
from valuecorpus.schemas.run_tables import DeadLetter

BUDGET_REASON = "budget"


class BatchPending(Exception):
    """The run waits for Batch API jobs: nothing is lost, `run resume` continues it."""

    def __init__(self, step: str, submitted: int, waiting: int, jobs: int) -> None:
        super().__init__(f"step '{step}': {submitted} requests submitted, {waiting} waiting in earlier batches")
        self.step, self.submitted, self.waiting, self.jobs = step, submitted, waiting, jobs
        self.run_id = ""
        self.collected = ""  # what this pass collected first (the report's lines)


class BatchRunner:
    def __init__(self, engine: Any, state: BatchState, state_path: Path, work_dir: Path) -> None:
        self.engine = engine
        self.config = engine.config
        self.state = state
        self.path = Path(state_path)
        self.work_dir = Path(work_dir)

    def generate(self, requests: list[GenerationRequest], _again: bool = True) -> list[Outcome]:
        keys = self.engine.cache_keys(requests)
        given_up = self.state.given_up(self.config.max_attempts)
        live = [(i, r) for i, r in enumerate(requests) if keys[i] not in given_up]
        cached = self.engine.cached([r for _, r in live]) if live else []
        if cached is not None:
            outcomes: list[Outcome | None] = [None] * len(requests)
            for (i, _), outcome in zip(live, cached, strict=True):
                outcomes[i] = outcome
            for i, r in enumerate(requests):
                if outcomes[i] is None:
                    outcomes[i] = self._dead(r, keys[i], given_up[keys[i]])
            return outcomes  # type: ignore[return-value]
        bodies = self.engine.batch_bodies([r for _, r in live])
        held = self.state.open_ids()
        new = self._within_budget({k: b for k, b in bodies.items() if k not in held}, requests, keys)
        step = str(requests[0].metadata.get("step", "")) if requests else ""
        if new:
            jobs = plan_submissions(self.state, self.path, self.work_dir, new, step)
            send_planned(_client(self.config), self.config, self.state, self.path, jobs)
        if _again and not new and not (set(bodies) & held):  # all that is left is over the budget
            save_state(self.path, self.state)
            return self.generate(requests, _again=False)
        raise BatchPending(step, len(new), len(set(bodies) & held),
                           sum(1 for j in self.state.jobs if not j.collected))

    def _dead(self, request: GenerationRequest, key: str, why: str) -> DeadLetter:
        n = self.state.attempts.get(key, 0)
        if why == BUDGET_REASON:
            return DeadLetter(request_id=request.request_id, stage="budget", attempts=0,
                              error_class="budget_exhausted", plan_item=request.metadata.get("plan_item"),
                              reason="not submitted: its worst case could exceed the run's budget")
        return DeadLetter(request_id=request.request_id, stage="generate", attempts=n, error_class="batch_failed",
                          plan_item=request.metadata.get("plan_item"),
                          reason=f"the Batch API did not answer it in {n} submissions: {why}")

    def _within_budget(self, bodies: dict[str, dict[str, Any]], requests: list[GenerationRequest],
                       keys: list[str]) -> dict[str, dict[str, Any]]:
        """Submissions whose worst case (prompt estimate + max_tokens at the batch price) fits the caps with
        what the run has committed so far; the rest never go out and end as `budget_exhausted`."""
        cfg = self.config
        if cfg.max_cost_usd is None and cfg.max_tokens_total is None:
            return bodies
        committed = self.state.extra.setdefault("committed", {"cost_usd": 0.0, "tokens": 0})
        cap_cost = math.inf if cfg.max_cost_usd is None else cfg.max_cost_usd
        cap_tokens = math.inf if cfg.max_tokens_total is None else cfg.max_tokens_total
        kept = {}
        for key, body in bodies.items():
            prompt = estimate_prompt_tokens(sum(len(m.get("content") or "") for m in body["messages"]))
            worst = int(body.get("max_tokens") or 0)
            cost = batch_cost(cfg, body.get("model") or cfg.model, prompt, worst)
            if committed["cost_usd"] + cost <= cap_cost + 1e-12 and committed["tokens"] + prompt + worst <= cap_tokens:
                committed["cost_usd"] += cost
                committed["tokens"] += prompt + worst
                kept[key] = body
            else:
                self.state.failures[key] = BUDGET_REASON
                self.state.attempts[key] = max(self.state.attempts.get(key, 0), cfg.max_attempts)
        return kept
