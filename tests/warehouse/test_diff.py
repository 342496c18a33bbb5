"""`diff` between two real versions: exact added / removed / changed ids and per-column change counts."""

from __future__ import annotations

import json
from pathlib import Path

from wh_staging import stage_run

from valuecorpus.schemas.records import Dilemma, stable_id
from valuecorpus.warehouse import diff_versions, publish


def _second_version(dilemmas: list[Dilemma]) -> tuple[list[Dilemma], dict[str, set[str]]]:
    with_actions = [d for d in dilemmas if d.actions][:2]
    plain = [d for d in dilemmas if not d.actions]
    regrouped, dropped = plain[:5], plain[5:12]
    changed_nested = {d.id: d.model_copy(update={"actions": [
        a.model_copy(update={"values_direct": [*a.values_direct, "Courage"]}) for a in d.actions]})
        for d in with_actions}
    changed = {d.id: d.model_copy(update={"topic_group": "workplace", "topic": 7}) for d in regrouped}
    changed[plain[12].id] = plain[12].model_copy(update={"dilemma_situation": plain[12].dilemma_situation + "!"})
    added = [Dilemma(id=stable_id("new", i), basic_situation=f"new situation {i}", dilemma_situation="Should you?")
             for i in range(4)]
    drop = {d.id for d in dropped}
    rows = [changed_nested.get(d.id) or changed.get(d.id) or d for d in dilemmas if d.id not in drop] + added
    expected = {"added": {d.id for d in added}, "removed": drop,
                "changed": set(changed_nested) | set(changed)}
    return rows, expected


def test_diff_two_real_versions(home: Path, dilemma_run: str, dilemmas: list[Dilemma], cli) -> None:
    publish(home, dilemma_run, "dilemmas")
    rows, expected = _second_version(dilemmas)
    stage_run(home, "edited", {"dilemma": rows})
    publish(home, "edited", "dilemmas")

    (result,) = diff_versions(home, "dilemmas", 1, "v2").kinds
    assert set(result.added) == expected["added"] and len(result.added) == 4
    assert set(result.removed) == expected["removed"] and len(result.removed) == 7
    assert set(result.changed) == expected["changed"] and len(result.changed) == 8
    assert result.unchanged == 1360 - 7 - 8
    assert result.column_changes == {"topic_group": 5, "topic": 5, "actions": 2, "dilemma_situation": 1}

    (ignoring,) = diff_versions(home, "dilemmas", 1, 2, ignore=frozenset({"topic", "topic_group"})).kinds
    assert len(ignoring.changed) == 3 and ignoring.column_changes == {"actions": 2, "dilemma_situation": 1}
    (same,) = diff_versions(home, "dilemmas", 2, 2).kinds
    assert (same.added, same.removed, same.changed, same.unchanged) == ([], [], [], 1357)

    out = cli("diff", "dilemmas", "v1", "v2", "--format", "json", "--ids")
    assert out.code == 0, out.stderr
    report = json.loads(out.stdout)["kinds"][0]
    assert (report["added"], report["removed"], report["changed"]) == (4, 7, 8)
    assert set(report["removed_ids"]) == expected["removed"]
    text = cli("diff", "dilemmas", "1", "2")
    assert "dilemma: 4 added, 7 removed, 8 changed, 1345 unchanged" in text.stdout
    assert "    topic_group: 5 changed" in text.stdout and "    actions: 2 changed" in text.stdout


def test_release_changes_report_labels_and_verdicts(home: Path, reference_data: Path, cli) -> None:
    from valuecorpus.schemas.importers import import_path
    from valuecorpus.schemas.records.base import AnnotatorDecision
    from valuecorpus.warehouse import release_changes

    dilemmas = [d for d in import_path("dailydilemmas", reference_data / "daily_dilemmas").records["dilemma"]
                if d.actions]

    def curated(d: Dilemma, verdicts: list[str]) -> Dilemma:
        trail = [AnnotatorDecision(annotator=f"a{i}", verdict=v) for i, v in enumerate(verdicts)]
        return d.model_copy(update={"provenance": d.provenance.model_copy(update={"annotations": trail})})

    first = [curated(dilemmas[0], ["accept", "accept", "reject"]), curated(dilemmas[1], ["accept"]),
             *dilemmas[2:]]
    stage_run(home, "r1", {"dilemma": first})
    publish(home, "r1", "labels")
    assert release_changes(home, "labels")["kinds"][0]["added"] == len(first)  # v1: everything is new

    action = first[0].actions[0]
    old_name = action.values[0].name
    new_name = "honesty" if old_name != "honesty" else "trust"
    relabelled = action.model_copy(update={"values": [action.values[0].model_copy(update={"name": new_name}),
                                                      *action.values[1:]]})
    second = [first[0].model_copy(update={"actions": [relabelled, *first[0].actions[1:]]}),
              curated(dilemmas[1], ["reject", "reject"]), *first[2:]]
    stage_run(home, "r2", {"dilemma": second})
    publish(home, "r2", "labels")

    (kind,) = release_changes(home, "labels")["kinds"]
    assert kind["changed"] == 2
    names = kind["label_changes"]["actions[].values[].name"]
    assert names["records"] == 1
    assert names["added"] == {new_name: 1} and names["removed"] == {old_name: 1}
    assert kind["verdict_changes"] == {"accept → reject": 1}
    text = cli("diff", "labels", "1", "2")
    assert f"labels actions[].values[].name: 1 records (+{new_name} ×1, -{old_name} ×1)" in text.stdout
    assert "verdict accept → reject: 1" in text.stdout
