"""The openai SDK alone (AsyncOpenAI), on its default httpx transport or on its aiohttp transport."""

from __future__ import annotations

import asyncio
import json

import openai

try:  # the openai 3.x SDK is built on httpx2; 1.x/2.x on httpx
    import httpx2 as httpx
except ImportError:
    import httpx
from workload import MAX_TOKENS, MODEL, Meter, messages, params, response_format


async def main(base_url: str, n: int, c: int, transport: str) -> None:
    if transport == "aiohttp":
        http_client = openai.DefaultAioHttpClient(timeout=120)
    else:
        limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
        http_client = openai.DefaultAsyncHttpxClient(limits=limits, timeout=120)
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, http_client=http_client)
    todo = iter(range(n))
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for i in todo:
            answer = await client.chat.completions.create(
                model=MODEL, messages=messages(i), response_format=response_format(),  # type: ignore[arg-type]
                max_tokens=MAX_TOKENS)
            json.loads(answer.choices[0].message.content or "")
            ok += 1

    with Meter() as meter:
        await asyncio.gather(*(worker() for _ in range(c)))
    await client.close()
    meter.report(n, ok, openai=openai.__version__, transport=transport)


if __name__ == "__main__":
    p = params()
    asyncio.run(main(p["base_url"], p["n"], p["c"], p.get("transport", "httpx")))
