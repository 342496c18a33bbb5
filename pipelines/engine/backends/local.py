"""The embedded model: llama.cpp in-process, grammar-constrained by the request's JSON Schema.

One `Llama` per process and per model file (loading costs seconds and ~100 MB); its requests run on one thread
(the batch decoder's, see local_batching) so the event loop keeps running while the model writes.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from valuecorpus.pipelines.engine.attempts import AttemptError
from valuecorpus.pipelines.engine.backends import Completion, completion_from_json
from valuecorpus.pipelines.engine.backends.local_batching import SLOTS, BatchDecoder, Job, batch_job

_models: dict[tuple[str, int, int], Any] = {}
_decoders: dict[tuple[str, int, int], BatchDecoder] = {}
_load_lock = threading.Lock()
_grammars: dict[str, Any] = {}  # GBNF text or canonical schema JSON -> parsed LlamaGrammar (parsed once)
_PASSED = ("temperature", "max_tokens", "seed", "top_p", "repeat_penalty")


def load_model(path: str, n_ctx: int, n_threads: int) -> Any:
    key = (path, n_ctx, n_threads)
    with _load_lock:
        if key not in _models:
            from valuecorpus.pipelines.engine.backends.local_sampling import fast_llama_class

            # greedy answers under a grammar check the grammar on the chosen token first (local_sampling)
            _models[key] = fast_llama_class()(model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False)
        return _models[key]


def _decoder(path: str, n_ctx: int, n_threads: int) -> BatchDecoder:
    """The decoder (and its thread) of this model; a sequence holds up to half the context."""
    llm = load_model(path, n_ctx, n_threads)
    key = (path, n_ctx, n_threads)
    with _load_lock:
        if key not in _decoders:
            _decoders[key] = BatchDecoder(llm, max(256, n_ctx // 2), n_threads)
        return _decoders[key]


def _grammar(text: str, from_schema: bool = False) -> Any:
    """A grammar parsed once per distinct schema: llama-cpp-python would convert the schema to GBNF and parse it
    again on every request (tens of milliseconds for a schema with a 301-value enum)."""
    grammar = _grammars.get(text)
    if grammar is None:
        from llama_cpp import LlamaGrammar

        if len(_grammars) > 256:
            _grammars.clear()
        grammar = (LlamaGrammar.from_json_schema(text, verbose=False) if from_schema
                   else LlamaGrammar.from_string(text, verbose=False))
        _grammars[text] = grammar
    return grammar


def prefix_order(messages: list[dict[str, Any]]) -> tuple[str, ...]:
    """The sort key that puts requests sharing a prompt prefix next to each other: llama.cpp keeps the previous
    prompt's KV cache and evaluates only what differs, so neighbours that share a long prefix skip most of
    their prompt evaluation (most of a small model's time on short answers)."""
    return tuple(f"{m.get('role', '')}\x00{m.get('content') or ''}" for m in messages)


@contextmanager
def _refusals() -> Iterator[None]:
    """llama.cpp's refusals (e.g. a prompt that does not fit the context window) as the engine's attempt error."""
    try:
        yield
    except ValueError as err:
        raise AttemptError("local_model", f"the local model refused the request: {err}") from None


@atexit.register
def _close_models() -> None:
    # free the models while the interpreter is whole (llama.cpp's own finaliser fails at shutdown)
    with _load_lock:
        for decoder in _decoders.values():
            decoder.close()
        _decoders.clear()
        for llm in _models.values():
            llm.close()
        _models.clear()


class LocalBackend:
    kind = "local"
    # requests in flight are decoded together (local_batching); more than its slots keeps the next ones queued
    max_concurrency: int | None = 2 * SLOTS
    adapts = False  # the window is the decoder's slots, not a server's capacity: latency says nothing here
    order_key = staticmethod(prefix_order)  # the engine sends a job's requests in this order

    def __init__(self, model_path: str, n_ctx: int, n_threads: int, model_name: str = "") -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.model = model_name or model_path.rsplit("/", 1)[-1]

    def _request(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
        """The messages and `create_chat_completion` arguments for a body, and whether it calls tools."""
        kwargs = {k: body[k] for k in _PASSED if k in body}
        messages = body["messages"]
        tools = body.get("tools")
        fmt = body.get("response_format") or {}
        if tools:  # no native tool calls: a grammar over the tools, see local_tools
            from valuecorpus.pipelines.engine.backends.local_tools import plain_messages, tool_schema

            messages = plain_messages(messages, tools)
            kwargs["grammar"] = _grammar(orjson.dumps(tool_schema(tools)).decode(), True)
        elif "grammar" in body:
            kwargs["grammar"] = _grammar(body["grammar"])
        elif fmt.get("type") == "json_object" and "schema" in fmt:  # converted to GBNF once per schema
            kwargs["grammar"] = _grammar(orjson.dumps(fmt["schema"], option=orjson.OPT_SORT_KEYS).decode(), True)
        elif fmt:
            kwargs["response_format"] = fmt
        return messages, kwargs, bool(tools)

    def _answer(self, data: dict[str, Any], tools: bool) -> Completion:
        # llama.cpp reports the GGUF file path as the model: records name the model, not this machine's folders
        comp = completion_from_json({**data, "model": self.model}, self.model)
        if tools:
            from valuecorpus.pipelines.engine.backends.local_tools import read_answer

            comp.content, comp.tool_calls = read_answer(comp.content)
        return comp

    def _complete_sync(self, body: dict[str, Any]) -> Completion:
        """One request through `llama_cpp.Llama` (what the decoder does not batch)."""
        return self._alone(*self._request(body))

    def _alone(self, messages: list[dict[str, Any]], kwargs: dict[str, Any], tools: bool) -> Completion:
        llm = load_model(self.model_path, self.n_ctx, self.n_threads)
        with _refusals():
            data = llm.create_chat_completion(messages=messages, **kwargs)
        return self._answer(data, tools)

    def _start(self, body: dict[str, Any]) -> Job | Completion:
        """On the decoder's thread: a greedy, grammar-constrained request becomes a batched job; any other is
        answered here and now."""
        decoder = _decoder(self.model_path, self.n_ctx, self.n_threads)
        messages, kwargs, tools = self._request(body)
        with _refusals():
            job = batch_job(decoder, messages, kwargs, lambda data: self._answer(data, tools))
        return job if job is not None else self._alone(messages, kwargs, tools)

    async def complete(self, body: dict[str, Any], timeout: float) -> Completion:
        # no timeout: a running llama.cpp call cannot be interrupted
        decoder = _decoders.get((self.model_path, self.n_ctx, self.n_threads))
        if decoder is None:  # loading takes seconds: not on the event loop
            decoder = await asyncio.get_running_loop().run_in_executor(
                None, _decoder, self.model_path, self.n_ctx, self.n_threads)
        return await asyncio.wrap_future(decoder.start(lambda: self._start(body)))

    async def list_models(self) -> list[dict[str, Any]]:
        return [{"id": self.model, "owned_by": "local"}]

    async def aclose(self) -> None:
        return None
