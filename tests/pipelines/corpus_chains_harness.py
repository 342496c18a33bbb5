"""Running a corpus chain against the fake OpenAI-compatible server (canned answers keyed by request, through
the server's responder hook) or the embedded local model, then the run's filters."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

from valuecorpus.pipelines.chains import chain_class
from valuecorpus.pipelines.chains.base import Chain, SampleState
from valuecorpus.pipelines.chains.runner import execute, initial_states
from valuecorpus.pipelines.engine import Engine, EngineConfig
from valuecorpus.pipelines.engine.probe import _PROBE_PROMPT
from valuecorpus.pipelines.filters import apply_filters
from valuecorpus.pipelines.planner import make_plan
from valuecorpus.pipelines.recipes import load_recipe
from valuecorpus.pipelines.seeds import seed_plan
from valuecorpus.schemas.records import Record
from valuecorpus.schemas.run_tables import DeadLetter, FilteredSample


@dataclass
class ChainRun:
    chain: Chain
    plan: list[dict[str, Any]]
    records: list[Record]
    dead: list[DeadLetter]
    kept: list[Record]
    filtered: list[FilteredSample]
    states: list[SampleState] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def chain_requests(self) -> list[dict[str, Any]]:
        """The chain's requests (the engine's one-off dialect probe left out)."""
        return [r for r in self.requests if not r.get("probe")]

    def assert_accounted(self, closed: bool = False) -> None:
        """Every plan item ends as records (each kept or filtered) or as a failed sample with its dead letters.
        `closed`: no answer was cut (the embedded model: a constrained answer always fits its max_tokens)."""
        if closed:
            assert not [d for d in self.dead if d.error_class in ("invalid_json", "local_model")], self.dead
        failed = {s.sample_id for s in self.states if s.failed}
        dead_items = {d.plan_item for d in self.dead}
        assert failed == dead_items
        by_item: dict[str, list[Record]] = {}
        for rec in self.records:
            by_item.setdefault(rec.provenance.plan_item or "", []).append(rec)
        assert set(by_item) | failed == {it["sample_id"] for it in self.plan} and not set(by_item) & failed
        assert {r.id for r in self.kept} | {f.sample_id for f in self.filtered} == {r.id for r in self.records}

    def reasons(self) -> dict[str, str]:
        """record id -> filter name."""
        return {f.sample_id: f.filter for f in self.filtered}


PROBE_PROMPT = _PROBE_PROMPT.strip()


def system_and_user(request: dict[str, Any]) -> tuple[str, str]:
    system = next((m["content"] for m in request["messages"] if m.get("role") == "system"), "")
    return system, request["last_user"]


def run(recipe_ref: str, responder: Any = None, overrides: dict[str, Any] | None = None,
        inputs: list[dict[str, Any]] | None = None, local: bool = False, cache_dir: Path | None = None) -> ChainRun:
    """Plan the recipe, run its chain (plain loop) on the fake server with `responder` (or the local model),
    then filter. Every request the server saw is kept in `requests`."""
    recipe = load_recipe(recipe_ref, overrides)
    chain = chain_class(recipe.kind)(recipe, inputs)
    skeleton = make_plan(recipe, chain.extra_axes(), chain.planned_count())
    seen: list[dict[str, Any]] = []

    def hook(request: dict[str, Any]) -> Any:
        if request["last_user"] == PROBE_PROMPT:
            seen.append({**request, "probe": True})
            return None
        seen.append(request)
        return responder(request) if responder else None

    cache = str(cache_dir) if cache_dir else None
    if local:
        config = EngineConfig(backend="local", cache_dir=cache, progress=False)
        plan, _pool, _report = seed_plan(chain, skeleton, config)  # the seed stage, as `generate` runs it
        with Engine(config) as engine:
            records, dead, states = execute(chain, initial_states(plan), engine)
    else:
        with FakeServer(FakeServerConfig(responder=hook)) as server:
            config = EngineConfig(backend="openai", base_url=server.base_url, model="fake-model", cache_dir=cache,
                                  progress=False, backoff_base_s=0.01)
            plan, _pool, _report = seed_plan(chain, skeleton, config)
            with Engine(config) as engine:
                records, dead, states = execute(chain, initial_states(plan), engine)
    languages = {it["sample_id"]: it["language"] for it in plan if "language" in it}
    result = apply_filters(chain, records, [], languages)
    return ChainRun(chain, plan, records, dead, result.kept, result.filtered, states, seen)


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
