"""One real Label Studio for a whole test session, shared by every test area that needs one (curation, DAGs):
started with `valuecorpus annotation server start` from the repository's `.venv-labelstudio` on a free loopback
port with a fresh data home, stopped with `annotation server stop` and checked dead.

`tests/conftest.py` turns `label_studio_server` into the session fixture `label_studio`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
# What `make setup-test` builds, unless VALUECORPUS_LABEL_STUDIO_BIN (the CLI's own setting) names another.
LS_EXECUTABLE = Path(os.environ.get("VALUECORPUS_LABEL_STUDIO_BIN")
                     or REPO / ".venv-labelstudio" / "bin" / "label-studio")


@dataclass
class LabelStudio:
    home: Path  # the data home the managed server belongs to
    files: Any  # valuecorpus.annotation.server.ServerFiles
    url: str
    token: str
    pid: int
    start_seconds: float
    start_output: str
    client: Any

    @property
    def env(self) -> dict[str, str]:
        """Environment for a CLI run that uses this server as an existing one (LABEL_STUDIO_URL + key)."""
        return {"LABEL_STUDIO_URL": self.url, "LABEL_STUDIO_API_KEY": self.token}


def _cli(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in {**os.environ, **env}.items() if v != ""}  # empty values unset a variable
    return subprocess.run([sys.executable, "-m", "valuecorpus", *args], capture_output=True, text=True,
                          timeout=timeout, env=full, cwd=REPO)


@contextmanager
def label_studio_server(home: Path) -> Iterator[LabelStudio]:
    from label_studio_sdk import LabelStudio as Client

    from valuecorpus.annotation.server import ServerFiles, free_port, server_alive

    assert LS_EXECUTABLE.exists(), (
        f"Label Studio is not installed at {LS_EXECUTABLE}: run `make setup-test` "
        "(or python3 -m venv .venv-labelstudio && .venv-labelstudio/bin/pip install -r requirements/labelstudio.txt)"
    )
    env = {"VALUECORPUS_HOME": str(home), "LABEL_STUDIO_URL": "", "LABEL_STUDIO_API_KEY": ""}
    t0 = time.monotonic()
    res = _cli("annotation", "server", "start", "--port", str(free_port()), "--label-studio", str(LS_EXECUTABLE),
               "--timeout", "900", env=env, timeout=960)
    seconds = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    files = ServerFiles(home / "annotation")
    state, creds = files.read_state(), files.read_credentials()
    assert state is not None and creds is not None
    server = LabelStudio(home, files, state["url"], creds.token, int(state["pid"]), seconds,
                         res.stdout + res.stderr, Client(base_url=state["url"], api_key=creds.token))
    try:
        yield server
    finally:
        stopped = _cli("annotation", "server", "stop", env=env, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert not server_alive(server.pid), "Label Studio still running after stop"
