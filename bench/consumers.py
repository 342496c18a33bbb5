"""What consumers of a version wait for: `python -m bench.consumers [--n 100000]`.

Publishes N synthetic preference pairs (made here, not by a model) as v1, then 90 % of them as v2 (whose card
carries the changelog against v1), exports v2 as `dpo` and `sft` to JSONL and Parquet, and writes its report.
Writes `bench/results/consumers.json` with each time, the process's peak RSS and the load average around it."""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from valuecorpus.schemas.arrow import write_records
from valuecorpus.schemas.layout import DataHome, RunManifest
from valuecorpus.schemas.records import PreferencePair, Provenance, stable_id
from valuecorpus.warehouse import export, publish, write_report

RESULTS = Path(__file__).parent / "results" / "consumers.json"


def pairs(n: int) -> list[PreferencePair]:
    prov = Provenance(origin="generate", recipe="bench", generator_model="synthetic")
    return [PreferencePair(id=stable_id("bench-consumers", i), prompt=f"Should one keep promise {i}?",
                           chosen=f"Yes: a promise binds ({i}). " * 8, rejected=f"No: plans change ({i}). " * 8,
                           chosen_value="honesty" if i % 2 else "loyalty", rejected_value="convenience",
                           topic=f"topic-{i % 40}", provenance=prov) for i in range(n)]


def stage(home: DataHome, run_id: str, records: list[PreferencePair]) -> None:
    layout = home.run(run_id)
    rows = write_records(layout.records("preference_pair"), records)
    layout.write_manifest(RunManifest(run_id=run_id, origin="generate", kinds=["preference_pair"],
                                      counts={"preference_pair": rows}, models=["synthetic"]))


def timed(figures: dict[str, Any], name: str, fn: Any) -> Any:
    start = time.perf_counter()
    out = fn()
    figures[name] = round(time.perf_counter() - start, 2)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"n": args.n, "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        home = DataHome(Path(tmp) / "home")
        records = pairs(args.n)
        stage(home, "v1", records)
        stage(home, "v2", records[args.n // 10:])
        del records
        timed(figures, "publish_v1_s", lambda: publish(home, "v1", "pairs"))
        timed(figures, "publish_v2_with_changelog_s", lambda: publish(home, "v2", "pairs"))
        for fmt in ("dpo", "sft"):
            for suffix in ("jsonl", "parquet"):
                out = Path(tmp) / f"{fmt}.{suffix}"
                timed(figures, f"export_{fmt}_{suffix}_s", lambda f=fmt, o=out: export(home, "pairs", None, f, o))
                figures[f"export_{fmt}_{suffix}_bytes"] = out.stat().st_size
        report = Path(tmp) / "report.html"
        timed(figures, "report_s", lambda: write_report(home, "pairs", None, report))
        figures["report_bytes"] = report.stat().st_size
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    figures["load_after"] = os.getloadavg()[0]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
