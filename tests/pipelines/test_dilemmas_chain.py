"""The shipped dilemmas and perspectives recipes against the fake server (canned answers keyed by request),
through the real CLI; records checked field by field against the record model and the taxonomy."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from canned import Responder

from valuecorpus.pipelines.chains.dilemmas import THEORIES, topics, topics_of
from valuecorpus.pipelines.chains.perspectives import VARIANTS
from valuecorpus.pipelines.planner import read_plan
from valuecorpus.pipelines.prompts import load_template
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import Dilemma, Perspective
from valuecorpus.schemas.taxonomies.loader import load_taxonomy

DILEMMA_STEPS = ["situation", "consequence", "parties", "values", "reasons"]


def _generate(cli, server, *args: str) -> None:
    res = cli("generate", *args, "--base-url", server.base_url, "--model", "fake-model", "--no-progress")
    assert res.code == 0, res.stderr[-3000:]


def test_dilemmas_recipe_records_match_model_and_taxonomy(cli, home: Path, fake_llm) -> None:
    _generate(cli, fake_llm, "dilemmas", "--n", "8", "--run-id", "dd1", "--executor", "loop")
    layout = DataHome(home).run("dd1")
    manifest = layout.read_manifest()
    plan = {it["sample_id"]: it for it in read_plan(layout.plan)}
    records = layout.read_records("records/dilemma")
    assert len(plan) == 8 and manifest.dead_letters == 0
    assert len({it["seed_situation"]["id"] for it in plan.values()}) == 8  # a seed of its own per item
    assert manifest.counts["dilemma"] + manifest.filtered == 8 and len(records) == manifest.counts["dilemma"]
    assert len(records) >= 6

    tax = load_taxonomy("dailydilemmas_values")
    expected_templates = sorted(load_template(f"dilemmas/{s}").ref for s in DILEMMA_STEPS)
    assert manifest.prompt_versions == {f"dilemmas/{s}": load_template(f"dilemmas/{s}").version
                                        for s in DILEMMA_STEPS}
    for rec in records:
        assert isinstance(rec, Dilemma)
        Dilemma.model_validate(rec.model_dump())
        item = plan[rec.id]  # the record id is the plan item's id
        seed = item["seed_situation"]  # the plan item's own seed, from the pool of one of its topics
        topic = seed["pool"]
        assert topic in topics_of(item) and seed["source"] == "shipped"
        assert rec.topic_group == topic and rec.topic == topics()["topics"][topic]["id"]
        assert rec.basic_situation == seed["text"] and seed["text"] in topics()["topics"][topic]["seeds"]
        assert rec.dilemma_situation.endswith("?") and rec.dilemma_situation.count(". ") >= 2
        assert [a.action_type for a in rec.actions] == ["to_do", "not_to_do"]
        for action in rec.actions:
            assert action.action and action.negative_consequence and action.background
            assert len(action.parties_direct) == len(action.values_direct) == len(action.reason_direct) >= 1
            assert len(action.parties_indirect) == len(action.values_indirect) == len(action.reason_indirect)
            named = set(action.values_direct) | set(action.values_indirect)
            assert {v.name for v in action.values} == named
            for value in action.values:
                node = tax.lookup(value.name)  # in the 301-value taxonomy
                assert node.name == value.name
                for theory in THEORIES:  # looked up, never generated
                    assert getattr(value, theory) == node.labels.get(theory)
        prov = rec.provenance
        assert prov.run_id == "dd1" and prov.recipe == "dilemmas" and prov.plan_item == rec.id
        assert prov.generator_model == "fake-model" and prov.endpoint_kind == "openai"
        assert prov.prompt_templates == expected_templates
        assert prov.taxonomy_versions == [tax.ref]
        assert len(prov.cache_keys) == 9  # 1 situation + 2 × (consequence, parties, values, reasons)

    show = cli("run", "show", "dd1")
    assert show.code == 0, show.stderr
    assert "schema-valid rate" in show.stdout and "100.0%" in show.stdout
    assert "topic_group" in show.stdout
    listed = cli("runs")
    assert listed.code == 0 and "dd1" in listed.stdout


def test_perspectives_from_a_dilemma_run(cli, home: Path, fake_llm, responder: Responder) -> None:
    responder.demographic_variant = "exactly equally"  # the S=O description says "she"
    _generate(cli, fake_llm, "dilemmas", "--n", "3", "--run-id", "dd2", "--executor", "loop")
    _generate(cli, fake_llm, "perspectives", "--from-run", "dd2", "--run-id", "pp1")
    layout = DataHome(home).run("pp1")
    manifest = layout.read_manifest()
    dilemmas = {d.id: d for d in DataHome(home).run("dd2").read_records("records/dilemma")}
    records = layout.read_records("records/perspective")
    filtered = layout.read_records("filtered")
    assert manifest.parent_runs == ["dd2"]
    assert len(records) + len(filtered) == 11 * len(dilemmas)
    assert Counter(f.filter for f in filtered) == Counter({"demographics": len(dilemmas)})
    assert all(f.reason.startswith("names demographic attributes: she") for f in filtered)
    gold = {variant: (category, answers) for category, variant, answers in VARIANTS}
    by_dilemma = Counter(r.dilemma_id for r in records)
    assert set(by_dilemma) == set(dilemmas) and set(by_dilemma.values()) == {10}
    for rec in records:
        assert isinstance(rec, Perspective)
        Perspective.model_validate(rec.model_dump())
        category, answers = gold[rec.variant]
        assert rec.category == category and rec.gold == answers
        assert rec.description.startswith("Character A")
        assert len(rec.action.split()) < 10 and rec.action.split()[0].endswith("ing")
        assert rec.provenance.prompt_templates == sorted(
            load_template(f"perspectives/{s}").ref for s in ("action", "description"))
    counts = Counter(v[0] for v in VARIANTS)
    assert counts == {"straightforward": 2, "simple_contrast": 1, "swayed_contrast": 2, "shift": 2,
                      "half_shift": 2, "false_shift": 2}


def test_perspectives_from_a_published_version_match_the_run(cli, home: Path, fake_llm) -> None:
    from valuecorpus.warehouse import publish

    _generate(cli, fake_llm, "dilemmas", "--n", "2", "--run-id", "dd3", "--executor", "loop")
    publish(home, "dd3", "dd_pub")
    _generate(cli, fake_llm, "perspectives", "--from-run", "dd3", "--run-id", "from-run", "--executor", "loop")
    _generate(cli, fake_llm, "perspectives", "--from-dataset", "dd_pub", "--run-id", "from-version",
              "--executor", "loop")

    def content(run_id: str) -> list[dict]:
        rows = [r.model_dump(mode="json") for r in DataHome(home).run(run_id).read_records("records/perspective")]
        for row in rows:
            row["provenance"]["run_id"] = None
        return sorted(rows, key=lambda r: r["id"])

    assert len(content("from-run")) == 22
    assert content("from-run") == content("from-version")


def test_demo_recipe_against_the_fake_server(cli, home: Path, fake_llm) -> None:
    _generate(cli, fake_llm, "demo", "--run-id", "demo-fake", "--executor", "loop")
    layout = DataHome(home).run("demo-fake")
    manifest = layout.read_manifest()
    records = layout.read_records("records/dilemma")
    assert manifest.dead_letters == 0 and len(records) + manifest.filtered == 10
    groups = {"interpersonal", "roles_and_places", "events", "society"}
    plan = read_plan(layout.plan)
    assert {it["topic_group"] for it in plan} == groups
    planned = {it["sample_id"]: it["topic_group"] for it in plan}
    for rec in records:
        Dilemma.model_validate(rec.model_dump())
        assert all(len(a.values_direct) + len(a.values_indirect) <= 2 for a in rec.actions)  # params.max_values
        # the stratum field holds what the planner planned (a group), and the topic is one of that group's
        assert rec.topic_group == planned[rec.id]
        topic = next(t for t, v in topics()["topics"].items() if v["id"] == rec.topic)
        assert topic in topics()["groups"][rec.topic_group]
    # coverage (manifest and `run show`) is counted from the records' own field
    from_records = Counter(r.topic_group for r in records)
    cov = manifest.model_extra["coverage"]["topic_group"]
    assert cov["kept_from"] == "records" and cov["planned"] == dict(Counter(planned.values()))
    assert {g: n for g, n in cov["kept"].items() if n} == dict(from_records)
    shown = cli("run", "show", "demo-fake")
    assert shown.code == 0, shown.stderr
    row = next(ln for ln in shown.stdout.splitlines() if "topic_group" in ln)
    cells = [c.strip() for c in row.replace("┃", "│").split("│") if c.strip()]
    assert cells[:2] == ["topic_group", "4"]
    if set(from_records) == groups:
        assert cells[3] == str(round(max(from_records.values()) / min(from_records.values()), 3))
    else:
        assert cells[3] == "inf"
