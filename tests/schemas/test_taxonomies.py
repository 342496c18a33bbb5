"""Shipped taxonomies: counts, stable ids, synonyms, hierarchy checks, errors, CLI, the installed wheel."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from valuecorpus.schemas.errors import TaxonomyError
from valuecorpus.schemas.taxonomies import build
from valuecorpus.schemas.taxonomies.ids import node_id, slug
from valuecorpus.schemas.taxonomies.loader import available, load_taxonomy

REPO = Path(__file__).resolve().parents[2]

COUNTS = {
    "cvc": {"level": 3, "core": 12, "derived": 50},
    "dailydilemmas_values": {"value": 301},
    "mft2008": {"foundation": 5},
    "mft2023": {"foundation": 6},
    "schwartz": {"higher_order": 4, "basic": 10, "refined": 19},
    "maslow": {"need": 5},
    "wvs": {"axis": 2, "pole": 4},
    "plutchik": {"primary": 8, "dyad": 8},
    "aristotle": {"virtue": 9},
    "agent_valuebench": {"system": 28, "value": 332},
}

# A few ids other data refers to: they must never change.
GOLDEN_IDS = {
    "cvc": ["cvc.level.national", "cvc.core.prosperity", "cvc.derived.high_quality_development",
            "cvc.derived.legal_education", "cvc.core.kindness"],
    "dailydilemmas_values": ["dd.trust", "dd.honesty", "dd.respect_for_others_privacy"],
    "mft2008": ["mft2008.care", "mft2008.purity"],
    "mft2023": ["mft2023.equality", "mft2023.proportionality"],
    "schwartz": ["schwartz.higher_order.openness_to_change", "schwartz.basic.self_direction",
                 "schwartz.refined.self_direction_thought", "schwartz.refined.face",
                 "schwartz.refined.humility"],
    "maslow": ["maslow.love_and_belonging", "maslow.self_actualization"],
    "wvs": ["wvs.axis.survival_vs_self_expression", "wvs.pole.secular_rational"],
    "plutchik": ["plutchik.primary.trust", "plutchik.dyad.aggressiveness"],
    "aristotle": ["aristotle.righteous_indignation"],
    "agent_valuebench": ["avb.nfcc1993", "avb.pvq40", "avb.pvq40.conformity_interpersonal",
                         "avb.6fpq.playfulness"],
}


def test_every_taxonomy_loads_with_the_documented_counts() -> None:
    assert available() == sorted(COUNTS)
    for name, counts in COUNTS.items():
        tax = load_taxonomy(name)
        assert tax.data.levels == list(counts), name
        assert {lvl: len(tax.nodes_at(lvl)) for lvl in tax.data.levels} == counts, name
        assert tax.version and tax.data.source and tax.data.licence, name
        assert tax.ref == f"{name}@{tax.version}"


def test_ids_are_unique_follow_the_rule_and_parents_sit_one_level_up() -> None:
    for name in COUNTS:
        tax = load_taxonomy(name)
        ids = [n.id for n in tax.data.nodes]
        assert len(ids) == len(set(ids)), name
        for node in tax.data.nodes:
            if node.parent is not None:
                parent = tax.nodes[node.parent]
                assert tax.data.levels.index(parent.level) == tax.data.levels.index(node.level) - 1
        for golden in GOLDEN_IDS[name]:
            assert golden in tax.nodes, golden
    assert node_id("cvc", "derived", "High-quality development") == "cvc.derived.high_quality_development"
    assert slug("Respect for others' privacy") == "respect_for_others_privacy"


def test_rebuilding_from_the_reference_data_reproduces_the_shipped_files(
    reference_data: Path, tmp_path: Path
) -> None:
    build.build(reference_data, tmp_path)
    for name in COUNTS:
        shipped = (build.DATA_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert (tmp_path / f"{name}.json").read_text(encoding="utf-8") == shipped, f"{name}.json is stale"


def test_builder_runs_as_a_module(reference_data: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "valuecorpus.schemas.taxonomies.build", "--reference", str(reference_data),
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == sorted(COUNTS)


def test_cvc_matches_the_reference_and_resolves_spelling_variants(reference_data: Path) -> None:
    cvc = load_taxonomy("cvc")
    src = json.loads((reference_data / "cvc" / "cvc_taxonomy.json").read_text(encoding="utf-8"))
    for level in src["levels"]:
        lvl = cvc.lookup(level["zh"], "level")
        assert lvl.names == {"zh": level["zh"], "en": level["en"]}
        for core in level["core_values"]:
            assert cvc.lookup(core["zh"], "core").parent == lvl.id
            for derived in core["derived_values"]:
                node = cvc.lookup(derived["zh"], "derived")
                assert cvc.nodes[node.parent].name == core["zh"]
                assert cvc.lookup(derived["en"], "derived") == node
    variants = {
        "法制教育": "法治教育", "文化素养": "文化修养", "法治执政": "依法执政", "严格执法": "严格守法",
    }
    for variant, canonical in variants.items():
        assert cvc.canonical(variant) == canonical
    assert cvc.canonical("Friendliness") == "友善"
    assert cvc.canonical("prosperity") == "富强"  # case-insensitive
    assert cvc.data.extra["rule_labels"].keys() == {"-1", "0", "1"}


def test_cvc_hierarchy_check() -> None:
    cvc = load_taxonomy("cvc")
    consistent = {"level": ["国家", "社会"], "core": ["富强", "法治"], "derived": ["科技创新", "法制教育"]}
    assert cvc.check_hierarchy(consistent) == []
    inconsistent = {"level": ["个人"], "core": ["富强"], "derived": ["法治教育"]}
    problems = cvc.check_hierarchy(inconsistent)
    assert problems == ["'富强' needs its parent '国家'", "'法治教育' needs its parent '法治'"]
    with pytest.raises(TaxonomyError, match="cvc"):
        cvc.check_hierarchy({"core": ["不存在"]})


def test_unknown_value_names_the_taxonomy_and_suggests_close_names() -> None:
    with pytest.raises(TaxonomyError) as err:
        load_taxonomy("cvc").lookup("法治教学")
    assert "cvc@" in str(err.value) and "法治教育" in str(err.value)
    with pytest.raises(TaxonomyError) as err:
        load_taxonomy("dailydilemmas_values").lookup("honsety")
    assert "dailydilemmas_values@" in str(err.value) and "'honesty'" in str(err.value)
    with pytest.raises(TaxonomyError, match="has no level"):
        load_taxonomy("cvc").nodes_at("nation")
    with pytest.raises(TaxonomyError, match="unknown taxonomy 'nope'"):
        load_taxonomy("nope")
    assert load_taxonomy("mft2008").get("Liberty") is None


def test_dailydilemmas_labels_match_the_csv_and_resolve_in_their_theories(reference_data: Path) -> None:
    dd = load_taxonomy("dailydilemmas_values")
    theories = {"wvs": ("wvs", "pole"), "mft": ("mft2008", None), "virtue": ("aristotle", None),
                "emotion": ("plutchik", None), "maslow": ("maslow", None)}
    columns = {"wvs": "WVS", "mft": "MFT", "virtue": "Virtue", "emotion": "Emotion", "maslow": "Maslow"}
    with open(reference_data / "daily_dilemmas" / "values.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [n.name for n in dd.data.nodes] == [r["value"] for r in rows]
    for row, node in zip(rows, dd.data.nodes, strict=True):
        assert set(node.labels) == {k for k, col in columns.items() if row[col].strip()}, node.name
        for key, label in node.labels.items():
            taxonomy, level = theories[key]
            target = load_taxonomy(taxonomy).lookup(label, level)
            assert target.name == label  # stored labels are canonical names
            assert load_taxonomy(taxonomy).lookup(row[columns[key]], level) == target
    assert dd.lookup("trust").labels == {"wvs": "Survival", "mft": "Loyalty", "emotion": "trust",
                                         "maslow": "love and belonging"}
    all_virtues = {n.labels["virtue"] for n in dd.data.nodes if "virtue" in n.labels}
    assert all_virtues == set(load_taxonomy("aristotle").names())


def test_theory_taxonomies_synonyms_and_structure() -> None:
    mft = load_taxonomy("mft2008")
    assert mft.names() == ["Care", "Fairness", "Loyalty", "Authority", "Purity"]
    assert mft.canonical("Care/Harm") == "Care" and mft.canonical("sanctity/degradation") == "Purity"
    mft23 = load_taxonomy("mft2023")
    assert mft23.names() == ["Care", "Equality", "Proportionality", "Loyalty", "Authority", "Purity"]
    assert mft23.lookup("Proportionality").labels["mft2008"] == "Fairness"

    schwartz = load_taxonomy("schwartz")
    assert schwartz.lookup("Stimulation").level == "basic"  # the higher level wins when no level is given
    assert schwartz.lookup("Stimulation", "refined").parent == "schwartz.basic.stimulation"
    assert schwartz.lookup("Conformity:Interpersonal").id == "schwartz.refined.conformity_interpersonal"
    hedonism = schwartz.lookup("Hedonism", "basic")
    assert schwartz.nodes[hedonism.parent].name == "Openness to Change"
    assert hedonism.labels["also_higher_order"] == "Self-Enhancement"
    for refined in schwartz.nodes_at("refined"):
        assert [a.level for a in schwartz.ancestors(refined)] == ["basic", "higher_order"]
    assert schwartz.lookup("Face").labels["also_basic"] == "Power"

    plutchik = load_taxonomy("plutchik")
    primaries = set(plutchik.names("primary"))
    assert primaries == {"joy", "trust", "fear", "surprise", "sadness", "disgust", "anger", "anticipation"}
    for dyad in plutchik.nodes_at("dyad"):
        assert {dyad.labels["component_1"], dyad.labels["component_2"]} <= primaries
    assert plutchik.lookup("love").labels == {"component_1": "joy", "component_2": "trust"}

    wvs = load_taxonomy("wvs")
    assert [wvs.nodes[p.parent].name for p in wvs.nodes_at("pole")] == [
        "Traditional vs Secular-rational"] * 2 + ["Survival vs Self-expression"] * 2
    assert load_taxonomy("maslow").names() == [
        "physiological", "safety", "love and belonging", "self-esteem", "self-actualization"]


def test_agent_valuebench_values_are_looked_up_within_their_system(reference_data: Path) -> None:
    avb = load_taxonomy("agent_valuebench")
    src = json.loads((reference_data / "agent_valuebench" / "value_systems.json").read_text(encoding="utf-8"))
    for system_id, system in src.items():
        node = avb.lookup(system_id, "system")
        assert node.id == f"avb.{system_id}" and node.names["en"] == system["name"]
        values = avb.values_of(system_id)
        expected = [(i["value"], i["definition"]) for i in system["values"]]
        assert [(v.name, v.definition) for v in values] == expected
    assert avb.lookup("Decisiveness", level="value", under="nfcc2000").id == "avb.nfcc2000.decisiveness"
    assert avb.lookup("Greed Avoidance", level="value").id == "avb.hexaco.greed_avoidance"  # unique name
    with pytest.raises(TaxonomyError, match=r"ambiguous.*avb\.lto\.tradition"):
        avb.lookup("Tradition", level="value")
    with pytest.raises(TaxonomyError, match="under 'lto'"):
        avb.lookup("Hedonism", level="value", under="lto")


def test_cli_list_show_lookup(cli) -> None:
    listed = cli("taxonomy", "list")
    assert listed.code == 0, listed.stderr
    assert "cvc" in listed.stdout and "level=3 core=12 derived=50" in listed.stdout
    assert "system=28 value=332" in listed.stdout and "higher_order=4 basic=10 refined=19" in listed.stdout

    shown = cli("taxonomy", "show", "cvc", "--level", "core")
    assert shown.code == 0, shown.stderr
    assert "cvc.core.prosperity" in shown.stdout and "cvc.derived" not in shown.stdout

    as_json = cli("taxonomy", "show", "plutchik", "--level", "dyad", "--json")
    assert len(json.loads(as_json.stdout)) == 8

    found = cli("taxonomy", "lookup", "cvc", "法制教育")
    assert found.code == 0, found.stderr
    node = json.loads(found.stdout)
    assert node["name"] == "法治教育" and node["ancestors"] == ["cvc.core.rule_of_law", "cvc.level.social"]

    within = cli("taxonomy", "lookup", "agent_valuebench", "Tradition", "--level", "value", "--under", "svs")
    assert json.loads(within.stdout)["id"] == "avb.svs.tradition"


def test_cli_unknown_value_fails_with_one_line_and_suggestions(cli) -> None:
    res = cli("taxonomy", "lookup", "cvc", "法治教学", "--level", "derived")
    assert res.code != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    expected = "error: '法治教学' is not in taxonomy 'cvc@1.0.0' at level 'derived'; closest: "
    assert lines[0].startswith(expected)
    assert "'法治教育'" in lines[0]
    assert "Traceback" not in res.stderr
    bad_level = cli("taxonomy", "show", "wvs", "--level", "nation")
    assert bad_level.code != 0 and "has no level 'nation'" in bad_level.stderr
    unknown = cli("taxonomy", "show", "nope")
    assert unknown.code != 0 and "available:" in unknown.stderr
