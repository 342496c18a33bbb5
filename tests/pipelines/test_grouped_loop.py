"""The loop runs samples in groups, each group through all the steps on its own, so that the window stays full
across step boundaries. That is an order of work, not a different run: the records, dead letters and final
states are those of the step-by-step loop (every step over all samples, one engine call each), in the same
order, with faults and check failures among them; and a key the endpoint refuses still costs one request."""

from __future__ import annotations

from typing import Any

import pytest
from canned import Responder
from valuecorpus_testing.cluster import free_port
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

from valuecorpus.pipelines.chains import chain_class
from valuecorpus.pipelines.chains.runner import _group_size, execute, initial_states
from valuecorpus.pipelines.engine import Engine, EngineConfig
from valuecorpus.pipelines.planner import make_plan
from valuecorpus.pipelines.recipes import load_recipe
from valuecorpus.pipelines.seeds import seed_plan
from valuecorpus.schemas.errors import EndpointError

N = 70  # with a window of 16, groups of 16: five groups, the last one short


def _config(server: FakeServer, **overrides: Any) -> EngineConfig:
    values: dict[str, Any] = {"backend": "openai", "base_url": server.base_url, "model": "fake-model",
                              "progress": False, "max_in_flight": 16, "max_attempts": 1, "backoff_base_s": 0.01}
    return EngineConfig(**{**values, **overrides})


def _server(**overrides: Any) -> FakeServer:
    # faults drawn from a hash of each request: both runs see the same ones (a third of requests fail)
    values: dict[str, Any] = {"responder": Responder(), "faults": "500:0.2,invalid_json:0.15", "latency": 5}
    return FakeServer(FakeServerConfig(**{**values, **overrides}))


@pytest.fixture(scope="module")
def planned() -> tuple[Any, list[dict[str, Any]]]:
    recipe = load_recipe("dilemmas", {"count": N})
    chain = chain_class(recipe.kind)(recipe, None)
    skeleton = make_plan(recipe, chain.extra_axes(), chain.planned_count())
    with _server(faults=None) as server:
        plan, _pool, _report = seed_plan(chain, skeleton, _config(server, max_attempts=4))
    return chain, plan


def _run(server: FakeServer, chain: Any, plan: list[dict[str, Any]], in_steps: bool) -> tuple[list, list, list, int]:
    with Engine(_config(server)) as engine:  # no cache: each run sends every request
        assert _group_size(engine) < len(plan)  # the grouped path is the one under test
        hook = (lambda _name, _states: None) if in_steps else None  # a step hook asks for the step-by-step loop
        records, dead, states = execute(chain, initial_states(plan), engine, hook)
        return ([r.model_dump(mode="json") for r in records], [d.model_dump(mode="json") for d in dead],
                [s.model_dump(mode="json") for s in states], engine.stats.requests)


def test_groups_give_the_step_by_step_run(planned: tuple[Any, list[dict[str, Any]]]) -> None:
    chain, plan = planned
    # a fresh server for each run (it counts attempts per request), on one address (part of each cache key)
    port = free_port()
    with _server(port=port) as server:
        records, dead, states, requests = _run(server, chain, plan, in_steps=False)
    with _server(port=port) as server:
        records_1, dead_1, states_1, requests_1 = _run(server, chain, plan, in_steps=True)
    assert {d["stage"] for d in dead} >= {"generate"} and records  # faults and survivors both
    assert requests == requests_1
    assert records == records_1
    assert dead == dead_1
    assert states == states_1
    # every sample ends as records or as a dead letter that names it
    failed = {s["sample_id"] for s in states if s["failed"]}
    assert failed == {d["plan_item"] for d in dead}
    assert failed.isdisjoint({r["provenance"]["plan_item"] for r in records})
    assert len(states) == len(plan)


def test_a_refused_key_costs_one_request_across_groups(planned: tuple[Any, list[dict[str, Any]]]) -> None:
    chain, plan = planned
    # the server lists models to anyone and not this one: nothing vouches for the key before a request
    with _server(faults=None, api_key="right-key", public_models=True) as server:
        config = _config(server, api_key="wrong-key-123", model="not-listed")
        with Engine(config) as engine, pytest.raises(EndpointError) as err:
            execute(chain, initial_states(plan), engine)
        assert server.stats()["by_path"].get("/v1/chat/completions", 0) == 1
    assert "401" in str(err.value) and "wrong-key-123" not in str(err.value)
