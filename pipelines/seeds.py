"""The seed stage: the seed situations a chain's plan items draw from, built before the plan is final.

A corpus can only be as varied as its seeds: at a fixed prompt, two plan items with the same seed make the same
first request, get the same answer, and end as duplicates. A chain that draws seeds (dilemmas: seed actions per
topic; value rules: seed scenes per topic and language; preference pairs: situations per topic; perspectives
without input dilemmas: cases per field) says which pools a plan item may draw from (`Chain.seed_keys`). Each
pool holds, in this order:

1. the seeds shipped with the chain (`seeds.shipped`);
2. seeds taken from the input records (`--from-run` / `--from-dataset`, e.g. the basic situations of an imported
   DailyDilemmas version);
3. only when the plan needs more distinct seeds than these give (`seeds.propose`): seeds proposed by the model,
   through the same engine, cache and budget as every step (template `<kind>/seeds`). Each proposal request
   names a different facet (who, where; `chains/data/seed_facets.yaml`), so requests differ from one another and
   can all go out at once; rounds repeat only for pools still short after deduplication.

Seeds are deduplicated on normalised text across all pools. Every seed, used or not, is a row of the run's
seeds table (`seeds.parquet`) with its source; proposed ones carry their request, cache key, template and model.
The planner then gives each plan item a seed of its own (`planner.attach_seeds`), or refuses / caps with the
number the pool reaches. Proposal requests depend only on the recipe and on the plan's demand, so the pool —
and the plan — is the same on every rerun (at temperature 0, or from the cache) and on every runner.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel

from valuecorpus.pipelines.filters.text import normalise, text_hash
from valuecorpus.pipelines.planner import seed_demand
from valuecorpus.schemas.records.base import stable_id
from valuecorpus.schemas.run_tables import DeadLetter, SeedRow

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain
    from valuecorpus.pipelines.engine.config import EngineConfig
    from valuecorpus.pipelines.engine.types import GenerationRequest

SEED_MAX_CHARS = 80  # a seed is a phrase or one short sentence
OVERSHOOT = 1.25  # proposals asked beyond the need: duplicates are dropped


class SeedsOut(BaseModel):
    seeds: list[str]


@cache
def facets() -> list[str]:
    """Facets that make proposal requests differ: every (who, where) pair, then the same with a batch number."""
    path = resources.files("valuecorpus.pipelines.chains") / "data" / "seed_facets.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    return [f"{who}, {where}" for where in data["where"] for who in data["who"]]


def facet(index: int) -> str:
    pairs = facets()
    base = pairs[index % len(pairs)]
    return base if index < len(pairs) else f"{base} (batch {index // len(pairs) + 1})"


def clean_seed(text: str) -> str:
    return " ".join(str(text).split()).strip().rstrip(".;,")


@dataclass
class SeedPool:
    """Seeds per pool key, in the order the planner takes them, and what the seed stage spent."""

    pools: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rows: list[SeedRow] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    requests: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0
    spend: dict[str, dict[str, float]] = field(default_factory=dict)  # 'seeds|endpoint|model' -> paid
    models: list[str] = field(default_factory=list)
    prompt_versions: dict[str, str] = field(default_factory=dict)
    engine: dict[str, Any] = field(default_factory=dict)  # the seed stage engine's counters (EngineStats)
    _seen: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, text: str, source: str, **provenance: Any) -> bool:
        """Add a seed to a pool; a duplicate (normalised text already in any pool) is recorded, not used."""
        text = clean_seed(text)
        if len(normalise(text)) < 3:
            return False
        pool = self.pools.setdefault(key, [])
        seed_id = stable_id("seed", key, normalise(text))
        digest = text_hash(text)
        duplicate_of = self._seen.get(digest)
        self.rows.append(SeedRow(seed_id=seed_id, pool=key, text=text, source=source,
                                 position=len(pool) if duplicate_of is None else -1,
                                 duplicate_of=duplicate_of, **provenance))
        if duplicate_of is not None:
            return False
        self._seen[digest] = seed_id
        entry = {"id": seed_id, "pool": key, "text": text, "source": source}
        if provenance.get("cache_key"):  # a proposed seed: its request belongs to the sample's provenance
            entry["cache_key"] = provenance["cache_key"]
            entry["prompt_template"] = provenance.get("prompt_template")
        pool.append(entry)
        return True

    def paid(self, result: Any) -> None:
        """What a proposal cost this run, as the chain's steps count it (`runner.record_spend`: an answer
        another run paid for is free here): tokens, cost, and the spend row of step `seeds`."""
        from valuecorpus.pipelines.chains.base import SampleState
        from valuecorpus.pipelines.chains.runner import record_spend

        acc = SampleState(sample_id="seeds", plan_item={}, tokens=self.tokens, cost_usd=self.cost_usd,
                          spend=self.spend)
        record_spend(acc, "seeds", result)
        self.tokens, self.cost_usd, self.spend = acc.tokens, acc.cost_usd, acc.spend

    def count(self, source: str | None = None) -> int:
        return sum(1 for r in self.rows if r.duplicate_of is None and (source is None or r.source == source))

    def summary(self) -> dict[str, Any]:
        by_source = Counter(r.source for r in self.rows if r.duplicate_of is None)
        return {"pools": len(self.pools), "seeds": self.count(), "by_source": dict(by_source),
                "duplicates": sum(1 for r in self.rows if r.duplicate_of is not None),
                "proposal_requests": self.requests, "dead_letters": len(self.dead_letters),
                "tokens": self.tokens, "cost_usd": round(self.cost_usd, 6), "engine": self.engine}


def proposal_request(chain: Chain, key: str, index: int, pool: SeedPool) -> GenerationRequest:
    from valuecorpus.pipelines.engine.types import GenerationRequest
    from valuecorpus.schemas.jsonschema import model_json_schema

    seeds = chain.recipe.seeds
    schema = model_json_schema(SeedsOut)
    schema["properties"]["seeds"].update(minItems=1, maxItems=seeds.per_request)
    schema["properties"]["seeds"]["items"].update(minLength=3, maxLength=SEED_MAX_CHARS)
    params = chain.generation_params("seeds")  # the engine asks for at least the schema's worst case
    template = chain.seed_prompt()
    style = [s["text"] for s in pool.pools.get(key, []) if s["source"] == "shipped"][:3]
    variables = {**chain.seed_variables(key), "n": seeds.per_request, "facet": facet(index), "style": style}
    return GenerationRequest(
        request_id=stable_id(chain.recipe.identity(), "seeds", key, index),
        messages=template.render(**variables), json_schema=schema, params=params,
        metadata={"plan_item": f"seeds:{key}", "step": "seeds", "index": index},
    )


def build_pool(chain: Chain, items: list[dict[str, Any]], config: EngineConfig | None) -> SeedPool:
    """The seed pool for these plan items: shipped, from inputs, then proposed where the plan needs more."""
    spec = chain.recipe.seeds
    pool = SeedPool()
    if spec.shipped:
        for key, texts in sorted(chain.shipped_seeds().items()):
            for text in texts:
                pool.add(key, text, "shipped")
    for key, texts in sorted(chain.input_seeds().items()):
        for text in texts:
            pool.add(key, text, chain.input_source or "input")
    demand = seed_demand(items, chain.seed_keys)
    short = {k: n - len(pool.pools.get(k, [])) for k, n in demand.items() if n > len(pool.pools.get(k, []))}
    if not short or not spec.propose or config is None:
        return pool
    from valuecorpus.pipelines.engine.core import Engine

    template = chain.seed_prompt()
    pool.prompt_versions[template.name] = template.version
    next_index: Counter[str] = Counter()
    yield_per_request = float(spec.per_request)  # new distinct seeds per request, as observed so far
    with Engine(config) as engine:
        for _round in range(spec.max_rounds):
            requests = []
            for key in sorted(short):
                n = math.ceil(short[key] * OVERSHOOT / max(1.0, yield_per_request))
                requests += [proposal_request(chain, key, next_index[key] + j, pool) for j in range(n)]
                next_index[key] += n
            outcomes = engine.generate(requests)
            pool.requests += len(requests)
            added: Counter[str] = Counter()
            for req, out in zip(requests, outcomes, strict=True):
                key = req.metadata["plan_item"].removeprefix("seeds:")
                if isinstance(out, DeadLetter):
                    pool.dead_letters.append(out.model_copy(update={"plan_item": out.plan_item or f"seeds:{key}"}))
                    continue
                pool.paid(out)
                if out.model and out.model not in pool.models:
                    pool.models.append(out.model)
                try:
                    texts = SeedsOut.model_validate(out.parsed).seeds
                except ValueError as exc:
                    pool.dead_letters.append(DeadLetter(
                        request_id=req.request_id, stage="parse", error_class="parse", plan_item=f"seeds:{key}",
                        reason=f"seed proposals: {' '.join(str(exc).split())[:300]}", raw_output=out.content[:2000]))
                    continue
                for text in texts:
                    added[key] += pool.add(key, text, "proposed", request_id=req.request_id,
                                           cache_key=out.cache_key or None, model=out.model or None,
                                           prompt_template=template.ref)
            yield_per_request = min(float(spec.per_request), sum(added.values()) / max(1, len(requests)))
            # a pool whose round added nothing new is exhausted: asking again would repeat the same answers
            short = {k: demand[k] - len(pool.pools.get(k, [])) for k in short
                     if demand[k] > len(pool.pools.get(k, [])) and added[k]}
            if not short:
                break
        pool.engine = engine.stats.as_dict()
    return pool


def seed_plan(chain: Chain, items: list[dict[str, Any]], config: EngineConfig | None
              ) -> tuple[list[dict[str, Any]], SeedPool | None, dict[str, Any]]:
    """The plan with a distinct seed per item, the pool it drew from, and what the run manifest says about it.

    When the recipe asks for more items than the seeds (or a chain's inputs) can make distinct, the policy
    (`seeds.when_short`, else the chain's) refuses with the number reachable, or caps the plan there and says so.
    """
    from valuecorpus.pipelines.planner import attach_seeds
    from valuecorpus.schemas.errors import RecipeError

    recipe = chain.recipe
    policy = recipe.seeds.when_short or chain.when_short
    pool: SeedPool | None = None
    report: dict[str, Any] = {"requested": recipe.count}
    if any(chain.seed_keys(it) for it in items):
        pool = build_pool(chain, items, config)
        items, short = attach_seeds(items, pool.pools, chain.seed_keys)
        sources = ", ".join(f"{n} {s}" for s, n in sorted(Counter(
            r.source for r in pool.rows if r.duplicate_of is None).items()))
        what = f"the seed pool gives {pool.count()} distinct seed situations ({sources or 'none'})"
        if short and not recipe.seeds.propose:
            what += "; seed proposals are off (seeds.propose)"
        report.update(pool.summary())
        reachable = len(items)
    else:
        reachable = len(items)
        what = chain.capacity_note()
        # items made from inputs (one per dilemma, pair, card…): the count is an upper bound unless said otherwise
        policy = recipe.seeds.when_short or "cap"
    if reachable < recipe.count:
        where = recipe.source_path or recipe.name
        stopped = sum(1 for d in (pool.dead_letters if pool else []) if d.error_class == "budget_exhausted")
        if stopped:
            from valuecorpus.schemas.errors import BudgetExhausted

            raise BudgetExhausted(f"cost or token cap reached in the seed stage: {stopped} seed proposal requests "
                                  f"not sent, {reachable} of {recipe.count} plan items have a seed; nothing was "
                                  "staged (the proposals made are cached)")
        if policy == "refuse":
            paid = " (the proposals are cached: a rerun does not pay for them again)" if pool and pool.requests else ""
            raise RecipeError(
                f"{where}: key 'count': {recipe.count} plan items asked, {reachable} can have a distinct seed: "
                f"{what}{paid}. Ask for --n {reachable}, add seeds (--from-dataset, seeds.propose), or set "
                "seeds.when_short: cap")
        report["note"] = f"planned {reachable} of the {recipe.count} items asked: {what}"
    report["planned"] = len(items)
    if pool is not None:
        report["distinct_seeds_used"] = len({it["seed_situation"]["id"] for it in items if "seed_situation" in it})
    return items, pool, report
