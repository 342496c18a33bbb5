"""What can go wrong in one attempt, and the one retry policy every backend shares."""

from __future__ import annotations

import random
from dataclasses import dataclass

# Statuses that say the request itself or the setup is wrong: retrying cannot help.
FAIL_FAST = {400, 401, 403, 404, 405, 413, 422}
# Statuses that mean the whole endpoint is misconfigured: no further request is sent.
FATAL = {401, 403, 404}
OVERLOAD = {429, 503}

_FIX = {
    401: "the endpoint rejected the API key (HTTP 401): check setting 'openai_api_key' / OPENAI_API_KEY",
    403: "the API key may not use this model or endpoint (HTTP 403): check setting 'openai_api_key' and 'model'",
    404: "the endpoint or model was not found (HTTP 404): check settings 'openai_base_url' (it usually ends in /v1) "
    "and 'model'",
}


@dataclass
class AttemptError(Exception):
    """A failed attempt, classified. `raw` is the model output when one came back (truncated later)."""

    error_class: str
    reason: str
    http_status: int | None = None
    retry_after: float | None = None
    raw: str | None = None
    attempts: int = 0

    def __post_init__(self) -> None:
        super().__init__(self.reason)

    @property
    def retryable(self) -> bool:
        if self.http_status is not None:
            return self.http_status not in FAIL_FAST
        return self.error_class in {"timeout", "connection", "bad_response"}

    @property
    def fatal(self) -> bool:
        return self.http_status in FATAL


def http_error(status: int, body: str, retry_after: str | None) -> AttemptError:
    # an auth error's text may quote part of the key (e.g. "sk-ab***yz"): never repeat it
    detail = "" if status in (401, 403) else " ".join(body.split())[:300]
    reason = _FIX.get(status, f"HTTP {status} from the endpoint")
    if status == 400:
        reason = "the endpoint refused the request (HTTP 400): check the model's context size and parameters"
    return AttemptError(f"http_{status}", f"{reason}; server said: {detail}" if detail else reason, status,
                        parse_retry_after(retry_after))


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.endswith("ms"):
        try:
            return max(0.0, float(value[:-2]) / 1000)
        except ValueError:
            return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime
        from time import time

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time())
        except (TypeError, ValueError):
            return None


def backoff_delay(attempt: int, base_s: float, max_s: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter. A server that says when to come back (Retry-After) knows better
    than any formula: its wait is kept, never shortened, spread by up to 5 % so a burst of 429s does not come
    back as one burst; it is not stretched further by the exponential (as the openai SDK does too)."""
    if retry_after is not None and retry_after <= max(max_s, 60.0):
        return retry_after * random.uniform(1.0, 1.05)
    delay = random.uniform(0, min(max_s, base_s * (2 ** (attempt - 1))))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
