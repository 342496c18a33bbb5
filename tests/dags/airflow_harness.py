"""The DAG tests' harness: a real Airflow with a temporary AIRFLOW_HOME (SQLite metadata database) whose DAGs
folder is the repository's `dags/`, `airflow dags test` run as a subprocess and read back from the metadata
database (task states, tries, XComs), and the flaky CLI that kills a command once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).parent / "airflow"
FLAKY_CLI = Path(__file__).with_name("flaky_cli.py")
# Settings the DAG tests hand over through Airflow only: the parent environment must not provide them.
SETTINGS_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "VALUECORPUS_HOME",
                "VALUECORPUS_MODEL", "VALUECORPUS_SETTINGS")


@dataclass
class DagRun:
    dag_id: str
    code: int
    output: str
    seconds: float
    run_id: str
    states: dict[str, str] = field(default_factory=dict)  # task id -> final state
    tries: dict[str, int] = field(default_factory=dict)  # task id -> attempts made
    xcoms: dict[str, Any] = field(default_factory=dict)  # task id -> return value


@dataclass
class Airflow:
    home: Path

    @property
    def db(self) -> Path:
        return self.home / "airflow.db"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV and not k.startswith("AIRFLOW")}
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",  # the DAGs retry twice; the tests do not wait minutes
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        })
        env.update(extra or {})
        return env

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([str(AIRFLOW), *args], capture_output=True, text=True, timeout=timeout,
                              env=self.env(env), cwd=self.home)

    def dags_test(self, dag_id: str, conf: dict[str, Any], env: dict[str, str], timeout: float = 900) -> DagRun:
        """`airflow dags test DAG -c CONF`: the whole DAG run in one process, retries included."""
        t0 = time.monotonic()
        proc = self.run("dags", "test", dag_id, "-c", json.dumps(conf), env=env, timeout=timeout)
        seconds = time.monotonic() - t0
        with sqlite3.connect(self.db) as db:
            (run_id,) = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
                                   (dag_id,)).fetchone()
            rows = db.execute("SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?",
                              (dag_id, run_id)).fetchall()
            xcoms = db.execute("SELECT task_id, value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = "
                               "'return_value'", (dag_id, run_id)).fetchall()
        return DagRun(dag_id, proc.returncode, proc.stdout + proc.stderr, seconds, run_id,
                      {t: s for t, s, _ in rows}, {t: n for t, _, n in rows},
                      {t: json.loads(v) for t, v in xcoms})

    def stored_text(self) -> str:
        """Everything Airflow stored: the metadata database (XComs, rendered fields, task instances) and logs."""
        parts = [self.db.read_bytes().decode("utf-8", "replace")]
        parts += [p.read_text("utf-8", "replace") for p in (self.home / "logs").rglob("*") if p.is_file()]
        return "\n".join(parts)


def flaky(state_dir: Path, commands: str) -> dict[str, str]:
    """Environment that makes the first call of each of `commands` fail after (or while) doing its work."""
    state_dir.mkdir(parents=True, exist_ok=True)
    return {"VALUECORPUS_CLI": f"{sys.executable} {FLAKY_CLI}", "VALUECORPUS_FLAKY": commands,
            "VALUECORPUS_FLAKY_DIR": str(state_dir)}
