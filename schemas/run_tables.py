"""The side tables of a run: dead letters (requests that produced no record) and filtered samples (records
removed by a filter). Together with the records they account for every request and every sample."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DeadLetter(BaseModel):
    request_id: str
    stage: Literal["generate", "parse", "check", "budget", "import"] = "generate"
    attempts: int = 0
    error_class: str = Field(description="e.g. http_429, timeout, connection, invalid_json, schema, budget_exhausted")
    http_status: int | None = None
    reason: str
    raw_output: str | None = Field(None, description="the model's output, truncated")
    plan_item: str | None = None


class FilteredSample(BaseModel):
    sample_id: str
    kind: str
    filter: str = Field(description="which filter removed it, e.g. exact_duplicate, near_duplicate, length")
    reason: str
    matched_id: str | None = Field(None, description="the sample it duplicates, if any")
    score: float | None = None
