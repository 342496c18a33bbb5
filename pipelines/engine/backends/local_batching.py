"""Several greedy answers of the embedded model decoded together, one llama.cpp batch per step.

On two CPU threads a one-token step of a 135M model is mostly fixed cost (the walk over the weights, the thread
hand-offs): eight tokens in one batch cost about three times one token. So the requests the engine has in flight
are decoded as separate sequences of one context (continuous batching, like llama-server's slots): each step
feeds every running sequence its last token and new sequences a chunk of their prompt, then samples each with
its own grammar sampler (`local_sampling`). A new sequence first copies, from any sequence still in the KV cache,
the longest prompt prefix it shares with it, so a step's requests evaluate their shared instructions once.

The KV cache is split per sequence (llama.cpp's non-unified cache): a sequence attends over its own cells only,
so eight sequences cost eight times one in attention, not sixty-four. A sequence's cells hold up to half the
model's context (`LocalBackend`); a request that could outgrow them, that samples (temperature above 0), that has
no grammar, or whose model has no chat template of its own goes through `llama_cpp.Llama`, one at a time, on the
same thread.

Answers are greedy, but not bit for bit independent of which requests share a step: llama.cpp's matrix kernels
round differently for one token than for several, so a prompt prefix copied from another sequence can differ in
the last bits from one evaluated anew, and now and then that changes a greedy pick. Which requests share a step
depends on when they reach the decoder, so two cold runs can differ in a token (the demo's did not, in five
runs here); the request cache makes a rerun exact.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

SLOTS = 8  # sequences decoded together: past eight, a step's cost grows about as fast as its tokens
N_BATCH = 512  # tokens per llama_decode call (prompt chunks included)
WORTH_WAITING = 32  # shared prompt tokens that are worth one step's wait


@dataclass(eq=False)
class Job:
    """One request: its prompt tokens, its bound, its sampler, and what it has written so far."""

    prompt: list[int]
    max_tokens: int
    sampler: Any  # local_sampling.GreedyGrammarSampler
    finish: Callable[[list[int], str], Any]  # (completion tokens, finish reason) -> the answer
    future: Future[Any] | None = None
    out: list[int] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)  # prompt tokens not in the KV cache yet


@dataclass(eq=False)
class Slot:
    seq: int
    cached: list[int] = field(default_factory=list)  # the tokens whose KV entries this sequence holds
    job: Job | None = None


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class BatchDecoder:
    """One llama.cpp context with `slots` sequences of `n_ctx_seq` cells each, driven by one thread that also
    runs the requests that cannot be batched (`start`), so llama.cpp is never called from two threads."""

    def __init__(self, llm: Any, n_ctx_seq: int, n_threads: int, slots: int = SLOTS) -> None:
        import llama_cpp
        from llama_cpp import _internals

        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_seq * slots
        params.n_batch = params.n_ubatch = N_BATCH
        params.n_seq_max = slots
        params.n_threads = params.n_threads_batch = n_threads
        params.kv_unified = False  # per-sequence cells: a sequence's attention costs what its own cells cost
        self._lib = llama_cpp
        self._llm = llm
        self.n_ctx_seq = n_ctx_seq
        self.ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self._mem = llama_cpp.llama_get_memory(self.ctx.ctx)
        self._vocab = llm._model.vocab
        self._batch = llama_cpp.llama_batch_init(N_BATCH, 0, 1)
        self.slots = [Slot(i) for i in range(slots)]
        self.formatter, self.stop_ids = _chat_formatter(llm)
        # steps, answers (batched), alone (through Llama), prompt_tokens (of batched answers), prompt_evaluated
        # (after prefix copies), max_running (most sequences in one step)
        self.stats: Counter[str] = Counter()
        self._waiting: deque[Job] = deque()
        self._inbox: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="llama-batch", daemon=True)
        self._thread.start()

    def start(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run `fn` on the decoder's thread between two steps: a `Job` it returns joins the batch and the future
        holds its answer; anything else it returns (or raises) is the answer."""
        fut: Future[Any] = Future()
        self._inbox.put((fn, fut))
        return fut

    def close(self) -> None:
        if self._thread.is_alive():
            self._inbox.put(None)
            self._thread.join()
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None
            self.ctx.close()

    # -- the decoder's thread
    def _run(self) -> None:
        while True:
            busy = self._waiting or any(s.job is not None for s in self.slots)
            items = [] if busy else [self._inbox.get()]  # idle: sleep until a request comes
            while True:
                try:
                    items.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            for item in items:
                if item is None:
                    self._fail_all(RuntimeError("the local model was closed"))
                    return
                fn, fut = item
                try:
                    answer = fn()
                except BaseException as err:  # handed to the caller, who raises it
                    fut.set_exception(err)
                    continue
                if isinstance(answer, Job):
                    answer.future = fut
                    self._waiting.append(answer)
                    self.stats["prompt_tokens"] += len(answer.prompt)
                else:
                    self.stats["alone"] += 1
                    fut.set_result(answer)
            self._admit()
            if any(s.job is not None for s in self.slots):
                try:
                    self._step()
                except Exception as err:  # every waiting caller gets the error, none hangs
                    self._fail_all(err)

    def _admit(self) -> None:
        """Give each waiting request a free sequence, starting from the longest prefix any sequence holds."""
        lib, mem = self._lib, self._mem
        free = [s for s in self.slots if s.job is None]
        while self._waiting and free:
            job = self._waiting[0]
            shared = [(common_prefix(s.cached, job.prompt), s) for s in self.slots]
            lcp, source = max(shared, key=lambda t: t[0])
            lcp = min(lcp, len(job.prompt) - 1)  # at least one token is evaluated: its logits start the answer
            # a prompt being evaluated shares more with this one than the cache does (a step's requests share
            # their instructions): wait one step and copy its cells rather than evaluate them twice
            if any(common_prefix(s.job.prompt, job.prompt) > lcp + WORTH_WAITING
                   for s in self.slots if s.job is not None and s.job.todo):
                break
            self._waiting.popleft()
            # the free sequence that shares most with this prompt; among equals the first
            keep, slot = max(((k, s) for k, s in shared if s.job is None), key=lambda t: t[0])
            if keep >= lcp:
                lcp = min(keep, lcp)
                lib.llama_memory_seq_rm(mem, slot.seq, lcp, -1)
            else:  # copy the source's cells (a whole-buffer copy between split caches), then cut to the prefix
                lib.llama_memory_seq_rm(mem, slot.seq, -1, -1)
                lib.llama_memory_seq_cp(mem, source.seq, slot.seq, -1, -1)
                lib.llama_memory_seq_rm(mem, slot.seq, lcp, -1)
            slot.cached = job.prompt[:lcp]
            job.todo = job.prompt[lcp:]
            slot.job = job
            free.remove(slot)

    def _step(self) -> None:
        lib, batch = self._lib, self._batch
        n = 0
        sample_at: list[tuple[int, Slot]] = []

        def put(token: int, slot: Slot, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = len(slot.cached)
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = slot.seq
            batch.logits[n] = logits
            slot.cached.append(token)
            if logits:
                sample_at.append((n, slot))
            n += 1

        running = [s for s in self.slots if s.job is not None]
        for slot in running:  # answering sequences first: one token each
            assert slot.job is not None
            if not slot.job.todo:
                put(slot.job.out[-1], slot, True)
        answering = n
        for slot in running:  # then prompt chunks, as many as the batch holds
            job = slot.job
            assert job is not None
            take = min(len(job.todo), N_BATCH - n)
            for k in range(take):
                put(job.todo[k], slot, k == len(job.todo) - 1)
            del job.todo[:take]
        batch.n_tokens = n
        self.stats["steps"] += 1
        self.stats["prompt_evaluated"] += n - answering
        self.stats["max_running"] = max(self.stats["max_running"], len(running))
        rc = lib.llama_decode(self.ctx.ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc}) on a batch of {n} tokens")
        for idx, slot in sample_at:
            job = slot.job
            assert job is not None
            token = job.sampler.sample(self.ctx, idx)
            if lib.llama_vocab_is_eog(self._vocab, token) or token in self.stop_ids:
                self._done(slot, "stop")
                continue
            job.out.append(token)
            if len(job.out) >= job.max_tokens:
                self._done(slot, "length")

    def _done(self, slot: Slot, reason: str) -> None:
        job = slot.job
        assert job is not None
        slot.job = None
        self.stats["answers"] += 1
        job.sampler.close()
        assert job.future is not None
        try:
            job.future.set_result(job.finish(job.out, reason))
        except BaseException as err:  # handed to the caller, who raises it
            job.future.set_exception(err)

    def _fail_all(self, err: BaseException) -> None:
        jobs = [s.job for s in self.slots if s.job is not None] + list(self._waiting)
        self._waiting.clear()
        for slot in self.slots:
            slot.job = None
            slot.cached = []
        self._lib.llama_memory_clear(self._mem, True)
        for job in jobs:
            job.sampler.close()
            if job.future is not None and not job.future.done():
                job.future.set_exception(err)


def _chat_formatter(llm: Any) -> tuple[Any, frozenset[int]]:
    """The formatter `Llama` builds from the GGUF's own chat template (None if it has none, or uses another)."""
    from llama_cpp import llama_chat_format

    template = llm.metadata.get("tokenizer.chat_template")
    if template is None or llm.chat_format != "chat_template.default":
        return None, frozenset()
    eos, bos = llm.token_eos(), llm.token_bos()
    formatter = llama_chat_format.Jinja2ChatFormatter(
        template=template, eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "", stop_token_ids=[eos])
    return formatter, frozenset([eos])


def batch_job(decoder: BatchDecoder, messages: list[dict[str, Any]], kwargs: dict[str, Any],
              answer: Callable[[dict[str, Any]], Any]) -> Job | None:
    """The batched form of `Llama.create_chat_completion(messages=messages, **kwargs)`, or None when the request
    is not greedy and grammar-constrained, the model has no chat template of its own, or the answer could outgrow
    a sequence's cells. Prompt, stop tokens, bounds and the text returned are built as `Llama` builds them."""
    from valuecorpus.pipelines.engine.backends.local_sampling import GreedyGrammarSampler

    llm = decoder._llm
    if (kwargs.get("grammar") is None or kwargs.get("temperature", 0.2) != 0.0 or set(kwargs) - _BATCHED
            or llm.chat_handler is not None or decoder.formatter is None):
        return None
    rendered = decoder.formatter(messages=messages)
    prompt = llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)
    n_ctx = llm.n_ctx()
    if len(prompt) >= n_ctx:
        raise ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {n_ctx}")
    max_tokens = kwargs.get("max_tokens") or 0
    max_tokens = min(max_tokens, n_ctx - len(prompt)) if max_tokens > 0 else n_ctx - len(prompt)
    if len(prompt) + max_tokens > decoder.n_ctx_seq:
        return None
    stops = [rendered.stop] if isinstance(rendered.stop, str) else list(rendered.stop or [])

    def finish(out: list[int], reason: str) -> Any:
        text = llm.detokenize(out, prev_tokens=prompt).decode("utf-8", errors="ignore")
        cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
        if cuts:
            text, reason = text[:min(cuts)], "stop"
        return answer({"object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason}],
            "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(out),
                      "total_tokens": len(prompt) + len(out)}})

    sampler = GreedyGrammarSampler(llm, kwargs["grammar"], kwargs.get("repeat_penalty", 1.0), 0.0, 0.0)
    return Job(prompt, max_tokens, sampler, finish)


# what a batched request may carry (seed and top_p change nothing at temperature 0)
_BATCHED = {"grammar", "temperature", "max_tokens", "seed", "top_p", "repeat_penalty"}
