"""Moral-graph aggregation math against the real DFT graph, and card identity across collections: on the real
samples and on synthetic files shaped like the full DFT data, whose participant and canonical ids collide."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from valuecorpus.schemas.errors import InputFileError, ValueCorpusError
from valuecorpus.schemas.importers import import_path
from valuecorpus.schemas.importers.staging import stage_import
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.moral_graph_aggregation import EdgeRule, pagerank, summary, tally
from valuecorpus.schemas.records import reference_fields

COUNT_NAMES = {"markedWiser": "marked_wiser", "markedNotWiser": "marked_not_wiser",
               "markedLessWise": "marked_less_wise", "markedUnsure": "marked_unsure", "impressions": "impressions"}


def _graph(reference_data: Path) -> dict[str, Any]:
    return json.loads((reference_data / "moral_graph" / "dft_moral_graph_all_participants.json").read_text("utf-8"))


# --- aggregation math --------------------------------------------------------------------------------------

def test_every_published_edge_recomputed_from_its_counts(reference_data: Path) -> None:
    graph = _graph(reference_data)
    assert len(graph["edges"]) == 69
    for edge in graph["edges"]:
        counts = {COUNT_NAMES[k]: v for k, v in edge["counts"].items()}
        wl, h = summary(counts)
        assert wl == pytest.approx(edge["summary"]["wiserLikelihood"], abs=1e-12)
        assert h == pytest.approx(edge["summary"]["entropy"], abs=1e-12)
        assert EdgeRule().keeps(counts)  # the export is the published graph: every edge passes its rule


def test_pagerank_matches_a_direct_solve_on_the_real_graph(reference_data: Path) -> None:
    """The iteration's fixed point r = (1-d)/n + d·M·r, solved directly (no dangling teleport, as published)."""
    graph = _graph(reference_data)
    edges = [(str(e["sourceValueId"]), str(e["wiserValueId"]), e["summary"]["wiserLikelihood"])
             for e in graph["edges"]]
    ranks = pagerank(edges, iterations=200)
    nodes = sorted({n for a, b, _ in edges for n in (a, b)})
    index = {n: i for i, n in enumerate(nodes)}
    out = {n: sum(w for a, _, w in edges if a == n) for n in nodes}
    m = np.zeros((len(nodes), len(nodes)))
    for a, b, w in edges:
        m[index[b], index[a]] += w / out[a]
    d = 0.85
    solved = np.linalg.solve(np.eye(len(nodes)) - d * m, np.full(len(nodes), (1 - d) / len(nodes)))
    for n in nodes:
        assert ranks[n] == pytest.approx(solved[index[n]], rel=1e-9)
    assert len(ranks) == 60


def test_tally_counts_both_directions() -> None:
    votes = [("a", "b", "upgrade", "When x"), ("a", "b", "upgrade", "When y"), ("a", "b", "not_sure", "When x"),
             ("a", "b", "no_upgrade", None), ("b", "a", "upgrade", "When x"), ("a", "b", None, "When x")]
    edges = tally(votes)
    ab, ba = edges[("a", "b")].counts, edges[("b", "a")].counts
    assert ab == {"marked_wiser": 2, "marked_not_wiser": 1, "marked_less_wise": 1, "marked_unsure": 1,
                  "impressions": 5}
    assert ba == {"marked_wiser": 1, "marked_not_wiser": 0, "marked_less_wise": 2, "marked_unsure": 0,
                  "impressions": 5}
    assert edges[("a", "b")].contexts == ["When x", "When y"]
    assert summary(ab)[0] == pytest.approx((2 - 1) / 5)
    probs = [2 / 10, 1 / 10, 1 / 10, 1 / 10, 5 / 10]
    assert summary(ab)[1] == pytest.approx(-sum(p * math.log2(p) for p in probs))
    with pytest.raises(ValueError, match="to itself"):
        tally([("a", "a", "upgrade", None)])


# --- card identity: real samples ---------------------------------------------------------------------------

def _staged_counts(home: Path, result: Any, run_id: str) -> duckdb.DuckDBPyConnection:
    layout = stage_import(result, DataHome(home), "moral_graph", run_id=run_id)
    con = duckdb.connect()
    for kind in result.records:
        con.execute(f"CREATE VIEW {kind} AS SELECT * FROM read_parquet('{layout.records(kind)}')")
    con.execute("CREATE VIEW cards AS SELECT card_key FROM values_card UNION ALL "
                "SELECT card_key FROM canonical_values_card")
    return con


def _assert_each_reference_hits_one_card(con: duckdb.DuckDBPyConnection, kinds: set[str]) -> None:
    assert con.execute("SELECT count(*) - count(DISTINCT card_key) FROM cards").fetchone() == (0,)
    for kind, field, targets in reference_fields():
        if kind not in kinds or not any(t.endswith(".card_key") for t in targets) or "." in field:
            continue
        if any(t.split(".")[0] not in kinds for t in targets):
            continue
        rows, joined = con.execute(
            f"SELECT (SELECT count(*) FROM {kind} WHERE {field} IS NOT NULL), "
            f"(SELECT count(*) FROM {kind} r JOIN cards c ON c.card_key = r.{field})").fetchone()
        assert rows == joined, f"{kind}.{field}: {rows} references, {joined} joined rows"


def test_real_samples_every_vote_and_edge_references_one_card(reference_data: Path, tmp_path: Path) -> None:
    result = import_path("moral_graph", reference_data / "moral_graph")
    con = _staged_counts(tmp_path / "home", result, "mg")
    _assert_each_reference_hits_one_card(con, set(result.records))
    collections = dict(con.execute("SELECT collection, count(*) FROM values_card GROUP BY 1").fetchall())
    assert collections == {"participant": 200, "example": 6}
    # the raw ids of participant and canonical cards collide; their keys do not
    raw = con.execute("SELECT count(*) FROM values_card p JOIN canonical_values_card c "
                      "ON p.source_id = c.source_id").fetchone()[0]
    assert raw > 0
    votes, joined = con.execute("SELECT (SELECT count(*) FROM moral_graph_vote), (SELECT count(*) FROM "
                                "moral_graph_vote v JOIN cards c ON c.card_key = v.from_card)").fetchone()
    assert votes == joined == 347


def test_ids_do_not_depend_on_file_names_or_places(reference_data: Path, tmp_path: Path) -> None:
    first = import_path("moral_graph", reference_data / "moral_graph")
    moved = tmp_path / "elsewhere" / "deeper"
    moved.mkdir(parents=True)
    for i, f in enumerate(sorted((reference_data / "moral_graph").glob("*.json"))):
        shutil.copy(f, moved / f"renamed_{i:02d}.json")
    second = import_path("moral_graph", tmp_path / "elsewhere")

    def ids(result: Any) -> dict[str, set[str]]:
        return {k: {r.id for r in rows} for k, rows in result.records.items()}
    assert ids(first) == ids(second)


def test_the_same_card_with_other_content_is_an_error(reference_data: Path, tmp_path: Path) -> None:
    src = json.loads((reference_data / "moral_graph" / "dft_canonicalValuesCard.json").read_text("utf-8"))
    (tmp_path / "a.json").write_text(json.dumps(src[:3]), "utf-8")
    changed = [dict(src[1], title="Another title")]
    (tmp_path / "b.json").write_text(json.dumps(changed), "utf-8")
    with pytest.raises(ValueCorpusError, match="different content"):
        import_path("moral_graph", tmp_path)


def test_an_export_whose_summary_disagrees_with_its_counts_is_refused(reference_data: Path, tmp_path: Path) -> None:
    graph = _graph(reference_data)
    graph["edges"][3]["summary"]["wiserLikelihood"] += 0.01
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph), "utf-8")
    with pytest.raises(InputFileError, match=r"edges\[3\]\.summary\.wiserLikelihood: the export says"):
        import_path("moral_graph", path)


# --- card identity: synthetic files shaped like the full DFT data ------------------------------------------

def _card(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": i, "title": f"Card {i}", "instructionsShort": f"Short {i}", "instructionsDetailed": f"Long {i}",
            "evaluationCriteria": [f"MOMENTS of kind {i}", f"CHOICES about {i}"],
            "createdAt": "2023-09-19T11:54:18.065Z", "updatedAt": "2023-09-19T11:54:18.065Z", **extra}


def test_full_shaped_data_with_colliding_ids(tmp_path: Path) -> None:
    """630 participant cards and 115 canonical cards numbered independently (about a hundred shared raw ids),
    a graph export repeating 60 canonical cards, and 1,592 votes on canonical cards: every card keeps its own
    key and each vote end joins exactly one card."""
    rng = random.Random(13)
    canonical_ids = sorted(rng.sample(range(150, 420), 115))
    participant_ids = sorted(rng.sample(range(1, 701), 630))
    collisions = set(participant_ids) & set(canonical_ids)
    assert len(collisions) > 90  # as in the full data: one key space would give many keys two cards
    participants = [_card(i, canonicalCardId=rng.choice(canonical_ids), chatId=f"chat-{i}", quality="ok")
                    for i in participant_ids]
    canonicals = [_card(i) for i in canonical_ids]
    votes = []
    for u in range(1592):
        a, b = rng.sample(canonical_ids, 2)
        votes.append({"userId": u % 500, "fromId": a, "toId": b, "story": "OLD",
                      "contextId": f"When case {u % 21}", "runId": "OLD",
                      "relationship": rng.choice(["upgrade", "no_upgrade", "not_sure"]), "comment": None,
                      "createdAt": "2023-09-19T11:54:18.065Z", "updatedAt": "2023-09-19T11:54:18.065Z"})
    data = tmp_path / "dft-data"
    data.mkdir()
    (data / "valuesCard.json").write_text(json.dumps(participants), "utf-8")
    (data / "canonicalValuesCard.json").write_text(json.dumps(canonicals), "utf-8")
    (data / "edge.json").write_text(json.dumps(votes), "utf-8")
    # the graph export holds the same canonical cards again: a third file naming the colliding ids
    (data / "moral-graph-all-participants.json").write_text(json.dumps({"values": canonicals[:60]}), "utf-8")
    result = import_path("moral_graph", data)
    assert result.counts() == {"canonical_values_card": 115, "moral_graph_vote": 1592, "values_card": 630}
    con = _staged_counts(tmp_path / "home", result, "full")
    _assert_each_reference_hits_one_card(con, set(result.records))
    for end in ("from_card", "to_card"):
        n = con.execute(f"SELECT count(*) FROM moral_graph_vote v JOIN cards c ON c.card_key = v.{end}").fetchone()
        assert n == (1592,)
    linked = con.execute("SELECT count(*) FROM values_card p JOIN canonical_values_card c "
                         "ON c.card_key = p.canonical_card_key").fetchone()
    assert linked == (630,)
