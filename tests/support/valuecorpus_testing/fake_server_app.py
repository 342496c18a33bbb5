"""The fake server's request handling and state: routing, the chat-completions hot path, accounting.

The HTTP layer is `fake_server_http`; answers come from `fake_server_content`; faults and latency from
`fake_server_faults`; files and batches from `fake_server_batches`. `fake_server` runs it (CLI, in-process).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from valuecorpus_testing.fake_server_batches import ApiError, BatchStore, parse_multipart
from valuecorpus_testing.fake_server_content import (
    Overlay,
    Responder,
    ToolCalls,
    free_text,
    instance_for,
    last_user_text,
    load_responses,
    request_hash,
    schema_in_prompt,
)
from valuecorpus_testing.fake_server_faults import ANSWERED_AT_ONCE, parse_faults, parse_latency
from valuecorpus_testing.fake_server_http import Connection, Request

STRUCTURED_MODES = ("all", "openai", "vllm", "llamacpp", "none")
"""Which structured-output dialects the server honours. all: every one below. openai: response_format
json_schema (`guided_json` → 400, as OpenAI does). vllm: json_schema, `guided_json`, `structured_outputs`.
llamacpp: response_format json_object + schema only; json_schema → HTTP 500, like llama.cpp's server.
none: no structured output; schemas are ignored, but a schema written in the prompt is followed (fenced JSON
in prose), as an instruction-following model would."""


@dataclass
class FakeServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    latency: str | float | None = None
    """Milliseconds: a number, or `fixed:MS`, `uniform:LO,HI`, `normal:MEAN,SD`, `lognormal:MEDIAN,SIGMA`."""
    faults: str | None = None
    fault_mode: str = "hash"
    seed: int = 0
    responses: str | Path | None = None
    responder: Responder | None = None
    """Called with {hash, seed, attempt, messages, last_user, schema, body}; returns content (str, or a JSON
    value sent as its JSON text), an `Overlay` of fields set over the generated answer, or None for the
    generated answer."""
    api_key: str | None = None
    model: str = "fake-model"
    public_models: bool = False
    """Serve /v1/models without the key, as llama.cpp's server does."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    """Reported token counts; None = estimated as characters / 4."""
    structured: str = "all"
    retry_after_s: float = 1.0
    hang_s: float = 3600.0
    saturate_at: int | None = None
    """Emulates a self-hosted server that saturates without 429: beyond this many requests in flight, latency
    grows in proportion (latency × in_flight / saturate_at)."""
    max_inflight: int | None = None
    """Beyond this many requests in flight, answer 429 (a rate-limited API)."""
    batch_delay_s: float = 1.0
    batch_fail_rate: float = 0.0
    batch_fail_match: str | None = None
    route_delay: str | None = None
    """`METHOD ROUTE=SECONDS,...` (e.g. `POST /v1/batches=3`): the request is carried out at once and its
    answer held back, so a test can kill the client while the server has done what it asked."""

    def __post_init__(self) -> None:
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"host {self.host!r}: the fake server binds to loopback only")
        if self.structured not in STRUCTURED_MODES:
            raise ValueError(f"structured {self.structured!r}: one of {', '.join(STRUCTURED_MODES)}")


@dataclass
class _Counters:
    by_path: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)
    by_path_outcome: dict[str, Counter[str]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    ok_hashes: set[str] = field(default_factory=set)
    repeated_ok: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    received: Counter[str] = field(default_factory=Counter)  # "METHOD route" as requests arrive
    connections: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seq: int = 0


def _error(message: str, kind: str = "invalid_request_error", code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


_ERROR_TEXT = {429: "Rate limit reached. Please retry after the time given in Retry-After.",
               500: "The server had an error while processing your request.",
               503: "The server is overloaded or not ready yet."}
_UNHANDLED = object()
_UNAUTHORIZED = _error("Incorrect API key provided.", code="invalid_api_key")
_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_COMPLETION = (
    '{"id":"chatcmpl-%s%d","object":"chat.completion","created":%d,"model":%s,'
    '"system_fingerprint":"fp_valuecorpus_fake","choices":[{"index":0,"message":{"role":"assistant",'
    '"content":%s,"refusal":null},"logprobs":null,"finish_reason":"%s"}],'
    '"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}'
)


class ServerApp:
    """The request handler and all server state; runs on one event loop."""

    def __init__(self, config: FakeServerConfig) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.responder = config.responder or (load_responses(config.responses) if config.responses else None)
        self.auth = f"Bearer {config.api_key}".encode() if config.api_key else None
        self.configure(config.faults, config.latency)
        self.reset_state()

    @property
    def delays(self) -> dict[str, float]:
        out = {}
        for part in (self.config.route_delay or "").split(","):
            if "=" in part:
                route, seconds = part.rsplit("=", 1)
                out[route.strip()] = float(seconds)
        return out

    def configure(self, faults: str | None, latency: str | float | None) -> None:
        self.plan = parse_faults(faults, self.config.fault_mode, self.config.seed)
        self.latency = parse_latency(latency, self.config.seed)
        self.config.faults, self.config.latency = faults, latency

    def reset_state(self) -> None:
        self.c = _Counters()
        cfg = self.config
        self.batches = BatchStore(self.completion_body, cfg.batch_delay_s, cfg.batch_fail_rate,
                                  cfg.batch_fail_match)

    # --- accounting ----------------------------------------------------------------------------------------
    def count(self, path: str, outcome: str) -> None:
        c = self.c
        c.by_path[path] += 1
        c.by_outcome[outcome] += 1
        per = c.by_path_outcome.get(path)
        if per is None:
            per = c.by_path_outcome[path] = Counter()
        per[outcome] += 1

    def on_lost(self, conn: Connection) -> None:
        if conn.pending is not None:  # the client gave up on a request in flight (a hang, or its timeout)
            self.c.in_flight -= 1
            if conn.pending != "hang":  # a hang was counted when it started
                self.count("/v1/chat/completions", "client_gone")
            conn.pending = None

    def stats(self) -> dict[str, Any]:
        c = self.c
        return {
            "requests": sum(c.by_path.values()), "by_path": dict(c.by_path), "by_outcome": dict(c.by_outcome),
            "by_path_outcome": {p: dict(v) for p, v in c.by_path_outcome.items()},
            "distinct_requests": len(c.attempts), "repeated_ok": c.repeated_ok,
            "max_attempts": max(c.attempts.values(), default=0), "in_flight": c.in_flight,
            "max_in_flight": c.max_in_flight, "connections": c.connections,
            "tokens": {"prompt": c.prompt_tokens, "completion": c.completion_tokens},
            "files": len(self.batches.files), "batches": len(self.batches.batches),
            "received": dict(c.received),
            "config": {"faults": self.config.faults, "latency": self.config.latency,
                       "structured": self.config.structured},
        }

    # --- routing -------------------------------------------------------------------------------------------
    def handle(self, req: Request, conn: Connection) -> None:
        path = req.path.rstrip("/") or "/"
        try:
            if path == "/v1/chat/completions" and req.method == "POST":
                return self.chat(req, conn)
            if path in ("/stats", "/reset", "/health", "/delay"):
                return self.control(req, conn, path)
            public = self.config.public_models and path.startswith("/v1/models")
            if self.auth is not None and not public and req.headers.get(b"authorization") != self.auth:
                return self.reply(conn, path, "401", 401, _UNAUTHORIZED)
            result, route = self.resource(req, path)
            self.c.received[f"{req.method} {route}"] += 1
            delay = self.delays.get(f"{req.method} {route}")
            if delay:
                self.loop.call_later(delay, self._answer, conn, route, result)
                return None
            return self._answer(conn, route, result)
        except ApiError as exc:
            status, body = exc.status, _error(str(exc), code=exc.code)
            return self.reply(conn, _template(path), str(status), status, body)
        except (ValueError, KeyError, TypeError) as exc:
            return self.reply(conn, _template(path), "400", 400, _error(f"Invalid request: {exc}"))

    def _answer(self, conn: Connection, route: str, result: Any) -> None:
        try:
            if result is _UNHANDLED:
                return self.reply(conn, route, "404", 404, _error(f"Unknown route: {route}"))
            if isinstance(result, bytes):
                return self.reply(conn, route, "ok", 200, result, b"application/octet-stream")
            return self.reply(conn, route, "ok", 200, json.dumps(result).encode())
        except OSError:  # the client is gone (killed while its answer was held back)
            return None

    def reply(self, conn: Connection, path: str, outcome: str, status: int, body: bytes,
              content_type: bytes = b"application/json", extra: bytes = b"") -> None:
        self.count(path, outcome)
        conn.respond(status, body, content_type, extra)

    def control(self, req: Request, conn: Connection, path: str) -> None:
        if path == "/health":
            body: dict[str, Any] = {"status": "ok"}
        elif path == "/stats":
            body = self.stats()
        elif path == "/delay" and req.method == "POST":  # change `route_delay`, keeping files and batches
            self.config.route_delay = (json.loads(req.body) if req.body.strip() else {}).get("route_delay")
            body = {"route_delay": self.config.route_delay}
        elif req.method == "POST":
            change = json.loads(req.body) if req.body.strip() else {}
            cfg = self.config
            self.configure(change.get("faults", cfg.faults), change.get("latency", cfg.latency))
            self.reset_state()
            body = {"reset": True}
        else:
            conn.respond(405, _error("POST /reset"))
            return
        conn.respond(200, json.dumps(body).encode())

    def resource(self, req: Request, path: str) -> tuple[Any, str]:
        parts = path.strip("/").split("/")
        store, method = self.batches, req.method
        if parts[:2] == ["v1", "models"]:
            owner = {"vllm": "vllm", "llamacpp": "llamacpp"}.get(self.config.structured, "valuecorpus")
            model = {"id": self.config.model, "object": "model", "created": 0, "owned_by": owner}
            if len(parts) == 3:
                return model, "/v1/models/{id}"
            return {"object": "list", "data": [model]}, "/v1/models"
        if parts[:2] == ["v1", "files"]:
            if len(parts) == 2:
                if method == "POST":
                    form = parse_multipart(req.headers.get(b"content-type", b"").decode(), req.body)
                    if "file" not in form:
                        raise ApiError(400, "Missing required parameter: 'file'.")
                    purpose = form.get("purpose", (None, b"batch"))[1].decode()
                    filename, data = form["file"]
                    return store.add_file(filename or "upload.jsonl", purpose, data), "/v1/files"
                return store.list_files(), "/v1/files"
            if len(parts) == 4 and parts[3] == "content":
                return store.get_file(parts[2]).data, "/v1/files/{id}/content"
            if method == "DELETE":
                return store.delete_file(parts[2]), "/v1/files/{id}"
            return store.get_file(parts[2]).describe(), "/v1/files/{id}"
        if parts[:2] == ["v1", "batches"]:
            if len(parts) == 2:
                if method == "POST":
                    return store.create_batch(json.loads(req.body)), "/v1/batches"
                return store.list_batches(), "/v1/batches"
            if len(parts) == 4 and parts[3] == "cancel":
                return store.cancel_batch(parts[2]), "/v1/batches/{id}/cancel"
            return store.get_batch(parts[2]), "/v1/batches/{id}"
        return _UNHANDLED, path

    # --- chat completions: the hot path --------------------------------------------------------------------
    def chat(self, req: Request, conn: Connection) -> None:
        path, c = "/v1/chat/completions", self.c
        if self.auth is not None and req.headers.get(b"authorization") != self.auth:
            return self.reply(conn, path, "401", 401, _UNAUTHORIZED)
        try:
            body = orjson.loads(req.body)
            messages = body["messages"]
            if not isinstance(messages, list) or not messages:
                raise ValueError("'messages' must be a non-empty list")
        except (ValueError, KeyError, TypeError) as exc:
            return self.reply(conn, path, "400", 400, _error(f"Invalid request body: {exc}"))
        if body.get("stream"):
            return self.reply(conn, path, "400", 400, _error("stream=true is not supported by this server"))
        key = request_hash(messages, _structured(body))
        attempt = c.attempts[key] = c.attempts.get(key, 0) + 1
        c.seq += 1
        fault = self.plan.decide(key, attempt, c.seq) if self.plan.active else None
        limit = self.config.max_inflight
        if fault is None and limit is not None and c.in_flight >= limit:
            fault = "429"
        if fault in ANSWERED_AT_ONCE:
            return self.fail_status(conn, int(fault))
        status, payload = 0, b""
        if fault is None or fault in ("truncated", "cut", "invalid_json"):
            try:
                status, payload = self.answer(body, messages, key, attempt, fault == "invalid_json")
            except ApiError as exc:
                status, payload = exc.status, _error(str(exc), code=exc.code)
            except (ValueError, KeyError, TypeError) as exc:
                return self.reply(conn, path, "400", 400, _error(f"Invalid request body: {exc}"))
        c.in_flight += 1
        c.max_in_flight = max(c.max_in_flight, c.in_flight)
        conn.pending = key
        if fault == "hang":
            conn.pending = "hang"
            self.count(path, "hang")
            conn.timer = self.loop.call_later(self.config.hang_s, self.finish_hang, conn)
            return
        delay = self.latency()
        if self.config.saturate_at and c.in_flight > self.config.saturate_at:
            delay *= c.in_flight / self.config.saturate_at
        if delay <= 0:  # no timer for a zero latency (capacity measurements)
            self.finish(conn, status, payload, fault, key)
        else:
            conn.timer = self.loop.call_later(delay, self.finish, conn, status, payload, fault, key)

    def fail_status(self, conn: Connection, status: int) -> None:
        extra = b""
        if status == 429:
            s = self.config.retry_after_s
            extra = b"Retry-After: %d\r\nretry-after-ms: %d\r\n" % (math.ceil(s), int(s * 1000))
        kind = "rate_limit_error" if status == 429 else "server_error"
        body = _error(_ERROR_TEXT.get(status, "error"), kind)
        self.reply(conn, "/v1/chat/completions", str(status), status, body, extra=extra)

    def finish(self, conn: Connection, status: int, payload: bytes, fault: str | None, key: str) -> None:
        c, path = self.c, "/v1/chat/completions"
        if conn.pending is None:  # the client went away meanwhile (already accounted in on_lost)
            return
        c.in_flight -= 1
        if fault is None:
            if status == 200:
                if key in c.ok_hashes:
                    c.repeated_ok += 1
                else:
                    c.ok_hashes.add(key)
            self.reply(conn, path, "ok" if status == 200 else str(status), status, payload)
        elif fault == "invalid_json":
            self.reply(conn, path, "invalid_json", status, payload)
        elif fault == "truncated":
            self.reply(conn, path, "truncated", 200, payload[: len(payload) // 2])
        elif fault == "cut":
            self.count(path, "cut")
            conn.cut(200, payload)
        elif fault == "reset":
            self.count(path, "reset")
            conn.reset()
        else:
            self.fail_status(conn, int(fault))

    def finish_hang(self, conn: Connection) -> None:
        if conn.pending is not None:
            self.c.in_flight -= 1
            conn.pending = None
        conn.reset()

    def answer(self, body: dict[str, Any], messages: list[Any], key: str, attempt: int,
               broken: bool) -> tuple[int, bytes]:
        schema, prompt_schema = self.schema_of(body, messages)
        seed = int(key[:15], 16)
        content: Any = None
        if self.responder is not None:
            content = self.responder({"hash": key, "seed": seed, "attempt": attempt, "messages": messages,
                                      "last_user": last_user_text(messages), "schema": schema, "body": body})
            if isinstance(content, ToolCalls):
                return 200, self.tool_call_bytes(body, messages, content, key, attempt)
            if isinstance(content, Overlay):
                generated = instance_for(schema or prompt_schema or {"type": "object"}, seed)
                content = json.dumps({**generated, **content} if isinstance(generated, dict) else dict(content))
            elif content is not None and not isinstance(content, str):
                content = json.dumps(content)
        if content is None:
            if schema is not None:
                content = orjson.dumps(instance_for(schema, seed)).decode()
            elif prompt_schema is not None:
                instance = json.dumps(instance_for(prompt_schema, seed), indent=2, ensure_ascii=False)
                content = f"Here is the requested JSON:\n```json\n{instance}\n```"
            else:
                content = free_text(seed)
        if broken:
            content = content[: max(1, len(content) * 2 // 3)].rstrip("}]\"") + ' "'
        return 200, self.completion_bytes(body, messages, content, key, attempt)

    def schema_of(self, body: dict[str, Any], messages: list[Any]) -> tuple[Any, Any]:
        """(schema the server enforces, schema found in the prompt when the server enforces none)."""
        mode = self.config.structured
        if mode == "none":
            return None, schema_in_prompt(messages)
        fmt = body.get("response_format")
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "json_schema":
            if mode == "llamacpp":
                raise ApiError(500, "Unrecognized response_format type: json_schema", "server_error")
            spec = fmt.get("json_schema") or {}  # type: ignore[union-attr]
            return spec.get("schema") or {"type": "object"}, None
        if kind == "json_object":
            if mode in ("all", "llamacpp") and isinstance(fmt.get("schema"), dict):  # type: ignore[union-attr]
                return fmt["schema"], None  # type: ignore[index]
            return {"type": "object", "properties": {"answer": {"type": "string"}}}, None
        guided = body.get("guided_json")
        if guided is None and isinstance(body.get("structured_outputs"), dict):
            guided = body["structured_outputs"].get("json")
        if guided is not None:
            if mode == "openai":
                raise ApiError(400, "Unrecognized request argument supplied: guided_json")
            if mode in ("all", "vllm"):
                return (json.loads(guided) if isinstance(guided, str) else guided), None
        return None, None

    def completion_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to a batch item (no faults, no latency): the same content as the live endpoint."""
        messages = body["messages"]
        key = request_hash(messages, _structured(body))
        return json.loads(self.answer(body, messages, key, 1, False)[1])

    def completion_bytes(self, body: dict[str, Any], messages: list[Any], content: str, key: str,
                         attempt: int) -> bytes:
        cfg = self.config
        prompt = cfg.prompt_tokens or max(1, sum(len(str(m.get("content", ""))) for m in messages) // 4)
        completion = cfg.completion_tokens or max(1, len(content) // 4)
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < completion:
            completion, finish, content = limit, "length", content[: limit * 4]
        self.c.prompt_tokens += prompt
        self.c.completion_tokens += completion
        # a template, not json.dumps of a dict: the body is built once per request on the hot path
        return (_COMPLETION % (key, attempt, int(time.time()), _quote(str(body.get("model") or cfg.model)),
                               _quote(content), finish, prompt, completion, prompt + completion)).encode()


    def tool_call_bytes(self, body: dict[str, Any], messages: list[Any], calls: list[dict[str, Any]], key: str,
                        attempt: int) -> bytes:
        """A completion whose message calls tools (OpenAI format: arguments as JSON text, content null)."""
        prompt = max(1, sum(len(str(m.get("content") or "")) for m in messages) // 4)
        tool_calls = [{"id": f"call_{key[:8]}_{i}", "type": "function",
                       "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments") or {})}}
                      for i, c in enumerate(calls)]
        completion = max(1, len(json.dumps(tool_calls)) // 4)
        self.c.prompt_tokens += prompt
        self.c.completion_tokens += completion
        return orjson.dumps({
            "id": f"chatcmpl-{key}{attempt}", "object": "chat.completion", "created": int(time.time()),
            "model": str(body.get("model") or self.config.model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": tool_calls},
                         "logprobs": None, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        })


def _template(path: str) -> str:
    """`/v1/batches/batch_x/cancel` → `/v1/batches/{id}/cancel`: stats count routes, not ids."""
    parts = path.split("/")
    if len(parts) >= 4 and parts[1] == "v1":
        parts[3] = "{id}"
    return "/".join(parts)


def _structured(body: dict[str, Any]) -> Any:
    return body.get("response_format") or body.get("guided_json") or body.get("structured_outputs")
