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

from pydantic import BaseModel, Field, ValidationError

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
    extra: dict[str, Any] = Field(
        default_factory=dict, description="taxonomy-specific facts, e.g. the CVC rule label scheme (-1/0/1)"
    )


def normalise(text: str) -> str:
    """Case, width and spacing variants of a name resolve to the same key."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().replace("_", " ").split())


class Taxonomy:
    def __init__(self, data: TaxonomyFile) -> None:
        self.data = data
        self.name, self.version = data.name, data.version
        self.nodes: dict[str, Node] = {n.id: n for n in data.nodes}
        self._rank = {lvl: i for i, lvl in enumerate(data.levels)}
        # (level or None, normalised alias) -> node ids; several ids = a name shared by several nodes
        self._index: dict[tuple[str | None, str], list[str]] = {}
        for node in data.nodes:
            for alias in (node.name, node.id, *node.names.values(), *node.synonyms):
                for key in ((node.level, normalise(alias)), (None, normalise(alias))):
                    ids = self._index.setdefault(key, [])
                    if node.id not in ids:
                        ids.append(node.id)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def __len__(self) -> int:
        return len(self.nodes)

    def nodes_at(self, level: str | None = None) -> list[Node]:
        if level is not None and level not in self.data.levels:
            levels = ", ".join(self.data.levels)
            raise TaxonomyError(f"taxonomy '{self.name}' has no level '{level}' (levels: {levels})")
        return [n for n in self.data.nodes if level is None or n.level == level]

    def names(self, level: str | None = None) -> list[str]:
        return [n.name for n in self.nodes_at(level)]

    def children(self, node_id: str) -> list[Node]:
        return [n for n in self.data.nodes if n.parent == node_id]

    def values_of(self, system: str) -> list[Node]:
        """The nodes one level below a top-level node, e.g. the values of an Agent-ValueBench value system."""
        return self.children(self.lookup(system, self.data.levels[0]).id)

    def get(self, value: str, level: str | None = None, under: str | None = None) -> Node | None:
        """The node a name, id, translation or synonym stands for, or None. `under` (a name or id) keeps only
        descendants of that node. Without a level, a name found at several levels means the highest one; a
        name shared by several nodes at one level is ambiguous (TaxonomyError naming them)."""
        if level is not None:
            self.nodes_at(level)  # an unknown level is an error, not "not found"
        ids = list(self._index.get((level, normalise(value)), []))
        if under is not None:
            root = self.lookup(under).id
            ids = [i for i in ids if root in {a.id for a in self.ancestors(self.nodes[i])}]
        if len(ids) > 1 and level is None:
            top = min(self._rank.get(self.nodes[i].level, 0) for i in ids)
            ids = [i for i in ids if self._rank.get(self.nodes[i].level, 0) == top]
        if len(ids) > 1:
            raise TaxonomyError(
                f"'{value}' is ambiguous in taxonomy '{self.ref}': {', '.join(ids)}; "
                "give the id, the level or the parent"
            )
        return self.nodes[ids[0]] if ids else None

    def lookup(self, value: str, level: str | None = None, under: str | None = None) -> Node:
        node = self.get(value, level, under)
        if node is None:
            where = f" at level '{level}'" if level else ""
            where += f" under '{under}'" if under else ""
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
        """Problems with a multi-level classification, e.g. {'level': [..], 'core': [..], 'derived': [..]}:
        every chosen node's parent must be chosen at the level above. Returns the problems (none: consistent).
        """
        resolved = {lvl: [self.lookup(v, lvl) for v in values] for lvl, values in chosen.items()}
        ids = {n.id for nodes in resolved.values() for n in nodes}
        problems = []
        for nodes in resolved.values():
            for n in nodes:
                parent = self.nodes.get(n.parent) if n.parent else None
                if parent is not None and parent.level in chosen and parent.id not in ids:
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
    try:
        return Taxonomy(TaxonomyFile.model_validate(json.loads(path.read_text(encoding="utf-8"))))
    except (ValueError, ValidationError) as exc:  # a damaged data file: name it, one line
        raise TaxonomyError(f"taxonomy file {path}: {' '.join(str(exc).split())[:300]}") from exc
