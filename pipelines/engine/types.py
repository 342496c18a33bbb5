"""The engine's contract: what goes in (a request) and what comes out (a result or a dead letter).

Exactly one outcome per request, always: requests = results + dead letters.
"""

from __future__ import annotations

from typing import (
    Annotated,
    Any,
    NotRequired,  # pydantic needs this one before Python 3.12
)

from pydantic import BaseModel, Field, SkipValidation
from typing_extensions import TypedDict

from valuecorpus.schemas.run_tables import DeadLetter


class Message(TypedDict):
    """A chat message, kept as the plain dict the endpoints take: nothing to convert per request. An assistant
    turn that called tools carries `tool_calls` (OpenAI format, content may be None); a tool's answer has role
    "tool" and the `tool_call_id` it answers."""

    role: str
    content: str | None
    tool_calls: NotRequired[list[dict[str, Any]]]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]


class GenerationParams(BaseModel):
    temperature: float = 0.0
    max_tokens: int = 512
    seed: int | None = None
    top_p: float | None = None
    repeat_penalty: float | None = Field(
        None, description="discourages repeated tokens where the backend has one (local, llama.cpp, vLLM); "
                          "None: 1.1 on the embedded model, the server's default elsewhere")
    model: str | None = Field(None, description="another model at the same endpoint for this request (e.g. the "
                              "participant of an interview); None = the engine's model")


class GenerationRequest(BaseModel):
    request_id: str = Field(description="stable: derived from the plan item and step, so reruns hit the cache")
    messages: list[Message]
    # not copied on validation: requests that share one schema object are compiled once, by identity (the
    # engine checks the schema itself when it compiles it)
    json_schema: Annotated[dict[str, Any] | None, SkipValidation] = Field(
        None, description="structured output; None = free text")
    params: GenerationParams = Field(default_factory=GenerationParams)
    tools: Annotated[list[dict[str, Any]] | None, SkipValidation] = Field(
        None, description="OpenAI tool definitions ({type: function, function: {name, description, parameters}}); "
                          "part of the request's identity (the cache key)")
    metadata: dict[str, Any] = Field(default_factory=dict, description="passed through untouched to the outcome")


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class GenerationResult(BaseModel):
    request_id: str
    content: str = Field(description="raw text of the completion")
    parsed: Any = Field(None, description="the JSON value when a schema was requested (schema-valid)")
    tool_calls: list[dict[str, Any]] | None = Field(
        None, description="the tools the model called: [{id, name, arguments (JSON text)}], when it called any")
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    model: str = ""
    endpoint_kind: str = Field("", description="local | openai | vllm | llamacpp | prompt ...")
    cache_key: str = ""
    cached: bool = False
    billed: bool = Field(True, description="paid by this run: a fresh answer, or a cached one its own earlier "
                         "(killed) attempt paid for; False = answered from another run's cache entry, at 0")
    endpoint: str = Field("", description="`local` or the endpoint URL without credentials")
    attempts: int = 1
    latency_s: float = 0.0
    metadata: dict[str, Any] = Field(default_factory=dict)


Outcome = GenerationResult | DeadLetter
