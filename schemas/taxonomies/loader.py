"""Load versioned taxonomies and look values up in them.

A taxonomy is a JSON data file under `data/` (see `data/README.md` for the format, sources and licences).
Node ids are stable across versions; names and synonyms (spelling variants, translations) resolve to nodes.
A value that is not in a taxonomy is an error naming the taxonomy and the closest names, never a new node.
"""

from __future__ import annotations

import json
import unicodedata
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field

from valuecorpus.schemas.errors import TaxonomyError


class Node(BaseModel):
    id: str = Field(description="stable id, e.g. 'cvc.core.prosperity' or 'dd.trust'")
    name: str = Field(description="canonical name as records store it")
    level: str
    parent: str | None = Field(None, description="id of the parent node")
    names: dict[str, str] = Field(default_factory=dict, description="per language, e.g. {'zh': .., 'en': ..}")
    synonyms: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict, description="mappings to other frameworks")
    definition: str | None = None


class TaxonomyFile(BaseModel):
    name: str
    version: str
    title: str
    source: str
    licence: str
    levels: list[str]
    nodes: list[Node]
    notes: str | None = None


def normalise(text: str) -> str:
    """Case, width and spacing variants of a name resolve to the same key."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().replace("_", " ").split())


class Taxonomy:
    def __init__(self, data: TaxonomyFile) -> None:
        self.data = data
        self.name, self.version = data.name, data.version
        self.nodes: dict[str, Node] = {n.id: n for n in data.nodes}
        self._index: dict[tuple[str | None, str], str] = {}
        for node in data.nodes:
            for alias in (node.name, node.id, *node.names.values(), *node.synonyms):
                self._index.setdefault((node.level, normalise(alias)), node.id)
                self._index.setdefault((None, normalise(alias)), node.id)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def __len__(self) -> int:
        return len(self.nodes)

    def nodes_at(self, level: str | None = None) -> list[Node]:
        if level is not None and level not in self.data.levels:
            raise TaxonomyError(f"taxonomy '{self.name}' has no level '{level}' (levels: {', '.join(self.data.levels)})")
        return [n for n in self.data.nodes if level is None or n.level == level]

    def names(self, level: str | None = None) -> list[str]:
        return [n.name for n in self.nodes_at(level)]

    def children(self, node_id: str) -> list[Node]:
        return [n for n in self.data.nodes if n.parent == node_id]

    def get(self, value: str, level: str | None = None) -> Node | None:
        node_id = self._index.get((level, normalise(value)))
        return self.nodes[node_id] if node_id else None

    def lookup(self, value: str, level: str | None = None) -> Node:
        node = self.get(value, level)
        if node is None:
            where = f" at level '{level}'" if level else ""
            hint = self.suggest(value, level)
            suffix = f"; closest: {', '.join(repr(s) for s in hint)}" if hint else ""
            raise TaxonomyError(f"'{value}' is not in taxonomy '{self.ref}'{where}{suffix}")
        return node

    def canonical(self, value: str, level: str | None = None) -> str:
        return self.lookup(value, level).name

    def suggest(self, value: str, level: str | None = None, limit: int = 3) -> list[str]:
        from rapidfuzz import fuzz, process

        choices = {n.name: n.name for n in self.nodes_at(level)}
        for n in self.nodes_at(level):
            for alias in (*n.names.values(), *n.synonyms):
                choices.setdefault(alias, n.name)
        found = process.extract(value, list(choices), scorer=fuzz.WRatio, limit=limit * 3)
        out: list[str] = []
        for alias, _score, _ in found:
            if choices[alias] not in out:
                out.append(choices[alias])
        return out[:limit]

    def ancestors(self, node: Node) -> list[Node]:
        out: list[Node] = []
        while node.parent:
            node = self.nodes[node.parent]
            out.append(node)
        return out

    def check_hierarchy(self, chosen: dict[str, list[str]]) -> list[str]:
        """Problems with a multi-level classification, e.g. {'level': [...], 'core': [...], 'derived': [...]}:
        every chosen node's parent must be chosen at the level above. Returns messages (empty = consistent)."""
        resolved = {lvl: [self.lookup(v, lvl) for v in values] for lvl, values in chosen.items()}
        ids = {n.id for nodes in resolved.values() for n in nodes}
        problems = []
        for nodes in resolved.values():
            for n in nodes:
                if n.parent and n.parent in self.nodes and self.nodes[n.parent].level in chosen and n.parent not in ids:
                    problems.append(f"'{n.name}' needs its parent '{self.nodes[n.parent].name}'")
        return problems

    def to_dict(self) -> dict[str, Any]:
        return self.data.model_dump(mode="json")


def _data_dir() -> Any:
    return resources.files("valuecorpus.schemas.taxonomies") / "data"


def available() -> list[str]:
    return sorted(p.name[:-5] for p in _data_dir().iterdir() if p.name.endswith(".json"))


@cache
def load_taxonomy(name: str) -> Taxonomy:
    path = _data_dir() / f"{name}.json"
    if not path.is_file():
        raise TaxonomyError(f"unknown taxonomy '{name}' (available: {', '.join(available())})")
    return Taxonomy(TaxonomyFile.model_validate(json.loads(path.read_text(encoding="utf-8"))))
