"""The base of every record: a stable id, a kind, and the provenance struct that travels with it."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class JsonBlob:
    """Marks a free-form JSON field (agent state, tool parameter schemas).

    Everything else in a record has a fixed shape and becomes nested Arrow structs and lists; a value whose
    shape is data-defined (one environment's state tables differ from the next) is stored as canonical JSON text
    in a string column tagged `valuecorpus.json`, and decoded back on read.
    """


Json = Annotated[Any, JsonBlob()]


def canonical_json(value: Any) -> str:
    """Sorted keys: what ids and hashes are computed over (the same value gives the same text)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def ordered_json(value: Any) -> str:
    """Keys in their own order: how a JsonBlob is stored. Order is data there (a tool's arguments are listed
    in the order its author gave them); ids never hash this text, so they stay what `canonical_json` makes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def stable_id(*parts: Any) -> str:
    """Hash of the identifying parts (recipe, plan item, seed; or source dataset and source key)."""
    return hashlib.sha256(canonical_json(list(parts)).encode("utf-8")).hexdigest()[:24]


class AnnotatorDecision(BaseModel):
    """One expert's decision on a sample in Label Studio (review or adjudication)."""

    annotator: str = Field(description="pseudonymised annotator id (adjudicators as 'adj:<pseudonym>')")
    verdict: str
    rating: int | None = None
    comment: str | None = None
    role: Literal["review", "adjudication"] = "review"
    edited_fields: list[str] = Field(default_factory=list, description="fields this expert proposed to change")
    labels: list[str] = Field(default_factory=list, description="value labels this expert chose")


class AppliedEdit(BaseModel):
    """A change curation applied to the record, and the rule that chose it among the experts' proposals."""

    field: str = Field(description="the edited field's key (see annotation/tasks.py), or 'value_labels'")
    rule: Literal["adjudicator", "majority", "first"] = Field(
        description="adjudicator: the adjudicator's; majority: proposed alike by more than half of the reviewers "
                    "(for value labels: each label chosen by more than half); first: the earliest proposal")
    annotator: str | None = Field(None, description="whose proposal was applied (None for a label majority)")
    proposals: int = Field(1, description="how many experts proposed a change to this field")


class Provenance(BaseModel):
    """Where a record came from and what happened to it. All fields optional: imports and generations fill
    different parts."""

    origin: Literal["import", "generate", "curate"] = "generate"
    source_dataset: str | None = None
    source_file: str | None = None
    source_key: str | None = Field(None, description="row number or key inside the source file")
    recipe: str | None = None
    run_id: str | None = None
    plan_item: str | None = None
    seed: int | None = None
    generator_model: str | None = None
    endpoint_kind: str | None = None
    prompt_templates: list[str] = Field(default_factory=list, description="template name@content-hash per step")
    taxonomy_versions: list[str] = Field(default_factory=list, description="taxonomy@version")
    cache_keys: list[str] = Field(default_factory=list)
    annotations: list[AnnotatorDecision] = Field(default_factory=list)
    edits: list[AppliedEdit] = Field(default_factory=list, description="curation changes applied to this record; "
                                     "the original is in the version's curation/originals/<kind>.parquet")
    validation: str | None = None


class Record(BaseModel):
    """Every record kind subclasses this. `kind` is a class constant, not a column."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kind: ClassVar[str] = ""
    # Fields filled by the toolkit rather than by a generator: left out of the JSON Schema for LLM output.
    toolkit_fields: ClassVar[frozenset[str]] = frozenset({"id", "provenance"})
    # Fields that hold another record's key: field -> the "kind.field" values it may match (any one of them).
    # Integrity checks (every vote's cards exist, exactly once) are derived from these declarations.
    references: ClassVar[dict[str, tuple[str, ...]]] = {}

    id: str
    provenance: Provenance = Field(default_factory=Provenance)
