"""How fast the CLI answers: wall time of `valuecorpus --help` and of every command's --help (median of runs).

    python -m bench.cli_startup [--runs 5]

Writes bench/results/cli_startup.json. The target is < 0.5 s per command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def command_paths() -> list[list[str]]:
    import typer

    from valuecorpus.cli import app

    def walk(cmd: object, prefix: list[str]) -> list[list[str]]:
        out = [prefix]
        for name, sub in getattr(cmd, "commands", {}).items():
            out += walk(sub, [*prefix, name])
        return out

    return walk(typer.main.get_command(app), [])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("valuecorpus"))
    timings = {}
    for path in command_paths():
        samples = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run([exe, *path, "--help"], capture_output=True, check=True)
            samples.append(time.perf_counter() - start)
        timings[" ".join(path) or "(root)"] = round(statistics.median(samples), 3)
    worst = max(timings, key=timings.get)
    result = {"load_average": os.getloadavg(), "runs": args.runs, "median_s": timings,
              "worst": {worst: timings[worst]}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli_startup.json").write_text(json.dumps(result, indent=2))
    print(f"{len(timings)} commands; slowest --help: {worst!r} {timings[worst]} s; "
          f"root {timings['(root)']} s (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
