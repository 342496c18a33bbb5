"""One real Label Studio for the whole session: started with `valuecorpus annotation server start` from
`.venv-labelstudio` on a free loopback port with a fresh data home, stopped with `annotation server stop`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from valuecorpus.annotation.server import ServerFiles, free_port, server_alive

REPO = Path(__file__).resolve().parents[2]
LS_EXECUTABLE = REPO / ".venv-labelstudio" / "bin" / "label-studio"


@dataclass
class LabelStudio:
    home: Path  # the data home the managed server belongs to
    files: ServerFiles
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


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Any:
    assert LS_EXECUTABLE.exists(), (
        f"Label Studio is not installed at {LS_EXECUTABLE}: run `make setup-test` "
        "(or python3 -m venv .venv-labelstudio && .venv-labelstudio/bin/pip install -r requirements/labelstudio.txt)"
    )
    home = tmp_path_factory.mktemp("ls-home")
    env = {"VALUECORPUS_HOME": str(home), "LABEL_STUDIO_URL": "", "LABEL_STUDIO_API_KEY": ""}
    port = free_port()
    t0 = time.monotonic()
    res = run_cli("annotation", "server", "start", "--port", str(port), "--label-studio", str(LS_EXECUTABLE),
                  "--timeout", "900", env=env, timeout=960)
    seconds = time.monotonic() - t0
    assert res.code == 0, res.stderr
    files = ServerFiles(home / "annotation")
    state, creds = files.read_state(), files.read_credentials()
    assert state is not None and creds is not None
    from label_studio_sdk import LabelStudio as Client

    server = LabelStudio(home, files, state["url"], creds.token, int(state["pid"]), seconds,
                         res.stdout + res.stderr, Client(base_url=state["url"], api_key=creds.token))
    try:
        yield server
    finally:
        stopped = run_cli("annotation", "server", "stop", env=env, timeout=120)
        assert stopped.code == 0, stopped.stderr
        assert not server_alive(server.pid), "Label Studio still running after stop"


@pytest.fixture(scope="session")
def annotators(label_studio: LabelStudio) -> dict[str, int]:
    """Three annotator accounts (created through the users API), name -> Label Studio user id."""
    client = label_studio.client
    existing = {u.email: u.id for u in client.users.list()}
    out = {}
    for name in ("ann1", "ann2", "ann3", "adj1"):
        email = f"{name}@example.org"
        out[name] = existing.get(email) or client.users.create(username=name, email=email).id
    return out


def annotate(client: Any, task_id: int, user_id: int, verdict: str, to_name: str, rating: int | None = None,
             edits: dict[str, str] | None = None, labels: list[list[str]] | None = None,
             extra: dict[str, str] | None = None, lead_time: float = 5.0, comment: str | None = None) -> int:
    """Submit one annotation as `user_id`, shaped as the labeling UI shapes it (`labels`: Taxonomy paths)."""
    result: list[dict[str, Any]] = [
        {"from_name": "verdict", "to_name": to_name, "type": "choices", "value": {"choices": [verdict]}},
    ]
    if rating is not None:
        result.append({"from_name": "quality", "to_name": to_name, "type": "rating", "value": {"rating": rating}})
    for key, text in (edits or {}).items():
        result.append({"from_name": f"edit_{key}", "to_name": key, "type": "textarea", "value": {"text": [text]}})
    if labels:
        result.append({"from_name": "value_labels", "to_name": to_name, "type": "taxonomy",
                       "value": {"taxonomy": labels}})
    if comment is not None:
        result.append({"from_name": "comment", "to_name": to_name, "type": "textarea", "value": {"text": [comment]}})
    for name, value in (extra or {}).items():
        result.append({"from_name": name, "to_name": to_name, "type": "choices", "value": {"choices": [value]}})
    ann = client.annotations.create(id=task_id, result=result, completed_by=user_id, lead_time=lead_time)
    return int(ann.id)


def tasks_by_sample(client: Any, project_id: int) -> dict[str, int]:
    return {t.data["sample_id"]: int(t.id) for t in client.tasks.list(project=project_id)}


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> Result:
    """The real `valuecorpus` command in a subprocess; empty values in `env` unset that variable."""
    full = {**os.environ, **(env or {})}
    full = {k: v for k, v in full.items() if v != ""}
    proc = subprocess.run([sys.executable, "-m", "valuecorpus", *args], capture_output=True, text=True,
                          timeout=timeout, env=full, cwd=REPO)
    return Result(proc.returncode, proc.stdout, proc.stderr)
