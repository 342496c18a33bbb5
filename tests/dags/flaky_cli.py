"""A `valuecorpus` whose first call of each named command is killed after doing its work, as a worker killed just
before the scheduler heard of its success: the task's retry must then find that work and not do it again.

The DAG tests point `VALUECORPUS_CLI` at `python flaky_cli.py`. `VALUECORPUS_FLAKY` lists the commands,
comma-separated: `generate`, `curate push`, ... (killed after finishing: exit 137), or `publish@STEP` (killed in
the middle of publishing, at a named publish step, through the warehouse's crash hook). `VALUECORPUS_FLAKY_DIR`
records which have failed already; the specs of one command fail its calls in turn.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CRASH_ENV = "VALUECORPUS_TEST_CRASH_AT"  # valuecorpus.cli.warehouse: kill -9 at a publish step


def main() -> int:
    args = sys.argv[1:]
    state = Path(os.environ["VALUECORPUS_FLAKY_DIR"])
    env = dict(os.environ)
    after: Path | None = None
    for spec in filter(None, (s.strip() for s in os.environ.get("VALUECORPUS_FLAKY", "").split(","))):
        command, _, step = spec.partition("@")
        words = command.split()
        if args[: len(words)] != words or "--help" in args:
            continue
        marker = state / (spec.replace(" ", "-").replace("@", "-at-") + ".failed")
        if marker.exists():
            continue
        marker.touch()
        if step:
            env[CRASH_ENV] = step
            print(f"flaky: `{command}` will be killed at step {step}", file=sys.stderr)
        else:
            after = marker
        break  # one failure per call: the next spec of the same command fails the next call
    code = subprocess.call([sys.executable, "-m", "valuecorpus", *args], env=env)
    if after is not None and code == 0:
        print(f"flaky: `{' '.join(args[:2])}` finished and is now killed before reporting success", file=sys.stderr)
        return 137
    return code


if __name__ == "__main__":
    sys.exit(main())
