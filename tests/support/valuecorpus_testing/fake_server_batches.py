"""`/v1/files` and `/v1/batches` of the fake server, in OpenAI's shapes.

A batch completes `batch_delay_s` after creation (checked when it is retrieved); its output file holds one
OpenAI batch line per request. Items whose `custom_id` contains `fail_match`, or a `fail_rate` share of them
(drawn from a hash of the custom_id, so the same items fail every time), land in the error file instead.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Complete = Callable[[dict[str, Any]], dict[str, Any]]
"""Builds a chat completion response body from a request body (the same answer the live endpoint gives)."""


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed"}


@dataclass
class BatchStore:
    complete: Complete
    batch_delay_s: float = 1.0
    fail_rate: float = 0.0
    fail_match: str | None = None
    files: dict[str, StoredFile] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)

    # --- files ---------------------------------------------------------------------------------------------
    def add_file(self, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        stored = StoredFile(f"file-{uuid.uuid4().hex[:24]}", filename, purpose, data, int(time.time()))
        self.files[stored.id] = stored
        return stored.describe()

    def get_file(self, file_id: str) -> StoredFile:
        if file_id not in self.files:
            raise ApiError(404, f"No such File object: {file_id}")
        return self.files[file_id]

    def delete_file(self, file_id: str) -> dict[str, Any]:
        self.get_file(file_id)
        del self.files[file_id]
        return {"id": file_id, "object": "file", "deleted": True}

    def list_files(self) -> dict[str, Any]:
        return {"object": "list", "data": [f.describe() for f in self.files.values()], "has_more": False}

    # --- batches -------------------------------------------------------------------------------------------
    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        input_id = body.get("input_file_id")
        if not isinstance(input_id, str):
            raise ApiError(400, "Missing required parameter: 'input_file_id'.")
        self.get_file(input_id)
        endpoint = body.get("endpoint", "/v1/chat/completions")
        if endpoint != "/v1/chat/completions":
            raise ApiError(400, f"Unsupported endpoint {endpoint!r}: this server serves /v1/chat/completions")
        now = int(time.time())
        batch = {
            "id": f"batch_{uuid.uuid4().hex[:24]}", "object": "batch", "endpoint": endpoint, "errors": None,
            "input_file_id": input_id, "completion_window": body.get("completion_window", "24h"),
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": now,
            "in_progress_at": None, "expires_at": now + 86400, "finalizing_at": None, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": body.get("metadata"),
            "_created": time.monotonic(),
        }
        self.batches[batch["id"]] = batch
        return _public(batch)

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        if batch_id not in self.batches:
            raise ApiError(404, f"No such Batch object: {batch_id}")
        batch = self.batches[batch_id]
        if batch["status"] in ("validating", "in_progress"):
            elapsed = time.monotonic() - batch["_created"]
            if elapsed >= self.batch_delay_s:
                self._finish(batch)
            elif batch["status"] == "validating":
                batch["status"], batch["in_progress_at"] = "in_progress", int(time.time())
        return _public(batch)

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise ApiError(404, f"No such Batch object: {batch_id}")
        if batch["status"] in ("validating", "in_progress"):
            batch["status"], batch["cancelled_at"] = "cancelled", int(time.time())
        return _public(batch)

    def list_batches(self) -> dict[str, Any]:
        # newest first, as OpenAI lists them
        return {"object": "list", "data": [self.get_batch(b) for b in reversed(self.batches)], "has_more": False}

    def _fails(self, custom_id: str) -> bool:
        if self.fail_match and self.fail_match in custom_id:
            return True
        if self.fail_rate <= 0:
            return False
        digest = hashlib.blake2b(custom_id.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.fail_rate

    def _finish(self, batch: dict[str, Any]) -> None:
        lines = self.files[batch["input_file_id"]].data.decode("utf-8", "replace").splitlines()
        out, err = [], []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                custom_id, body = item["custom_id"], item["body"]
            except (ValueError, KeyError, TypeError):
                batch.update(status="failed", failed_at=int(time.time()), errors={"object": "list", "data": [
                    {"code": "invalid_json_line", "line": n, "message": f"line {n} is not a valid request"}]})
                return
            request_id = f"req_{uuid.uuid4().hex[:24]}"
            if self._fails(custom_id):
                err.append({"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": custom_id, "error": None,
                            "response": {"status_code": 500, "request_id": request_id, "body": {"error": {
                                "message": "The server had an error processing this request.",
                                "type": "server_error", "param": None, "code": None}}}})
            else:
                out.append({"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": custom_id, "error": None,
                            "response": {"status_code": 200, "request_id": request_id,
                                         "body": self.complete(body)}})
        if out:
            batch["output_file_id"] = self.add_file("batch_output.jsonl", "batch_output", _jsonl(out))["id"]
        if err:
            batch["error_file_id"] = self.add_file("batch_errors.jsonl", "batch_output", _jsonl(err))["id"]
        now = int(time.time())
        batch.update(status="completed", in_progress_at=batch["in_progress_at"] or now, finalizing_at=now,
                     completed_at=now, request_counts={"total": len(out) + len(err), "completed": len(out),
                                                       "failed": len(err)})


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode()


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Form fields of a multipart/form-data body: name → (filename, bytes)."""
    marker = "boundary="
    if marker not in content_type:
        raise ApiError(400, "expected multipart/form-data with a boundary")
    boundary = content_type.split(marker, 1)[1].split(";")[0].strip().strip('"').encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary):
        if not part.strip() or part.strip() == b"--":
            continue
        head, _, data = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        disposition = next((line for line in head.decode("latin-1").split("\r\n")
                            if line.lower().startswith("content-disposition")), "")
        params = dict(_param(p) for p in disposition.split(";")[1:])
        if "name" in params:
            fields[params["name"]] = (params.get("filename"), data)
    return fields


def _param(text: str) -> tuple[str, str]:
    key, _, value = text.strip().partition("=")
    return key.strip(), value.strip().strip('"')
