"""Restart of the managed Label Studio: `python -m bench.label_studio_restart [--rounds 3]`.

Starts a server on a fresh data home (migrations), then `--rounds` times: stop, and start again at once on the
same port (the stopped server's sockets are in TIME-WAIT then). Records per round the seconds from the end of
`stop` to `start` being accepted (the port check; it used to refuse for about a minute) and until `/health`
answers, with the load average. Writes `bench/results/label_studio_restart.json`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import REPO, load, save
from valuecorpus.annotation.server import ServerFiles, free_port, port_is_free, start, stop

EXECUTABLE = REPO / ".venv-labelstudio" / "bin" / "label-studio"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ls-restart-") as tmp:
        files = ServerFiles(Path(tmp) / "annotation")
        port = free_port()
        t0 = time.monotonic()
        start(files, EXECUTABLE, port, timeout=900)
        first = time.monotonic() - t0
        rounds = []
        try:
            for _ in range(args.rounds):
                stop(files)
                stopped = time.monotonic()
                free = port_is_free(port)
                accepted = time.monotonic() - stopped
                start(files, EXECUTABLE, port, timeout=300)
                rounds.append({"port_free_after_stop": free, "start_accepted_after_s": round(accepted, 3),
                               "healthy_after_s": round(time.monotonic() - stopped, 1), "load": load()})
        finally:
            stop(files)
    result = {"first_start_s": round(first, 1), "rounds": rounds}
    save("label_studio_restart", result)
    print(result)


if __name__ == "__main__":
    main()
