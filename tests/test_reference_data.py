"""The reference corpora are found through VALUECORPUS_REFERENCE_DATA, and their absence fails the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = "tests/schemas/test_taxonomies.py::test_cvc_matches_the_reference_and_resolves_spelling_variants"


def _pytest(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", PROBE, "-q", "-p", "no:cacheprovider"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_the_setting_is_read_first(reference_data: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere"
    copy.symlink_to(reference_data, target_is_directory=True)
    res = _pytest({"VALUECORPUS_REFERENCE_DATA": str(copy)})
    assert res.returncode == 0, res.stdout[-2000:]


def test_missing_reference_data_fails_naming_the_setting(tmp_path: Path) -> None:
    res = _pytest({"VALUECORPUS_REFERENCE_DATA": str(tmp_path / "missing")})
    assert res.returncode == 1, res.stdout[-2000:]
    assert "skipped" not in res.stdout
    lines = [ln for ln in res.stdout.splitlines() if "no reference data" in ln]
    assert lines and "VALUECORPUS_REFERENCE_DATA" in lines[0] and str(tmp_path / "missing") in lines[0]
    assert "Traceback" not in res.stdout
