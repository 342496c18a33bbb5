"""The embedded model decodes the requests in flight together (`backends/local_batching.py`) and runs the shipped
weights re-encoded as Q8_0 (`backends/local_weights.py`). What is guaranteed: every request gets its own answer
(schema-valid, in the caller's order) or its own dead letter; several sequences share a step; a shared prompt
prefix is evaluated once, not per request; what cannot be batched is answered one at a time; the re-encoded
file is a Q8_0 GGUF made once, atomically, and keyed in the cache by its own content."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from valuecorpus.pipelines.engine import DeadLetter, Engine, EngineConfig, GenerationRequest, GenerationResult

SCHEMA = {
    "type": "object",
    "properties": {"value": {"type": "string", "enum": ["benevolence", "universalism", "security"]},
                   "why": {"type": "string", "maxLength": 60}},
    "required": ["value", "why"],
    "additionalProperties": False,
}
# a long shared instruction, as every chain step's prompts have: most of each prompt
SYSTEM = ("You label everyday rules with one of three values. Benevolence is caring for the people close to you. "
          "Universalism is caring for all people and for nature. Security is safety, order and stability. ") * 3


def _requests(n: int, **params) -> list[GenerationRequest]:
    return [GenerationRequest(request_id=f"r{i}", json_schema=SCHEMA, params={"max_tokens": 40, **params},
                              messages=[{"role": "system", "content": SYSTEM},
                                        {"role": "user", "content": f"Rule {i}: lock the door number {i}."}])
            for i in range(n)]


def _decoder():
    from valuecorpus.pipelines.engine.backends import local

    [decoder] = local._decoders.values()
    return decoder


@pytest.fixture(autouse=True)
def fresh_model():
    from valuecorpus.pipelines.engine.backends import local

    local._close_models()  # each test counts its own decoder's steps
    yield
    local._close_models()


def test_requests_in_flight_share_steps_and_each_gets_its_own_answer() -> None:
    requests = _requests(12)  # more than the decoder's slots
    with Engine(EngineConfig(backend="local", model="smollm2")) as engine:
        outcomes = engine.generate(requests)
    assert [o.request_id for o in outcomes] == [r.request_id for r in requests]
    assert all(isinstance(o, GenerationResult) for o in outcomes), outcomes
    assert all(o.parsed["value"] in SCHEMA["properties"]["value"]["enum"] for o in outcomes)
    assert all(0 < o.usage.completion_tokens <= 40 for o in outcomes)
    stats = _decoder().stats
    assert stats["answers"] == 12 and stats["alone"] == 0
    assert stats["max_running"] > 1  # several sequences in one llama.cpp batch
    completion = sum(o.usage.completion_tokens for o in outcomes)
    assert stats["steps"] < completion  # fewer steps than answer tokens: steps carried several sequences
    # the shared instruction is evaluated once and copied, not evaluated twelve times
    prompt = sum(o.usage.prompt_tokens for o in outcomes)
    assert stats["prompt_tokens"] == prompt
    assert stats["prompt_evaluated"] < prompt / 4


def test_what_cannot_be_batched_is_answered_alone_and_a_prompt_too_long_is_its_own_dead_letter() -> None:
    sampled = _requests(2, temperature=0.7, seed=3)  # sampling: through llama_cpp.Llama, one at a time
    long_answer = _requests(1, max_tokens=700)  # prompt + max_tokens beyond a sequence's cells (half of 1024)
    too_long = [GenerationRequest(request_id="too-long", params={"max_tokens": 8},
                                  messages=[{"role": "user", "content": "rule " * 1500}])]
    batched = _requests(3)
    requests = [*sampled, long_answer[0].model_copy(update={"request_id": "long"}), *too_long, *batched]
    with Engine(EngineConfig(backend="local", model="smollm2", n_ctx=1024, max_attempts=1)) as engine:
        outcomes = {o.request_id: o for o in engine.generate(requests)}
    dead = outcomes.pop("too-long")
    assert isinstance(dead, DeadLetter) and dead.error_class == "local_model" and "context window" in dead.reason
    assert all(isinstance(o, GenerationResult) for o in outcomes.values()), outcomes
    stats = _decoder().stats
    assert stats["alone"] == 3 and stats["answers"] == 3


def test_the_shipped_model_runs_re_encoded_as_q8_0_made_once(tmp_path: Path, monkeypatch) -> None:
    from llama_cpp import Llama

    from valuecorpus.pipelines.engine.config import default_local_model_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "valuecorpus" / "models"
    folder.mkdir(parents=True)
    (folder / ".SmolLM2-left-by-a-killed-run.gguf.tmp").write_bytes(b"GGUF half")  # never taken for a model
    config = EngineConfig(backend="local")
    path = Path(config.resolved_model_path())
    assert path.parent == folder and path != Path(default_local_model_path())
    vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
    assert vocab.metadata["general.file_type"] == "7"  # LLAMA_FTYPE_MOSTLY_Q8_0, as llama.cpp reads it
    made = path.stat().st_mtime_ns
    assert Path(EngineConfig(backend="local").resolved_model_path()) == path
    assert path.stat().st_mtime_ns == made  # made once
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".SmolLM2-left")) == [path.name]
    # the cache key names the weights actually run: the re-encoded file's own content
    assert config.endpoint_identity == f"local:sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"


def test_a_read_only_cache_runs_the_shipped_file(tmp_path: Path, monkeypatch, caplog) -> None:
    from valuecorpus.pipelines.engine.config import default_local_model_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "valuecorpus").mkdir()
    (tmp_path / "valuecorpus" / "models").write_text("not a folder")  # nothing can be written there
    assert EngineConfig(backend="local").resolved_model_path() == default_local_model_path()
    assert "cannot write the re-encoded local model" in caplog.text
    assert os.listdir(tmp_path / "valuecorpus") == ["models"] or "model-digests.json" in os.listdir(
        tmp_path / "valuecorpus")
