"""Curation fixtures: annotator accounts and annotation helpers on the session's one real Label Studio (the
`label_studio` fixture of tests/conftest.py, shared with the DAG tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from valuecorpus_testing.label_studio import LS_EXECUTABLE, LabelStudio

REPO = Path(__file__).resolve().parents[2]
__all__ = ["LS_EXECUTABLE", "LabelStudio"]


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
