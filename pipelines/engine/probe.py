"""What the engine asks an endpoint before its first real request.

`verify_endpoint`: does the endpoint accept the key and serve the model? Asked of `GET /models`, which costs
nothing and answers at once, so a run need not send its first paid request alone to find out.

`dialect="auto"`: find out once per endpoint how it accepts a JSON Schema (the answer is cached).

Order: a server that names itself (vLLM in /models, api.openai.com) is taken at its word; otherwise the OpenAI
`json_schema` form is tried, then llama.cpp's `json_object` + `schema`, and the prompt fallback is what remains.
Each try is one tiny request whose answer must validate against an enum-constrained schema.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from valuecorpus.pipelines.engine.attempts import AttemptError
from valuecorpus.pipelines.engine.backends import Backend
from valuecorpus.pipelines.engine.structured import compile_schema, parse_output, shape_body
from valuecorpus.schemas.errors import EndpointError

PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
    "required": ["answer"],
    "additionalProperties": False,
}
_PROBE_PROMPT = (resources.files("valuecorpus.pipelines.engine") / "templates" / "probe.txt").read_text("utf-8")


def _refused(backend: Backend, err: AttemptError) -> EndpointError:
    """The endpoint refused the setup itself (key, model, URL): one message that says what to fix."""
    return EndpointError(f"{getattr(backend, 'base_url', 'endpoint')}: {err.reason}")


async def _works(backend: Backend, model: str, dialect: str, timeout: float) -> bool:
    compiled = compile_schema(PROBE_SCHEMA)
    body = {"model": model, "messages": [{"role": "user", "content": _PROBE_PROMPT.strip()}],
            "temperature": 0.0, "max_tokens": 32}
    shape_body(body, dialect, compiled)
    try:
        comp = await backend.complete(body, timeout)
        parse_output(comp.content, compiled)
    except AttemptError as err:
        if err.fatal:
            raise _refused(backend, err) from None
        return False
    return True


async def detect_dialect(backend: Backend, model: str, timeout: float) -> str:
    base_url = str(getattr(backend, "base_url", ""))
    if "api.openai.com" in base_url:
        return "openai"
    try:
        models = await backend.list_models()
    except AttemptError as err:
        if err.fatal:
            raise _refused(backend, err) from None
        if err.error_class in ("connection", "timeout"):
            raise EndpointError(f"{base_url}: the endpoint is unreachable ({err.reason}); check "
                                "setting 'openai_base_url'") from None
        models = []
    owners = {str(m.get("owned_by", "")).lower() for m in models if isinstance(m, dict)}
    if "vllm" in owners:
        return "vllm"
    for dialect in ("openai", "llamacpp"):
        if await _works(backend, model, dialect, timeout):
            return dialect
    return "prompt"


async def verify_endpoint(backend: Backend, model: str) -> bool:
    """True when `GET /models` accepts the key and lists `model`: every request may go at once. False when it
    cannot tell (no such route, a server that lists other names, or that serves /models without a key, as
    llama.cpp does): the caller then sends its first request alone. A rejected key raises `EndpointError`."""
    if getattr(backend, "kind", "") == "local":
        return True
    try:
        models = await backend.list_models()
    except AttemptError as err:
        if err.fatal and err.http_status in (401, 403):
            raise _refused(backend, err) from None
        return False
    ids = {str(m.get("id")) for m in models if isinstance(m, dict)}
    return model in ids
