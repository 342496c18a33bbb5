"""The generation engine: every LLM call the toolkit makes goes through here (see `types.py` for the contract).

    from valuecorpus.pipelines.engine import Engine, EngineConfig, GenerationRequest
    with Engine(EngineConfig(backend="openai", base_url=..., model=..., cache_dir=...)) as engine:
        outcomes = engine.generate(requests)        # GenerationResult | DeadLetter, in input order

In Beam: `requests | Generate(config)` → `.results`, `.dead_letters` (imported from `.beam` on first use).
"""

from __future__ import annotations

from typing import Any

from valuecorpus.pipelines.engine.accounting import EngineStats
from valuecorpus.pipelines.engine.config import EngineConfig, Price, default_local_model_path
from valuecorpus.pipelines.engine.core import Engine
from valuecorpus.pipelines.engine.types import (
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    Message,
    Outcome,
    Usage,
)
from valuecorpus.schemas.run_tables import DeadLetter

__all__ = [
    "DeadLetter", "Engine", "EngineConfig", "EngineStats", "Generate", "GenerationParams", "GenerationRequest",
    "GenerationResult", "Message", "Outcome", "Price", "Usage", "default_local_model_path",
]


def __getattr__(name: str) -> Any:
    if name == "Generate":  # Beam costs 1.5 s to import: only when asked for
        from valuecorpus.pipelines.engine.beam import Generate

        return Generate
    raise AttributeError(name)
