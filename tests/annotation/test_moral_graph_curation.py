"""Generated moral-graph records push with the `values_card` and `moral_graph_vote` labeling configs: experts
see each card's title, description and policies, and each vote's cards (with their titles), context and story."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from conftest import run_cli
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

from valuecorpus.annotation import projects
from valuecorpus.schemas.layout import DataHome


def respond(request: dict[str, Any]) -> Any:
    """Fixed answers per output schema; the participant's answer and the card follow the prompt's persona."""
    props = set((request["schema"] or {}).get("properties") or {})
    text = " ".join(str(m.get("content", "")) for m in request["messages"])
    n = sum(map(ord, text)) % 97
    if props == {"ready", "message"}:
        return {"ready": "Participant: " in request["last_user"], "message": "What matters most to you here?"}
    if props == {"reply"}:
        return {"reply": f"I care about keeping my word to people, as in case {n}."}
    if props == {"title", "description", "policies"}:
        return {"title": f"Steady care {n}", "description": "Staying with a friend through a hard week.",
                "policies": [f"MOMENTS when a friend needs me ({n})", "CHOICES that keep a promise"]}
    if props == {"contexts"}:
        return {"contexts": ["When a promise is at stake"]}
    if props == {"verdict", "reason"}:
        return {"verdict": "different", "reason": "Other things matter."}
    if props == {"story"}:
        return {"story": "I used to keep every promise. Then I saw that listening first keeps more of them."}
    if props == {"relationship", "comment"}:
        return {"relationship": "upgrade", "comment": "Listening first is wiser."}
    return None


def _ok(res: Any) -> str:
    assert res.code == 0, res.stderr
    return res.stdout


def test_generated_cards_and_votes_push_with_their_configs(label_studio, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"VALUECORPUS_HOME": str(home), **label_studio.env}
    with FakeServer(FakeServerConfig(responder=respond)) as server:
        common = ["--executor", "loop", "--base-url", server.base_url, "--model", "fake-model", "--no-progress"]
        _ok(run_cli("generate", "moral_graph", "--n", "8", "--run-id", "mg-int", *common, env=env))  # 2 per prompt
        _ok(run_cli("generate", "moral_graph_votes", "--from-run", "mg-int", "--run-id", "mg-votes", *common,
                    env=env))
    cards = DataHome(home).run("mg-int").read_records("records/values_card")
    votes = DataHome(home).run("mg-votes").read_records("records/moral_graph_vote")
    assert cards and votes
    out = _ok(run_cli("curate", "push", "mg-int", env=env))
    assert re.search(rf"values_card: project \d+.*{len(cards)} added", out), out
    out = _ok(run_cli("curate", "push", "mg-votes", env=env))
    assert re.search(rf"moral_graph_vote: project \d+.*{len(votes)} added", out), out
    client = label_studio.client
    card_project = projects.load(DataHome(home).run("mg-int"))["values_card:main:review"].project_id
    shown = {t.data["sample_id"]: t.data for t in client.tasks.list(project=card_project)}
    for card in cards:
        data = shown[card.id]
        assert data["title"] == card.title and data["policies"] == "\n".join(card.policies)
        assert data["contexts"] == "\n".join(card.contexts)
    vote_project = projects.load(DataHome(home).run("mg-votes"))["moral_graph_vote:main:review"].project_id
    shown = {t.data["sample_id"]: t.data for t in client.tasks.list(project=vote_project)}
    for vote in votes:
        data = shown[vote.id]
        assert vote.from_card in data["cards"] and vote.to_title in data["cards"] and vote.context in data["cards"]
        assert data["story"] == vote.story
