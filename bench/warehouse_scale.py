"""Warehouse at scale: synthetic dilemma rows (made by DuckDB, `bench/synthetic_dilemmas.py`), at 100k, 300k and
1M rows, on this machine:

1. setup (not timed as part of the flow): a run of N rows; when the filter runs at this size (`--filter-max`),
   it is published and a new run of N other rows is staged;
2. `valuecorpus dedupe new --dataset bench --as new-filtered`: exact and near-duplicates of the new run within
   itself and against the published version, by column (`pipelines/dedupe.py`), staged as a new run;
3. `valuecorpus validate RUN --dataset bench` (the CLI, process start and Great Expectations import included);
4. `valuecorpus publish RUN --dataset bench` of the filtered run (the gate validates again, then publishes);
5. DuckDB `GROUP BY` counts over the published rows (`warehouse.query`, timed in-process, three times): the
   value labels through the nested `actions[].values[]` lists, the same count from the version's flat
   value-label companion (`<dataset>__values`), and a flat column (`topic_group`).

Every step runs in its own process: wall time and that process's peak RSS (`os.wait4`). The flow of the issue is
dedupe + publish (publish validates first). The dedupe step can be limited by size (`--filter-max`).

    python -m bench.warehouse_scale [--sizes 100000,300000,1000000] [--filter-max 1000000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DATASET = "bench"


def _child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a process; its wall time, exit code, peak RSS and last lines of output."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": round(wall, 2), "code": proc.returncode, "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "stdout_tail": out.strip().splitlines()[-6:], "stderr_tail": err.strip().splitlines()[-3:]}


def _py(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.warehouse_scale", *args]


# --- steps run in their own processes --------------------------------------------------------------------------

def step_stage(home: str, run_id: str, rows: int, offset: int) -> None:
    from bench.synthetic_dilemmas import stage_synthetic
    from valuecorpus.schemas.layout import DataHome

    stage_synthetic(DataHome(home), run_id, rows, offset=offset)


QUERIES = {
    # the value labels, through the nested actions[].values[] lists
    "value_labels": (f"SELECT value, count(*) AS n FROM (SELECT unnest(flatten(list_transform(actions, lambda a: "
                     f"list_transform(a.\"values\", lambda v: v.name)))) AS value FROM {DATASET}) "
                     "GROUP BY ALL ORDER BY n DESC"),
    # the same count from the flat value-label companion the publisher derives (`warehouse/value_labels.py`)
    "value_labels_flat": (f"SELECT value, count(*) AS n FROM {DATASET}__values WHERE label = 'actions[].values[].name' "
                          "GROUP BY ALL ORDER BY n DESC"),
    # a flat column
    "topic_group": f"SELECT topic_group AS value, count(*) AS n FROM {DATASET} GROUP BY ALL ORDER BY n DESC",
}


def step_query(home: str) -> None:
    from valuecorpus.warehouse import query

    query(home, "SELECT 1")  # catalog set-up once, as a session would
    out = {}
    for name, sql in QUERIES.items():
        timings = []
        for _ in range(3):
            t0 = time.perf_counter()
            table = query(home, sql)
            timings.append(round(time.perf_counter() - t0, 3))
        out[name] = {"seconds": timings, "groups": table.num_rows, "counted": sum(table.column("n").to_pylist())}
    print(json.dumps(out))


def step_validate_inprocess(home: str, run_id: str) -> None:
    """The validation's own parts (flattening, each flat table, Data Docs), without process start."""
    from valuecorpus.schemas.layout import DataHome
    from valuecorpus.warehouse.validation import run_target, validate

    t0 = time.perf_counter()
    import great_expectations  # noqa: F401

    ge_import = time.perf_counter() - t0
    home_ = DataHome(home)
    target = run_target(home_.run(run_id))
    t0 = time.perf_counter()
    result = validate(home_, target, DATASET)
    print(json.dumps({"success": result["success"], "expectations": len(result["expectations"]),
                      "seconds": round(time.perf_counter() - t0, 2), "ge_import": round(ge_import, 2),
                      "parts": dict(sorted(target.timings.items(), key=lambda kv: -kv[1])[:12])}))


# --- the driver ----------------------------------------------------------------------------------------------

def _last_json(step: dict[str, Any]) -> Any:
    for line in reversed(step["stdout_tail"]):
        if line.startswith("{"):
            return json.loads(line)
    return None


def measure(rows: int, work: Path, filter_max: int, parts: bool) -> dict[str, Any]:
    home = work / f"home-{rows}"
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "VALUECORPUS_HOME": str(home), "PYTHONPATH": str(REPO)}
    vc = [sys.executable, "-m", "valuecorpus"]
    out: dict[str, Any] = {"rows": rows}
    out["stage_published"] = _child(_py("stage", str(home), "base", str(rows), "0"), env)
    candidate = "base"
    if rows <= filter_max:  # the filter's flow: a published version, a new run filtered against it
        out["publish_base"] = _child([*vc, "publish", "base", "--dataset", DATASET], env)
        out["stage_new"] = _child(_py("stage", str(home), "new", str(rows), str(rows)), env)
        out["filter"] = _child([*vc, "dedupe", "new", "--dataset", DATASET, "--as", "new-filtered"], env)
        if out["filter"]["code"] == 0:
            manifest = json.loads((home / "runs" / "new-filtered" / "manifest.json").read_text())
            out["filter"]["result"] = {"counts": manifest["counts"], **manifest["deduped"]}
        candidate = "new-filtered" if out["filter"]["code"] == 0 else "new"
    out["validate_cli"] = _child([*vc, "validate", candidate, "--dataset", DATASET], env)
    if parts:
        out["validate_parts"] = _child(_py("validate", str(home), candidate), env)
        out["validate_parts"]["result"] = _last_json(out["validate_parts"])
    out["publish"] = _child([*vc, "publish", candidate, "--dataset", DATASET], env)
    out["query"] = _child(_py("query", str(home)), env)
    out["query"]["result"] = _last_json(out["query"])
    if "filter" in out and out["filter"]["code"] == 0:
        out["flow_seconds"] = round(out["filter"]["seconds"] + out["publish"]["seconds"], 2)
        out["flow_peak_rss_mib"] = max(out["filter"]["peak_rss_mib"], out["publish"]["peak_rss_mib"])
    shutil.rmtree(home, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    steps = {"stage": step_stage, "query": step_query, "validate": step_validate_inprocess}
    if argv and argv[0] in steps:
        name, rest = argv[0], argv[1:]
        if name == "stage":
            step_stage(rest[0], rest[1], int(rest[2]), int(rest[3]))
        elif name == "query":
            step_query(rest[0])
        else:
            step_validate_inprocess(rest[0], rest[1])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--filter-max", type=int, default=1_000_000, help="largest size the dedupe step runs at")
    parser.add_argument("--no-parts", action="store_true", help="the validation's breakdown at the smallest size only")
    parser.add_argument("--work", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--out", default=str(RESULTS / "warehouse_scale.json"))
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="valuecorpus-bench-wh-"))
    results = {"load_before": os.getloadavg(), "sizes": []}
    sizes = [int(s) for s in args.sizes.split(",")]
    for i, rows in enumerate(sizes):
        print(f"== {rows:,} rows", flush=True)
        res = measure(rows, work, args.filter_max, parts=not args.no_parts or i == 0)
        results["sizes"].append(res)
        print(json.dumps({k: (v if not isinstance(v, dict) else {x: v.get(x) for x in ("seconds", "code",
                          "peak_rss_mib", "result") if x in v}) for k, v in res.items()}, indent=1), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    results["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
