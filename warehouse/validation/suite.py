"""The per-dataset suite file: the thresholds a user may edit, with defaults generated from the record model.

Where it lives: `<home>/warehouse/<dataset>/suite.yaml`, beside the dataset's versions. The first `validate
--dataset NAME` or `publish --dataset NAME` writes the generated defaults there (commented) for the kinds it
sees; later runs read it back. A kind or field the file does not mention gets the generated default. What follows
from the model and the taxonomies alone (not null, types, taxonomy membership, unique ids, references) is not a
threshold and is not in the file: editing the file can move bounds, never remove a check.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.warehouse.validation.fields import leaves

SUITE_FILE = "suite.yaml"
GENERATOR = "1"  # bumped when the generated checks change meaning; part of the suite version
DEFAULT_MAX_CHARS = 20_000


class Bounds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: int = Field(0, ge=0)
    max: int = Field(DEFAULT_MAX_CHARS, ge=0)


class Distribution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stratum_max_ratio: float = Field(1.5, gt=0, description="a stratum's share of records ≤ planned share × this")
    stratum_slack_rows: int = Field(2, ge=0, description="rows a stratum may exceed that share by (small runs)")
    dead_letter_rate_max: float = Field(0.5, ge=0, le=1, description="dead letters / (records+filtered+dead)")
    filtered_rate_max: float = Field(0.6, ge=0, le=1, description="filtered / (records+filtered)")
    acceptance_rate_min: float = Field(0.5, ge=0, le=1, description="curated: (accepted+edited) / decided")
    agreement_min: float = Field(0.4, ge=-1, le=1, description="curated: Krippendorff's alpha of verdicts")


class SuiteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suite: str
    text_length: dict[str, dict[str, Bounds]] = Field(default_factory=dict)
    distribution: Distribution = Field(default_factory=Distribution)

    def length_bounds(self, kind: str, path: str) -> Bounds:
        found = self.text_length.get(kind, {}).get(path)
        return found if found is not None else default_length(kind, path)

    def version(self, kinds: list[str]) -> str:
        """Generator version and a hash of every threshold in force for these kinds (file or default)."""
        effective = {
            "text_length": {k: {leaf.path: self.length_bounds(k, leaf.path).model_dump()
                                for leaf in text_leaves(k)} for k in sorted(kinds)},
            "distribution": self.distribution.model_dump(),
        }
        digest = hashlib.sha256(json.dumps(effective, sort_keys=True).encode()).hexdigest()[:12]
        return f"{GENERATOR}.{digest}"


def text_leaves(kind: str) -> list[Any]:
    return [leaf for leaf in leaves(kind) if leaf.text and leaf.path != "id"]


def default_length(kind: str, path: str) -> Bounds:
    leaf = next((x for x in leaves(kind) if x.path == path), None)
    required_text = leaf is not None and leaf.required and not leaf.optional_text and not leaf.path.endswith("[]")
    return Bounds(min=1 if required_text else 0, max=DEFAULT_MAX_CHARS)


def default_settings(suite: str, kinds: list[str]) -> SuiteSettings:
    return SuiteSettings(suite=suite, text_length={
        k: {leaf.path: default_length(k, leaf.path) for leaf in text_leaves(k)} for k in sorted(kinds)})


HEADER = """\
# Expectation suite thresholds for dataset '{name}' (valuecorpus). Edit the numbers; `valuecorpus validate`
# and `valuecorpus publish` read this file. Not null, types, taxonomy membership, unique ids and references
# follow from the record model and are always checked. A kind or field missing here gets its generated default.
#   text_length: characters per field path (`a[].b` = field b of every item of list a), min and max
#   distribution: stratum_max_ratio / stratum_slack_rows (no planned stratum above its share of records),
#     dead_letter_rate_max, filtered_rate_max, and for curated runs acceptance_rate_min and agreement_min
#     (Krippendorff's alpha of the verdicts, per batch)
"""


def write_settings(path: Path, settings: SuiteSettings) -> None:
    from valuecorpus.schemas.storage import write_bytes

    body = yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=120,
                          default_flow_style=None)
    write_bytes(path, (HEADER.format(name=settings.suite) + body).encode("utf-8"))  # whole, or not at all


def read_settings(path: Path) -> SuiteSettings:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueCorpusError(f"{path}: not valid YAML ({' '.join(str(err).split())[:200]})") from None
    try:
        return SuiteSettings.model_validate(data or {})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueCorpusError(f"{path}: '{where}': {first['msg']}") from None


def settings_for(path: Path | None, suite: str, kinds: list[str], create: bool) -> tuple[SuiteSettings, str | None]:
    """(settings, file used). `create`: write the defaults to `path` when it does not exist yet, adding later
    kinds' defaults is left to the user (missing entries take the defaults anyway)."""
    if path is None:
        return default_settings(suite, kinds), None
    if path.is_file():
        return read_settings(path), str(path)
    settings = default_settings(suite, kinds)
    if create:
        write_settings(path, settings)
        return settings, str(path)
    return settings, None


def describe(settings: SuiteSettings) -> dict[str, Any]:
    return settings.model_dump(mode="json")
