"""The importers by corpus name, as `valuecorpus import KIND PATH` names them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.importers import agent_valuebench, dailydilemmas, emergent_values, moral_graph
from valuecorpus.schemas.importers.base import ImportResult

IMPORTERS: dict[str, Callable[[Path], ImportResult]] = {
    "dailydilemmas": dailydilemmas.import_path,
    "agent_valuebench": agent_valuebench.import_path,
    "moral_graph": moral_graph.import_path,
    "emergent_values": emergent_values.import_path,
}
# Spellings a user may reach for (the reference-data folder names, hyphens).
ALIASES = {"daily_dilemmas": "dailydilemmas", "agentvaluebench": "agent_valuebench", "mge": "moral_graph"}


def importer_name(kind: str) -> str:
    key = kind.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in IMPORTERS:
        raise ValueCorpusError(f"unknown import kind '{kind}' (known: {', '.join(IMPORTERS)})")
    return key


def import_path(kind: str, path: str | Path) -> ImportResult:
    """Read a reference file, or every file of one corpus under a directory, into records."""
    return IMPORTERS[importer_name(kind)](Path(path))
