"""The embedded local backend (llama.cpp in-process, SmolLM2-135M, grammar-constrained by the JSON Schema):
completion tokens per second through `Engine.generate`."""

from __future__ import annotations

from workload import SCHEMA, Meter, messages, params

from valuecorpus.pipelines.engine import Engine, EngineConfig, GenerationResult


def main() -> None:
    p = params()
    n = p["n"]
    config = EngineConfig(backend="local", progress=False, n_threads=p.get("threads", 2))
    requests = [{"request_id": f"l{i}", "messages": messages(i), "json_schema": SCHEMA,
                 "params": {"max_tokens": p.get("max_tokens", 128)}} for i in range(n)]
    with Engine(config) as engine:
        engine.generate(requests[:1])  # load the model outside the timed section
        with Meter() as meter:
            outcomes = engine.generate(requests[1:])
        stats = engine.stats.as_dict()
    done = [o for o in outcomes if isinstance(o, GenerationResult)]
    completion = sum(o.usage.completion_tokens for o in done)
    prompt = sum(o.usage.prompt_tokens for o in done)
    meter.report(n - 1, len(done), completion_tokens=completion, prompt_tokens=prompt,
                 completion_tokens_per_s=round(completion / meter.wall, 1),
                 total_tokens_per_s=round((prompt + completion) / meter.wall, 1), engine=stats)


if __name__ == "__main__":
    main()
