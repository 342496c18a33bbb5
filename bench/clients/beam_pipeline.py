"""The full Beam generation pipeline against the fake server: requests → the engine's `Generate` transform
(HTTP, parse, schema check, durable cache write) → rows → Parquet shards staged aside → renamed into place.

Run as a script in its own process (so its CPU and RSS are its own): argv[1] = JSON params
{base_url, n, c, cache_dir, out_dir, mode}; mode "generate" (the real thing) or "identity" (the same pipeline
with the engine replaced by a pass-through: what Beam and Parquet cost by themselves). Prints one JSON line.
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

from workload import MAX_TOKENS, MODEL, SCHEMA, messages


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _result_row(outcome: Any) -> dict[str, Any]:
    return {"request_id": outcome.request_id, "content": outcome.content,
            "parsed": json.dumps(outcome.parsed, ensure_ascii=False), "prompt_tokens": outcome.usage.prompt_tokens,
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
    import apache_beam as beam
    import pyarrow as pa
    import pyarrow.parquet as pq
    from apache_beam.options.pipeline_options import PipelineOptions

    from valuecorpus.pipelines.engine import EngineConfig, Generate

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
    result_schema = pa.schema([("request_id", pa.string()), ("content", pa.string()), ("parsed", pa.string()),
                               ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()),
                               ("cache_key", pa.string()), ("cached", pa.bool_()), ("attempts", pa.int64())])
    dead_schema = pa.schema([("request_id", pa.string()), ("payload", pa.string())])
    options = PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"])
    cpu0, t0 = _cpu(), time.perf_counter()
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
             | "WriteResults" >> beam.io.WriteToParquet(str(staging / "results"), result_schema,
                                                       file_name_suffix=".parquet"))
        _ = (dead | "DeadRows" >> beam.Map(_dead_row)
             | "WriteDead" >> beam.io.WriteToParquet(str(staging / "dead_letters"), dead_schema,
                                                    file_name_suffix=".parquet"))
    wall_pipeline = time.perf_counter() - t0
    n_results = sum(pq.read_metadata(f).num_rows for f in staging.glob("results*.parquet"))
    n_dead = sum(pq.read_metadata(f).num_rows for f in staging.glob("dead_letters*.parquet"))
    staging.rename(out)  # staged aside, renamed into place: readers never see a half-written run
    plan.unlink()
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    print(json.dumps({
        "n": n, "succeeded": n_results, "dead_letters": n_dead, "accounted": n_results + n_dead == n, "mode": mode,
        "wall_s": round(wall, 3), "pipeline_wall_s": round(wall_pipeline, 3), "req_per_s": round(n / wall, 1),
        "cpu_s": round(cpu, 3), "cpu_ms_per_req": round(1000 * cpu / n, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }), flush=True)


if __name__ == "__main__":
    main()
