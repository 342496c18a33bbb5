"""Moral Graph Elicitation (Meaning Alignment Institute): DFT study exports and MGE graphs.

Files are told apart by their shape, not their names:
- a list of cards: v1 (`evaluationCriteria` → policies; `instructionsShort/Detailed`, `canonicalCardId`,
  `chatId`, `quality`, timestamps kept) or v2 (`description`, `policies`, `contexts`, `context`, `questionId`)
  → ValuesCard
- a list of votes (`userId`, `relationship`, …) → MoralGraphVote; `userId` is replaced by a pseudonym
- a list of hypotheses (`story` without `relationship`) → MoralGraphVote with relationship None
- a list of cases (`question`, `seedMessage`) → MoralGraphQuestion; a list of contexts (`id` only) and of
  context↔case links (`contextId`, `caseId`) → MoralGraphContext
- a graph object with `values` (cards), `edges` (aggregated: counts + summary → AggregatedEdge), `upgrades`
  (→ votes with relationship "upgrade") and `questions` (→ MoralGraphQuestion).

Card identity. Each card's key names its collection (`schemas.records.moral_graph.card_key`): a v1 card list
with participant fields (`canonicalCardId`, `chatId`, `quality`) is the `participant` collection, any other v1
card list and the `values` of a v1 graph export are `canonical` (the DFT graph and its votes are cast on
canonical cards), v2 cards (an MGE graph) are `example`. Votes, hypotheses and aggregated edges of the DFT
export reference canonical cards; upgrades of an MGE graph reference that graph's cards. Record ids hash the
source's own ids (card collection and id, voter and card pair and context, ...), never the file name or list
position: renaming or moving a file keeps every id, and the same card in two files (a graph export and the
card table) imports once when both say the same, and is an error when they differ.

Aggregated edges: `wiserLikelihood` and `entropy` are recomputed from the counts
(`schemas.moral_graph_aggregation`); an export whose published summary disagrees is refused, naming the edge.

Voter pseudonyms are an unsalted `stable_id` hash of the source user id: the same user gets the same pseudonym
in every file, and raw ids never reach a record. The DFT ids are small public integers, so this keeps them out
of published data; it does not make them unguessable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valuecorpus.schemas.importers.base import (
    ImportContext,
    ImportResult,
    expect_list,
    import_json_files,
    obj_keys,
)
from valuecorpus.schemas.moral_graph_aggregation import summary as edge_summary
from valuecorpus.schemas.records import (
    AggregatedEdge,
    CanonicalValuesCard,
    MoralGraphContext,
    MoralGraphQuestion,
    MoralGraphVote,
    Record,
    ValuesCard,
    stable_id,
)
from valuecorpus.schemas.records.moral_graph import EdgeCounts, card_key

PARTICIPANT_KEYS = ("canonicalCardId", "chatId", "quality")
SUMMARY_TOLERANCE = 1e-9

SOURCE_DATASET = "moral_graph"

CARD_V1 = ("id", "title", "instructionsShort", "instructionsDetailed", "evaluationCriteria")
CARD_V1_OPTIONAL = ("createdAt", "updatedAt", "canonicalCardId", "chatId", "quality")
CARD_V2 = ("id", "title", "description", "policies")
CARD_V2_OPTIONAL = ("contexts", "context", "questionId", "createdAt", "updatedAt")
VOTE = ("userId", "fromId", "toId", "contextId", "relationship")
VOTE_OPTIONAL = ("story", "comment", "runId", "createdAt", "updatedAt")
HYPOTHESIS = ("fromId", "toId", "story", "contextId")
HYPOTHESIS_OPTIONAL = ("runId", "createdAt", "updatedAt")
UPGRADE = ("fromId", "toId")
UPGRADE_OPTIONAL = ("context", "story")
EDGE = ("sourceValueId", "wiserValueId", "counts", "summary")
EDGE_OPTIONAL = ("contexts",)
COUNTS = ("markedWiser", "markedNotWiser", "markedLessWise", "markedUnsure", "impressions")
SUMMARY = ("wiserLikelihood", "entropy")
QUESTION = ("id", "title", "question")
QUESTION_OPTIONAL = ("seedMessage",)
CONTEXT_LINK = ("contextId", "caseId")
CONTEXT_LINK_OPTIONAL = ("createdAt", "updatedAt")
GRAPH_SECTIONS = ("values", "edges", "upgrades", "questions")


def voter_pseudonym(user_id: Any) -> str:
    return "voter-" + stable_id(SOURCE_DATASET, "user", user_id)[:16]


def import_path(path: Path) -> ImportResult:
    return import_json_files(path, SOURCE_DATASET, read_file, merge_identical=True)


class _Keys:
    """Natural ids within one file: a key seen again gets `#2`, `#3` (only repeats depend on order)."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, ctx: ImportContext, *parts: Any) -> str:
        base = ctx.natural_id(*parts)
        n = self.seen[base] = self.seen.get(base, 0) + 1
        return base if n == 1 else ctx.natural_id(*parts, f"#{n}")


def read_file(ctx: ImportContext, data: Any) -> list[Record]:
    if isinstance(data, dict):
        obj_keys(ctx, data, "top level", (), optional=GRAPH_SECTIONS)
        if not data:
            raise ctx.fail("top level", f"a graph object needs one of the keys {', '.join(GRAPH_SECTIONS)}")
        out: list[Record] = []
        graph = _graph_collection(data)
        keys = _Keys()
        for section in GRAPH_SECTIONS:
            if section in data:
                rows = expect_list(ctx, data[section], f"key '{section}'")
                reader = {"values": card, "edges": edge, "upgrades": upgrade, "questions": question}[section]
                out.extend(reader(ctx, row, f"{section}[{i}]", graph, keys) for i, row in enumerate(rows))
        return out
    rows = expect_list(ctx, data, "top level")
    if not rows:
        return []
    reader = list_reader(ctx, rows[0])
    collection = "canonical"
    if reader is card:
        collection = _list_collection(rows)
    elif reader is question:
        collection = "case"
    keys = _Keys()
    return [reader(ctx, row, f"[{i}]", collection, keys) for i, row in enumerate(rows)]


def _graph_collection(data: dict) -> str:
    """A graph of v2 cards is an MGE (example) graph; a v1 graph export is over canonical cards."""
    values = data.get("values")
    if isinstance(values, list) and values and isinstance(values[0], dict) and "policies" in values[0]:
        return "example"
    return "canonical"


def _list_collection(rows: list) -> str:
    if any(isinstance(r, dict) and "policies" in r for r in rows[:1]):
        return "example"
    if any(isinstance(r, dict) and any(k in r for k in PARTICIPANT_KEYS) for r in rows):
        return "participant"
    return "canonical"


def list_reader(ctx: ImportContext, first: Any) -> Any:
    """Which kind of list this is, from the keys of its first item (every item is then checked in full)."""
    keys = set(first) if isinstance(first, dict) else set()
    if "relationship" in keys or "userId" in keys:
        return vote
    if "evaluationCriteria" in keys or "policies" in keys:
        return card
    if "story" in keys and "fromId" in keys:
        return hypothesis
    if "caseId" in keys:
        return context_link
    if "question" in keys:
        return question
    if keys == {"id"}:
        return context
    raise ctx.fail(
        "[0]", "not a moral-graph list (expected values cards, votes, hypotheses, cases, contexts or "
        f"context links; found keys {', '.join(sorted(keys)) or 'none'})",
    )


def _ref(ctx: ImportContext, where: str, value: Any) -> str:
    """A card, user or case id as text (ints and strings; nothing else is an id)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ctx.fail(where, f"expected an id (integer or string), found {type(value).__name__}")
    return str(value)


def _opt_ref(ctx: ImportContext, where: str, value: Any) -> str | None:
    return None if value is None else _ref(ctx, where, value)


def _card(ctx: ImportContext, where: str, value: Any, collection: str) -> str:
    return card_key(collection, _ref(ctx, where, value))


def _ends(ctx: ImportContext, row: dict, where: str, collection: str) -> dict[str, str]:
    return {
        "from_card": _card(ctx, f"{where}.fromId", row["fromId"], collection),
        "to_card": _card(ctx, f"{where}.toId", row["toId"], collection),
    }


def _question_key(collection: str, value: str) -> str:
    return f"{collection}:{value}"


def card(ctx: ImportContext, row: Any, where: str, collection: str, keys: _Keys) -> ValuesCard:
    is_v1 = isinstance(row, dict) and "evaluationCriteria" in row
    if is_v1:
        obj_keys(ctx, row, where, CARD_V1, CARD_V1_OPTIONAL)
    else:
        obj_keys(ctx, row, where, CARD_V2, CARD_V2_OPTIONAL)
    source_id = _ref(ctx, f"{where}.id", row["id"])
    key = card_key(collection, source_id)
    model = CanonicalValuesCard if collection == "canonical" else ValuesCard
    common = {"id": ctx.natural_id("card", key), "provenance": ctx.provenance(where), "card_key": key,
              "collection": collection, "source_id": source_id, "title": row["title"],
              "created_at": row.get("createdAt"), "updated_at": row.get("updatedAt")}
    if is_v1:
        canonical = _opt_ref(ctx, f"{where}.canonicalCardId", row.get("canonicalCardId"))
        return ctx.build(
            model, where, **common,
            policies=row["evaluationCriteria"], instructions_short=row["instructionsShort"],
            instructions_detailed=row["instructionsDetailed"],
            canonical_card_key=None if canonical is None else card_key("canonical", canonical),
            chat_id=row.get("chatId"), quality=row.get("quality"),
        )
    question_id = _opt_ref(ctx, f"{where}.questionId", row.get("questionId"))
    return ctx.build(
        model, where, **common,
        description=row["description"], policies=row["policies"], contexts=row.get("contexts", []),
        context=row.get("context"),
        question_key=None if question_id is None else _question_key(collection, question_id),
    )


def vote(ctx: ImportContext, row: Any, where: str, collection: str, keys: _Keys) -> MoralGraphVote:
    obj_keys(ctx, row, where, VOTE, VOTE_OPTIONAL)
    ends = _ends(ctx, row, where, collection)
    user = _ref(ctx, f"{where}.userId", row["userId"])
    return ctx.build(
        MoralGraphVote, where,
        id=keys(ctx, "vote", user, ends["from_card"], ends["to_card"], row["contextId"]),
        provenance=ctx.provenance(where), **ends,
        context=row["contextId"], relationship=row["relationship"], story=row.get("story"),
        comment=row.get("comment"), voter=voter_pseudonym(user),
        graph_run=row.get("runId"), created_at=row.get("createdAt"), updated_at=row.get("updatedAt"),
    )


def hypothesis(ctx: ImportContext, row: Any, where: str, collection: str, keys: _Keys) -> MoralGraphVote:
    obj_keys(ctx, row, where, HYPOTHESIS, HYPOTHESIS_OPTIONAL)
    ends = _ends(ctx, row, where, collection)
    return ctx.build(
        MoralGraphVote, where,
        id=keys(ctx, "hypothesis", ends["from_card"], ends["to_card"], row["contextId"], row.get("runId")),
        provenance=ctx.provenance(where), **ends,
        context=row["contextId"], relationship=None, story=row["story"], graph_run=row.get("runId"),
        created_at=row.get("createdAt"), updated_at=row.get("updatedAt"),
    )


def upgrade(ctx: ImportContext, row: Any, where: str, collection: str, keys: _Keys) -> MoralGraphVote:
    obj_keys(ctx, row, where, UPGRADE, UPGRADE_OPTIONAL)
    ends = _ends(ctx, row, where, collection)
    return ctx.build(
        MoralGraphVote, where, id=keys(ctx, "upgrade", ends["from_card"], ends["to_card"], row.get("context")),
        provenance=ctx.provenance(where), **ends,
        context=row.get("context"), relationship="upgrade", story=row.get("story"),
    )


def edge(ctx: ImportContext, row: Any, where: str, collection: str, keys: _Keys) -> AggregatedEdge:
    obj_keys(ctx, row, where, EDGE, EDGE_OPTIONAL)
    counts = obj_keys(ctx, row["counts"], f"{where}.counts", COUNTS)
    published = obj_keys(ctx, row["summary"], f"{where}.summary", SUMMARY)
    edge_counts = ctx.build(
        EdgeCounts, f"{where}.counts", marked_wiser=counts["markedWiser"],
        marked_not_wiser=counts["markedNotWiser"], marked_less_wise=counts["markedLessWise"],
        marked_unsure=counts["markedUnsure"], impressions=counts["impressions"],
    )
    # computed, never copied: the export's own summary must agree with its counts
    wl, h = edge_summary(edge_counts.model_dump())
    for name, mine in (("wiserLikelihood", wl), ("entropy", h)):
        theirs = published[name]
        if isinstance(theirs, bool) or not isinstance(theirs, int | float) or abs(theirs - mine) > SUMMARY_TOLERANCE:
            raise ctx.fail(f"{where}.summary.{name}", f"the export says {theirs!r}, its counts give {mine!r}")
    source = _card(ctx, f"{where}.sourceValueId", row["sourceValueId"], collection)
    wiser = _card(ctx, f"{where}.wiserValueId", row["wiserValueId"], collection)
    return ctx.build(
        AggregatedEdge, where, id=keys(ctx, "edge", source, wiser), provenance=ctx.provenance(where),
        source_card=source, wiser_card=wiser, contexts=row.get("contexts", []), counts=edge_counts,
        wiser_likelihood=wl, entropy=h,
    )


def question(ctx: ImportContext, row: Any, where: str, collection: str, keys: _Keys) -> MoralGraphQuestion:
    obj_keys(ctx, row, where, QUESTION, QUESTION_OPTIONAL)
    # a graph's questions belong to that graph; DFT cases are their own collection ("case:weapons")
    collection = "example" if collection == "example" else "case"
    key = _question_key(collection, _ref(ctx, f"{where}.id", row["id"]))
    return ctx.build(
        MoralGraphQuestion, where, id=keys(ctx, "question", key), provenance=ctx.provenance(where),
        question_key=key, title=row["title"], question=row["question"], seed_message=row.get("seedMessage"),
    )


def context(ctx: ImportContext, row: Any, where: str, collection: str, keys: _Keys) -> MoralGraphContext:
    obj_keys(ctx, row, where, ("id",))
    return ctx.build(
        MoralGraphContext, where, id=keys(ctx, "context", row["id"]), provenance=ctx.provenance(where),
        context=row["id"],
    )


def context_link(ctx: ImportContext, row: Any, where: str, collection: str, keys: _Keys) -> MoralGraphContext:
    obj_keys(ctx, row, where, CONTEXT_LINK, CONTEXT_LINK_OPTIONAL)
    case = _question_key("case", _ref(ctx, f"{where}.caseId", row["caseId"]))
    return ctx.build(
        MoralGraphContext, where, id=keys(ctx, "context_link", row["contextId"], case),
        provenance=ctx.provenance(where), context=row["contextId"], question_key=case,
        created_at=row.get("createdAt"), updated_at=row.get("updatedAt"),
    )
