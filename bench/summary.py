"""`bench/results/summary.md`: one table per part, rebuilt from the latest JSON of every part."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS


def _load(part: str) -> dict[str, Any] | None:
    path = RESULTS / f"{part}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _row(label: str, run: dict[str, Any], extra: str = "") -> str:
    if not run or not run.get("ok"):
        error = (run or {}).get("error", "not run")
        return f"| {label} | failed: {error} | | | | | {extra} |"
    server = run.get("server", {})
    load = run.get("load_before", ["?"])[0], run.get("load_after", ["?"])[0]
    return (f"| {label} | {run['req_per_s']:,.0f} | {run['wall_s']:.2f} | {run['cpu_ms_per_req']:.3f} | "
            f"{run['peak_rss_mb']:.0f} | {server.get('requests', '')} | {extra} load {load[0]}→{load[1]} |")


HEAD = ("| client | req/s | wall s | client CPU ms/req | peak RSS MB | requests seen by server | notes |\n"
        "|---|---:|---:|---:|---:|---:|---|")


def _best(runs: list[dict[str, Any]], client: str) -> dict[str, Any] | None:
    ok = [r for r in runs if r.get("client") == client and r.get("ok")]
    return max(ok, key=lambda r: r["req_per_s"]) if ok else None


def _load_of(run: dict[str, Any] | None) -> str:
    return f"{run['load_before'][0]}" if run and "load_before" in run else ""


def headline() -> list[str]:
    """The issue's targets next to the latest figures, one line each."""
    rows: list[tuple[str, str, str, str]] = []
    cap = _load("capacity")
    if cap and cap["result"].get("ok"):
        r = cap["result"]
        rows.append(("fake server capacity (wrk)", f"≥ 5 × {r['asked_req_per_s']:,.0f} req/s",
                     f"{r['no_latency']['req_per_s']:,.0f} req/s no latency, {r['latency_200ms']['req_per_s']:,.0f} "
                     f"at 200 ms × 2,048 connections ({r['headroom']}×)", f"{r['no_latency']['load_before'][0]}"))
    ideal = _load("ideal")
    for run in (ideal or {}).get("result", {}).get("runs", []):
        if run.get("ok"):
            rows.append((f"engine C = {run['params']['c']}, N = {run['params']['n']}", "≥ 95 % of ceil(N/C)·L",
                         f"{100 * run['share_of_ideal']:.1f} % ({run['wall_s']:.2f} s vs {run['ideal_s']:.1f} s)",
                         _load_of(run)))
    c256 = _load("c256")
    if c256:
        runs = c256["result"]["runs"]
        eng, bare = _best(runs, "valuecorpus_engine.py"), _best(runs, "bare_aiohttp.py")
        if eng and bare:
            rows.append((f"engine C = 256, N = {eng['n']:,}", "≥ 1,000 req/s",
                         f"{eng['req_per_s']:,.0f} req/s, {eng['cpu_ms_per_req']:.2f} ms CPU/req, "
                         f"{eng['peak_rss_mb']:.0f} MB peak RSS", _load_of(eng)))
            rows.append(("engine / bare aiohttp, same run", "≥ 0.9",
                         f"{eng['req_per_s'] / bare['req_per_s']:.2f} (bare: {bare['req_per_s']:,.0f} req/s, "
                         f"{bare['cpu_ms_per_req']:.2f} ms CPU/req, {bare['peak_rss_mb']:.0f} MB)", _load_of(bare)))
    for part, label, target in (("distilabel", "engine / distilabel 1.5.3", "≥ 6"),
                                ("curator", "engine / bespokelabs-curator", "≥ 2.5")):
        data = _load(part)
        if data and "runs" in data["result"]:
            runs = data["result"]["runs"]
            eng = _best(runs, "valuecorpus_engine.py")
            other = max((r for r in runs if r.get("client") != "valuecorpus_engine.py" and r.get("ok")),
                        key=lambda r: r["req_per_s"], default=None)
            if eng and other:
                rows.append((label, target, f"{eng['req_per_s'] / other['req_per_s']:.1f}× ({other['req_per_s']:,.0f} "
                             f"vs {eng['req_per_s']:,.0f} req/s; {other['cpu_ms_per_req']:.2f} ms CPU/req, "
                             f"{other['peak_rss_mb']:.0f} MB)", _load_of(other)))
    sdk = _load("sdk")
    for transport, r in (sdk or {}).get("result", {}).items():
        other = _best(r.get("runs", []), "openai_sdk.py")
        if other:
            rows.append((f"openai SDK alone ({transport})", "(for comparison)",
                         f"{other['req_per_s']:,.0f} req/s, {other['cpu_ms_per_req']:.2f} ms CPU/req", _load_of(other)))
    pipe = _load("pipeline")
    if pipe and pipe["result"]["cold"].get("ok"):
        r = pipe["result"]
        rows.append((f"Beam pipeline C = 256, N = {r['cold']['n']:,}", "≥ 800 req/s",
                     f"{r['cold']['req_per_s']:,.0f} req/s ({r['cold']['cpu_ms_per_req']:.2f} ms CPU/req, "
                     f"{r['cold']['peak_rss_mb']:.0f} MB)", _load_of(r["cold"])))
        if r["warm"].get("ok"):
            forced = ""
            if r.get("warm_beam", {}).get("ok"):
                forced = (f"; Beam forced (executor beam): {r['warm_beam_requests']} requests, "
                          f"{100 * r['warm_beam_share_of_cold']:.1f} %")
            rows.append(("warm-cache rerun", "0 requests, ≤ 5 % of cold",
                         f"{r['warm_requests']} requests, {100 * r['warm_share_of_cold']:.1f} % (pipeline, answered "
                         f"from the cache without launching Beam){forced}; engine alone "
                         f"{r['engine_warm']['wall_s']:.2f} s = "
                         f"{100 * r['engine_warm']['wall_s'] / r['engine_with_cache']['wall_s']:.1f} % of its cold run",
                         _load_of(r["warm"])))
    faults = _load("faults")
    for label, reading, x, perfect in _fault_runs(faults):
        run = faults["result"][label]  # type: ignore[index]
        rows.append((f"20 % faults {_READING[reading]}, AIMD {label[5:]}, N = {run['n']:,}",
                     "all accounted, ≥ 70 % of fault-free",
                     f"accounted: {x['every_request_accounted']}, {100 * x['throughput_share']:.0f} % "
                     f"({x['with_faults']['req_per_s']:,.0f} vs {run['fault_free']['req_per_s']:,.0f} req/s); "
                     f"a perfect client: {100 * perfect['shares'][0]:.0f} % on these faults, "
                     f"{100 * perfect['min']:.0f}–{100 * perfect['max']:.0f} % over ten draws; the engine takes "
                     f"{x['over_perfect_client']:.2f}× its time", _load_of(x["with_faults"])))
    local = _load("local")
    for key, r in _local_runs(local):
        if r.get("ok"):
            rows.append((f"local backend (SmolLM2-135M, grammar), {key.replace('_', ' = ')}", "(measure)",
                         f"{r['completion_tokens_per_s']} completion tokens/s, "
                         f"{1000 * r['cpu_s'] / max(1, r['completion_tokens']):.0f} ms CPU/token", _load_of(r)))
    out = ["| measure | target | measured | load |", "|---|---|---|---:|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return out


_READING = {"per_request": "of requests", "per_attempt": "of attempts"}


def _fault_runs(faults: dict[str, Any] | None) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(AIMD label, reading, the run, the perfect client's bound) for each measured run with faults."""
    r = (faults or {}).get("result", {})
    return [(label, reading, r[label][reading], r["perfect_client"][reading])
            for label in ("aimd_off", "aimd_on") for reading in _READING
            if reading in r.get(label, {}) and r[label][reading].get("throughput_share") is not None
            and reading in r.get("perfect_client", {})]


def write_summary() -> Path:
    lines = ["# Benchmark results", "",
             "Written by `python -m bench.run_all`; each section is the latest run of that part. Load is the "
             "1-minute load average before→after each figure (2 cores, shared).", "", *headline(), ""]
    cap = _load("capacity")
    if cap:
        r = cap["result"]
        lines += [f"## Fake server capacity (wrk) — {cap['machine']['when']}", ""]
        if r.get("ok"):
            for key in ("no_latency", "latency_200ms"):
                w = r[key]
                lines.append(f"- {key}: {w['req_per_s']:,.0f} req/s with {w['connections']} connections "
                             f"(p50 {w['p50']}, p99 {w['p99']}, non-2xx {w['non_2xx']}, socket errors "
                             f"{w['socket_errors']}; load {w['load_before'][0]}→{w['load_after'][0]})")
            lines.append(f"- asked of it at most {r['asked_req_per_s']:,.0f} req/s: headroom {r['headroom']}×")
        else:
            lines.append(f"- failed: {r.get('error')}")
        lines.append("")
    ideal = _load("ideal")
    if ideal:
        lines += [f"## Engine vs the ideal ceil(N/C)·L — {ideal['machine']['when']}", "", HEAD]
        for run in ideal["result"]["runs"]:
            p = run["params"]
            lines.append(_row(f"engine C={p['c']} N={p['n']}", run,
                              f"ideal {run['ideal_s']:.1f} s, {100 * (run.get('share_of_ideal') or 0):.1f} % of it;"))
        lines.append("")
    c256 = _load("c256")
    if c256:
        r = c256["result"]
        lines += [f"## C = 256: engine vs a bare aiohttp client, same run — {c256['machine']['when']}", "", HEAD]
        for run in r["runs"]:
            lines.append(_row(f"{run['client']} N={run['params']['n']}", run))
        lines += ["", f"engine / bare aiohttp (best of each): **{r['engine_vs_bare']}**", ""]
    for part, title in (("distilabel", "distilabel 1.5.3 (OpenAILLM)"), ("curator", "bespokelabs-curator")):
        data = _load(part)
        if not data:
            continue
        r = data["result"]
        lines += [f"## {title} vs the engine, C = 256, same server — {data['machine']['when']}", ""]
        if "runs" not in r:
            lines += [f"failed: {r.get('error')}", ""]
            continue
        lines += [f"venv: `{r['venv']}` ({r['versions']})", "", HEAD]
        lines += [_row(f"{run['client']} N={run['params']['n']}", run) for run in r["runs"]]
        lines += ["", _ratio_line(r["runs"]), ""]
    sdk = _load("sdk")
    if sdk:
        lines += [f"## The openai SDK alone, C = 256 — {sdk['machine']['when']}", "", HEAD]
        for transport, r in sdk["result"].items():
            for run in r.get("runs", []):
                label = run["client"] + (f" ({transport})" if run["client"] == "openai_sdk.py" else "")
                lines.append(_row(f"{label} N={run['params']['n']}", run))
        lines.append("")
    pipe = _load("pipeline")
    if pipe:
        r = pipe["result"]
        lines += [f"## Full Beam pipeline (Generate → Parquet, staged), C = 256 — {pipe['machine']['when']}", "",
                  HEAD]
        labels = {"cold": "pipeline, cold cache",
                  "warm": "pipeline, warm cache (rerun; every request cached, so Beam is not launched)",
                  "warm_beam": "pipeline, warm cache, Beam forced",
                  "identity": "pipeline without the engine (Beam + Parquet only)",
                  "engine_with_cache": "engine alone, cold cache", "engine_warm": "engine alone, warm cache"}
        for key, label in labels.items():
            if key in r:
                lines.append(_row(label, r[key]))
        lines += ["", f"warm rerun: {r['warm_requests']} requests, {100 * (r['warm_share_of_cold'] or 0):.1f} % "
                      f"of the cold time (median of five reruns: {r['warm'].get('runs_wall_s')} s; engine alone "
                      f"{r['engine_warm'].get('runs_wall_s')} s)"]
        if r.get("warm_beam_share_of_cold"):
            lines.append(f"; through Beam anyway: {r['warm_beam_requests']} requests, "
                         f"{100 * r['warm_beam_share_of_cold']:.1f} %")
        lines.append("")
    faults = _load("faults")
    if faults:
        r = faults["result"]
        lines += [f"## 20 % injected faults — {faults['machine']['when']}", "",
                  f"faults `{r['faults']}`, client timeout {r['timeout_s']} s, Retry-After {r['retry_after_s']} s; "
                  "other engine settings are the defaults (5 attempts; 429/503 wait Retry-After or 0.5 s doubling, "
                  "other faults 0.1 s doubling). Two readings of the mix: a share of requests (fake server "
                  "`--fault-mode first`: a request meets one fault, its retry is answered) and a share of attempts "
                  "(`--fault-mode hash`: every attempt draws again, so faults chain)", "", HEAD]
        for label in ("aimd_off", "aimd_on"):
            if label in r:
                lines.append(_row(f"{label} fault-free N={r[label]['n']}", r[label]["fault_free"]))
        for label, reading, x, _ in _fault_runs(faults):
            lines.append(_row(f"{label} faults {_READING[reading]}", x["with_faults"],
                              f"dead letters {x['with_faults'].get('dead_letters')}, server outcomes "
                              f"{json.dumps(x['with_faults'].get('server', {}).get('by_outcome'))};"))
        lines.append("")
        for label, reading, x, perfect in _fault_runs(faults):
            lines.append(f"- {label}, {_READING[reading]}: throughput with faults / fault-free "
                         f"**{x['throughput_share']}**, every request accounted for: "
                         f"**{x['every_request_accounted']}**; {x['over_perfect_client']}× the time of a perfect "
                         f"client on the same faults ({perfect['with_faults_s'][0]} s; the server saw exactly the "
                         f"attempts the bound counts: {x.get('same_faults_as_bound')})")
        for reading, perfect in r.get("perfect_client", {}).items():
            lines.append(f"- perfect client (`bench/fault_bound.py`), {_READING[reading]}: share of its fault-free "
                         f"run over ten fault draws {perfect['shares']} (median {perfect['median']})")
        lines.append("")
    local = _load("local")
    if local:
        lines += [f"## Local backend (llama.cpp in-process, SmolLM2-135M, JSON Schema grammar) — "
                  f"{local['machine']['when']}", ""]
        for key, r in _local_runs(local):
            if r.get("ok"):
                lines.append(f"- {key}: {r['succeeded']} of {r['n']} requests, {r['completion_tokens_per_s']} "
                             f"completion tokens/s ({r['total_tokens_per_s']} incl. prompt), {r['wall_s']:.1f} s, "
                             f"{r['cpu_s']:.1f} s CPU, peak RSS {r['peak_rss_mb']:.0f} MB, load "
                             f"{r['load_before'][0]}→{r['load_after'][0]}")
            else:
                lines.append(f"- {key}: failed: {r.get('error')}")
        lines.append("")
    out = RESULTS / "summary.md"
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(out)
    return out


def _local_runs(local: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    if not local:
        return []
    r = local["result"]
    return [("threads_2", r)] if "client" in r else sorted(r.items())  # older results: one run, 2 threads


def _ratio_line(runs: list[dict[str, Any]]) -> str:
    ours = max((r["req_per_s"] for r in runs if r["client"] == "valuecorpus_engine.py" and r.get("ok")), default=0)
    theirs = max((r["req_per_s"] for r in runs if r["client"] != "valuecorpus_engine.py" and r.get("ok")),
                 default=0)
    return f"engine / competitor (best of each): **{round(ours / theirs, 2) if theirs else 'n/a'}×**"
