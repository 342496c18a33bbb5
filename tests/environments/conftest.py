"""Fixtures of the agent-environment tests: the chain harness of the pipelines tests, a fake server."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))  # corpus_chains_harness, canned
