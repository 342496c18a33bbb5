"""Virtual environments for the tools the benchmark compares against, one per tool, made on demand.

They live outside the work tree by default (`/tmp/valuecorpus-bench-venvs/`, or `--venvs DIR`) so nothing
the benchmark installs lands in the repository. Each venv is made once and reused while its package list is
unchanged (a marker file records what was installed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_ROOT = Path("/tmp/valuecorpus-bench-venvs")

# What each compared tool needs. The versions are those the issue names (distilabel 1.5.3) or the latest that
# installs (curator); the openai SDK venv carries the aiohttp transport extra.
TOOLS: dict[str, list[str]] = {
    "distilabel": ["distilabel[openai]==1.5.3", "requests"],  # 1.5.3 imports requests without declaring it
    "curator": ["bespokelabs-curator"],
    "openai": ["openai[aiohttp]"],
}


def venv_python(name: str, root: Path = DEFAULT_ROOT) -> Path:
    return root / name / "bin" / "python"


def ensure_venv(name: str, root: Path = DEFAULT_ROOT, log: Path | None = None) -> tuple[Path, dict]:
    """Make (or reuse) the venv of one tool; returns its python and {installed, seconds, versions}."""
    packages = TOOLS[name]
    path = root / name
    marker = path / "valuecorpus-bench.json"
    fresh = True
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("packages") == packages:
            return venv_python(name, root), info
        fresh = False  # same venv, a changed package list: install what is new on top
    root.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    out = open(log, "a") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    py = venv_python(name, root)
    try:
        if fresh:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True, stdout=out,
                           stderr=out)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True, stdout=out,
                       stderr=out)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *packages], check=True, stdout=out, stderr=out)
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    versions = dict(line.split("==", 1) for line in freeze.splitlines() if "==" in line)
    info = {"packages": packages, "seconds": round(time.monotonic() - start, 1), "versions": versions}
    marker.write_text(json.dumps(info, indent=1))
    return py, info


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="make the benchmark's comparison venvs")
    parser.add_argument("tools", nargs="*", default=list(TOOLS))
    parser.add_argument("--venvs", type=Path, default=DEFAULT_ROOT)
    args = parser.parse_args()
    for tool in args.tools:
        try:
            python, info = ensure_venv(tool, args.venvs, log=args.venvs / f"{tool}.log")
            key = {"distilabel": "distilabel", "curator": "bespokelabs-curator", "openai": "openai"}[tool]
            print(f"{tool}: {python} ({key} {info['versions'].get(key)}, {info['seconds']} s)")
        except subprocess.CalledProcessError as exc:
            print(f"{tool}: install failed ({exc}); see {args.venvs / (tool + '.log')}")
