"""A real Airflow for the DAG tests (see airflow_harness.py): one temporary AIRFLOW_HOME, migrated once per
session."""

from __future__ import annotations

import pytest
from airflow_harness import AIRFLOW, Airflow


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Airflow:
    assert AIRFLOW.exists(), f"Airflow is not installed at {AIRFLOW}: run `make setup` (the `airflow` extra)"
    af = Airflow(tmp_path_factory.mktemp("airflow-home"))
    migrated = af.run("db", "migrate", timeout=300)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return af
