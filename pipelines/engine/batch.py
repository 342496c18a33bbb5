"""Batch API mode: requests go to `/v1/files` + `/v1/batches` instead of live calls (cheaper, slower).

`submit_batches` sends what the cache does not hold yet, in chunks within the API's limits, and records the
batch ids in the run (`RunLayout.batches`, with the request bodies under the run's work folder).
`resume_batches` polls, puts every answer into the same cache the live engine reads, and resubmits only the
items that failed. Once every batch has ended, generating the same requests is served from the cache.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from valuecorpus.pipelines.engine.config import EngineConfig
from valuecorpus.pipelines.engine.types import GenerationRequest
from valuecorpus.schemas.errors import EndpointError, SettingsError
from valuecorpus.schemas.layout import utc_now, write_json_atomic

MAX_REQUESTS_PER_BATCH = 50_000  # OpenAI's limits per batch input file
MAX_BYTES_PER_BATCH = 190 * 1024 * 1024
ENDED = {"completed", "failed", "expired", "cancelled"}


class BatchJob(BaseModel):
    batch_id: str
    input_file_id: str
    requests: int
    custom_ids: list[str] = Field(default_factory=list)
    status: str = "validating"
    submitted_at: str = Field(default_factory=utc_now)
    collected: bool = False
    succeeded: int = 0
    failed: int = 0
    round: int = 1


class BatchState(BaseModel):
    config: dict[str, Any] = Field(description="the engine config, without the API key")
    bodies_file: str = Field(description="JSONL of {custom_id, body}: what resubmissions send again")
    jobs: list[BatchJob] = Field(default_factory=list)
    attempts: dict[str, int] = Field(default_factory=dict, description="custom_id -> submissions so far")
    failures: dict[str, str] = Field(default_factory=dict, description="custom_id -> last error, if it failed")
    max_per_batch: int = MAX_REQUESTS_PER_BATCH


@dataclass
class BatchReport:
    submitted: int = 0
    collected: int = 0
    failed: int = 0
    resubmitted: int = 0
    gave_up: int = 0
    pending: int = 0
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = (f"batches: {self.pending} running; answers collected {self.collected}, failed {self.failed}, "
                f"resubmitted {self.resubmitted}, given up {self.gave_up}")
        return "\n".join([head, *self.lines])


def load_state(path: Path) -> BatchState:
    return BatchState.model_validate_json(Path(path).read_text(encoding="utf-8"))


def _client(config: EngineConfig) -> Any:
    import openai

    if config.backend != "openai" or not config.base_url:
        raise SettingsError("Batch API mode needs an OpenAI-compatible endpoint: set 'openai_base_url'")
    key = config.api_key.get_secret_value() if config.api_key is not None else "unset"
    return openai.OpenAI(base_url=config.base_url, api_key=key, max_retries=3, timeout=config.timeout_s)


def _api(call: Any, what: str, config: EngineConfig) -> Any:
    import openai

    try:
        return call()
    except openai.AuthenticationError:
        raise EndpointError(f"{config.base_url}: {what}: the endpoint rejected the API key (HTTP 401); check "
                            "setting 'openai_api_key' / OPENAI_API_KEY") from None
    except openai.NotFoundError:
        raise EndpointError(f"{config.base_url}: {what}: not found (HTTP 404); does this endpoint offer the "
                            "Batch API (/v1/files, /v1/batches)?") from None
    except openai.APIError as err:
        raise EndpointError(f"{config.base_url}: {what} failed: {' '.join(str(err).split())[:300]}") from None


def _chunks(lines: list[bytes], max_requests: int) -> Iterable[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if chunk and (len(chunk) >= max_requests or size + len(line) > MAX_BYTES_PER_BATCH):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield chunk


def _submit_lines(client: Any, config: EngineConfig, lines: list[bytes], round_: int,
                  max_requests: int) -> list[BatchJob]:
    jobs = []
    for chunk in _chunks(lines, max_requests):
        data = b"".join(chunk)
        upload = _api(lambda d=data: client.files.create(file=("requests.jsonl", d), purpose="batch"),
                      "uploading the batch input", config)
        batch = _api(lambda u=upload: client.batches.create(input_file_id=u.id, endpoint="/v1/chat/completions",
                                                            completion_window="24h"),
                     "creating the batch", config)
        ids = [orjson.loads(line)["custom_id"] for line in chunk]
        jobs.append(BatchJob(batch_id=batch.id, input_file_id=upload.id, requests=len(chunk), custom_ids=ids,
                             status=batch.status, round=round_))
    return jobs


def _line(custom_id: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                         "body": body}) + b"\n"


def submit_batches(config: EngineConfig, requests: Iterable[GenerationRequest], batches_path: Path,
                   work_dir: Path, max_per_batch: int = MAX_REQUESTS_PER_BATCH) -> BatchReport:
    """Submit every request the cache does not answer yet; returns what was submitted."""
    from valuecorpus.pipelines.engine.core import Engine

    engine = Engine(config.model_copy(update={"progress": False}))
    try:
        bodies = engine.batch_bodies(requests)
    finally:
        engine.close()
    work_dir.mkdir(parents=True, exist_ok=True)
    bodies_file = work_dir / "batch_requests.jsonl"
    tmp = bodies_file.with_suffix(".tmp")
    tmp.write_bytes(b"".join(orjson.dumps({"custom_id": k, "body": b}) + b"\n" for k, b in bodies.items()))
    tmp.replace(bodies_file)
    state = BatchState(config=config.model_dump(mode="json"), bodies_file=str(bodies_file),
                       max_per_batch=max_per_batch)
    report = BatchReport()
    if bodies:
        client = _client(config)
        state.jobs = _submit_lines(client, config, [_line(k, b) for k, b in bodies.items()], 1, max_per_batch)
        state.attempts = dict.fromkeys(bodies, 1)
    write_json_atomic(batches_path, state.model_dump(mode="json"))
    report.submitted = len(bodies)
    report.pending = sum(1 for j in state.jobs if not j.collected)
    report.lines = [f"  {j.batch_id}: {j.requests} requests submitted" for j in state.jobs]
    return report


def resume_batches(config: EngineConfig, batches_path: Path) -> BatchReport:
    """Poll every open batch once; collect ended ones into the cache; resubmit failed items."""
    from valuecorpus.pipelines.engine.cache import open_cache

    state = load_state(batches_path)
    if not config.cache_dir:
        raise SettingsError("Batch API mode needs the response cache (cache_dir)")
    client = _client(config)
    cache = open_cache(config.cache_dir)
    report = BatchReport()
    retry: list[str] = []
    try:
        for job in state.jobs:
            if job.collected:
                continue
            batch = _api(lambda j=job: client.batches.retrieve(j.batch_id), f"polling batch {job.batch_id}", config)
            job.status = batch.status
            if batch.status not in ENDED:
                report.pending += 1
                report.lines.append(f"  {job.batch_id}: {batch.status}")
                continue
            ok, failed = _collect(client, config, cache, batch, job, state)
            job.collected, job.succeeded, job.failed = True, len(ok), len(failed)
            report.collected += len(ok)
            report.failed += len(failed)
            retry.extend(failed)
            report.lines.append(f"  {job.batch_id}: {batch.status}; {len(ok)} answers collected, "
                                f"{len(failed)} failed")
        cache.flush()
        retry = [k for k in dict.fromkeys(retry) if k not in cache.get_many([k])]
        keep = [k for k in retry if state.attempts.get(k, 1) < config.max_attempts]
        report.gave_up = len(retry) - len(keep)
        if keep:
            bodies = _read_bodies(Path(state.bodies_file), set(keep))
            round_ = max((j.round for j in state.jobs), default=0) + 1
            lines = [_line(k, bodies[k]) for k in keep if k in bodies]
            new_jobs = _submit_lines(client, config, lines, round_, state.max_per_batch)
            state.jobs.extend(new_jobs)
            for k in keep:
                state.attempts[k] = state.attempts.get(k, 1) + 1
            report.resubmitted = len(keep)
            report.pending += len(new_jobs)
            report.lines += [f"  {j.batch_id}: {j.requests} failed items resubmitted" for j in new_jobs]
    finally:
        cache.close()
        write_json_atomic(batches_path, state.model_dump(mode="json"))
    return report


def _read_bodies(path: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    found = {}
    with open(path, "rb") as fh:
        for raw in fh:
            row = orjson.loads(raw)
            if row["custom_id"] in wanted:
                found[row["custom_id"]] = row["body"]
    return found


def _collect(client: Any, config: EngineConfig, cache: Any, batch: Any, job: BatchJob,
             state: BatchState) -> tuple[list[str], list[str]]:
    """(custom ids answered, custom ids failed) of an ended batch; answers go into the cache."""
    from valuecorpus.pipelines.engine.accounting import Budget, EngineStats
    from valuecorpus.pipelines.engine.backends import completion_from_json

    ok: list[str] = []
    failed: list[str] = []
    pricing = Budget(config, EngineStats())
    for file_id, is_error in ((batch.output_file_id, False), (batch.error_file_id, True)):
        if not file_id:
            continue
        content = _api(lambda f=file_id: client.files.content(f).read(), f"downloading {file_id}", config)
        for raw in content.splitlines():
            if not raw.strip():
                continue
            row = orjson.loads(raw)
            key = row.get("custom_id")
            response = row.get("response") or {}
            if is_error or row.get("error") or response.get("status_code") != 200:
                failed.append(key)
                state.failures[key] = str(row.get("error") or response.get("status_code"))[:300]
                continue
            comp = completion_from_json(response.get("body") or {}, config.model)
            cost = pricing.cost(comp.model, comp.prompt_tokens, comp.completion_tokens)
            cache.put(key, config.model, config.endpoint_identity, {
                "c": comp.content, "p": comp.prompt_tokens, "k": comp.completion_tokens, "m": comp.model,
                "f": comp.finish_reason, "d": cost, "a": state.attempts.get(key, 1), "e": config.dialect,
                "b": job.batch_id, **({"t": comp.tool_calls} if comp.tool_calls else {}),
            })
            state.failures.pop(key, None)
            ok.append(key)
    if batch.status != "completed":  # failed / expired / cancelled: whatever did not come back failed
        seen = set(ok) | set(failed)
        failed += [key for key in job.custom_ids if key not in seen]
    return ok, failed


def wait_for_batches(config: EngineConfig, batches_path: Path, interval_s: float = 5.0,
                     timeout_s: float = 86400.0) -> BatchReport:
    """Resume until nothing is pending (for tests and scripts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        report = resume_batches(config, batches_path)
        if report.pending == 0 or time.monotonic() > deadline:
            return report
        time.sleep(interval_s)
