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
    areas = {el.get("name"): el for el in root.iter("TextArea")}
    for f in s.editable:
        assert areas[f"edit_{f.key}"].get("editable") == "true"
    assert "comment" in areas
    assert [el.get("name") for el in root.iter("Rating")] == ["quality"]
    if s.taxonomy:
        from valuecorpus.schemas.taxonomies.loader import load_taxonomy

        tax = load_taxonomy(s.taxonomy)
        assert taxonomy == tax.ref
        assert set(choices["value_labels"]) == set(tax.names())
    else:
        assert taxonomy is None and "value_labels" not in choices
    if kind == "moral_graph_vote":
        assert choices["relationship"] == ["upgrade", "no_upgrade", "not_sure"]
    if kind == "agent_case":
        assert choices["checkpoints_a_ok"] == choices["checkpoints_b_ok"] == ["right", "partly", "wrong"]


def test_every_curated_kind_is_a_record_kind() -> None:
    assert set(CURATABLE) <= set(RECORD_TYPES)
    for kind in ("dilemma", "perspective", "value_rule", "rule_pair_dilemma", "values_card", "moral_graph_vote",
                 "agent_case", "rubric", "preference_pair", "outcome_comparison"):
        assert kind in CURATABLE


def test_server_accepts_a_project_for_every_config(label_studio) -> None:
    client = label_studio.client
    for kind in CURATABLE:
        xml, _ = configs.render(kind)
        project = client.projects.create(title=f"config check {kind}"[:50], label_config=xml)
        stored = client.projects.get(id=project.id)
        assert "verdict" in stored.parsed_label_config
        client.projects.delete(id=project.id)
