"""The valuecorpus engine (`Engine.generate`), outside Beam, on its lean aiohttp hot path (or the SDK)."""

from __future__ import annotations

from workload import MAX_TOKENS, MODEL, SCHEMA, Meter, messages, params

# the engine loads its HTTP client on first use; it is loaded here, before the clock, as every other client
# loads its library (aiohttp, openai, distilabel, curator) before the clock
import valuecorpus.pipelines.engine.backends.http  # noqa: F401
from valuecorpus.pipelines.engine import Engine, EngineConfig, GenerationResult


def main() -> None:
    p = params()
    n, c = p["n"], p["c"]
    config = EngineConfig(backend="openai", base_url=p["base_url"], model=MODEL, api_key="bench",
                          max_in_flight=c, dialect=p.get("dialect", "openai"), progress=False,
                          transport=p.get("transport", "aiohttp"), cache_dir=p.get("cache_dir"),
                          timeout_s=p.get("timeout_s", 120.0), max_attempts=p.get("max_attempts", 5),
                          adaptive=p.get("adaptive", True))
    requests = [{"request_id": f"r{i}", "messages": messages(i), "json_schema": SCHEMA,
                 "params": {"max_tokens": MAX_TOKENS}} for i in range(n)]
    with Engine(config) as engine:
        with Meter() as meter:
            outcomes = engine.generate(requests)
        stats = engine.stats.as_dict()
    results = sum(isinstance(o, GenerationResult) for o in outcomes)
    meter.report(n, results, dead_letters=len(outcomes) - results, outcomes=len(outcomes), engine=stats)


if __name__ == "__main__":
    main()
