"""A fake OpenAI-compatible server on 127.0.0.1, for testing recipes offline and for benchmarks.

    python -m valuecorpus_testing.fake_server --port 8089 --latency-ms 200 \\
        --faults "429:0.05,500:0.05,hang:0.02" --responses canned.json

or in-process: `with FakeServer(FakeServerConfig(latency="200")) as server:` then `server.base_url`,
`server.stats()`, `server.reset(faults=...)`.

Endpoints: POST /v1/chat/completions, GET /v1/models, /v1/files (upload, retrieve, content, delete),
/v1/batches (create, retrieve, cancel, list), GET /health, GET /stats (request counts by path and outcome),
POST /reset (clears counters, attempts, files and batches; an optional JSON body changes `faults`/`latency`).
Answers are deterministic per request (see `fake_server_content`); faults: see `fake_server_faults`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from valuecorpus_testing.fake_server_app import STRUCTURED_MODES, FakeServerConfig, ServerApp
from valuecorpus_testing.fake_server_faults import FAULT_MODES, parse_faults, parse_latency
from valuecorpus_testing.fake_server_http import Connection

__all__ = ["STRUCTURED_MODES", "FakeServer", "FakeServerConfig", "main", "serve"]


async def serve(config: FakeServerConfig) -> tuple[asyncio.Server, ServerApp]:
    """Start serving on the running loop; returns the asyncio server and the app (its state)."""
    app = ServerApp(config)

    def factory() -> Connection:
        app.c.connections += 1
        return Connection(app.handle, app.on_lost)

    server = await asyncio.get_running_loop().create_server(factory, config.host, config.port, backlog=4096)
    return server, app


class FakeServer:
    """The fake server in a background thread of this process: `start()`, `stop()`, `.url`, `.stats()`."""

    def __init__(self, config: FakeServerConfig | None = None, **overrides: Any) -> None:
        self.config = config or FakeServerConfig(**overrides)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._app: ServerApp | None = None
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as `base_url`."""
        return f"{self.url}/v1"

    def start(self) -> FakeServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server, self._app = loop.run_until_complete(serve(self.config))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai-server", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def _call(self, fn: Any, *args: Any) -> Any:
        async def call() -> Any:
            return fn(*args)

        assert self._loop is not None, "start() the server first"
        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(10)

    def stats(self) -> dict[str, Any]:
        return self._call(lambda: json.loads(json.dumps(self._app.stats())))  # type: ignore[union-attr]

    def reset(self, faults: str | None = None, latency: str | float | None = None) -> None:
        def do() -> None:
            app = self._app
            assert app is not None
            app.configure(faults if faults is not None else app.config.faults,
                          latency if latency is not None else app.config.latency)
            app.reset_state()

        self._call(do)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m valuecorpus_testing.fake_server",
                                description="A fake OpenAI-compatible server on 127.0.0.1.")
    p.add_argument("--port", type=int, default=0, help="0 = any free port (printed on start)")
    p.add_argument("--port-file", type=Path, help="write the port here once listening")
    lat = p.add_mutually_exclusive_group()
    lat.add_argument("--latency-ms", type=float, help="fixed latency of chat completions")
    lat.add_argument("--latency", help="fixed:MS | uniform:LO,HI | normal:MEAN,SD | lognormal:MEDIAN,SIGMA")
    p.add_argument("--faults", help="e.g. '429:0.05,500:0.05,hang:0.02' or '429@1' (see fake_server_faults)")
    p.add_argument("--fault-mode", choices=FAULT_MODES, default="hash", help="hash: every attempt draws; "
                   "first: only a request's first attempt draws (rates are shares of requests); random: seeded")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--responses", type=Path, help="JSON file of canned responses (see fake_server_content)")
    p.add_argument("--api-key", help="require this key (Bearer); 401 otherwise. Default: any key or none")
    p.add_argument("--model", default="fake-model")
    p.add_argument("--public-models", action="store_true", help="serve /v1/models without the key (llama.cpp)")
    p.add_argument("--prompt-tokens", type=int)
    p.add_argument("--completion-tokens", type=int)
    p.add_argument("--structured", choices=STRUCTURED_MODES, default="all")
    p.add_argument("--retry-after", type=float, default=1.0, help="seconds, sent with 429")
    p.add_argument("--hang-s", type=float, default=3600.0)
    p.add_argument("--saturate-at", type=int)
    p.add_argument("--max-inflight", type=int)
    p.add_argument("--batch-delay", type=float, default=1.0, help="seconds until a batch completes")
    p.add_argument("--batch-fail-rate", type=float, default=0.0)
    p.add_argument("--batch-fail-match", help="batch items whose custom_id contains this fail")
    p.add_argument("--route-delay", help="'METHOD ROUTE=S,...': answer these routes S seconds late (the request "
                   "itself is carried out at once), e.g. 'POST /v1/batches=3'")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    api_key = args.api_key or os.environ.get("FAKE_SERVER_API_KEY") or None
    try:
        config = FakeServerConfig(
            port=args.port, latency=args.latency if args.latency else args.latency_ms, faults=args.faults,
            fault_mode=args.fault_mode, seed=args.seed, responses=args.responses, api_key=api_key,
            model=args.model, public_models=args.public_models, prompt_tokens=args.prompt_tokens,
            completion_tokens=args.completion_tokens,
            structured=args.structured, retry_after_s=args.retry_after, hang_s=args.hang_s,
            saturate_at=args.saturate_at, max_inflight=args.max_inflight, batch_delay_s=args.batch_delay,
            batch_fail_rate=args.batch_fail_rate, batch_fail_match=args.batch_fail_match,
            route_delay=args.route_delay)
        parse_faults(config.faults, config.fault_mode)
        parse_latency(config.latency)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        server, _ = await serve(config)
        port = server.sockets[0].getsockname()[1]
        if args.port_file:
            tmp = args.port_file.with_suffix(".tmp")
            tmp.write_text(str(port))
            tmp.replace(args.port_file)
        print(f"fake OpenAI-compatible server on http://127.0.0.1:{port}/v1 (pid {os.getpid()})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
