"""Batch API mode: requests go to `/v1/files` + `/v1/batches` instead of live calls (cheaper, slower).

`submit_batches` sends what the cache does not hold yet, in chunks within the API's limits (requests and bytes
per input file); `resume_batches` polls, puts every answer into the same cache the live engine reads (priced at
the batch price), and resubmits only the items that failed or expired. Once every batch has ended, generating
the same requests is served from the cache.

Never the same request twice, even across a `kill -9` at any point: every submission is written to the state
file (`batches.json`) *before* its first call, under a token of its own. The input file is uploaded under a
name holding the token and the batch is created with the token in its metadata, so a rerun that finds a
submission without a batch id looks the batch (or the uploaded file) up by its token instead of sending it
again. For the same reason the SDK retries nothing (`max_retries=0`): a `batches.create` retried after a lost
answer could create a second batch. The one resubmission policy is per item: a failed or expired item is sent
again in a later round, up to `max_attempts` submissions in all.
"""

from __future__ import annotations

import time
import uuid
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
TOKEN_KEY = "valuecorpus_submission"  # batch metadata key: finds a batch whose id a killed process never saved


class BatchJob(BaseModel):
    token: str = Field(default_factory=lambda: uuid.uuid4().hex, description="names the submission at the API")
    batch_id: str = Field("", description="empty until the API has answered `batches.create`")
    input_file_id: str = Field("", description="empty until the upload has been answered")
    input_path: str = Field("", description="the exact JSONL this submission uploads (under the run's _work)")
    requests: int
    custom_ids: list[str] = Field(default_factory=list)
    status: str = "planned"
    submitted_at: str = Field(default_factory=utc_now)
    collected: bool = False
    succeeded: int = 0
    failed: int = 0
    round: int = 1
    step: str = ""


class BatchState(BaseModel):
    config: dict[str, Any] = Field(description="the engine config, without the API key")
    bodies_file: str = Field("", description="(older states) JSONL of {custom_id, body}")
    jobs: list[BatchJob] = Field(default_factory=list)
    attempts: dict[str, int] = Field(default_factory=dict, description="custom_id -> submissions so far")
    failures: dict[str, str] = Field(default_factory=dict, description="custom_id -> last error, if it failed")
    max_per_batch: int = MAX_REQUESTS_PER_BATCH
    max_bytes_per_batch: int = MAX_BYTES_PER_BATCH
    run_id: str | None = Field(None, description="the run that pays for these answers (cache entries say so)")
    extra: dict[str, Any] = Field(default_factory=dict, description="what the caller needs to continue the run")

    def open_ids(self) -> set[str]:
        return {k for j in self.jobs if not j.collected for k in j.custom_ids}

    def given_up(self, max_attempts: int) -> dict[str, str]:
        """Items that failed on their last allowed submission: they end as dead letters."""
        open_ids = self.open_ids()
        return {k: why for k, why in self.failures.items()
                if k not in open_ids and self.attempts.get(k, 0) >= max_attempts}


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


def save_state(path: Path, state: BatchState) -> None:
    write_json_atomic(path, state.model_dump(mode="json"))


def new_state(config: EngineConfig, max_per_batch: int = MAX_REQUESTS_PER_BATCH, run_id: str | None = None,
              **extra: Any) -> BatchState:
    return BatchState(config=config.model_dump(mode="json"), max_per_batch=max_per_batch, run_id=run_id,
                      extra=extra)


def _client(config: EngineConfig) -> Any:
    import openai

    if config.backend != "openai" or not config.base_url:
        raise SettingsError("Batch API mode needs an OpenAI-compatible endpoint: set 'openai_base_url'")
    key = config.api_key.get_secret_value() if config.api_key is not None else "unset"
    # no SDK retries: a retried create could submit twice; a failed call leaves the state to the next resume
    return openai.OpenAI(base_url=config.base_url, api_key=key, max_retries=0, timeout=config.timeout_s)


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
        raise EndpointError(f"{config.base_url}: {what} failed: {' '.join(str(err).split())[:300]}; the run's "
                            "batch state is saved: resume it to try again") from None


def _chunks(lines: list[bytes], max_requests: int, max_bytes: int) -> Iterable[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if chunk and (len(chunk) >= max_requests or size + len(line) > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield chunk


def _line(custom_id: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                         "body": body}) + b"\n"


def _filename(job: BatchJob) -> str:
    return f"valuecorpus-{job.token}.jsonl"


def plan_submissions(state: BatchState, path: Path, work_dir: Path, bodies: dict[str, dict[str, Any]],
                     step: str = "") -> list[BatchJob]:
    """Record the submissions of `bodies` (by custom id) in the state file before any of them is sent."""
    work_dir.mkdir(parents=True, exist_ok=True)
    round_ = max((j.round for j in state.jobs), default=0) + 1
    jobs = []
    for chunk in _chunks([_line(k, b) for k, b in bodies.items()], state.max_per_batch, state.max_bytes_per_batch):
        job = BatchJob(requests=len(chunk), custom_ids=[orjson.loads(line)["custom_id"] for line in chunk],
                       round=round_, step=step)
        job.input_path = str(work_dir / _filename(job))
        tmp = Path(job.input_path + ".tmp")
        tmp.write_bytes(b"".join(chunk))
        tmp.replace(job.input_path)
        for k in job.custom_ids:
            state.attempts[k] = state.attempts.get(k, 0) + 1
        jobs.append(job)
    state.jobs.extend(jobs)
    save_state(path, state)
    return jobs


def send_planned(client: Any, config: EngineConfig, state: BatchState, path: Path,
                 fresh: Iterable[BatchJob] = ()) -> list[BatchJob]:
    """Upload and create every planned submission; one that a killed process may have sent already (any but
    the `fresh` ones this process just planned) is looked up by its token first. The state is saved after
    each call that the API answered."""
    sent = []
    fresh_tokens = {j.token for j in fresh}
    for job in state.jobs:
        if job.batch_id:
            continue
        found = None if job.token in fresh_tokens else _find_batch(client, config, job)
        if found is not None:
            job.batch_id, job.input_file_id, job.status = found.id, found.input_file_id, found.status
            save_state(path, state)
            sent.append(job)
            continue
        if not job.input_file_id and job.token not in fresh_tokens:
            job.input_file_id = _find_file(client, config, job) or ""
        if not job.input_file_id:
            data = Path(job.input_path).read_bytes()
            upload = _api(lambda j=job, d=data: client.files.create(file=(_filename(j), d), purpose="batch"),
                          "uploading the batch input", config)
            job.input_file_id = upload.id
            save_state(path, state)
        batch = _api(lambda j=job: client.batches.create(
            input_file_id=j.input_file_id, endpoint="/v1/chat/completions", completion_window="24h",
            metadata={TOKEN_KEY: j.token}), "creating the batch", config)
        job.batch_id, job.status = batch.id, batch.status
        save_state(path, state)
        sent.append(job)
    return sent


def _find_batch(client: Any, config: EngineConfig, job: BatchJob) -> Any:
    for batch in _api(lambda: client.batches.list(limit=100), "listing batches", config):
        if (batch.metadata or {}).get(TOKEN_KEY) == job.token:
            return batch
        if batch.created_at and batch.created_at < _epoch(job.submitted_at) - 3600:
            break  # newest first: older batches cannot be this submission's
    return None


def _find_file(client: Any, config: EngineConfig, job: BatchJob) -> str | None:
    for f in _api(lambda: client.files.list(purpose="batch"), "listing files", config):
        if f.filename == _filename(job):
            return str(f.id)
    return None


def _epoch(stamp: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def submit_batches(config: EngineConfig, requests: Iterable[GenerationRequest], batches_path: Path,
                   work_dir: Path, max_per_batch: int = MAX_REQUESTS_PER_BATCH) -> BatchReport:
    """Submit every request that the cache does not answer and no open batch holds; returns what was submitted."""
    from valuecorpus.pipelines.engine.core import Engine

    batches_path = Path(batches_path)
    state = load_state(batches_path) if batches_path.exists() else new_state(config, max_per_batch)
    client = None
    if any(not j.batch_id for j in state.jobs):  # a killed submission: finish it before anything new
        client = _client(config)
        send_planned(client, config, state, batches_path)
    engine = Engine(config.model_copy(update={"progress": False}))
    try:
        bodies = engine.batch_bodies(requests)
    finally:
        engine.close()
    held = state.open_ids()
    bodies = {k: b for k, b in bodies.items() if k not in held}
    report = BatchReport()
    if bodies:
        jobs = plan_submissions(state, batches_path, Path(work_dir), bodies)
        send_planned(client or _client(config), config, state, batches_path, jobs)
        report.lines = [f"  {j.batch_id}: {j.requests} requests submitted" for j in jobs]
    elif not batches_path.exists():
        save_state(batches_path, state)
    report.submitted = len(bodies)
    report.pending = sum(1 for j in state.jobs if not j.collected)
    return report


def resume_batches(config: EngineConfig, batches_path: Path, resubmit: bool = True) -> BatchReport:
    """Finish killed submissions; poll every open batch once; collect ended ones into the cache; resubmit
    the items that failed or expired (`resubmit`), up to `max_attempts` submissions each."""
    from valuecorpus.pipelines.engine.cache import open_cache

    batches_path = Path(batches_path)
    state = load_state(batches_path)
    if not config.cache_dir:
        raise SettingsError("Batch API mode needs the response cache (cache_dir)")
    client = _client(config)
    send_planned(client, config, state, batches_path)
    cache = open_cache(config.cache_dir)
    report = BatchReport()
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
            cache.flush()  # the answers are durable before the job is marked collected
            job.collected, job.succeeded, job.failed = True, len(ok), len(failed)
            save_state(batches_path, state)
            report.collected += len(ok)
            report.failed += len(failed)
            report.lines.append(f"  {job.batch_id}: {batch.status}; {len(ok)} answers collected, "
                                f"{len(failed)} failed")
        if resubmit:
            report.resubmitted, report.gave_up, lines = _resubmit(client, config, cache, state, batches_path)
            report.lines += lines
        report.pending = sum(1 for j in state.jobs if not j.collected)
    finally:
        cache.close()
    return report


def _resubmit(client: Any, config: EngineConfig, cache: Any, state: BatchState,
              path: Path) -> tuple[int, int, list[str]]:
    """Failed items not answered since and still under `max_attempts`, sent again from their recorded input."""
    open_ids = state.open_ids()
    failed = [k for k in state.failures if k not in open_ids]
    answered = cache.get_many(failed) if failed else {}
    for k in answered:
        state.failures.pop(k, None)
    again = [k for k in failed if k not in answered and state.attempts.get(k, 0) < config.max_attempts]
    gave_up = sum(1 for k in failed if k not in answered) - len(again)
    if not again:
        return 0, gave_up, []
    wanted = set(again)
    bodies: dict[str, dict[str, Any]] = {}
    steps: dict[str, str] = {}
    for job in state.jobs:
        if wanted & set(job.custom_ids):
            bodies.update(_read_bodies(Path(job.input_path), wanted))
            steps.update(dict.fromkeys(job.custom_ids, job.step))
    if state.bodies_file and len(bodies) < len(wanted):  # a state written by an older version
        bodies.update(_read_bodies(Path(state.bodies_file), wanted - set(bodies)))
    bodies = {k: bodies[k] for k in again if k in bodies}
    by_step: dict[str, dict[str, dict[str, Any]]] = {}
    for k, b in bodies.items():
        by_step.setdefault(steps.get(k, ""), {})[k] = b
    work_dir = Path(state.jobs[-1].input_path).parent if state.jobs[-1].input_path else path.parent / "_work"
    jobs = [j for step, group in by_step.items() for j in plan_submissions(state, path, work_dir, group, step)]
    send_planned(client, config, state, path, jobs)
    return len(bodies), gave_up, [f"  {j.batch_id}: {j.requests} failed items resubmitted" for j in jobs]


def _read_bodies(path: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    found = {}
    if not path.exists():
        return found
    with open(path, "rb") as fh:
        for raw in fh:
            row = orjson.loads(raw)
            if row["custom_id"] in wanted:
                found[row["custom_id"]] = row["body"]
    return found


def batch_cost(config: EngineConfig, model: str, prompt_tokens: int, completion_tokens: int) -> float:
    price = config.price_of(model)
    if price is None:
        return 0.0
    batch = price.batch()
    return (prompt_tokens * batch.prompt + completion_tokens * batch.completion) / 1e6


def _collect(client: Any, config: EngineConfig, cache: Any, batch: Any, job: BatchJob,
             state: BatchState) -> tuple[list[str], list[str]]:
    """(custom ids answered, custom ids failed) of an ended batch; answers go into the cache."""
    from valuecorpus.pipelines.engine.backends import completion_from_json

    ok: list[str] = []
    failed: list[str] = []
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
            cache.put(key, config.model, config.endpoint_identity, {
                "c": comp.content, "p": comp.prompt_tokens, "k": comp.completion_tokens, "m": comp.model,
                "f": comp.finish_reason, "d": batch_cost(config, comp.model, comp.prompt_tokens,
                                                         comp.completion_tokens),
                "a": state.attempts.get(key, 1), "e": config.dialect, "b": job.batch_id, "r": state.run_id,
                **({"t": comp.tool_calls} if comp.tool_calls else {}),
            })
            state.failures.pop(key, None)
            ok.append(key)
    if batch.status != "completed":  # failed / expired / cancelled: whatever did not come back failed
        seen = set(ok) | set(failed)
        for key in job.custom_ids:
            if key not in seen:
                failed.append(key)
                state.failures[key] = f"batch {batch.status}"
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
