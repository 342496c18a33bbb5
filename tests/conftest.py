"""Fixtures every test area shares: the reference data, a fresh data home, the CLI, and the session's one real
Label Studio server (curation and DAG tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from valuecorpus_testing.label_studio import LabelStudio, label_studio_server

REPO = Path(__file__).resolve().parents[1]
REFERENCE_SETTING = "VALUECORPUS_REFERENCE_DATA"


def _reference_data() -> Path:
    """The reference corpora: the setting first (as scripts/demo.sh reads it), else ../shared/reference-data
    beside the repository. The one place every test (and bench/) finds them."""
    setting = os.environ.get(REFERENCE_SETTING)
    return Path(setting).expanduser().resolve() if setting else (REPO.parent / "shared" / "reference-data").resolve()


REFERENCE_DATA = _reference_data()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def reference_data() -> Path:
    if not REFERENCE_DATA.is_dir():  # a failure, never a skip: the suite is not complete without them
        where = f"{REFERENCE_SETTING}={os.environ[REFERENCE_SETTING]}" if os.environ.get(REFERENCE_SETTING) else (
            f"{REFERENCE_SETTING} is not set and the default {REFERENCE_DATA}")
        pytest.fail(f"no reference data: {where} is not a folder; set {REFERENCE_SETTING} to the folder of the "
                    "reference corpora", pytrace=False)
    return REFERENCE_DATA


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data home, also set in the environment so subprocesses and the CLI use it."""
    root = tmp_path / "home"
    monkeypatch.setenv("VALUECORPUS_HOME", str(root))
    return root


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600, cwd: Path | None = None) -> CliResult:
    """Run the real `valuecorpus` command in a subprocess (as a user would)."""
    proc = subprocess.run(
        [sys.executable, "-m", "valuecorpus", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(home: Path):
    return run_cli


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    """One real Label Studio for the whole session (first start ~1 min), stopped by its PID at the end."""
    with label_studio_server(tmp_path_factory.mktemp("ls-home")) as server:
        yield server


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory):
    """A local S3-compatible store (moto's server) on 127.0.0.1 for the whole session; its endpoint and dummy
    keys are in the environment of this process and of every subprocess started after it."""
    from valuecorpus_testing.cluster import ObjectStore

    with ObjectStore(tmp_path_factory.mktemp("object-store")) as store:
        yield store


@pytest.fixture(scope="session")
def dask_cluster(object_store, tmp_path_factory: pytest.TempPathFactory):
    """A Dask scheduler and two single-thread workers on 127.0.0.1, each in its own working directory, with the
    object store's environment."""
    from valuecorpus_testing.cluster import DaskCluster

    with DaskCluster(tmp_path_factory.mktemp("dask"), workers=2, env=object_store.env) as cluster:
        yield cluster
