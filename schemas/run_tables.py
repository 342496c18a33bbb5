"""The side tables of a run: dead letters (requests that produced no record), filtered samples (records
removed by a filter) and the seed pool the plan drew from. Together with the records they account for every
request and every sample."""

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


class SeedRow(BaseModel):
    """One seed situation of a run's seed pool (`seeds.parquet`): shipped, taken from an input corpus, or
    proposed by the model in the seed stage. Duplicates stay in the table with the seed they repeat."""

    seed_id: str = Field(description="stable: hash of the pool key and the normalised text")
    pool: str = Field(description="the pool it belongs to, e.g. a topic, or 'topic/language'")
    text: str
    source: str = Field(description="shipped | proposed | the input run or dataset it was taken from")
    position: int = Field(description="order within its pool (the planner takes seeds in this order)")
    duplicate_of: str | None = Field(None, description="the seed it repeats (normalised text); not used")
    request_id: str | None = Field(None, description="the proposal request that produced it")
    cache_key: str | None = None
    prompt_template: str | None = Field(None, description="name@version of the proposal template")
    model: str | None = None
