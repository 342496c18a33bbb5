"""The hot path: OpenAI-compatible chat completions over one aiohttp session with a pool sized to concurrency."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from valuecorpus.pipelines.engine.attempts import AttemptError, http_error
from valuecorpus.pipelines.engine.backends import Completion, completion_from_json


class HttpBackend:
    kind = "openai"
    max_concurrency: int | None = None
    adapts = True

    def __init__(self, base_url: str, model: str, api_key: str | None, pool_size: int, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._url = self.base_url + "/chat/completions"
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._pool_size = pool_size
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0, ttl_dns_cache=300,
                                             keepalive_timeout=30)
            # the timeout lives on the session: no per-request timer object on the hot path
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers,
                                                  timeout=aiohttp.ClientTimeout(total=self._timeout_s))
        return self._session

    async def complete(self, body: dict[str, Any], timeout: float) -> Completion:
        session = self._get_session()
        extra = {} if timeout == self._timeout_s else {"timeout": aiohttp.ClientTimeout(total=timeout)}
        try:
            async with session.post(self._url, data=orjson.dumps(body), **extra) as resp:
                raw = await resp.read()
                status = resp.status
                # OpenAI's millisecond header is more precise than Retry-After's whole seconds
                ms = resp.headers.get("retry-after-ms")
                retry_after = f"{ms}ms" if ms else resp.headers.get("Retry-After")
        except TimeoutError:
            raise AttemptError("timeout", f"no answer within {timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as err:
            raise AttemptError("connection", f"connection to {self.base_url} failed: {err.__class__.__name__}: "
                               f"{' '.join(str(err).split())[:200]}") from None
        if status != 200:
            raise http_error(status, raw.decode("utf-8", "replace"), retry_after)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise AttemptError("bad_response", f"the endpoint's answer is not JSON ({len(raw)} bytes, truncated?)",
                               raw=raw.decode("utf-8", "replace")) from None
        return completion_from_json(data, self.model)

    async def list_models(self) -> list[dict[str, Any]]:
        session = self._get_session()
        try:
            async with session.get(self.base_url + "/models", timeout=aiohttp.ClientTimeout(total=30)) as resp:
                if resp.status != 200:
                    raise http_error(resp.status, await resp.text(), resp.headers.get("Retry-After"))
                data = orjson.loads(await resp.read())
        except TimeoutError:
            raise AttemptError("timeout", f"{self.base_url}/models did not answer within 30 s") from None
        except aiohttp.ClientError as err:
            raise AttemptError("connection", f"cannot reach {self.base_url}: {err.__class__.__name__}") from None
        return list(data.get("data") or []) if isinstance(data, dict) else []

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
