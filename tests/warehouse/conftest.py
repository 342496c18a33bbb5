"""Fixtures of the warehouse tests: the real DailyDilemmas records and a staged import run of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from wh_staging import load_dilemmas, stage_run

from valuecorpus.schemas.records import Dilemma


@pytest.fixture(scope="session")
def dilemmas(reference_data: Path) -> list[Dilemma]:
    return load_dilemmas(reference_data)


@pytest.fixture
def dilemma_run(home: Path, dilemmas: list[Dilemma], reference_data: Path) -> str:
    stage_run(home, "import-dd", {"dilemma": dilemmas},
              source_files=[reference_data / "daily_dilemmas" / "dilemma.csv"])
    return "import-dd"
