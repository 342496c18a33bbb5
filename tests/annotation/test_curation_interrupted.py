"""A push killed half-way and rerun ends with every sample exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from conftest import REPO, run_cli
from curation_samples import make, stage_run

from valuecorpus.annotation import projects


def test_killed_push_rerun_leaves_each_sample_once(label_studio, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "VALUECORPUS_HOME": str(home), **label_studio.env}
    n = 40
    run = stage_run(home / "runs", "big", {"value_rule": n})
    proc = subprocess.Popen([sys.executable, "-m", "valuecorpus", "curate", "push", "big", "--chunk-size", "2"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    imported = 0
    deadline = time.monotonic() + 300
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if "imported" in line:
            imported = int(line.split(":")[1].split("/")[0])
            if imported >= 6:
                proc.send_signal(signal.SIGKILL)  # mid-push, between or during import requests
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the push finished before it could be interrupted"
    project = projects.load(run)["value_rule:main:review"].project_id
    partial = [t.data["sample_id"] for t in label_studio.client.tasks.list(project=project)]
    assert 6 <= len(partial) < n
    res = run_cli("curate", "push", "big", "--chunk-size", "7", env={"VALUECORPUS_HOME": str(home), **label_studio.env})
    assert res.code == 0, res.stderr
    assert f"{n - len(partial)} added, {len(partial)} already there" in res.stdout
    ids = Counter(t.data["sample_id"] for t in label_studio.client.tasks.list(project=project))
    assert set(ids) == {make("value_rule", i).id for i in range(n)}
    assert set(ids.values()) == {1}
