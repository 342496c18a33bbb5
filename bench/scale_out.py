"""Scale-out benchmarks (issue 18): the generation pipeline on Beam in-process vs the Dask runner with two
workers and the data home on a local S3-compatible store, and the duplicate filter alone on synthetic records
(the loop's global `apply_filters` vs Beam in-process vs Dask with one and with two workers).

    python -m bench.scale_out generation --n 1000            # dilemmas chain, fake server, C = 256: loop,
                                                             # Beam in-process, Dask (2 workers, home on S3)
    python -m bench.scale_out generation --n 300 --only loop --profile /tmp/prof
                                                             # only the loop, each run under cProfile
    python -m bench.scale_out filter --records 100000        # synthetic records, ~10 % near duplicates

Every figure is printed with the load average at its start (the machine is shared). `cpu_s` and `peak_rss_mb`
are the `generate` process's own (with what it waited for; on Dask not the workers'), `cpu_ms_per_request` over
every request of the run, the seed stage's included. Results go to
bench/results/scale_out.json. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "scale_out.json"
# generation: the loop, Beam in-process, Dask (2 workers, home on S3), and Dask with the home on the local disk
# (the workers share it here): what the object store costs
RUNS = ("loop", "beam", "dask", "dask_disk")


class _TaskStream:
    """Where a Dask run's time goes, from the scheduler's task stream: per worker the seconds spent computing
    tasks and receiving their inputs from another worker, the busiest task groups (Beam steps), and the rest of
    the wall time (scheduling, the launcher, idle workers)."""

    def __init__(self, address: str) -> None:
        from distributed import Client

        self.client = Client(address, timeout=30)
        self.client.get_task_stream()  # starts the recording

    def __enter__(self) -> _TaskStream:
        self.started = time.time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.tasks = self.client.get_task_stream(start=self.started)
        self.wall = time.time() - self.started
        self.client.close()

    def figures(self) -> dict[str, Any]:
        from dask.utils import key_split

        busy: dict[str, dict[str, float]] = {}
        groups: dict[str, float] = {}
        for task in self.tasks:
            worker = busy.setdefault(str(task.get("worker")), {"compute_s": 0.0, "transfer_s": 0.0})
            for span in task.get("startstops", ()):
                seconds = span["stop"] - span["start"]
                if span["action"] == "compute":
                    worker["compute_s"] += seconds
                    group = key_split(task["key"])
                    groups[group] = groups.get(group, 0.0) + seconds
                elif span["action"] == "transfer":
                    worker["transfer_s"] += seconds
        top = sorted(groups.items(), key=lambda kv: -kv[1])[:8]
        return {"tasks": len(self.tasks), "wall_s": round(self.wall, 2),
                "workers": {w: {k: round(v, 2) for k, v in f.items()} for w, f in sorted(busy.items())},
                "busiest_steps_s": {name: round(sec, 2) for name, sec in top}}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _record(name: str, figures: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[name] = {**figures, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True))
    print(json.dumps({name: data[name]}, indent=2))


def _recipe(folder: Path, concurrency: int) -> str:
    """The shipped dilemmas recipe at the benchmark's concurrency (the shipped one asks for 16 in flight)."""
    import yaml

    recipe = yaml.safe_load((REPO / "pipelines" / "recipes" / "dilemmas.yaml").read_text(encoding="utf-8"))
    recipe["model"]["concurrency"] = concurrency
    path = folder / f"dilemmas_c{concurrency}.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return str(path)


# `python -m cProfile -m valuecorpus` writes nothing: the command ends the process itself once its exit handlers
# have run (`cli._exit_now`). Called with its arguments, `main` raises SystemExit instead.
_PROFILED = """
import cProfile, sys
from valuecorpus.cli import main
profile = cProfile.Profile()
try:
    profile.runcall(main, sys.argv[2:])
except SystemExit as done:
    code = done.code
profile.dump_stats(sys.argv[1])
sys.exit(code)
"""


def _generate(home: str, n: int, base_url: str, beam_args: list[str], run_id: str,
              env: dict[str, str] | None = None, recipe: str = "dilemmas",
              executor: str = "beam", profile: str | None = None) -> dict[str, Any]:
    load = _load()
    started = time.perf_counter()
    # the run's own CPU and peak RSS (its process and what it waited for), not the benchmark's
    prefix = [sys.executable, "-c", _PROFILED, profile] if profile else [sys.executable, "-m", "valuecorpus"]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([*prefix, "generate", recipe, "--n", str(n),
                                 "--base-url", base_url, "--model", "fake-model", "--no-progress", "--run-id",
                                 run_id, "--executor", executor, "--", *beam_args], stdout=subprocess.DEVNULL,
                                stderr=err, env={**os.environ, "VALUECORPUS_HOME": home, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(err.read().decode(errors="replace")[-3000:])
    from valuecorpus.schemas.layout import DataHome

    manifest = DataHome(home).run(run_id).read_manifest()
    cpu = usage.ru_utime + usage.ru_stime
    requests = sum(int(row.get("requests", 0)) for row in manifest.model_extra.get("spend") or [])
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "requests": requests,
            "cpu_ms_per_request": round(1000 * cpu / requests, 3) if requests else None,
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "records": manifest.counts.get("dilemma", 0),
            "load": load, "engine_s": (manifest.model_extra.get("engine") or {}).get("elapsed_s")}


def generation(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO / "tests" / "pipelines"))
    from canned import Responder
    from valuecorpus_testing.cluster import DaskCluster, ObjectStore
    from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

    work = Path(tempfile.mkdtemp(prefix="vc-scale-"))
    figures: dict[str, Any] = {"n": args.n, "latency_ms": args.latency, "concurrency": args.concurrency}
    recipe = _recipe(work, args.concurrency)
    only = set(args.only.split(","))
    if only - set(RUNS):
        raise SystemExit(f"error: --only: unknown run(s) {', '.join(sorted(only - set(RUNS)))} "
                         f"(known: {', '.join(RUNS)})")

    def profile(name: str) -> str | None:
        if not args.profile:
            return None
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        return str(Path(args.profile) / f"{name}.prof")

    with FakeServer(FakeServerConfig(responder=Responder(), model="fake-model", latency=str(args.latency))) as srv:
        if "loop" in only:
            figures["loop"] = _generate(str(work / "loop"), args.n, srv.base_url, [], "loop", recipe=recipe,
                                        executor="loop", profile=profile("loop"))
        if "beam" in only:
            figures["in_process"] = _generate(str(work / "local"), args.n, srv.base_url, [], "mem", recipe=recipe,
                                              profile=profile("beam"))
        if "dask" in only:
            with ObjectStore(work / "store") as store, DaskCluster(work / "dask", workers=2,
                                                                   env=store.env) as dask:
                with _TaskStream(dask.address) as stream:
                    figures["dask_2_workers_s3"] = _generate(store.url("home"), args.n, srv.base_url,
                                                             dask.beam_args, "dask", store.env, recipe=recipe)
                figures["dask_2_workers_s3"]["where"] = stream.figures()
        if "dask_disk" in only:
            with DaskCluster(work / "dask-disk", workers=2) as dask, _TaskStream(dask.address) as stream:
                figures["dask_2_workers_disk"] = _generate(str(work / "disk"), args.n, srv.base_url,
                                                           dask.beam_args, "dask", recipe=recipe)
            figures["dask_2_workers_disk"]["where"] = stream.figures()
    if "in_process" in figures and "dask_2_workers_s3" in figures:
        figures["dask_vs_in_process"] = round(figures["in_process"]["wall_s"]
                                              / figures["dask_2_workers_s3"]["wall_s"], 3)
    if args.profile is not None:  # figures under cProfile (or a trial: --profile "") are not the benchmark's
        print(json.dumps(figures, indent=2))
        return
    _record(f"generation_n{args.n}" + ("" if only == set(RUNS) else "_" + "_".join(r for r in RUNS if r in only)),
            figures)


CHUNK = 5_000  # synthetic records made per Beam element (the pipeline makes them; nothing is pickled into it)


def _base_text(i: int, seed: int) -> str:
    rng = random.Random(f"{seed}:{i}")
    return " ".join(f"w{rng.randrange(5000)}" for _ in range(40))


def _synthetic_record(i: int, seed: int = 7) -> Any:
    """Record `i`: a distinct text, or (~10 %) a near copy of an earlier record's text with a word changed, or
    (~2 %) an exact copy of one. Made from `i` alone, so any worker makes any record."""
    from valuecorpus.schemas.records import Dilemma, Provenance, stable_id

    rng = random.Random(f"{seed}:pick:{i}")
    r = rng.random()
    if i and r < 0.12:
        words = _base_text(rng.randrange(i), seed).split()
        if r < 0.10:
            words[rng.randrange(len(words))] = f"w{rng.randrange(5000)}"
        text = " ".join(words)
    else:
        text = _base_text(i, seed)
    return Dilemma(id=stable_id("bench", str(i)), basic_situation=text[:60], dilemma_situation=text, actions=[],
                   provenance=Provenance(origin="import", plan_item=str(i)))


def _synthetic_chunk(start: int, n: int) -> Iterator[tuple[Any, str]]:
    for i in range(start, min(n, start + CHUNK)):
        yield _synthetic_record(i), "en"


def _write_count(n: int, path: str) -> None:
    Path(path).write_text(str(n))


def _filter_beam(chain: Any, n: int, beam_args: list[str], only_make: bool = False) -> tuple[float, int]:
    """Wall time and the number kept (written by the pipeline's one sink: the Dask runner computes only the
    last leaf; the workers share this machine's disk). The records are made inside the pipeline, as the
    generation pipeline reads its records from shards."""
    import apache_beam as beam

    from valuecorpus.pipelines.beam_pipeline import pipeline_options
    from valuecorpus.pipelines.engine.gc_tuning import fewer_collections
    from valuecorpus.pipelines.filters.beam import FilterRecords

    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "kept")
        started = time.perf_counter()
        pipeline = beam.Pipeline(options=pipeline_options(beam_args))
        # the chunks through a grouping, as a chain's records reach the filter from its last join (keyed by the
        # chunk's number: Dask's grouping partitions an int by its value, and every start is even)
        records = (pipeline | beam.Create(list(range(0, n, CHUNK)))
                   | "ByChunk" >> beam.Map(lambda start: (start // CHUNK, None)) | beam.GroupByKey()
                   | beam.FlatMap(lambda kv: _synthetic_chunk(kv[0] * CHUNK, n)))
        kept = records if only_make else (records | FilterRecords(chain))[0]
        _ = (kept | beam.combiners.Count.Globally().without_defaults() | beam.Map(_write_count, out))
        with fewer_collections():  # as `generate` runs the pipeline (the in-process runner runs here)
            pipeline.run().wait_until_finish()
        return time.perf_counter() - started, int(Path(out).read_text())


def filters(args: argparse.Namespace) -> None:
    from valuecorpus.pipelines.chains import chain_class
    from valuecorpus.pipelines.engine.gc_tuning import fewer_collections
    from valuecorpus.pipelines.filters import apply_filters
    from valuecorpus.pipelines.recipes import load_recipe

    recipe = load_recipe("dilemmas", {"filters": {"language": {"enabled": False}, "leakage": False,
                                                  "length": {"min_chars": 1, "max_chars": 100000}}})
    chain = chain_class(recipe.kind)(recipe)
    figures: dict[str, Any] = {"records": args.records}
    records = [_synthetic_record(i) for i in range(args.records)]  # made before the clock starts (Beam: after)
    load, started = _load(), time.perf_counter()
    with fewer_collections():  # as `generate` runs the filters, on every executor
        result = apply_filters(chain, records)
    del records
    figures["global_filter"] = {"wall_s": round(time.perf_counter() - started, 2), "kept": len(result.kept),
                                "load": load}
    load = _load()
    wall, kept = _filter_beam(chain, args.records, [])
    figures["beam_in_process"] = {"wall_s": round(wall, 2), "kept": kept, "load": load}
    load = _load()
    wall, made = _filter_beam(chain, args.records, [], only_make=True)  # what making the records costs there
    figures["beam_in_process_making_records_only"] = {"wall_s": round(wall, 2), "records": made, "load": load}
    if args.dask:
        from valuecorpus_testing.cluster import DaskCluster

        work = Path(tempfile.mkdtemp(prefix="vc-filter-"))
        for workers in (1, 2):
            with DaskCluster(work / f"dask{workers}", workers=workers) as dask:
                load = _load()
                with _TaskStream(dask.address) as stream:
                    wall, kept = _filter_beam(chain, args.records, dask.beam_args)
                figures[f"dask_{workers}_workers"] = {"wall_s": round(wall, 2), "kept": kept, "load": load,
                                                      "where": stream.figures()}
        figures["dask_2_vs_1"] = round(figures["dask_1_workers"]["wall_s"] / figures["dask_2_workers"]["wall_s"], 3)
    _record(f"filter_{args.records}", figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    g = sub.add_parser("generation")
    g.add_argument("--n", type=int, default=1000)
    g.add_argument("--latency", type=int, default=200)
    g.add_argument("--concurrency", type=int, default=256, help="requests in flight (the recipe's model.concurrency)")
    g.add_argument("--only", default=",".join(RUNS), help=f"comma-separated runs out of {','.join(RUNS)}")
    g.add_argument("--profile", metavar="DIR", help="run each under cProfile, profiles to DIR/<run>.prof "
                   "(figures are printed, not recorded)")
    f = sub.add_parser("filter")
    f.add_argument("--records", type=int, default=100_000)
    f.add_argument("--dask", action="store_true", help="also on Dask with one and with two workers")
    args = parser.parse_args()
    {"generation": generation, "filter": filters}[args.what](args)


if __name__ == "__main__":
    main()
