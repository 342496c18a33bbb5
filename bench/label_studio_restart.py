"""Restart of the managed Label Studio: `python -m bench.label_studio_restart [--rounds 3]`.

Starts a server on a fresh data home (migrations), then `--rounds` times: stop, and start again at once on the
same port (the stopped server's sockets are in TIME-WAIT then). Records per round whether a plain bind (no
SO_REUSEADDR, as the port check did before) would have called the port busy, the seconds from the end of
`stop` to `start` being accepted (the port check; it used to refuse for about a minute) and until `/health`
answers, with the load average. Writes `bench/results/label_studio_restart.json`.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

from bench.common import REPO, load, save
from valuecorpus.annotation.server import ServerFiles, free_port, port_is_free, start, stop

EXECUTABLE = REPO / ".venv-labelstudio" / "bin" / "label-studio"


def _binds_without_reuseaddr(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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
        from label_studio_sdk import LabelStudio

        # a connection, so the server that stops leaves sockets in TIME-WAIT, as it does after real use
        creds = files.read_credentials()
        assert creds is not None
        rounds = []
        try:
            for _ in range(args.rounds):
                LabelStudio(base_url=f"http://127.0.0.1:{port}", api_key=creds.token).users.whoami()
                stop(files)
                stopped = time.monotonic()
                plain = _binds_without_reuseaddr(port)  # what the port check saw before it set SO_REUSEADDR
                free = port_is_free(port)
                accepted = time.monotonic() - stopped
                start(files, EXECUTABLE, port, timeout=300)
                rounds.append({"port_free_after_stop": free, "plain_bind_free_after_stop": plain,
                               "start_accepted_after_s": round(accepted, 3),
                               "healthy_after_s": round(time.monotonic() - stopped, 1), "load": load()})
        finally:
            stop(files)
    result = {"first_start_s": round(first, 1), "rounds": rounds}
    save("label_studio_restart", result)
    print(result)


if __name__ == "__main__":
    main()
