"""A corpus is only as varied as its seeds: every plan item gets a seed situation of its own (shipped, from an
input corpus, or proposed by the model in the seed stage), recorded in the run; when the seeds cannot give every
item its own, the run refuses (or caps, if asked) with the number they reach."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

from valuecorpus.pipelines.planner import read_plan
from valuecorpus.schemas.arrow import read_records
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.run_tables import SeedRow

# the first step of each chain, recognised by its output schema's properties
FIRST_STEP = {
    "dilemmas": {"background", "conflict", "question", "action", "alternative"},
    "value_rules": {"scene"},
    "preferences": {"question"},
}


class Recorder:
    """Counts the fake server's answers per distinct request body, for the first step and the seed stage."""

    def __init__(self, first_step: set[str]) -> None:
        self.first_step = first_step
        self.first: Counter[str] = Counter()
        self.seeds: Counter[str] = Counter()

    def __call__(self, request: dict[str, Any]) -> None:
        props = set((request["schema"] or {}).get("properties") or {})
        body = hashlib.sha256(json.dumps(request["body"], sort_keys=True).encode()).hexdigest()
        if props == self.first_step:
            self.first[body] += 1
        elif props == {"seeds"}:
            self.seeds[body] += 1
        return None  # the server's own schema-valid answer


def _generate(cli, server: FakeServer, *args: str):
    return cli("generate", *args, "--base-url", server.base_url, "--model", "fake-model", "--no-progress",
               "--executor", "loop")


@pytest.mark.parametrize("recipe", sorted(FIRST_STEP))
def test_a_1000_sample_run_makes_a_distinct_first_request_per_sample(cli, home: Path, recipe: str) -> None:
    recorder = Recorder(FIRST_STEP[recipe])
    with FakeServer(FakeServerConfig(responder=recorder, latency=0)) as server:
        res = _generate(cli, server, recipe, "--n", "1000", "--run-id", "big")
    assert res.code == 0, res.stderr[-3000:]
    layout = DataHome(home).run("big")
    plan = read_plan(layout.plan)
    assert len(plan) == 1000
    # as many distinct first-step requests as samples, each answered once (the recipes run at temperature 0)
    assert len(recorder.first) == 1000 and set(recorder.first.values()) == {1}
    seeds = {s["id"] for s in (it["seed_situation"] for it in plan)}
    assert len(seeds) == 1000

    # the pool is in the run: every plan item's seed is a row, proposed ones with their request
    rows = read_records(layout.seeds, SeedRow)
    by_id = {r.seed_id: r for r in rows if r.duplicate_of is None}
    assert seeds <= set(by_id)
    assert {r.source for r in rows} == {"shipped", "proposed"}
    proposed = [r for r in rows if r.source == "proposed"]
    assert all(r.request_id and r.cache_key and r.prompt_template and r.model == "fake-model" for r in proposed)
    assert all(by_id[r.duplicate_of].text.casefold() == r.text.casefold() or r.duplicate_of in by_id
               for r in rows if r.duplicate_of)
    report = layout.read_manifest().model_extra["seed_pool"]
    assert report["planned"] == report["distinct_seeds_used"] == 1000
    assert report["proposal_requests"] == sum(recorder.seeds.values()) == len(recorder.seeds)
    # a sample made from a proposed seed carries the proposal's cache key in its provenance
    kind = {"dilemmas": "dilemma", "value_rules": "value_rule", "preferences": "preference_pair"}[recipe]
    proposal_keys = {r.cache_key for r in proposed}
    records = read_records(layout.records(kind))
    plan_by_id = {it["sample_id"]: it for it in plan}
    for rec in records[:50]:
        seed = plan_by_id[rec.provenance.plan_item]["seed_situation"]
        if seed["source"] == "proposed":
            assert seed["cache_key"] in rec.provenance.cache_keys and seed["cache_key"] in proposal_keys
    assert "seed situations: 1000 distinct for 1000 plan items" in res.stdout


def _recipe(tmp_path: Path, groups: list[str] | None = None, **seeds: Any) -> Path:
    """The shipped dilemmas recipe with a `seeds` section (and fewer topic groups)."""
    data = yaml.safe_load((Path(__file__).parents[2] / "pipelines" / "recipes" / "dilemmas.yaml").read_text())
    data["seeds"] = seeds
    if groups:
        data["strata"]["topic_groups"] = groups
    path = tmp_path / "dilemmas_small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_more_items_than_seeds_refuses_with_the_number_reached(cli, home: Path, tmp_path: Path) -> None:
    recorder = Recorder(FIRST_STEP["dilemmas"])
    with FakeServer(FakeServerConfig(responder=recorder, latency=0)) as server:
        res = _generate(cli, server, str(_recipe(tmp_path, propose=False)), "--n", "100", "--run-id", "r1")
    assert res.code == 2 and not recorder.first and not recorder.seeds
    [line] = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert "Traceback" not in res.stderr and "dilemmas_small.yaml" in line and "key 'count'" in line
    assert "100 plan items asked, 68 can have a distinct seed" in line and "--n 68" in line
    assert not DataHome(home).run("r1").exists()


def test_cap_plans_what_the_seeds_reach_and_says_so(cli, home: Path, tmp_path: Path) -> None:
    recorder = Recorder(FIRST_STEP["dilemmas"])
    with FakeServer(FakeServerConfig(responder=recorder, latency=0)) as server:
        res = _generate(cli, server, str(_recipe(tmp_path, ["interpersonal"], propose=False, when_short="cap")),
                        "--n", "30", "--run-id", "r2")
    assert res.code == 0, res.stderr[-2000:]
    layout = DataHome(home).run("r2")
    plan = read_plan(layout.plan)  # the group's 4 topics have 4 shipped seeds each
    assert len(plan) == 16 and len(recorder.first) == 16 and len({it["seed_situation"]["id"] for it in plan}) == 16
    report = layout.read_manifest().model_extra["seed_pool"]
    assert report["planned"] == 16 and report["requested"] == 30 and "68 shipped" in report["note"]
    assert "note: planned 16 of the 30 items asked" in res.stdout


def test_seeds_from_an_imported_corpus(cli, home: Path, tmp_path: Path, reference_data: Path) -> None:
    """The basic situations of a published DailyDilemmas version seed new dilemmas (`--from-dataset`)."""
    assert cli("import", "dailydilemmas", str(reference_data / "daily_dilemmas"), "--run-id", "dd").code == 0
    assert cli("publish", "dd", "--dataset", "dailydilemmas").code == 0
    imported = {" ".join(d.basic_situation.split()).rstrip(".;, ")
                for d in read_records(DataHome(home).run("dd").records("dilemma"))}
    recorder = Recorder(FIRST_STEP["dilemmas"])
    with FakeServer(FakeServerConfig(responder=recorder, latency=0)) as server:
        res = _generate(cli, server, str(_recipe(tmp_path, propose=False, shipped=False)), "--n", "100",
                        "--from-dataset", "dailydilemmas", "--run-id", "r3")
    assert res.code == 0, res.stderr[-2000:]
    layout = DataHome(home).run("r3")
    plan = read_plan(layout.plan)
    assert len(plan) == 100 and len(recorder.first) == 100 and not recorder.seeds
    assert {it["seed_situation"]["source"] for it in plan} == {"dailydilemmas@v1"}
    assert {it["seed_situation"]["text"] for it in plan} <= imported
    for rec in read_records(layout.records("dilemma")):
        assert " ".join(rec.basic_situation.split()).rstrip(".;, ") in imported


class BrokenFriendProposals(Recorder):
    """Answers every seed proposal for the topic 'friend' with text that is no JSON (a dead letter each)."""

    def __call__(self, request: dict[str, Any]) -> Any:
        super().__call__(request)
        if request["last_user"].startswith("Topic: friend."):
            return "no seeds today"
        return None


def test_seed_stage_on_beam_gives_the_loop_run(cli, home: Path, tmp_path: Path) -> None:
    """Beam's workers get their seeds from the plan file alone: the same run as the loop's, seeds table and the
    seed stage's dead letters included, and a sample from a proposed seed carries the proposal's cache key."""
    from run_content import run_content

    path = _recipe(tmp_path, ["interpersonal"])  # 4 topics × 4 shipped seeds: 24 items need proposals
    data = yaml.safe_load(path.read_text())
    data["filters"] = {"language": {"enabled": False}, "length": {"min_chars": 1}}  # keep the canned text
    path.write_text(yaml.safe_dump(data))
    recipe = str(path)
    with FakeServer(FakeServerConfig(responder=BrokenFriendProposals(FIRST_STEP["dilemmas"]), latency=0)) as server:
        common = (recipe, "--n", "24", "--base-url", server.base_url, "--model", "fake-model", "--no-progress")
        runs = {"loop": cli("generate", *common, "--run-id", "loop", "--executor", "loop"),
                "beam": cli("generate", *common, "--run-id", "beam", "--executor", "beam", "--refresh")}
    for name, res in runs.items():
        assert res.code == 0, (name, res.stderr[-3000:])
    home_ = DataHome(home)
    loop, beam = home_.run("loop"), home_.run("beam")
    assert run_content(loop) == run_content(beam)
    seeds = {name: sorted(read_records(layout.seeds, SeedRow), key=lambda r: (r.pool, r.seed_id))
             for name, layout in (("loop", loop), ("beam", beam))}
    assert seeds["loop"] == seeds["beam"]
    assert {r.source for r in seeds["beam"]} == {"shipped", "proposed"}
    for layout in (loop, beam):
        dead = layout.read_records("dead_letters")
        friend = [d for d in dead if d.plan_item == "seeds:friend"]
        assert friend and all(d.reason for d in friend)  # every proposal request ends somewhere, with why
        manifest = layout.read_manifest()
        assert manifest.dead_letters == len(dead)
        report = manifest.model_extra["seed_pool"]
        assert report["dead_letters"] == len(friend) and report["engine"]["requests"] == report["proposal_requests"]
        plan = read_plan(layout.plan)
        assert len(plan) == 24 and len({it["seed_situation"]["id"] for it in plan}) == 24
        assert all(it["seed_situation"]["pool"] != "friend" or it["seed_situation"]["source"] == "shipped"
                   for it in plan)
        by_id = {it["sample_id"]: it for it in plan}
        from_proposals = 0
        for rec in layout.read_records("records/dilemma"):
            seed = by_id[rec.provenance.plan_item]["seed_situation"]
            if seed["source"] == "proposed":
                from_proposals += 1
                assert seed["cache_key"] in rec.provenance.cache_keys
        assert from_proposals
