"""The full Beam generation pipeline against the fake server: requests → the engine's `Generate` transform
(HTTP, parse, schema check, durable cache write) → rows → Parquet shards staged aside → renamed into place.

Run as a script in its own process (so its CPU and RSS are its own): argv[1] = JSON params
{base_url, n, c, cache_dir, out_dir, mode, force_beam}; mode "generate" (the real thing) or "identity" (the same
pipeline with the engine replaced by a pass-through: what Beam and Parquet cost by themselves). Prints one JSON line.

As `valuecorpus generate` does by default (executor auto), a job whose every request is cached is answered by
`Engine.cached` and written without launching Beam; `force_beam` runs it through Beam anyway (executor beam).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from workload import MAX_TOKENS, MODEL, SCHEMA, messages

RESULT_SCHEMA = pa.schema([("request_id", pa.string()), ("content", pa.string()), ("parsed", pa.string()),
                           ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()),
                           ("cache_key", pa.string()), ("cached", pa.bool_()), ("attempts", pa.int64())])
DEAD_SCHEMA = pa.schema([("request_id", pa.string()), ("payload", pa.string())])
_CHUNK = 2048


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _result_row(outcome: Any) -> dict[str, Any]:
    return {"request_id": outcome.request_id, "content": outcome.content,
            "parsed": orjson.dumps(outcome.parsed).decode(), "prompt_tokens": outcome.usage.prompt_tokens,
            "completion_tokens": outcome.usage.completion_tokens, "cache_key": outcome.cache_key,
            "cached": outcome.cached, "attempts": outcome.attempts}


def _dead_row(dead: Any) -> dict[str, str]:
    return {"request_id": getattr(dead, "request_id", ""), "payload": dead.model_dump_json()}


def _request(row: dict[str, Any]) -> Any:
    from valuecorpus.pipelines.engine import GenerationRequest

    i = row["i"]
    return GenerationRequest.model_validate({"request_id": f"r{i}", "messages": messages(i), "json_schema": SCHEMA,
                                             "params": {"max_tokens": MAX_TOKENS}})


def _identity_result(request: Any) -> Any:
    from valuecorpus.pipelines.engine.types import GenerationResult, Usage

    return GenerationResult.model_construct(request_id=request.request_id, content="{}", parsed={},
                                            usage=Usage(), cache_key="", cached=False, attempts=1)


def main() -> None:
    # modules are loaded before the clock starts (Beam, the engine, its HTTP client, pyarrow's dataset reader):
    # the figures are the pipeline's own work, in every mode alike
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet as pq
    from apache_beam.options.pipeline_options import PipelineOptions

    import valuecorpus.pipelines.engine.backends.http  # noqa: F401
    from valuecorpus.pipelines.engine import Engine, EngineConfig, Generate  # noqa: F401

    p = json.loads(sys.argv[1])
    n, c, mode = p["n"], p["c"], p.get("mode", "generate")
    out = Path(p["out_dir"])
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    config = EngineConfig(backend="openai", base_url=p["base_url"], model=MODEL, api_key="bench", max_in_flight=c,
                          dialect="openai", progress=False, cache_dir=p["cache_dir"],
                          timeout_s=p.get("timeout_s", 120.0))
    # the plan is a Parquet file made beforehand (as a run's plan.parquet is); the pipeline reads it
    plan = out.with_name(f".{out.name}.plan.parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"i": list(range(n))}), plan)
    options = PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"])
    cpu0, t0 = _cpu(), time.perf_counter()
    resolved = mode == "generate" and not p.get("force_beam") and _resolve_cached(config, plan, staging)
    if not resolved:
        _run_beam(options, plan, config, mode, staging)
    wall_pipeline = time.perf_counter() - t0
    n_results = sum(pq.read_metadata(f).num_rows for f in staging.glob("results*.parquet"))
    n_dead = sum(pq.read_metadata(f).num_rows for f in staging.glob("dead_letters*.parquet"))
    staging.rename(out)  # staged aside, renamed into place: readers never see a half-written run
    plan.unlink()
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    print(json.dumps({
        "n": n, "succeeded": n_results, "dead_letters": n_dead, "accounted": n_results + n_dead == n, "mode": mode,
        "executor": "cache" if resolved else "beam",
        "wall_s": round(wall, 3), "pipeline_wall_s": round(wall_pipeline, 3), "req_per_s": round(n / wall, 1),
        "cpu_s": round(cpu, 3), "cpu_ms_per_req": round(1000 * cpu / n, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }), flush=True)


def _resolve_cached(config: Any, plan: Path, staging: Path) -> bool:
    """Every outcome from the cache, written as the pipeline would write it; False if one is not cached."""
    from valuecorpus.pipelines.engine.gc_tuning import paused_collections

    with paused_collections():  # as `valuecorpus generate` resolves a cached job
        return _write_cached(config, plan, staging)


def _write_cached(config: Any, plan: Path, staging: Path) -> bool:
    import pyarrow.parquet as pq

    from valuecorpus.pipelines.engine import Engine, GenerationResult

    staging.mkdir(parents=True)
    # a chunk at a time, streamed to the shards: memory stays flat, whatever the size of the job
    with Engine(config) as engine, pq.ParquetWriter(staging / "results-00000-of-00001.parquet",
                                                     RESULT_SCHEMA) as results, \
            pq.ParquetWriter(staging / "dead_letters-00000-of-00001.parquet", DEAD_SCHEMA) as dead:
        for batch in pq.ParquetFile(plan).iter_batches(batch_size=_CHUNK):
            outcomes = engine.cached([_request(row) for row in batch.to_pylist()])
            if outcomes is None:
                break
            results.write_table(pa.Table.from_pylist(
                [_result_row(o) for o in outcomes if isinstance(o, GenerationResult)], RESULT_SCHEMA))
            dead.write_table(pa.Table.from_pylist(
                [_dead_row(o) for o in outcomes if not isinstance(o, GenerationResult)], DEAD_SCHEMA))
        else:
            return True
    shutil.rmtree(staging)  # one request is not cached: Beam runs the job
    return False


def _run_beam(options: Any, plan: Path, config: Any, mode: str, staging: Path) -> None:
    import apache_beam as beam

    from valuecorpus.pipelines.engine import Generate

    with beam.Pipeline(options=options) as pipeline:
        reqs = (pipeline | "ReadPlan" >> beam.io.ReadFromParquet(str(plan))
                | "Requests" >> beam.Map(_request))
        if mode == "identity":
            results = reqs | "PassThrough" >> beam.Map(_identity_result)
            dead = pipeline | "NoDead" >> beam.Create([])
        else:
            generated = reqs | "Generate" >> Generate(config, redistribute=False)
            results, dead = generated.results, generated.dead_letters
        _ = (results | "ResultRows" >> beam.Map(_result_row)
             | "WriteResults" >> beam.io.WriteToParquet(str(staging / "results"), RESULT_SCHEMA,
                                                       file_name_suffix=".parquet"))
        _ = (dead | "DeadRows" >> beam.Map(_dead_row)
             | "WriteDead" >> beam.io.WriteToParquet(str(staging / "dead_letters"), DEAD_SCHEMA,
                                                    file_name_suffix=".parquet"))


if __name__ == "__main__":
    main()
