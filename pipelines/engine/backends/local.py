"""The embedded model: llama.cpp in-process, grammar-constrained by the request's JSON Schema.

One `Llama` per process and per model file (loading costs seconds and ~100 MB); calls are serialised on one
thread so the event loop keeps running while the model writes.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from valuecorpus.pipelines.engine.attempts import AttemptError
from valuecorpus.pipelines.engine.backends import Completion, completion_from_json

_models: dict[tuple[str, int, int], Any] = {}
_load_lock = threading.Lock()
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
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


@atexit.register
def _close_models() -> None:
    # free the models while the interpreter is whole (llama.cpp's own finaliser fails at shutdown)
    with _load_lock:
        for llm in _models.values():
            llm.close()
        _models.clear()


class LocalBackend:
    kind = "local"
    max_concurrency: int | None = 1
    order_key = staticmethod(prefix_order)  # the engine sends a job's requests in this order

    def __init__(self, model_path: str, n_ctx: int, n_threads: int, model_name: str = "") -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.model = model_name or model_path.rsplit("/", 1)[-1]

    def _complete_sync(self, body: dict[str, Any]) -> Completion:
        llm = load_model(self.model_path, self.n_ctx, self.n_threads)
        kwargs = {k: body[k] for k in _PASSED if k in body}
        messages = body["messages"]
        tools = body.get("tools")
        fmt = body.get("response_format") or {}
        if tools:  # no native tool calls: a grammar over the tools, see local_tools
            from valuecorpus.pipelines.engine.backends.local_tools import plain_messages, tool_schema

            messages = plain_messages(messages, tools)
            kwargs["response_format"] = {"type": "json_object", "schema": tool_schema(tools)}
        elif "grammar" in body:
            kwargs["grammar"] = _grammar(body["grammar"])
        elif fmt.get("type") == "json_object" and "schema" in fmt:  # converted to GBNF once per schema
            kwargs["grammar"] = _grammar(orjson.dumps(fmt["schema"], option=orjson.OPT_SORT_KEYS).decode(), True)
        elif fmt:
            kwargs["response_format"] = fmt
        try:
            data = llm.create_chat_completion(messages=messages, **kwargs)
        except ValueError as err:  # e.g. the prompt does not fit the context window
            raise AttemptError("local_model", f"the local model refused the request: {err}") from None
        # llama.cpp reports the GGUF file path as the model: records name the model, not this machine's folders
        comp = completion_from_json({**data, "model": self.model}, self.model)
        if tools:
            from valuecorpus.pipelines.engine.backends.local_tools import read_answer

            comp.content, comp.tool_calls = read_answer(comp.content)
        return comp

    async def complete(self, body: dict[str, Any], timeout: float) -> Completion:
        # no timeout: a running llama.cpp call cannot be interrupted, and the thread serialises calls anyway
        return await asyncio.get_running_loop().run_in_executor(_executor, self._complete_sync, body)

    async def list_models(self) -> list[dict[str, Any]]:
        return [{"id": self.model, "owned_by": "local"}]

    async def aclose(self) -> None:
        return None
