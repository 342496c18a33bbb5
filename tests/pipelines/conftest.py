"""Fixtures of the pipelines tests: a fake OpenAI-compatible server with canned answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from canned import Responder
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig


@pytest.fixture
def responder() -> Responder:
    return Responder()


@pytest.fixture
def fake_llm(responder: Responder) -> Iterator[FakeServer]:
    with FakeServer(FakeServerConfig(responder=responder, model="fake-model")) as server:
        yield server
