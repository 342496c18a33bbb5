"""A bare aiohttp client: C workers over one session, JSON in and out, nothing else (the reference)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from workload import MAX_TOKENS, MODEL, Meter, messages, params, response_format


async def main(base_url: str, n: int, c: int) -> None:
    url = base_url + "/chat/completions"
    todo = iter(range(n))
    ok = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        for i in todo:
            body = {"model": MODEL, "messages": messages(i), "response_format": response_format(),
                    "max_tokens": MAX_TOKENS}
            async with session.post(url, data=json.dumps(body),
                                    headers={"Content-Type": "application/json"}) as resp:
                answer = json.loads(await resp.read())
            json.loads(answer["choices"][0]["message"]["content"])
            ok += resp.status == 200

    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=connector) as session:
        with Meter() as meter:
            await asyncio.gather(*(worker(session) for _ in range(c)))
    meter.report(n, ok, aiohttp=aiohttp.__version__)


if __name__ == "__main__":
    p = params()
    asyncio.run(main(p["base_url"], p["n"], p["c"]))
