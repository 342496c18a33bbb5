"""Fixtures for the engine tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from valuecorpus_testing.fake_server_process import FakeServerProcess


@pytest.fixture
def fake_server() -> Iterator[Any]:
    """`fake_server(*cli_args)` starts a fake server; all are stopped at the end of the test."""
    started: list[FakeServerProcess] = []

    def start(*args: str) -> FakeServerProcess:
        server = FakeServerProcess(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
