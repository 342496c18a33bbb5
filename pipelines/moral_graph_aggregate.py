"""The moral graph from generated or imported records: canonical cards, aggregated edges and value ranks.

`aggregate(records)` takes the records of one or more runs (interviews, values cards, canonical cards,
deduplication verdicts, votes, contexts, questions) and returns them with:

- **canonical cards**: cards merged by "same" verdicts (union-find over `values_card_match` records; a card
  with no match is its own group); each group becomes a `canonical_values_card` (collection `canonical`, the
  key hashed from the group's smallest member key, content from that member, `member_cards` listing the group)
  and every member's `canonical_card_key` points at it. Imported canonical cards, and cards that already name
  their canonical card (DFT participant cards), are kept as they are.
- **edges**: each vote's ends mapped to their canonical cards, then counted per (from, to) pair and summarised
  by `schemas.moral_graph_aggregation` (the same math the importer checks exports with); the published rule
  keeps an edge when markedWiser ≥ 2, wiserLikelihood ≥ 0.33 and entropy ≤ 1.69 (`EdgeRule`, or every edge).
- **value ranks**: PageRank of the kept edges weighted by wiserLikelihood.

Nothing is dropped silently: votes whose ends merged into one canonical card, and votes naming a card that is
not among the records, are counted in the report (the run manifest's `aggregation`). Imported `moral_graph_edge`
records (an export's aggregate) are replaced by the computed ones, and counted.

Grouping is by key (dicts keyed by card pair); the whole graph is needed at once only for PageRank, which is
over canonical cards (a few thousand at most for a study of thousands of participants).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import DataHome, RunLayout, RunManifest
from valuecorpus.schemas.moral_graph_aggregation import EdgeRule, pagerank, summary, tally
from valuecorpus.schemas.records import (
    AggregatedEdge,
    CanonicalValuesCard,
    Provenance,
    Record,
    ValueRank,
    ValuesCard,
    record_type,
    stable_id,
)
from valuecorpus.schemas.records.moral_graph import EdgeCounts, card_key

# The record kinds a moral graph is made of; `aggregate` reads these and writes them back with its own.
GRAPH_KINDS = ("interview", "values_card", "canonical_values_card", "values_card_match", "moral_graph_vote",
               "moral_graph_context", "moral_graph_question", "moral_graph_edge", "value_rank")


@dataclass
class GraphResult:
    records: dict[str, list[Record]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


class _Groups:
    """Union-find over card keys; a group's name is its smallest member."""

    def __init__(self, keys: list[str]) -> None:
        self.parent = {k: k for k in keys}

    def find(self, k: str) -> str:
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _provenance() -> Provenance:
    return Provenance(origin="generate", recipe="moral_graph_aggregate")


def canonicalise(cards: list[ValuesCard], canonical: list[CanonicalValuesCard], matches: list[Any]
                 ) -> tuple[list[ValuesCard], list[CanonicalValuesCard], dict[str, int]]:
    """Cards with their canonical card set, the canonical cards (existing + new), and counts."""
    todo = sorted((c for c in cards if c.canonical_card_key is None), key=lambda c: c.card_key)
    groups = _Groups([c.card_key for c in todo])
    merged = 0
    for m in matches:
        if m.verdict == "same" and m.card_a in groups.parent and m.card_b in groups.parent:
            if groups.find(m.card_a) != groups.find(m.card_b):
                merged += 1
            groups.union(m.card_a, m.card_b)
    members: dict[str, list[ValuesCard]] = {}
    for c in todo:
        members.setdefault(groups.find(c.card_key), []).append(c)
    out_cards = [c for c in cards if c.canonical_card_key is not None]
    new_canonical = []
    for root, group in sorted(members.items()):
        rep = group[0]  # the smallest key: stable however the cards arrive
        ckey = card_key("canonical", stable_id("moral_graph", "canonical", root)[:16])
        contexts = list(dict.fromkeys(ctx for c in group for ctx in c.contexts))
        new_canonical.append(CanonicalValuesCard(
            id=stable_id("moral_graph", "card", ckey), provenance=_provenance(), card_key=ckey,
            collection="canonical", title=rep.title, description=rep.description, policies=list(rep.policies),
            contexts=contexts, instructions_short=rep.instructions_short,
            instructions_detailed=rep.instructions_detailed, question_key=rep.question_key,
            member_cards=[c.card_key for c in group],
        ))
        out_cards.extend(c.model_copy(update={"canonical_card_key": ckey}) for c in group)
    counts = {"canonical_cards_new": len(new_canonical), "canonical_cards_kept": len(canonical),
              "cards_merged": merged}
    return sorted(out_cards, key=lambda c: c.id), [*canonical, *new_canonical], counts


def aggregate(records: dict[str, list[Record]], rule: EdgeRule | None = EdgeRule()) -> GraphResult:
    """The moral graph of these records (see the module docstring). `rule=None` keeps every edge."""
    cards: list[ValuesCard] = list(records.get("values_card", []))
    canonical: list[CanonicalValuesCard] = list(records.get("canonical_values_card", []))
    cards, canonical, report = canonicalise(cards, canonical, records.get("values_card_match", []))
    to_canonical = {c.card_key: c.canonical_card_key for c in cards}
    to_canonical.update({c.card_key: c.card_key for c in canonical})
    titles = {c.card_key: c.title for c in canonical}

    mapped, skipped = [], Counter()
    for v in records.get("moral_graph_vote", []):
        if v.relationship is None:
            skipped["hypotheses"] += 1
            continue
        a, b = to_canonical.get(v.from_card), to_canonical.get(v.to_card)
        if a is None or b is None:
            skipped["votes_unresolved_card"] += 1
        elif a == b:
            skipped["votes_same_canonical_card"] += 1
        else:
            mapped.append((a, b, v.relationship, v.context))
    edges = []
    for (a, b), t in sorted(tally(mapped).items()):
        if rule is not None and not rule.keeps(t.counts):
            skipped["edges_below_rule"] += 1
            continue
        wl, h = summary(t.counts)
        edges.append(AggregatedEdge(
            id=stable_id("moral_graph", "edge", a, b), provenance=_provenance(), source_card=a, wiser_card=b,
            contexts=t.contexts, counts=EdgeCounts(**t.counts), wiser_likelihood=wl, entropy=h,
        ))
    ranks = pagerank((e.source_card, e.wiser_card, e.wiser_likelihood) for e in edges)
    degree_in = Counter(e.wiser_card for e in edges)
    degree_out = Counter(e.source_card for e in edges)
    ordered = sorted(ranks.items(), key=lambda kv: (-kv[1], kv[0]))
    value_ranks = [ValueRank(id=stable_id("moral_graph", "rank", key), provenance=_provenance(), card=key,
                             title=titles.get(key), rank=i, pagerank=score, edges_in=degree_in[key],
                             edges_out=degree_out[key])
                   for i, (key, score) in enumerate(ordered, 1)]
    out = {kind: list(rows) for kind, rows in records.items() if kind not in ("moral_graph_edge", "value_rank")}
    out.update(values_card=cards, canonical_values_card=canonical, moral_graph_edge=edges, value_rank=value_ranks)
    report.update(votes=len(records.get("moral_graph_vote", [])), votes_counted=len(mapped), edges=len(edges),
                  values_ranked=len(value_ranks), imported_edges_replaced=len(records.get("moral_graph_edge", [])),
                  **dict(sorted(skipped.items())))
    if rule is not None:
        report["edge_rule"] = {"min_wiser": rule.min_wiser, "min_likelihood": rule.min_likelihood,
                               "max_entropy": rule.max_entropy}
    return GraphResult({k: v for k, v in out.items() if v or k in GRAPH_KINDS}, report)


def read_runs(home: DataHome, run_refs: list[str]) -> tuple[dict[str, list[Record]], list[str]]:
    """The moral-graph records of these runs; the same record id in two runs is an error."""

    records: dict[str, list[Record]] = {}
    seen: dict[str, str] = {}
    run_ids = []
    for ref in run_refs:
        layout = home.resolve_run(ref)
        run_ids.append(layout.run_id)
        for kind in GRAPH_KINDS:
            if not layout.has_table(f"records/{kind}"):
                continue
            for rec in layout.read_records(f"records/{kind}"):
                if rec.id in seen:
                    raise ValueCorpusError(f"record {rec.id} ({kind}) is in run '{seen[rec.id]}' and in run "
                                           f"'{layout.run_id}': aggregate each run once")
                seen[rec.id] = layout.run_id
                records.setdefault(kind, []).append(rec)
    if not records.get("moral_graph_vote") and not records.get("values_card"):
        raise ValueCorpusError(f"run(s) {', '.join(run_ids)} hold no values cards or votes to aggregate")
    return records, run_ids


def stage_graph(home: DataHome, result: GraphResult, run_id: str, parents: list[str],
                toolkit_version: str = "") -> RunLayout:
    """Stage the graph as a run (every table, the manifest last; renamed into place)."""
    from valuecorpus.schemas.arrow import write_records

    home.clean_stale_partials()
    with home.staging(run_id) as layout:
        counts = {}
        for kind, rows in sorted(result.records.items()):
            for r in rows:
                r.provenance.run_id = r.provenance.run_id or run_id
            counts[kind] = write_records(layout.records(kind), sorted(rows, key=lambda r: r.id), record_type(kind))
        layout.write_manifest(RunManifest(
            run_id=run_id, origin="generate", kinds=sorted(counts), counts=counts, parent_runs=parents,
            toolkit_version=toolkit_version, aggregation=result.report,
        ))
    return home.run(run_id)
