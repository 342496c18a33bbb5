"""The `openai` SDK as a transport (e.g. Azure, or any client-side feature the SDK has). Slower than the
aiohttp path (milliseconds of client CPU per request), so it is an option, not the default."""

from __future__ import annotations

from typing import Any

from valuecorpus.pipelines.engine.attempts import AttemptError, http_error
from valuecorpus.pipelines.engine.backends import Completion, completion_from_json


class SdkBackend:
    kind = "openai"
    max_concurrency: int | None = None
    adapts = True

    def __init__(self, base_url: str, model: str, api_key: str | None, pool_size: int) -> None:
        import openai

        self._openai = openai
        self.base_url = base_url
        self.model = model
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "unset", max_retries=0)

    async def complete(self, body: dict[str, Any], timeout: float) -> Completion:
        openai = self._openai
        body = dict(body)
        known = {"model", "messages", "temperature", "max_tokens", "seed", "top_p", "response_format", "tools"}
        extra = {k: body.pop(k) for k in list(body) if k not in known}
        try:
            resp = await self._client.chat.completions.create(**body, extra_body=extra or None, timeout=timeout)
        except openai.APITimeoutError:
            raise AttemptError("timeout", f"no answer within {timeout:g} s") from None
        except openai.APIConnectionError as err:
            reason = f"connection to {self.base_url} failed: {err.__class__.__name__}"
            raise AttemptError("connection", reason) from None
        except openai.APIStatusError as err:
            raise http_error(err.status_code, err.response.text, err.response.headers.get("Retry-After")) from None
        return completion_from_json(resp.model_dump(), self.model)

    async def list_models(self) -> list[dict[str, Any]]:
        page = await self._client.models.list()
        return [m.model_dump() for m in page.data]

    async def aclose(self) -> None:
        await self._client.close()
