"""Helpers for the engine tests: request builders and engine configs (the fake server process itself is
`FakeServerProcess`, shared with the benchmarks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valuecorpus_testing.fake_server_process import FakeServerProcess

from valuecorpus.pipelines.engine import EngineConfig, GenerationRequest

VALUE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "value": {"type": "string", "enum": ["care", "fairness", "loyalty"]},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["value", "score"],
    "additionalProperties": False,
}


def http_config(server: FakeServerProcess, tmp_path: Path | None, **overrides: Any) -> EngineConfig:
    values: dict[str, Any] = {
        "backend": "openai", "base_url": server.base_url, "model": "fake-model", "dialect": "openai",
        "max_in_flight": 16, "timeout_s": 5.0, "max_attempts": 4,
        "backoff_base_s": 0.02, "transient_backoff_s": 0.02, "backoff_max_s": 0.2,
        "cache_dir": str(tmp_path / "cache") if tmp_path is not None else None,
    }
    values.update(overrides)
    return EngineConfig(**values)


def make_requests(n: int, schema: dict[str, Any] | None = VALUE_SCHEMA, prefix: str = "r",
                  max_tokens: int = 64) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            request_id=f"{prefix}{i}",
            messages=[{"role": "user", "content": f"Classify the rule of thumb number {i} into a value."}],
            json_schema=schema, params={"max_tokens": max_tokens}, metadata={"plan_item": f"item-{i}"},
        )
        for i in range(n)
    ]


def by_id(outcomes: list[Any]) -> dict[str, Any]:
    return {o.request_id: o for o in outcomes}


def assert_accounted(requests: list[GenerationRequest], outcomes: list[Any]) -> None:
    """requests = results + dead letters, in input order, one outcome each."""
    assert [o.request_id for o in outcomes] == [r.request_id for r in requests]
