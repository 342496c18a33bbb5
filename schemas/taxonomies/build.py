"""Regenerate the taxonomy data files.

    python -m valuecorpus.schemas.taxonomies.build [--reference ../shared/reference-data] [--out DIR]

The hand-curated taxonomies (Schwartz, MFT, Maslow, WVS, Plutchik, Aristotle) are compiled from their YAML
sources in `data/curated/`; with `--reference`, the ones derived from the reference corpora (CVC, the
DailyDilemmas values, Agent-ValueBench) are rebuilt as well. Ids follow the rule in `ids.py`, so a rebuild
never renames a node.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import yaml

from valuecorpus.schemas.errors import TaxonomyError
from valuecorpus.schemas.layout import write_json_atomic
from valuecorpus.schemas.taxonomies.ids import node_id, slug
from valuecorpus.schemas.taxonomies.loader import Node, Taxonomy, TaxonomyFile

DATA_DIR = Path(__file__).resolve().parent / "data"
CURATED = ("mft2008", "mft2023", "schwartz", "maslow", "wvs", "plutchik", "aristotle")
VERSION = "1.0.0"

DD_REPO, DD_COMMIT = "github.com/kellycyy/daily_dilemmas", "3b579ab5d9ec44e1c68597f84f6fde8eee34783e"
AVB_REPO, AVB_COMMIT = "github.com/ValueByte-AI/Agent-ValueBench", "3527b4a4ea8fc9dde6fbe27cd371c4ba7df76ac1"

# Spelling variants of CVC derived values found in the CVC code (see cvc_taxonomy.json `_provenance.note`).
CVC_VARIANTS = {
    "法治教育": ["法制教育"], "文化修养": ["文化素养"], "依法执政": ["法治执政"], "严格守法": ["严格执法"],
}
CVC_EXTRA_EN = {"友善": ["Friendliness"]}  # the paper's translation next to the code comments' 'Kindness'

# values.csv column -> (label key, theory taxonomy, level in it)
DD_THEORIES = {
    "WVS": ("wvs", "wvs", "pole"),
    "MFT": ("mft", "mft2008", None),
    "Virtue": ("virtue", "aristotle", None),
    "Emotion": ("emotion", "plutchik", None),
    "Maslow": ("maslow", "maslow", None),
}


def _check(data: TaxonomyFile) -> TaxonomyFile:
    """Ids unique, parents present and one level up: a broken file is never written."""
    ids = [n.id for n in data.nodes]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise TaxonomyError(f"taxonomy '{data.name}': duplicate node ids {dupes}")
    by_id = {n.id: n for n in data.nodes}
    for n in data.nodes:
        if n.level not in data.levels:
            raise TaxonomyError(f"taxonomy '{data.name}': node '{n.id}' has unknown level '{n.level}'")
        if n.parent is not None:
            parent = by_id.get(n.parent)
            if parent is None or data.levels.index(parent.level) != data.levels.index(n.level) - 1:
                raise TaxonomyError(f"taxonomy '{data.name}': node '{n.id}' has a bad parent '{n.parent}'")
    return data


def curated(name: str, src_dir: Path = DATA_DIR / "curated") -> TaxonomyFile:
    """Compile one YAML source: ids from the English name, parents given by name at the level above."""
    path = src_dir / f"{name}.yaml"
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    levels: list[str] = raw["levels"]
    prefix = raw["prefix"]
    nodes: list[Node] = []
    for item in raw["nodes"]:
        level = item.get("level", levels[0])
        en = item.get("en", item["name"])
        parts = (en,) if len(levels) == 1 else (level, en)
        parent = None
        if item.get("parent"):
            above = levels[levels.index(level) - 1]
            found = [n.id for n in nodes if n.level == above and n.name == item["parent"]]
            if len(found) != 1:
                raise TaxonomyError(
                    f"{path}: node '{item['name']}': parent '{item['parent']}' not found at level '{above}'"
                )
            parent = found[0]
        nodes.append(Node(
            id=node_id(prefix, *parts), name=item["name"], level=level, parent=parent, names={"en": en},
            synonyms=list(item.get("synonyms", [])), labels=dict(item.get("labels", {})),
            definition=item.get("definition"),
        ))
    return _check(TaxonomyFile(
        name=raw["name"], version=str(raw["version"]), title=raw["title"], source=raw["source"],
        licence=raw["licence"], levels=levels, nodes=nodes, notes=raw.get("notes"),
    ))


def cvc(reference: Path) -> TaxonomyFile:
    src = json.loads((reference / "cvc" / "cvc_taxonomy.json").read_text(encoding="utf-8"))
    prov = src["_provenance"]
    nodes: list[Node] = []

    def add(level: str, entry: dict[str, str], parent: str | None) -> str:
        zh, en = entry["zh"], entry["en"]
        nid = node_id("cvc", level, en)
        synonyms = [*CVC_VARIANTS.get(zh, []), en, *CVC_EXTRA_EN.get(zh, [])]
        nodes.append(
            Node(id=nid, name=zh, level=level, parent=parent, names={"zh": zh, "en": en}, synonyms=synonyms)
        )
        return nid

    for lvl in src["levels"]:
        lvl_id = add("level", lvl, None)
        for core in lvl["core_values"]:
            core_id = add("core", core, lvl_id)
            for derived in core["derived_values"]:
                add("derived", derived, core_id)
    return _check(TaxonomyFile(
        name="cvc", version=VERSION,
        title="Chinese core socialist values as used by CVC: 3 levels, 12 core values, 50 derived values",
        source=f"{prov['repository']} @ {prov['commit']} "
        f"(transcribed from {'; '.join(prov['transcribed_from'])})",
        licence="CC-BY-4.0 (CVC data card on Hugging Face, Beijing-AISI/CVC); "
        "no LICENSE file in the GitHub repository",
        levels=["level", "core", "derived"], nodes=nodes,
        notes=(
            "Canonical names are the Chinese names records store; English names (the authors' translations) "
            "and the spelling variants found in the CVC code (法制教育, 文化素养, 法治执政, 严格执法) "
            "are synonyms. A record's level / core / derived values are lists (joined with '、' in the "
            "source) and each chosen value's parent must be chosen too (Taxonomy.check_hierarchy). Rule "
            "labels: -1 violates the value system, 0 unrelated, 1 related and well-formed "
            "(extra.rule_labels)."
        ),
        extra={"rule_labels": src["rule_labels"], "multi_label_join_char": src["multi_label_join_char"]},
    ))


def dailydilemmas_values(reference: Path, theories: dict[str, Taxonomy]) -> TaxonomyFile:
    path = reference / "daily_dilemmas" / "values.csv"
    nodes: list[Node] = []
    with open(path, encoding="utf-8", newline="") as fh:
        for row_no, row in enumerate(csv.DictReader(fh), start=2):
            labels: dict[str, str] = {}
            for column, (key, theory, level) in DD_THEORIES.items():
                cell = (row.get(column) or "").strip()
                if not cell:
                    continue  # empty = not mapped to this theory
                try:
                    labels[key] = theories[theory].canonical(cell, level)
                except TaxonomyError as exc:
                    raise TaxonomyError(f"{path}:{row_no} column {column}: {exc}") from exc
            value = row["value"].strip()
            nodes.append(
                Node(id=f"dd.{slug(value)}", name=value, level="value", names={"en": value}, labels=labels)
            )
    return _check(TaxonomyFile(
        name="dailydilemmas_values", version=VERSION,
        title="DailyDilemmas: 301 values mapped to WVS, MFT, Aristotle's virtues, Plutchik's emotions and "
        "Maslow",
        source=f"{DD_REPO} @ {DD_COMMIT}, data/values.csv (Chiu, Jiang & Choi, DailyDilemmas, ICLR 2025)",
        licence="CC-BY-4.0 (kellycyy/daily_dilemmas LICENSE); attribution: Chiu, Jiang & Choi (2025)",
        levels=["value"], nodes=nodes,
        notes=(
            "labels: wvs (a pole of taxonomy wvs), mft (mft2008), virtue (aristotle), emotion (plutchik), "
            "maslow (maslow), each the canonical name in that taxonomy. A key is absent when the value is "
            "not mapped."
        ),
    ))


def agent_valuebench(reference: Path) -> TaxonomyFile:
    src = json.loads((reference / "agent_valuebench" / "value_systems.json").read_text(encoding="utf-8"))
    nodes: list[Node] = []
    for system_id, system in src.items():
        sys_node = Node(
            id=f"avb.{slug(system_id)}", name=system_id, level="system", names={"en": system["name"]}
        )
        nodes.append(sys_node)
        for item in system["values"]:
            value = item["value"].strip()
            nodes.append(Node(
                id=f"{sys_node.id}.{slug(value)}", name=value, level="value", parent=sys_node.id,
                names={"en": value}, definition=item.get("definition"),
            ))
    return _check(TaxonomyFile(
        name="agent_valuebench", version=VERSION,
        title="Agent-ValueBench: 28 value systems and their 332 value dimensions",
        source=f"{AVB_REPO} @ {AVB_COMMIT}, configs/value_systems.json",
        licence=(
            "CC-BY-4.0 (Hugging Face dataset Value4AI/Agent-ValueBench; no LICENSE file on GitHub); "
            "definitions are the Agent-ValueBench authors' text, kept with attribution"
        ),
        levels=["system", "value"], nodes=nodes,
        notes=(
            "Value names repeat across systems (e.g. Tradition in lto, pvq40 and svs): look a value up "
            "within its system, Taxonomy.values_of(system) or lookup(value, level='value', under=system)."
        ),
    ))


def build(reference: Path | None, out: Path = DATA_DIR) -> list[Path]:
    written: list[Path] = []
    files = {name: curated(name) for name in CURATED}
    if reference is not None:
        theories = {name: Taxonomy(files[name]) for name in {t for _, t, _ in DD_THEORIES.values()}}
        files["cvc"] = cvc(reference)
        files["dailydilemmas_values"] = dailydilemmas_values(reference, theories)
        files["agent_valuebench"] = agent_valuebench(reference)
    for name, data in files.items():
        path = out / f"{name}.json"
        write_json_atomic(path, data.model_dump(mode="json"))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference", type=Path, help="reference data (also rebuilds CVC, DailyDilemmas, Agent-ValueBench)"
    )
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="where the JSON files go (default: data/)")
    args = parser.parse_args(argv)
    for path in build(args.reference, args.out):
        print(path)


if __name__ == "__main__":
    main()
