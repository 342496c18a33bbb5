"""The generation engine: every LLM call the toolkit makes goes through here (see `types.py` for the contract).

    from valuecorpus.pipelines.engine import Engine, EngineConfig, GenerationRequest
    with Engine(EngineConfig(backend="openai", base_url=..., model=..., cache_dir=...)) as engine:
        outcomes = engine.generate(requests)        # GenerationResult | DeadLetter, in input order

In Beam: `requests | Generate(config)` → `.results`, `.dead_letters`.
Names are imported on first use, so importing a submodule (e.g. the cache, for the CLI) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DeadLetter": "valuecorpus.schemas.run_tables",
    "Engine": "valuecorpus.pipelines.engine.core",
    "EngineConfig": "valuecorpus.pipelines.engine.config",
    "EngineStats": "valuecorpus.pipelines.engine.accounting",
    "Generate": "valuecorpus.pipelines.engine.beam",  # Beam costs 1.5 s to import: only when asked for
    "GenerationParams": "valuecorpus.pipelines.engine.types",
    "GenerationRequest": "valuecorpus.pipelines.engine.types",
    "GenerationResult": "valuecorpus.pipelines.engine.types",
    "Message": "valuecorpus.pipelines.engine.types",
    "Outcome": "valuecorpus.pipelines.engine.types",
    "Price": "valuecorpus.pipelines.engine.config",
    "Progress": "valuecorpus.pipelines.engine.progress",
    "Usage": "valuecorpus.pipelines.engine.types",
    "default_local_model_path": "valuecorpus.pipelines.engine.config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
