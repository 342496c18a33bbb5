"""Run the engine benchmark: `python -m bench.run_all [--parts a,b] [--n 10000] [--competitor-n 2000] ...`.

Each part starts its own fake server (L = 200 ms unless said otherwise), runs every client in its own process
(its own CPU and RSS accounting), writes `bench/results/<part>.json`, and the summary
`bench/results/summary.md` is rebuilt from every part's latest JSON. Load averages are recorded around each
figure: the machine may be shared.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench import capacity, fault_bound
from bench.common import MAIN_PYTHON, fake_server, load, machine, run_client, save
from bench.fault_bound import FAULTS_20
from bench.summary import write_summary
from bench.venvs import DEFAULT_ROOT, ensure_venv

PARTS = ("capacity", "ideal", "c256", "sdk", "distilabel", "curator", "pipeline", "faults", "local")
# the fault mix, read two ways: as a share of requests (a request meets one fault, its retry is answered) and
# as a share of attempts (every attempt draws again, so a retry can fail again and chains of faults form)
FAULT_READINGS = (("per_request", "first"), ("per_attempt", "hash"))


def part_capacity(args: argparse.Namespace) -> dict[str, Any]:
    return capacity.run(seconds=args.wrk_seconds, asked=args.c / args.latency_ms * 1000)


def part_ideal(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    with fake_server("--latency-ms", str(args.latency_ms)) as server:
        for c, n in ((16, args.ideal_n16), (64, args.ideal_n64)):
            ideal = math.ceil(n / c) * args.latency_ms / 1000
            out = run_client(MAIN_PYTHON, "valuecorpus_engine.py", {"base_url": server.base_url, "n": n, "c": c},
                             server)
            out["ideal_s"] = ideal
            out["share_of_ideal"] = round(ideal / out["wall_s"], 3) if out.get("ok") else None
            runs.append(out)
    return {"runs": runs}


def part_c256(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    with fake_server("--latency-ms", str(args.latency_ms)) as server:
        for _ in range(args.repeats):  # interleaved, so both see the same machine
            params = {"base_url": server.base_url, "n": args.n, "c": args.c}
            runs.append(run_client(MAIN_PYTHON, "bare_aiohttp.py", params, server))
            runs.append(run_client(MAIN_PYTHON, "valuecorpus_engine.py", params, server))
    best = {name: max((r["req_per_s"] for r in runs if r["client"] == name and r.get("ok")), default=0.0)
            for name in ("bare_aiohttp.py", "valuecorpus_engine.py")}
    ratio = best["valuecorpus_engine.py"] / best["bare_aiohttp.py"] if best["bare_aiohttp.py"] else None
    return {"runs": runs, "best": best, "engine_vs_bare": round(ratio, 3) if ratio else None}


def _competitor(args: argparse.Namespace, tool: str, script: str, extra: dict[str, Any] | None = None,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    try:
        python, info = ensure_venv(tool, args.venvs, log=args.venvs / f"{tool}.log")
    except Exception as exc:  # an install that fails is a finding, reported as such
        return {"ok": False, "error": f"could not install {tool}: {exc}"}
    runs = []
    with fake_server("--latency-ms", str(args.latency_ms)) as server:
        for _ in range(args.repeats):
            params = {"base_url": server.base_url, "n": args.competitor_n, "c": args.c}
            runs.append(run_client(python, script, {**params, **(extra or {})}, server, env=env))
            runs.append(run_client(MAIN_PYTHON, "valuecorpus_engine.py", params, server))
    return {"venv": str(python.parent.parent), "packages": info["packages"], "install_s": info["seconds"],
            "versions": {k: v for k, v in info["versions"].items()
                         if k in ("distilabel", "bespokelabs-curator", "openai", "httpx", "aiohttp", "litellm")},
            "runs": runs}


def part_sdk(args: argparse.Namespace) -> dict[str, Any]:
    result = {}
    for transport in ("httpx", "aiohttp"):
        result[transport] = _competitor(args, "openai", "openai_sdk.py", {"transport": transport})
    return result


def part_distilabel(args: argparse.Namespace) -> dict[str, Any]:
    return _competitor(args, "distilabel", "distilabel_client.py")


def part_curator(args: argparse.Namespace) -> dict[str, Any]:
    return _competitor(args, "curator", "curator_client.py")


def _median_run(run: Any, times: int = 5) -> dict[str, Any]:
    """A sub-second figure on a shared machine moves with whatever else runs: the median of five runs, with
    every run's wall time kept beside it."""
    runs = [run() for _ in range(times)]
    ok = sorted((r for r in runs if r.get("ok")), key=lambda r: r["wall_s"])
    if not ok:
        return runs[0]
    return {**ok[len(ok) // 2], "runs_wall_s": [r.get("wall_s") for r in runs],
            "runs_requests": [r.get("server", {}).get("requests") for r in runs]}


def part_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="valuecorpus-bench-pipeline-"))
    try:
        with fake_server("--latency-ms", str(args.latency_ms)) as server:
            base = {"base_url": server.base_url, "n": args.n, "c": args.c, "out_dir": str(work / "runs" / "bench")}
            cold = run_client(MAIN_PYTHON, "beam_pipeline.py", {**base, "cache_dir": str(work / "cache")}, server)
            warm = _median_run(lambda: run_client(MAIN_PYTHON, "beam_pipeline.py",
                                                  {**base, "cache_dir": str(work / "cache")}, server))
            warm_beam = run_client(MAIN_PYTHON, "beam_pipeline.py",
                                   {**base, "cache_dir": str(work / "cache"), "force_beam": True}, server)
            identity = run_client(MAIN_PYTHON, "beam_pipeline.py",
                                  {**base, "cache_dir": str(work / "cache-identity"), "mode": "identity"}, server)
            engine_cached = run_client(MAIN_PYTHON, "valuecorpus_engine.py",
                                       {**base, "cache_dir": str(work / "cache-engine")}, server)
            engine_warm = _median_run(lambda: run_client(MAIN_PYTHON, "valuecorpus_engine.py",
                                                         {**base, "cache_dir": str(work / "cache-engine")}, server))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    warm_share = warm["wall_s"] / cold["wall_s"] if cold.get("ok") and warm.get("ok") else None
    beam_share = warm_beam["wall_s"] / cold["wall_s"] if cold.get("ok") and warm_beam.get("ok") else None
    return {"cold": cold, "warm": warm, "warm_beam": warm_beam, "identity": identity,
            "engine_with_cache": engine_cached, "engine_warm": engine_warm,
            "warm_share_of_cold": round(warm_share, 3) if warm_share else None,
            "warm_beam_share_of_cold": round(beam_share, 3) if beam_share else None,
            "warm_requests": sum(n or 0 for n in warm.get("runs_requests", [])),
            "warm_beam_requests": warm_beam.get("server", {}).get("requests")}


def part_faults(args: argparse.Namespace) -> dict[str, Any]:
    """Fault-free vs 20 % faults, with the adaptive window (AIMD) off and on (on is the default), and the bound
    a perfect client has on the same faults (`bench.fault_bound`). The client timeout is 5 × the server's fixed
    latency, so a hang costs its slot 1 s before it is retried."""
    out: dict[str, Any] = {"faults": FAULTS_20, "timeout_s": args.fault_timeout_s, "retry_after_s": args.retry_after_s}
    for label, adaptive in (("aimd_off", False), ("aimd_on", True)):
        params = {"n": args.n, "c": args.c, "timeout_s": args.fault_timeout_s, "adaptive": adaptive}
        with fake_server("--latency-ms", str(args.latency_ms)) as server:
            clean = run_client(MAIN_PYTHON, "valuecorpus_engine.py", {**params, "base_url": server.base_url}, server)
        out[label] = {"n": args.n, "adaptive": adaptive, "fault_free": clean}
        for reading, mode in FAULT_READINGS:
            with fake_server("--latency-ms", str(args.latency_ms), "--faults", FAULTS_20, "--fault-mode", mode,
                             "--retry-after", str(args.retry_after_s)) as server:
                faulty = run_client(MAIN_PYTHON, "valuecorpus_engine.py", {**params, "base_url": server.base_url},
                                    server)
            share = faulty["req_per_s"] / clean["req_per_s"] if clean.get("ok") and faulty.get("ok") else None
            accounted = (faulty.get("outcomes") == args.n
                         and faulty.get("succeeded", 0) + faulty.get("dead_letters", 0) == args.n)
            out[label][reading] = {"with_faults": faulty, "throughput_share": round(share, 3) if share else None,
                                   "every_request_accounted": accounted}
    out["perfect_client"] = {}
    for reading, mode in FAULT_READINGS:
        setup = fault_bound.Setup(args.n, args.c, args.latency_ms / 1000, args.fault_timeout_s, args.retry_after_s,
                                  FAULTS_20, mode)
        perfect = out["perfect_client"][reading] = fault_bound.bound(setup, seeds=list(range(10)))
        for label in ("aimd_off", "aimd_on"):  # seed 0 is the draw the engine met (the server's default seed)
            x = out[label][reading]
            if x["with_faults"].get("ok"):
                x["over_perfect_client"] = round(x["with_faults"]["wall_s"] / perfect["with_faults_s"][0], 3)
                # the bound is for the same faults only if the server answered the engine's attempts as counted
                x["same_faults_as_bound"] = fault_bound.same_faults(x["with_faults"].get("server", {}),
                                                                    perfect["attempts_seed_0"])
    return out


def part_local(args: argparse.Namespace) -> dict[str, Any]:
    # llama.cpp's worker threads wait for each other by spinning: on a shared 2-core machine 2 threads can cost
    # far more CPU per token than 1, so both are measured
    return {f"threads_{t}": run_client(MAIN_PYTHON, "local_backend.py", {"n": args.local_n, "threads": t}, None)
            for t in (1, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of: {', '.join(PARTS)}")
    p.add_argument("--n", type=int, default=10_000, help="requests for c256, pipeline, faults")
    p.add_argument("--c", type=int, default=256)
    p.add_argument("--competitor-n", type=int, default=2_000, help="requests for distilabel, curator, SDK")
    p.add_argument("--ideal-n16", type=int, default=1_000)
    p.add_argument("--ideal-n64", type=int, default=4_000)
    p.add_argument("--latency-ms", type=float, default=200.0)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--wrk-seconds", type=int, default=10)
    p.add_argument("--fault-timeout-s", type=float, default=1.0, help="client timeout: 5 × the fixed latency")
    p.add_argument("--retry-after-s", type=float, default=1.0, help="the wait the server's 429s ask for")
    p.add_argument("--local-n", type=int, default=4)
    p.add_argument("--venvs", type=Path, default=DEFAULT_ROOT)
    args = p.parse_args(argv)
    wanted = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = set(wanted) - set(PARTS)
    if unknown:
        p.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    for name in wanted:
        print(f"[bench] {name} (load {load()})", flush=True)
        data = globals()[f"part_{name}"](args)
        save(name, {"part": name, "machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                    "result": data})
    print(write_summary(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
