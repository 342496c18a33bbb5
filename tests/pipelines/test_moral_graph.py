"""Moral-graph interviews, votes and the aggregated graph: each chain on the fake server with canned answers
(deterministic), the turn loop as a chain concept on both executors, the policy and context checks with their
reasons, interviewer and participant as different models, the aggregation against an independent count, the
CLI flow through publishing, and one small run on the embedded local model."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
from canned import Responder
from corpus_chains_harness import PROBE_PROMPT, run
from pydantic import BaseModel, ConfigDict
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

from valuecorpus.pipelines.chains.base import Chain, SampleState
from valuecorpus.pipelines.chains.moral_graph import catalogue, policy_problem
from valuecorpus.pipelines.chains.repeat import Repeat, TurnStep
from valuecorpus.pipelines.chains.runner import execute, initial_states
from valuecorpus.pipelines.engine import Engine, EngineConfig
from valuecorpus.pipelines.moral_graph_aggregate import aggregate
from valuecorpus.pipelines.planner import make_plan
from valuecorpus.pipelines.recipes import Recipe, load_recipe
from valuecorpus.schemas.errors import RecipeError
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import (
    CanonicalValuesCard,
    Interview,
    MoralGraphContext,
    MoralGraphVote,
    ValuesCard,
    ValuesCardMatch,
)


class NeverReady(Responder):
    """The interviewer never concludes: every interview runs to the turn cap."""

    def answer(self, request: dict[str, Any]) -> Any:
        out = super().answer(request)
        if isinstance(out, dict) and set(out) == {"ready", "message"}:
            return {"ready": False, "message": "What else matters to you here?"}
        return out


class BadCards(Responder):
    """Cards about the 'giving' question break the policy convention; some contexts do not start with 'When'."""

    def answer(self, request: dict[str, Any]) -> Any:
        out = super().answer(request)
        user = request["last_user"]
        if isinstance(out, dict) and "policies" in out and "holiday" in user:
            out["policies"] = ["moments of care", "ALIGNMENT with the plan"]
        if isinstance(out, dict) and set(out) == {"contexts"} and "homework" in user:
            out["contexts"] = ["If the child is tired", "When a choice affects others"]
        return out


def by_kind(records: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in records:
        out.setdefault(r.kind, []).append(r)
    return out


@pytest.fixture(scope="module")
def interviews() -> Any:
    return run("moral_graph", Responder(), {"count": 8})


def test_interviews_cards_and_contexts(interviews: Any) -> None:
    interviews.assert_accounted()
    assert not interviews.dead and not interviews.filtered
    kinds = by_kind(interviews.records)
    assert {k: len(v) for k, v in kinds.items()} == {"interview": 8, "values_card": 8, "moral_graph_context": 16}
    cards = {c.card_key: c for c in kinds["values_card"]}
    cat = catalogue()
    for iv in kinds["interview"]:
        assert isinstance(iv, Interview)
        roles = [t.role for t in iv.turns]
        # the canned interviewer concludes after two answers: Q A Q A summary
        assert roles == ["interviewer", "participant", "interviewer", "participant", "interviewer"]
        assert iv.ended_by == "interviewer"
        assert iv.stance in cat["stances"] and iv.life_situation in cat["life_situations"]
        assert iv.question == cat["questions"][iv.question_key]["question"]
        card = cards[iv.card_key]
        assert card.collection == "generated" and card.card_key == f"generated:{card.id}"
        assert card.question_key == iv.question_key and card.policies
        assert all(policy_problem(p) is None for p in card.policies)
        assert iv.interviewer_model == iv.participant_model == "fake-model"
        assert iv.provenance.prompt_templates[0].startswith("moral_graph/articulate@")
    for ctx in kinds["moral_graph_context"]:
        assert isinstance(ctx, MoralGraphContext)
        assert ctx.context.startswith("When ") and ctx.context in cards[ctx.card_key].contexts
    # 3 interviewer + 2 participant turns, the card, the contexts: 7 requests per interview, no more; the
    # opening question is the same request for every interview of one prompt, and is paid once
    prompts = {it["question"]["key"] for it in interviews.plan}
    assert len(interviews.chain_requests()) == 8 * 7 - (8 - len(prompts))


def test_the_turn_cap_ends_an_interview() -> None:
    capped = run("moral_graph", NeverReady(), {"count": 2, "params": {"max_turns": 3}})
    capped.assert_accounted()
    for iv in by_kind(capped.records)["interview"]:
        assert iv.ended_by == "turn_cap"
        assert Counter(t.role for t in iv.turns) == {"interviewer": 3, "participant": 3}
    opening_shared = 2 - len({it["question"]["key"] for it in capped.plan})
    assert len(capped.chain_requests()) == 2 * (3 + 3 + 2) - opening_shared
    assert capped.chain.step_names()[:4] == ["interviewer[1]", "participant[1]", "interviewer[2]", "participant[2]"]
    assert type(capped.chain).step_names() == ["interviewer", "participant", "articulate", "contexts"]


def test_policy_and_context_checks_filter_with_reasons() -> None:
    bad = run("moral_graph", BadCards(), {"count": 8})
    bad.assert_accounted()
    reasons = {f.sample_id: (f.filter, f.reason) for f in bad.filtered}
    kinds = by_kind(bad.records)
    giving = [c for c in kinds["values_card"] if c.question_key == "giving"]
    assert giving
    for card in giving:
        name, reason = reasons[card.id]
        assert name == "policies" and "does not start with" in reason
        iv = next(i for i in kinds["interview"] if i.provenance.plan_item == card.provenance.plan_item)
        assert iv.card_key is None  # nothing references a filtered card
        assert not [c for c in kinds.get("moral_graph_context", []) if c.card_key == card.card_key]
    off = [c for c in kinds["moral_graph_context"] if not c.context.startswith("When ")]
    assert off and all(reasons[c.id][0] == "context_form" for c in off)
    # a filtered card costs no contexts request
    contexts_requests = [r for r in bad.chain_requests() if "Give 1 to 3 contexts" in r["last_user"]]
    assert len(contexts_requests) == 8 - len(giving)


@pytest.mark.parametrize(("policy", "problem"), [
    ("MOMENTS that honor a person's autonomy", None),
    ("CREATIVE APPROACHES that arise from truly hearing someone", None),
    ("OPPORTUNITIES to nurture trust", None),
    ("moments of care", "does not start with a capitalised word"),
    ("ALIGNMENT between the child's interests and the homework", "not start with a plural noun phrase"),
    ("MOMENTS", "only a heading"),
    ("MOMENTS that feel meaningful to the person", "uses the word 'meaningful'"),
])
def test_policy_convention(policy: str, problem: str | None) -> None:
    found = policy_problem(policy)
    assert (found is None) if problem is None else (problem in found)


def test_the_shipped_example_graph_policies_meet_the_convention(reference_data: Path) -> None:
    graph = json.loads((reference_data / "moral_graph" / "mge_example_graph.json").read_text("utf-8"))
    policies = [p for v in graph["values"] for p in v["policies"]]
    # every real policy starts with capitalised words; a few heads are not plural ("FLEXIBILITY in …"), which
    # the default check (plural_policies: true) names and `plural_policies: false` lets through
    assert len(policies) == 40 and [p for p in policies if policy_problem(p, plural=False)] == []
    singular = [p.split()[0] for p in policies if policy_problem(p)]
    assert singular == ["CULTURAL", "FLEXIBILITY", "INNOVATIVE"]


def test_personas_with_demographic_attributes_are_refused() -> None:
    with pytest.raises(RecipeError, match=r"key 'params.stances\[1\]'.*names"):
        load_recipe("moral_graph", {"params": {"stances": ["leans towards duty", "speaks as a retired mother"]}})
    with pytest.raises(RecipeError, match=r"key 'params.questions\[0\]': unknown question"):
        load_recipe("moral_graph", {"params": {"questions": ["nope"]}})
    with pytest.raises(RecipeError, match=r"key 'model.step_models.judge2'"):
        load_recipe("moral_graph", {"model": {"step_models": {"judge2": "m"}}})


def test_interviewer_and_participant_are_different_models() -> None:
    two = run("moral_graph", Responder(), {"count": 2, "model": {"step_models": {"participant": "participant-m"}}})
    two.assert_accounted()
    models = Counter((("participant" if "Answer the interviewer" in r["last_user"] else "other"),
                      r["body"]["model"]) for r in two.chain_requests())
    opening_shared = 2 - len({it["question"]["key"] for it in two.plan})
    assert models == {("participant", "participant-m"): 4, ("other", "fake-model"): 10 - opening_shared}


# --- the turn loop is a chain concept ----------------------------------------------------------------------

class CountParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cap: int = 5


class CountStep(TurnStep):
    """Asks for a word each turn until three words are in: any chain can repeat a step like this."""

    name = "count"
    template = "moral_graph/participant"

    def turn_requests(self, state: SampleState) -> list[Any]:
        schema = {"type": "object", "properties": {"reply": {"type": "string", "maxLength": 20}},
                  "required": ["reply"]}
        return [self.request(state, {"question": f"{state.sample_id} word {self.turn}", "transcript": "-",
                                     "stance": "s", "life_situation": "l"}, schema)]

    def turn_absorb(self, state: SampleState, results: list[Any]) -> SampleState:
        state.data.setdefault("words", []).append(results[0].parsed["reply"])
        return state


class CountChain(Chain):
    kind = "count_words"
    Params = CountParams
    loop = Repeat((CountStep,), until="enough", turns="cap", name="count")
    step_classes = (loop,)

    def enough(self, state: SampleState) -> bool:
        return len(state.data.get("words", [])) >= 3

    def finish(self, state: SampleState) -> list[Any]:
        return [MoralGraphContext(id=self.record_id(state), context=f"When {len(state.data['words'])} words "
                                  f"({self.loop.ended_by(state)})")]


def test_a_repeated_step_in_another_chain_stops_on_its_condition() -> None:
    recipe = Recipe(kind="count_words", count=2, output={"dataset": "words"}, params={"cap": 5})
    chain = CountChain(recipe)
    assert chain.step_names() == [f"count[{i}]" for i in range(1, 6)]
    plan = make_plan(recipe, {}, 2)
    seen: list[str] = []

    def respond(req: dict[str, Any]) -> Any:
        if req["last_user"] != PROBE_PROMPT:
            seen.append(req["last_user"])
        return {"reply": "word"}

    with FakeServer(FakeServerConfig(responder=respond)) as server, Engine(EngineConfig(
            backend="openai", base_url=server.base_url, model="fake-model", progress=False)) as engine:
        records, dead, _ = execute(chain, initial_states(plan), engine)
    assert not dead and [r.context for r in records] == ["When 3 words (condition)"] * 2
    assert len(seen) == 2 * 3  # turns 4 and 5 asked nothing


def test_the_beam_executor_runs_the_turn_loop_like_the_plain_loop(tmp_path: Path) -> None:
    from valuecorpus.pipelines.generation import GenerateOptions, generate
    from valuecorpus.schemas.layout import DataHome

    loop = run("moral_graph", Responder(), {"count": 2, "params": {"max_turns": 2}})
    recipe = load_recipe("moral_graph", {"count": 2, "params": {"max_turns": 2}})
    with FakeServer(FakeServerConfig(responder=Responder())) as server:
        config = EngineConfig(backend="openai", base_url=server.base_url, model="fake-model", progress=False)
        layout = generate(recipe, DataHome(tmp_path / "home"), config,
                          GenerateOptions(executor="beam", run_id="mg-beam"))
    kept = [r for kind in layout.kinds() for r in layout.read_records(f"records/{kind}")]
    assert not layout.read_records("dead_letters") and not layout.read_records("filtered")
    beam_turns = {r.id: r.turns for r in kept if isinstance(r, Interview)}
    loop_turns = {r.id: r.turns for r in loop.records if isinstance(r, Interview)}
    assert beam_turns == loop_turns and len(beam_turns) == 2
    assert sorted(r.id for r in kept) == sorted(r.id for r in loop.kept)


# --- votes and the aggregated graph ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def votes(interviews: Any) -> Any:
    cards = [r.model_dump(mode="json") for r in interviews.records if isinstance(r, ValuesCard)]
    return run("moral_graph_votes", Responder(), {"count": 50, "params": {"dedup_threshold": 0.3}}, inputs=cards)


def test_votes_on_card_pairs(interviews: Any, votes: Any) -> None:
    votes.assert_accounted()
    assert not votes.dead
    cards = {r.card_key: r for r in interviews.records if isinstance(r, ValuesCard)}
    kinds = by_kind(votes.records)
    matches = kinds["values_card_match"]
    assert matches and {m.verdict for m in matches} == {"same", "different"}
    same = {(m.card_a, m.card_b) for m in matches if m.verdict == "same"}
    per_pair = Counter((v.from_card, v.to_card) for v in kinds["moral_graph_vote"])
    for item in votes.plan:
        pair = item["card_pair"]
        a, b = pair["a"]["card_key"], pair["b"]["card_key"]
        assert cards[a].question_key == cards[b].question_key
        # a "same" pair is merged, not voted on; every other pair: one hypothesis and three votes
        assert per_pair[(a, b)] == (0 if (a, b) in same else 4)
    for v in kinds["moral_graph_vote"]:
        assert isinstance(v, MoralGraphVote) and v.from_card in cards and v.to_card in cards
        assert (v.from_title, v.to_title) == (cards[v.from_card].title, cards[v.to_card].title)
        assert v.story and (v.relationship is None) == (v.voter is None)


def test_aggregation_matches_an_independent_count(interviews: Any, votes: Any) -> None:
    records = by_kind(interviews.kept + votes.kept)
    graph = aggregate(records, rule=None)
    out = graph.records
    cards = {c.card_key: c for c in out["values_card"]}
    canonical = {c.card_key: c for c in out["canonical_values_card"]}
    assert set(cards) == {c.card_key for c in records["values_card"]}
    for c in cards.values():
        assert isinstance(canonical[c.canonical_card_key], CanonicalValuesCard)
        assert c.card_key in canonical[c.canonical_card_key].member_cards
    for m in records["values_card_match"]:
        if isinstance(m, ValuesCardMatch) and m.verdict == "same":
            assert cards[m.card_a].canonical_card_key == cards[m.card_b].canonical_card_key
    # the test's own count, straight from the definition
    expected: dict[tuple[str, str], Counter] = {}
    for v in records["moral_graph_vote"]:
        if v.relationship is None:
            continue
        a, b = cards[v.from_card].canonical_card_key, cards[v.to_card].canonical_card_key
        if a == b:
            continue
        fwd, back = expected.setdefault((a, b), Counter()), expected.setdefault((b, a), Counter())
        fwd["impressions"] += 1
        back["impressions"] += 1
        fwd[{"upgrade": "marked_wiser", "no_upgrade": "marked_not_wiser", "not_sure": "marked_unsure"}[
            v.relationship]] += 1
        if v.relationship == "upgrade":
            back["marked_less_wise"] += 1
    edges = {(e.source_card, e.wiser_card): e for e in out["moral_graph_edge"]}
    assert set(edges) == set(expected) and edges
    for key, e in edges.items():
        assert {k: v for k, v in e.counts.model_dump().items() if v} == dict(expected[key])
        c = e.counts
        judged = c.marked_wiser + c.marked_not_wiser + c.marked_unsure + c.marked_less_wise
        assert e.wiser_likelihood == pytest.approx((c.marked_wiser - c.marked_less_wise) / judged)
        assert e.source_card in canonical and e.wiser_card in canonical
    ranks = out["value_rank"]
    assert [r.rank for r in ranks] == list(range(1, len(ranks) + 1))
    assert all(r.card in canonical for r in ranks)
    assert [r.pagerank for r in ranks] == sorted((r.pagerank for r in ranks), reverse=True)


def test_cli_interviews_votes_aggregate_publish_query(cli: Any, home: Path) -> None:
    with FakeServer(FakeServerConfig(responder=Responder())) as server:
        common = ["--executor", "loop", "--base-url", server.base_url, "--model", "fake-model", "--no-progress"]
        gen = cli("generate", "moral_graph", "--n", "6", "--run-id", "mg-int", *common)
        assert gen.code == 0, gen.stderr
        voted = cli("generate", "moral_graph_votes", "--from-run", "mg-int", "--run-id", "mg-votes", *common)
        assert voted.code == 0, voted.stderr
    agg = cli("moral-graph", "aggregate", "mg-int", "mg-votes", "--run-id", "mg", "--all-edges")
    assert agg.code == 0, agg.stderr
    assert agg.stdout.strip().splitlines()[-1] == "mg"
    pub = cli("publish", "mg", "--dataset", "moral_graph")
    assert pub.code == 0, pub.stderr
    manifest = DataHome(home).run("mg").read_manifest()
    assert set(manifest.kinds) >= {"interview", "values_card", "canonical_values_card", "moral_graph_context",
                                   "moral_graph_vote", "moral_graph_edge", "value_rank"}
    runs = home / "runs" / "mg" / "records"
    con = duckdb.connect()
    one = con.execute(f"""
        WITH cards AS (SELECT card_key FROM '{runs}/values_card.parquet'
                       UNION ALL SELECT card_key FROM '{runs}/canonical_values_card.parquet')
        SELECT (SELECT count(*) FROM '{runs}/moral_graph_edge.parquet'),
               (SELECT count(*) FROM '{runs}/moral_graph_edge.parquet' e JOIN cards c ON c.card_key = e.source_card),
               (SELECT count(*) FROM '{runs}/moral_graph_vote.parquet'),
               (SELECT count(*) FROM '{runs}/moral_graph_vote.parquet' v JOIN cards c ON c.card_key = v.to_card)
    """).fetchone()
    assert one[0] == one[1] and one[2] == one[3] and one[2] > 0
    q = cli("sql", "SELECT count(*) AS n FROM moral_graph_value_rank r JOIN moral_graph_canonical_values_card c "
            "ON c.card_key = r.card", "--format", "csv")
    assert q.code == 0, q.stderr
    assert q.stdout.strip().splitlines()[-1] == str(manifest.counts["value_rank"])


def test_local_model_small_run(tmp_path: Path) -> None:
    local = run("moral_graph", None, {"count": 1, "params": {"max_turns": 1},
                                      "model": {"backend": "local", "max_tokens": 150,
                                                "step_max_tokens": {"articulate": 360, "contexts": 120}}},
                local=True, cache_dir=tmp_path)
    local.assert_accounted(closed=True)  # every plan item: records (kept or filtered) or a dead letter; none cut
    for rec in local.records:
        assert rec.provenance.endpoint_kind == "local"
    for d in local.dead:
        assert d.reason and d.plan_item == local.plan[0]["sample_id"]
