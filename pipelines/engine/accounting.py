"""Tokens and cost per request and in total, and the hard cap: a request starts only if its worst case fits."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from valuecorpus.pipelines.engine.config import EngineConfig
from valuecorpus.schemas.errors import BudgetExhausted


@dataclass
class EngineStats:
    requests: int = 0
    cached: int = 0
    sent: int = 0  # HTTP / model calls, retries included
    results: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    dead_letters: Counter[str] = field(default_factory=Counter)
    budget_exhausted: bool = False
    elapsed_s: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests, "cached": self.cached, "sent": self.sent, "results": self.results,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "tokens": self.tokens, "cost_usd": round(self.cost_usd, 6),
            "dead_letters": dict(self.dead_letters), "budget_exhausted": self.budget_exhausted,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def estimate_prompt_tokens(chars: int) -> int:
    # a worst-case-leaning estimate (about 3 characters per token, plus chat framing) for the budget only
    return chars // 3 + 16


class Budget:
    """Spent + reserved must stay within the caps. A request reserves its worst case (prompt estimate +
    max_tokens) before it starts and settles to the real usage when it ends.

    The caps are held as a lease: the whole cap for a lone engine, slices of a `SharedLedger` when several
    processes share one cap (`budget_scope`)."""

    def __init__(self, config: EngineConfig, stats: EngineStats) -> None:
        self.max_cost = config.max_cost_usd
        self.max_tokens = config.max_tokens_total
        self.config = config
        self.stats = stats
        self.reserved_cost = 0.0
        self.reserved_tokens = 0
        self.prompt_ratio = 1.0  # the largest real/estimated prompt tokens seen: estimates only grow safer
        self.ledger = None
        if self.enabled and config.budget_scope and config.cache_dir:
            from valuecorpus.pipelines.engine.ledger import open_ledger

            self.ledger = open_ledger(config.cache_dir, config.budget_scope, self.max_cost, self.max_tokens)
        # an uncapped dimension is never leased (leasing it made one ledger transaction per request); with a
        # ledger a capped one starts empty and is leased a slice at a time, without one the whole cap is held
        held = 0.0 if self.ledger is not None else None
        self.lease_cost = math.inf if self.max_cost is None else held if held is not None else self.max_cost
        self.lease_tokens = (math.inf if self.max_tokens is None
                             else held if held is not None else float(self.max_tokens))
        self._reported_cost = 0.0  # spend already recorded in the ledger
        self._reported_tokens = 0

    def learn(self, estimate: int, actual: int) -> None:
        if estimate > 0 and actual > estimate * self.prompt_ratio:
            self.prompt_ratio = actual / estimate

    @property
    def enabled(self) -> bool:
        return self.max_cost is not None or self.max_tokens is not None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.config.price_of(model)
        if price is None:
            return 0.0
        return (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1e6

    def _fits(self, cost: float, tokens: int) -> bool:
        return (self.stats.cost_usd + self.reserved_cost + cost <= self.lease_cost + 1e-12
                and self.stats.tokens + self.reserved_tokens + tokens <= self.lease_tokens)

    def reserve(self, model: str, prompt_tokens: int, max_tokens: int) -> tuple[float, int] | None:
        """The reservation, or None when this request could exceed a cap (then no new request starts)."""
        if self.stats.budget_exhausted:
            return None
        prompt_tokens = int(prompt_tokens * self.prompt_ratio) + 1
        tokens = prompt_tokens + max_tokens
        cost = self.cost(model, prompt_tokens, max_tokens)
        if not self._fits(cost, tokens) and self.ledger is not None:
            want_cost = 0.0 if self.max_cost is None else max(cost, self.max_cost / 16)
            want_tokens = 0 if self.max_tokens is None else max(tokens, self.max_tokens // 16)
            got_cost, got_tokens = self.ledger.lease(want_cost, want_tokens)
            self.lease_cost += got_cost
            self.lease_tokens += got_tokens
        if not self._fits(cost, tokens):
            self.stats.budget_exhausted = True
            return None
        self.reserved_cost += cost
        self.reserved_tokens += tokens
        return cost, tokens

    def settle(self, reservation: tuple[float, int] | None) -> None:
        if reservation is not None:
            self.reserved_cost -= reservation[0]
            self.reserved_tokens -= reservation[1]

    def charge(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        cost = self.cost(model, prompt_tokens, completion_tokens)
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        self.stats.cost_usd += cost
        return cost

    def release(self) -> None:
        """After a batch of requests: record the spend in the ledger and give back the unused lease."""
        if self.ledger is None:
            return
        spent_cost = self.stats.cost_usd - self._reported_cost
        spent_tokens = self.stats.tokens - self._reported_tokens
        # what the ledger cannot take back (claimed slices on a store) stays leased for this engine's next batch;
        # forgetting it would use up the cap with nothing spent
        gives_back = self.ledger.takes_back
        unused_cost = (max(0.0, self.lease_cost - self.stats.cost_usd - self.reserved_cost)
                       if gives_back and math.isfinite(self.lease_cost) else 0.0)
        unused_tokens = (int(max(0, self.lease_tokens - self.stats.tokens - self.reserved_tokens))
                         if gives_back and math.isfinite(self.lease_tokens) else 0)
        self.ledger.settle(unused_cost, unused_tokens, spent_cost, spent_tokens)
        self.lease_cost -= unused_cost
        self.lease_tokens -= unused_tokens
        self._reported_cost, self._reported_tokens = self.stats.cost_usd, self.stats.tokens

    def close(self) -> None:
        if self.ledger is not None:
            self.release()
            self.ledger.close()
            self.ledger = None

    def summary_short(self) -> str:
        return (f"not sent: the next request could exceed the budget (spent ${self.stats.cost_usd:.4f}, "
                f"{self.stats.tokens} tokens so far)")

    def summary(self) -> str:
        spent_cost, spent_tokens = self.stats.cost_usd, self.stats.tokens
        if self.ledger is not None:
            self.release()
            spent_cost, spent_tokens = self.ledger.spent()
        return str(budget_exhausted_error(self.config, self.stats.dead_letters.get("budget_exhausted", 0),
                                          spent_cost, spent_tokens))


def reclaim_budget(config: EngineConfig) -> None:
    """Called by a run's launcher before any engine starts: a killed earlier attempt of the same run (same
    budget scope) leaves leases nobody will settle; give them back, keeping what it spent."""
    if not (config.budget_scope and config.cache_dir):
        return
    from valuecorpus.pipelines.engine.ledger import open_ledger

    ledger = open_ledger(config.cache_dir, config.budget_scope, config.max_cost_usd, config.max_tokens_total)
    try:
        ledger.reclaim()
    finally:
        ledger.close()


def budget_exhausted_error(config: EngineConfig, not_sent: int, spent_cost: float | None = None,
                           spent_tokens: int | None = None, run_id: str | None = None) -> BudgetExhausted:
    """The one place the budget message is built: the caps, what was spent, what was not sent. Without the
    amounts, what was spent comes from the shared ledger of the budget scope (all processes of a run)."""
    if spent_cost is None and config.budget_scope and config.cache_dir:
        from valuecorpus.pipelines.engine.ledger import open_ledger

        ledger = open_ledger(config.cache_dir, config.budget_scope, config.max_cost_usd, config.max_tokens_total)
        try:
            spent_cost, spent_tokens = ledger.spent()
        finally:
            ledger.close()
    caps = [f"cost cap ${config.max_cost_usd:.4f}"] if config.max_cost_usd is not None else []
    caps += [f"token cap {config.max_tokens_total}"] if config.max_tokens_total is not None else []
    staged = f"; run '{run_id}' was staged with what was generated (see its dead letters)" if run_id else ""
    return BudgetExhausted(f"budget exhausted ({', '.join(caps)}): spent ${spent_cost or 0.0:.4f} and "
                           f"{spent_tokens or 0} tokens; {not_sent} requests not sent (dead-lettered as "
                           f"budget_exhausted){staged}")
