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
from valuecorpus.schemas.records import (
    AggregatedEdge,
    MoralGraphContext,
    MoralGraphQuestion,
    MoralGraphVote,
    Record,
    ValuesCard,
    stable_id,
)
from valuecorpus.schemas.records.moral_graph import EdgeCounts

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
    return import_json_files(path, SOURCE_DATASET, read_file)


def read_file(ctx: ImportContext, data: Any) -> list[Record]:
    if isinstance(data, dict):
        obj_keys(ctx, data, "top level", (), optional=GRAPH_SECTIONS)
        if not data:
            raise ctx.fail("top level", f"a graph object needs one of the keys {', '.join(GRAPH_SECTIONS)}")
        out: list[Record] = []
        for section in GRAPH_SECTIONS:
            if section in data:
                rows = expect_list(ctx, data[section], f"key '{section}'")
                reader = {"values": card, "edges": edge, "upgrades": upgrade, "questions": question}[section]
                out.extend(reader(ctx, row, f"{section}[{i}]") for i, row in enumerate(rows))
        return out
    rows = expect_list(ctx, data, "top level")
    if not rows:
        return []
    reader = list_reader(ctx, rows[0])
    return [reader(ctx, row, f"[{i}]") for i, row in enumerate(rows)]


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


def _ends(ctx: ImportContext, row: dict, where: str) -> dict[str, str]:
    return {
        "from_card": _ref(ctx, f"{where}.fromId", row["fromId"]),
        "to_card": _ref(ctx, f"{where}.toId", row["toId"]),
    }


def card(ctx: ImportContext, row: Any, where: str) -> ValuesCard:
    common = {"id": ctx.record_id(where), "provenance": ctx.provenance(where)}
    if isinstance(row, dict) and "evaluationCriteria" in row:
        obj_keys(ctx, row, where, CARD_V1, CARD_V1_OPTIONAL)
        return ctx.build(
            ValuesCard, where, **common, card_key=_ref(ctx, f"{where}.id", row["id"]), title=row["title"],
            policies=row["evaluationCriteria"], instructions_short=row["instructionsShort"],
            instructions_detailed=row["instructionsDetailed"],
            canonical_card_key=_opt_ref(ctx, f"{where}.canonicalCardId", row.get("canonicalCardId")),
            chat_id=row.get("chatId"), quality=row.get("quality"),
            created_at=row.get("createdAt"), updated_at=row.get("updatedAt"),
        )
    obj_keys(ctx, row, where, CARD_V2, CARD_V2_OPTIONAL)
    return ctx.build(
        ValuesCard, where, **common, card_key=_ref(ctx, f"{where}.id", row["id"]), title=row["title"],
        description=row["description"], policies=row["policies"], contexts=row.get("contexts", []),
        context=row.get("context"), question_key=_opt_ref(ctx, f"{where}.questionId", row.get("questionId")),
        created_at=row.get("createdAt"), updated_at=row.get("updatedAt"),
    )


def vote(ctx: ImportContext, row: Any, where: str) -> MoralGraphVote:
    obj_keys(ctx, row, where, VOTE, VOTE_OPTIONAL)
    return ctx.build(
        MoralGraphVote, where, id=ctx.record_id(where), provenance=ctx.provenance(where),
        **_ends(ctx, row, where),
        context=row["contextId"], relationship=row["relationship"], story=row.get("story"),
        comment=row.get("comment"), voter=voter_pseudonym(_ref(ctx, f"{where}.userId", row["userId"])),
        graph_run=row.get("runId"), created_at=row.get("createdAt"), updated_at=row.get("updatedAt"),
    )


def hypothesis(ctx: ImportContext, row: Any, where: str) -> MoralGraphVote:
    obj_keys(ctx, row, where, HYPOTHESIS, HYPOTHESIS_OPTIONAL)
    return ctx.build(
        MoralGraphVote, where, id=ctx.record_id(where), provenance=ctx.provenance(where),
        **_ends(ctx, row, where),
        context=row["contextId"], relationship=None, story=row["story"], graph_run=row.get("runId"),
        created_at=row.get("createdAt"), updated_at=row.get("updatedAt"),
    )


def upgrade(ctx: ImportContext, row: Any, where: str) -> MoralGraphVote:
    obj_keys(ctx, row, where, UPGRADE, UPGRADE_OPTIONAL)
    return ctx.build(
        MoralGraphVote, where, id=ctx.record_id(where), provenance=ctx.provenance(where),
        **_ends(ctx, row, where),
        context=row.get("context"), relationship="upgrade", story=row.get("story"),
    )


def edge(ctx: ImportContext, row: Any, where: str) -> AggregatedEdge:
    obj_keys(ctx, row, where, EDGE, EDGE_OPTIONAL)
    counts = obj_keys(ctx, row["counts"], f"{where}.counts", COUNTS)
    summary = obj_keys(ctx, row["summary"], f"{where}.summary", SUMMARY)
    return ctx.build(
        AggregatedEdge, where, id=ctx.record_id(where), provenance=ctx.provenance(where),
        source_card=_ref(ctx, f"{where}.sourceValueId", row["sourceValueId"]),
        wiser_card=_ref(ctx, f"{where}.wiserValueId", row["wiserValueId"]), contexts=row.get("contexts", []),
        counts=ctx.build(
            EdgeCounts, f"{where}.counts", marked_wiser=counts["markedWiser"],
            marked_not_wiser=counts["markedNotWiser"], marked_less_wise=counts["markedLessWise"],
            marked_unsure=counts["markedUnsure"], impressions=counts["impressions"],
        ),
        wiser_likelihood=summary["wiserLikelihood"], entropy=summary["entropy"],
    )


def question(ctx: ImportContext, row: Any, where: str) -> MoralGraphQuestion:
    obj_keys(ctx, row, where, QUESTION, QUESTION_OPTIONAL)
    return ctx.build(
        MoralGraphQuestion, where, id=ctx.record_id(where), provenance=ctx.provenance(where),
        question_key=_ref(ctx, f"{where}.id", row["id"]), title=row["title"], question=row["question"],
        seed_message=row.get("seedMessage"),
    )


def context(ctx: ImportContext, row: Any, where: str) -> MoralGraphContext:
    obj_keys(ctx, row, where, ("id",))
    return ctx.build(
        MoralGraphContext, where, id=ctx.record_id(where), provenance=ctx.provenance(where),
        context=row["id"],
    )


def context_link(ctx: ImportContext, row: Any, where: str) -> MoralGraphContext:
    obj_keys(ctx, row, where, CONTEXT_LINK, CONTEXT_LINK_OPTIONAL)
    return ctx.build(
        MoralGraphContext, where, id=ctx.record_id(where), provenance=ctx.provenance(where),
        context=row["contextId"], question_key=_ref(ctx, f"{where}.caseId", row["caseId"]),
        created_at=row.get("createdAt"), updated_at=row.get("updatedAt"),
    )
