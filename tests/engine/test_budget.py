"""The hard cap: when the next request could exceed it, nothing new starts and the rest are dead-lettered."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import assert_accounted, http_config, make_requests

from valuecorpus.pipelines.engine import DeadLetter, Engine, GenerationResult
from valuecorpus.schemas.errors import BudgetExhausted


def test_cost_cap_stops_at_the_cap(fake_server, tmp_path: Path) -> None:
    # every answer: 100 prompt + 50 completion tokens at $10 / $20 per 1M = $0.002; cap $0.03
    server = fake_server("--prompt-tokens", "100", "--completion-tokens", "50", "--latency-ms", "5")
    prices = {"fake-model": {"prompt": 10.0, "completion": 20.0}}
    requests = make_requests(100, max_tokens=50)
    config = http_config(server, tmp_path, prices=prices, max_cost_usd=0.03, max_in_flight=4)
    with Engine(config) as engine:
        outcomes = engine.generate(requests)
        assert_accounted(requests, outcomes)
        results = [o for o in outcomes if isinstance(o, GenerationResult)]
        dead = [o for o in outcomes if isinstance(o, DeadLetter)]
        assert results and dead and len(results) + len(dead) == 100
        assert all(d.error_class == "budget_exhausted" and d.stage == "budget" for d in dead)
        spent = sum(r.cost_usd for r in results)
        assert spent <= 0.03 + 1e-9
        assert engine.stats.cost_usd == pytest.approx(spent)
        assert spent > 0.03 - 4 * 0.0025  # it stopped near the cap, not long before it
        assert server.chat_requests() == len(results)  # no request was sent past the cap
        with pytest.raises(BudgetExhausted) as err:
            engine.raise_if_budget_exhausted()
    assert err.value.exit_code == 4
    assert f"${spent:.4f}" in str(err.value)


def test_token_cap(fake_server, tmp_path: Path) -> None:
    server = fake_server("--prompt-tokens", "10", "--completion-tokens", "20")
    requests = make_requests(30, max_tokens=20)
    with Engine(http_config(server, tmp_path, max_tokens_total=400, max_in_flight=2)) as engine:
        outcomes = engine.generate(requests)
    results = [o for o in outcomes if isinstance(o, GenerationResult)]
    assert engine.stats.tokens <= 400
    assert 0 < len(results) < 30
    assert engine.stats.dead_letters["budget_exhausted"] == 30 - len(results)


def test_cap_holds_across_processes_sharing_a_budget_scope(fake_server, tmp_path: Path) -> None:
    """Beam workers are processes: with a budget scope, their engines lease slices of one cap."""
    import json
    import subprocess
    import sys

    server = fake_server("--prompt-tokens", "100", "--completion-tokens", "50")
    job = Path(__file__).with_name("engine_job.py")
    cache_dir = tmp_path / "cache"
    budget = json.dumps({"prices": {"fake-model": {"prompt": 10.0, "completion": 20.0}}, "max_cost_usd": 0.05,
                         "budget_scope": "run-1", "max_in_flight": 4})
    procs = [subprocess.Popen([sys.executable, str(job), server.base_url, str(cache_dir), "40", "4", str(off),
                               budget], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for off in (0, 40, 80)]
    stats = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        stats.append(json.loads(out))
    spent = sum(s["cost_usd"] for s in stats)
    assert spent <= 0.05 + 1e-9 and spent > 0.03
    assert sum(s["results"] for s in stats) == server.chat_requests()
    assert sum(s["dead_letters"].get("budget_exhausted", 0) for s in stats) == 120 - server.chat_requests()


def test_a_killed_attempts_leases_come_back_to_the_next_attempt_not_its_spend(tmp_path: Path) -> None:
    """A killed process never settles its lease; the next attempt of the run gets it back, minus what was spent."""
    from valuecorpus.pipelines.engine.ledger import SharedLedger

    killed = SharedLedger(tmp_path, "run:r", max_cost=5.0, max_tokens=None)
    assert killed.lease(1.0, 0)[0] == 1.0
    killed.settle(0.0, 0, 1.0, 100)  # settled: spent $1 of its first lease
    assert killed.lease(4.0, 0)[0] == 4.0  # then leased the rest and was killed before settling it
    killed.close()
    resumed = SharedLedger(tmp_path, "run:r", max_cost=5.0, max_tokens=None)
    assert resumed.lease(4.0, 0)[0] == 0.0  # the dead lease holds the cap
    resumed.reclaim()
    assert resumed.lease(10.0, 0)[0] == pytest.approx(4.0)  # the cap less what was spent, never more
    assert resumed.spent() == (1.0, 100)
    resumed.close()


@pytest.mark.parametrize("home", ["disk", "object-store"])
def test_a_capped_engine_keeps_its_lease_across_batches(fake_server, tmp_path: Path, home: str,
                                                        request: pytest.FixtureRequest) -> None:
    """Many small batches under a shared cap (the loop's groups, Beam's bundles): nothing is refused while the
    spend is far below the cap — on a store, where claimed slices cannot be given back, an engine that forgot its
    slices after each batch used up all 16 in 16 batches — and the cap still holds once the spend reaches it."""
    server = fake_server("--prompt-tokens", "100", "--completion-tokens", "50", "--latency-ms", "2")
    prices = {"fake-model": {"prompt": 10.0, "completion": 20.0}}  # $0.002 per answer
    if home == "disk":
        cache_dir = str(tmp_path / "cache")
    else:
        cache_dir = request.getfixturevalue("object_store").url(f"budget-{tmp_path.name}", "cache")
    config = http_config(server, None, cache_dir=cache_dir, prices=prices, max_cost_usd=0.1, budget_scope="run:b",
                         max_in_flight=2)

    def batch_of(n: int) -> list:  # distinct prompts: none is answered from the cache
        reqs = make_requests(2, prefix=f"b{n}-", max_tokens=50)
        for r in reqs:
            r.messages[0]["content"] += f" (batch {n})"
        return reqs

    with Engine(config) as engine:
        for batch in range(20):  # $0.08 in 40 answers: below the cap
            outcomes = engine.generate(batch_of(batch))
            assert all(isinstance(o, GenerationResult) for o in outcomes), (batch, outcomes)
        for batch in range(20, 40):  # past the cap: refused from where the next answer could exceed it
            engine.generate(batch_of(batch))
        assert engine.stats.budget_exhausted
        assert 0.1 - 0.0025 * 3 < engine.stats.cost_usd <= 0.1 + 1e-9
    assert server.chat_requests() == round(engine.stats.cost_usd / 0.002)
