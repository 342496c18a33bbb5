"""Labeling configs: one per curated kind, plain text only, and accepted by a real Label Studio."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from valuecorpus.annotation import configs
from valuecorpus.annotation.tasks import CURATABLE, spec
from valuecorpus.schemas.records import RECORD_TYPES

HTML_TAGS = {"HyperText", "HTML", "Html"}


@pytest.mark.parametrize("kind", CURATABLE)
def test_config_shows_plain_text_and_offers_every_decision(kind: str) -> None:
    xml, taxonomy = configs.render(kind)
    root = ET.fromstring(xml)
    tags = [el.tag for el in root.iter()]
    assert not HTML_TAGS & set(tags), "sample fields must never be rendered as HTML"
    names = [el.get("name") for el in root.iter() if el.get("name")]
    assert len(names) == len(set(names)), "Label Studio requires unique tag names"
    texts = {el.get("name"): el for el in root.iter("Text")}
    s = spec(kind)
    for f in s.fields:
        assert f.key in texts and texts[f.key].get("value") == f"${f.key}"
        assert texts[f.key].get("valueType", "text") == "text"
    choices = {el.get("name"): [c.get("value") for c in el.iter("Choice")] for el in root.iter("Choices")}
    assert choices["verdict"] == ["accept", "reject", "needs_edit"]
    # Label Studio gives every <Choices> choice without a hotkey an automatic one: ours all have explicit keys,
    # unique, and the verdict keys are 1/2/3 and named in the header
    keys = [c.get("hotkey") for el in root.iter("Choices") for c in el.iter("Choice")]
    assert all(keys) and len(keys) == len(set(keys))
    assert [c.get("hotkey") for el in root.iter("Choices") if el.get("name") == "verdict"
            for c in el.iter("Choice")] == ["1", "2", "3"]
    assert any(h.get("value", "").startswith("Verdict (keys 1 accept") for h in root.iter("Header"))
    assert all(r.get("hotkey") for r in root.iter("Rating"))  # no automatic letter key on the rating either
    areas = {el.get("name"): el for el in root.iter("TextArea")}
    for f in s.editable:
        assert areas[f"edit_{f.key}"].get("editable") == "true"
        assert areas[f"edit_{f.key}"].get("value") == f"${f.key}"  # pre-filled with the current text
    assert "comment" in areas and areas["comment"].get("value") is None
    assert [el.get("name") for el in root.iter("Rating")] == ["quality"]
    pickers = {el.get("name"): el for el in root.iter("Taxonomy")}
    if s.taxonomy:
        from valuecorpus.schemas.taxonomies.loader import load_taxonomy

        tax = load_taxonomy(s.taxonomy)
        assert taxonomy == tax.ref and "value_labels" not in choices
        tree = pickers["value_labels"]
        assert (tree.get("showFullPath") == "true") == bool(s.label_groups)  # a chosen value shows its group
        # every taxonomy value is offered (stored under its canonical name), once per group
        offered = [c.get("alias") or c.get("value") for c in tree.iter("Choice")]
        groups = len(s.label_groups) or 1
        assert len(offered) == groups * len(tax.nodes_at()) + len(s.label_groups)  # every node, in its place
        assert set(tax.names()) <= set(offered)
        for parent in [tree, *tree.iter("Choice")]:  # sorted within every level
            shown = [c.get("value") for c in parent.findall("Choice")]
            assert shown == sorted(shown, key=str.casefold) or (parent is tree and s.label_groups)
    else:
        assert taxonomy is None and not pickers and "value_labels" not in choices
    if kind == "moral_graph_vote":
        assert choices["relationship"] == ["upgrade", "no_upgrade", "not_sure"]
    if kind == "agent_case":
        assert choices["checkpoints_a_ok"] == choices["checkpoints_b_ok"] == ["right", "partly", "wrong"]


def test_every_curated_kind_is_a_record_kind() -> None:
    assert set(CURATABLE) <= set(RECORD_TYPES)
    for kind in ("dilemma", "perspective", "value_rule", "rule_pair_dilemma", "values_card", "moral_graph_vote",
                 "agent_case", "rubric", "preference_pair", "outcome_comparison"):
        assert kind in CURATABLE


def test_hints_carry_definitions_synonyms_and_theory_labels() -> None:
    dilemma, _ = configs.render("dilemma")
    trust = next(c for c in ET.fromstring(dilemma).iter("Choice") if c.get("value") == "trust")
    assert "mft: Loyalty" in trust.get("hint") and "wvs: Survival" in trust.get("hint")
    cvc, _ = configs.render("value_rule")
    node = next(c for c in ET.fromstring(cvc).iter("Choice") if c.get("alias") == "富强")
    assert node.get("value") == "富强 · Prosperity" and node.findall("Choice")  # level → core → derived
    agent, _ = configs.render("agent_case")
    systems = ET.fromstring(agent).find(".//Taxonomy").findall("Choice")
    assert len(systems) == 28 and all(s.findall("Choice") for s in systems)
    assert any(c.get("hint") for s in systems for c in s.findall("Choice"))  # definitions


def test_marker_is_a_config_comment_and_adjudication_shows_reviews() -> None:
    xml, _ = configs.render("values_card", "adjudication", "valuecorpus:r:values_card:main:adjudication")
    assert "<!-- valuecorpus:r:values_card:main:adjudication -->" in xml
    root = ET.fromstring(xml)
    texts = [el.get("name") for el in root.iter("Text")]
    assert texts[-1] == "reviews" and set(spec("values_card").fields[0].key) and "title" in texts
    row = root.find("View")
    assert row is not None and "display: flex" in row.get("style")  # sample and reviews side by side
    for kind in CURATABLE:
        assert configs.instructions(kind).startswith("<h3>")
        assert "Adjudication" in configs.instructions(kind, "adjudication")


def test_titles_never_cut_a_run_id() -> None:
    from valuecorpus.annotation.projects import ADJUDICATION, REVIEW, title

    assert title("gen-20261127T101500", "dilemma", "main", REVIEW) == "dilemma/main · gen-20261127T101500"
    long = "gen-20261127T101500-curated-20261128T090000"
    for role in (REVIEW, ADJUDICATION):
        t = title(long, "rule_pair_dilemma", "week48", role)
        assert len(t) <= 50 and (long in t or "gen-" not in t)


def test_server_accepts_a_project_for_every_config(label_studio) -> None:
    client = label_studio.client
    for kind in CURATABLE:
        for role in ("review", "adjudication"):
            xml, _ = configs.render(kind, role, f"valuecorpus:check:{kind}:main:{role}")
            project = client.projects.create(title=f"config check {kind}"[:50], label_config=xml)
            stored = client.projects.get(id=project.id)
            assert "verdict" in stored.parsed_label_config
            assert f"valuecorpus:check:{kind}:main:{role}" in stored.label_config
            client.projects.delete(id=project.id)
