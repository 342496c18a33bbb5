"""The fake OpenAI-compatible server, seen from plain HTTP clients (aiohttp, the openai SDK, a subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import openai
import pytest
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig
from valuecorpus_testing.fake_server_content import request_hash
from valuecorpus_testing.fake_server_faults import parse_faults, parse_latency

from valuecorpus.schemas.jsonschema import constrain, model_json_schema
from valuecorpus.schemas.records import RECORD_TYPES

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["text", "values", "score"],
          "properties": {"text": {"type": "string", "minLength": 5, "maxLength": 80},
                         "values": {"type": "array", "items": {"enum": ["honesty", "care", "loyalty"]},
                                    "minItems": 2, "maxItems": 2, "uniqueItems": True},
                         "score": {"type": "integer", "minimum": 3, "maximum": 7}}}


def chat_body(text: str = "Write a dilemma.", schema: dict[str, Any] | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {"model": "fake-model", "messages": [{"role": "user", "content": text}], **extra}
    if schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    return body


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeServerConfig(retry_after_s=2, hang_s=30)) as srv:
        yield srv


async def post(url: str, body: dict, timeout: float = 5,
               headers: dict | None = None) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as session, session.post(
            url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def test_binds_loopback_only(server: FakeServer) -> None:
    host = server._server.sockets[0].getsockname()[0]  # type: ignore[union-attr]
    assert host == "127.0.0.1"
    with pytest.raises(ValueError, match="loopback"):
        FakeServerConfig(host="0.0.0.0")


def test_schema_answers_are_valid_and_deterministic(server: FakeServer) -> None:
    url = server.base_url + "/chat/completions"
    status, _, raw = asyncio.run(post(url, chat_body(schema=SCHEMA)))
    assert status == 200
    answer = json.loads(raw)
    content = json.loads(answer["choices"][0]["message"]["content"])
    jsonschema.validate(content, SCHEMA)
    assert answer["usage"]["total_tokens"] == answer["usage"]["prompt_tokens"] + answer["usage"][
        "completion_tokens"] > 0
    again = json.loads(asyncio.run(post(url, chat_body(schema=SCHEMA)))[2])
    assert again["choices"][0]["message"]["content"] == answer["choices"][0]["message"]["content"]
    other = json.loads(asyncio.run(post(url, chat_body("Another prompt.", schema=SCHEMA)))[2])
    jsonschema.validate(json.loads(other["choices"][0]["message"]["content"]), SCHEMA)


def test_every_record_schema_gets_valid_instances() -> None:
    schemas = [model_json_schema(model) for model in RECORD_TYPES.values()]
    schemas.append(constrain(model_json_schema(RECORD_TYPES["dilemma"]), "actions[].values_direct[]",
                             ["honesty", "care"]))
    bodies = [chat_body(f"prompt {n}", schema=s) for s in schemas for n in range(2)]
    with FakeServer() as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="any", max_retries=0)
        for body in bodies:
            answer = client.chat.completions.create(**body)
            schema = body["response_format"]["json_schema"]["schema"]
            jsonschema.validate(json.loads(answer.choices[0].message.content or ""), schema)


DIALECTS = ["json_schema", "json_object_schema", "guided_json", "structured_outputs"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_structured_dialects(server: FakeServer, dialect: str) -> None:
    body = chat_body()
    if dialect == "json_schema":
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA}}
    elif dialect == "json_object_schema":
        body["response_format"] = {"type": "json_object", "schema": SCHEMA}
    elif dialect == "guided_json":
        body["guided_json"] = SCHEMA
    else:
        body["structured_outputs"] = {"json": SCHEMA}
    status, _, raw = asyncio.run(post(server.base_url + "/chat/completions", body))
    assert status == 200
    jsonschema.validate(json.loads(json.loads(raw)["choices"][0]["message"]["content"]), SCHEMA)


def test_llamacpp_and_no_structured_output_emulation() -> None:
    with FakeServer(structured="llamacpp") as srv:
        url = srv.base_url + "/chat/completions"
        assert asyncio.run(post(url, chat_body(schema=SCHEMA)))[0] == 500
        status, _, raw = asyncio.run(post(url, {**chat_body(), "response_format": {
            "type": "json_object", "schema": SCHEMA}}))
        assert status == 200
        jsonschema.validate(json.loads(json.loads(raw)["choices"][0]["message"]["content"]), SCHEMA)
    with FakeServer(structured="none") as srv:
        url = srv.base_url + "/chat/completions"
        raw = asyncio.run(post(url, chat_body(schema=SCHEMA)))[2]
        content = json.loads(raw)["choices"][0]["message"]["content"]
        with pytest.raises(json.JSONDecodeError):
            json.loads(content)
        prompt = "Answer with JSON that follows this schema:\n" + json.dumps(SCHEMA)
        content = json.loads(asyncio.run(post(url, chat_body(prompt, schema=SCHEMA)))[2])[
            "choices"][0]["message"]["content"]
        fenced = content.split("```json", 1)[1].split("```", 1)[0]
        jsonschema.validate(json.loads(fenced), SCHEMA)


async def _fault_outcome(url: str, body: dict) -> str:
    try:
        status, headers, raw = await post(url, body, timeout=1.0)
    except TimeoutError:
        return "timeout"
    except aiohttp.ClientPayloadError:
        return "payload_error"
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
        return "connection_error"
    if status == 429:
        assert headers["Retry-After"] == "2" and headers["retry-after-ms"] == "2000"
    if status != 200:
        return str(status)
    try:
        answer = json.loads(raw)
    except json.JSONDecodeError:
        return "truncated_body"
    try:
        json.loads(answer["choices"][0]["message"]["content"])
    except json.JSONDecodeError:
        return "invalid_content"
    return "ok"


@pytest.mark.parametrize(("kind", "seen"), [
    ("429", "429"), ("500", "500"), ("503", "503"), ("hang", "timeout"), ("reset", "connection_error"),
    ("truncated", "truncated_body"), ("cut", "payload_error"), ("invalid_json", "invalid_content")])
def test_each_fault_kind_is_observable_and_a_retry_succeeds(server: FakeServer, kind: str, seen: str) -> None:
    server.reset(faults=f"{kind}@1")
    url = server.base_url + "/chat/completions"
    body = chat_body(f"fault {kind}", schema=SCHEMA)
    assert asyncio.run(_fault_outcome(url, body)) == seen
    assert asyncio.run(_fault_outcome(url, body)) == "ok"  # attempt 2 of the same request
    time.sleep(0.05)  # the server notices the client's disconnect (hang) asynchronously
    stats = server.stats()
    assert stats["by_path_outcome"]["/v1/chat/completions"] == {kind: 1, "ok": 1}
    assert stats["in_flight"] == 0 and stats["distinct_requests"] == 1 and stats["max_attempts"] == 2


def test_fault_rates_are_deterministic_per_request_and_attempt(server: FakeServer) -> None:
    url = server.base_url + "/chat/completions"

    async def run() -> list[str]:
        bodies = [chat_body(f"p{n}", schema=SCHEMA) for n in range(60) for _ in range(2)]
        return [await _fault_outcome(url, body) for body in bodies]

    server.reset(faults="500:0.3,503:0.2")
    first = asyncio.run(run())
    server.reset(faults="500:0.3,503:0.2")
    assert asyncio.run(run()) == first
    assert {"ok", "500", "503"} == set(first)
    # attempts draw independently: some request fails on attempt 1 and succeeds on attempt 2
    assert any(first[i] != "ok" and first[i + 1] == "ok" for i in range(0, len(first), 2))
    stats = server.stats()
    assert stats["requests"] == 120
    assert sum(stats["by_outcome"].values()) == 120


def test_first_mode_faults_a_share_of_requests_and_answers_their_retries() -> None:
    spec = "500:0.2,hang:0.1"
    per_attempt, first = parse_faults(spec), parse_faults(spec, mode="first")
    hashes = [f"h{n}" for n in range(2_000)]
    # on a first attempt both modes draw alike; only per-attempt draws again on a retry
    assert [first.decide(h, 1, 1) for h in hashes] == [per_attempt.decide(h, 1, 1) for h in hashes]
    faulted = sum(first.decide(h, 1, 1) is not None for h in hashes)
    assert 500 < faulted < 700  # 30 % of 2,000 requests
    assert all(first.decide(h, attempt, 1) is None for h in hashes for attempt in (2, 3))
    assert sum(per_attempt.decide(h, 2, 1) is not None for h in hashes) > 400
    # schedules are not rates: they still apply to every attempt they name
    assert parse_faults("429@2", mode="first").decide("h", 2, 1) == "429"
    with pytest.raises(ValueError, match="fault mode 'once'"):
        parse_faults(spec, mode="once")


def test_schedule_every_nth_request() -> None:
    plan = parse_faults("503%3")
    assert [plan.decide("h", 1, seq) for seq in range(1, 7)] == [None, None, "503", None, None, "503"]
    with pytest.raises(ValueError, match="unknown kind"):
        parse_faults("boom:0.1")
    with pytest.raises(ValueError, match="add up"):
        parse_faults("500:0.7,503:0.7")


def test_latency_distributions() -> None:
    assert parse_latency("200")() == 0.2 and parse_latency("fixed:50")() == 0.05
    assert all(0.1 <= parse_latency("uniform:100,300")() <= 0.3 for _ in range(100))
    assert all(parse_latency("normal:200,50")() >= 0 for _ in range(100))
    draws = sorted(parse_latency("lognormal:200,0.5")() for _ in range(2001))
    assert 0.15 < draws[1000] < 0.25  # the median is the given median
    with pytest.raises(ValueError, match="latency spec"):
        parse_latency("gamma:1,2")


def test_latency_is_applied() -> None:
    with FakeServer(latency="fixed:300") as srv:
        start = time.monotonic()
        assert asyncio.run(post(srv.base_url + "/chat/completions", chat_body()))[0] == 200
        assert time.monotonic() - start >= 0.3


def test_a_client_that_gives_up_is_counted() -> None:
    with FakeServer(latency=2000) as srv:
        with pytest.raises(TimeoutError):
            asyncio.run(post(srv.base_url + "/chat/completions", chat_body(), timeout=0.3))
        deadline = time.monotonic() + 5
        while srv.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = srv.stats()
        assert stats["by_outcome"] == {"client_gone": 1} and stats["in_flight"] == 0


def test_max_inflight_answers_429() -> None:
    with FakeServer(latency=300, max_inflight=2) as srv:
        async def burst() -> list[int]:
            return [r[0] for r in await asyncio.gather(
                *(post(srv.base_url + "/chat/completions", chat_body(f"q{n}")) for n in range(5)))]

        assert sorted(asyncio.run(burst())) == [200, 200, 429, 429, 429]
        assert srv.stats()["max_in_flight"] == 2


def test_api_key_required(server: FakeServer) -> None:
    with FakeServer(api_key="sk-right") as srv:
        url = srv.base_url + "/chat/completions"
        status, _, raw = asyncio.run(post(url, chat_body(), headers={"Authorization": "Bearer sk-wrong"}))
        assert status == 401 and json.loads(raw)["error"]["code"] == "invalid_api_key"
        assert asyncio.run(post(url, chat_body(), headers={"Authorization": "Bearer sk-right"}))[0] == 200
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=srv.base_url, api_key="sk-wrong", max_retries=0).models.list()
        models = openai.OpenAI(base_url=srv.base_url, api_key="sk-right").models.list()
        assert models.data[0].id == "fake-model"


def test_canned_responses_file_and_callable(tmp_path: Path) -> None:
    rules = tmp_path / "canned.json"
    rules.write_text(json.dumps({"rules": [
        {"contains": "dilemma", "content": {"text": "Should Ana tell her friend the truth?"}},
        {"contains": "pick", "choices": ["first", "second"]}]}))
    with FakeServer(responses=rules) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x")
        answer = client.chat.completions.create(model="m",
                                                messages=[{"role": "user", "content": "A dilemma"}])
        assert json.loads(answer.choices[0].message.content or "")["text"].endswith("?")
        picked = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "pick one"}])
        assert picked.choices[0].message.content in ("first", "second")
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"honesty": "Should Ben return the extra change?"}))
    with FakeServer(responses=plain) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x")
        answer = client.chat.completions.create(
            model="m", messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "on honesty"}])
        assert answer.choices[0].message.content == "Should Ben return the extra change?"
    messages = [{"role": "user", "content": "exact"}]
    key = request_hash(messages)

    def respond(request: dict[str, Any]) -> Any:
        return "by hash" if request["hash"] == key else None

    with FakeServer(responder=respond) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x")
        answer = client.chat.completions.create(model="m", messages=messages)
        assert answer.choices[0].message.content == "by hash"


def test_field_overlay_and_question_fields(tmp_path: Path) -> None:
    dilemma = model_json_schema(RECORD_TYPES["dilemma"])
    rules = tmp_path / "canned.json"
    rules.write_text(json.dumps({"rules": [{"contains": "overlay", "fields": {"basic_situation": "fixed"}}]}))
    with FakeServer(responses=rules) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x")
        for text in ("overlay me", "generate me"):
            answer = client.chat.completions.create(**chat_body(text, schema=dilemma))
            value = json.loads(answer.choices[0].message.content or "")
            jsonschema.validate(value, dilemma)
            assert value["dilemma_situation"].endswith("?")  # its description asks for a question
            assert (value["basic_situation"] == "fixed") == (text == "overlay me")


def test_token_counts_and_length_limit() -> None:
    with FakeServer(prompt_tokens=11, completion_tokens=40) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x")
        answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 40)  # type: ignore[union-attr]
        short = client.chat.completions.create(model="m", max_tokens=5,
                                               messages=[{"role": "user", "content": "hi"}])
        assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 5  # type: ignore
        assert srv.stats()["tokens"] == {"prompt": 22, "completion": 45}


def test_batches_flow_with_the_openai_sdk() -> None:
    with FakeServer(batch_delay_s=0.3, batch_fail_match="bad") as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x")
        lines = [{"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                  "body": chat_body(f"batch item {cid}", schema=SCHEMA)} for cid in ("a1", "a2", "bad3")]
        upload = client.files.create(file=("in.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
                                     purpose="batch")
        batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        assert client.batches.retrieve(batch.id).status in ("validating", "in_progress")
        time.sleep(0.35)
        done = client.batches.retrieve(batch.id)
        assert done.status == "completed"
        counts = done.request_counts
        assert (counts.total, counts.completed, counts.failed) == (3, 2, 1)  # type: ignore[union-attr]
        out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]  # type: ignore
        err = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]  # type: ignore
        assert sorted(x["custom_id"] for x in out) == ["a1", "a2"] and err[0]["custom_id"] == "bad3"
        assert err[0]["response"]["status_code"] == 500
        for row in out:
            assert row["response"]["status_code"] == 200
            content = row["response"]["body"]["choices"][0]["message"]["content"]
            jsonschema.validate(json.loads(content), SCHEMA)
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_missing")
        stats = srv.stats()
        assert stats["by_path"]["/v1/files"] == 1 and stats["by_path"]["/v1/batches/{id}"] == 3
        assert stats["by_path_outcome"]["/v1/batches/{id}"] == {"ok": 2, "404": 1}


def test_stats_and_reset(server: FakeServer) -> None:
    for n in range(3):
        asyncio.run(post(server.base_url + "/chat/completions", chat_body(f"s{n}")))
    asyncio.run(post(server.base_url + "/chat/completions", chat_body("s0")))

    async def control() -> tuple[dict, dict]:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/stats") as resp:
                stats = await resp.json()
            async with session.post(server.url + "/reset", json={"faults": "500@1"}) as resp:
                assert resp.status == 200
            async with session.get(server.url + "/stats") as resp:
                return stats, await resp.json()

    before, after = asyncio.run(control())
    assert before["by_path"] == {"/v1/chat/completions": 4} and before["distinct_requests"] == 3
    assert before["repeated_ok"] == 1
    assert after["requests"] == 0 and after["config"]["faults"] == "500@1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a listening socket on `port`, from /proc/net/tcp (and any IPv6 listener)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]) if len(address) == 8 else "ipv6:" + address)
    return found


def test_subprocess_serves_and_stops_by_pid(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "valuecorpus_testing.fake_server", "--port", "0", "--port-file",
         str(port_file), "--latency", "uniform:1,5", "--faults", "500@1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert f"pid {proc.pid}" in line
        port = int(port_file.read_text())
        assert f"127.0.0.1:{port}" in line
        assert _listening_addresses(port) == {"127.0.0.1"}  # loopback only, as the kernel sees it
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        assert asyncio.run(post(url, chat_body()))[0] == 500
        assert asyncio.run(post(url, chat_body()))[0] == 200
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", port))


def test_cli_rejects_a_bad_spec() -> None:
    command = [sys.executable, "-m", "valuecorpus_testing.fake_server", "--port", str(_free_port()),
               "--faults", "teapot:0.5"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "unknown kind 'teapot'" in proc.stderr
