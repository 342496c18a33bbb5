"""The connection to Label Studio (a managed local server or an existing one), checked before anything is done.

A server that is down or a token that is refused ends in one EndpointError naming the URL and the setting to
fix, before any file is written. The API key is held privately and never appears in a message or repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from valuecorpus.annotation.server import ServerFiles, health, status
from valuecorpus.schemas.errors import EndpointError


@dataclass(frozen=True)
class Connection:
    url: str
    api_key: str = field(repr=False)
    source: str = "settings"  # "settings" (LABEL_STUDIO_URL) or "managed" (annotation server start)

    def __repr__(self) -> str:
        return f"Connection(url={self.url!r}, source={self.source!r})"


def resolve_connection(files: ServerFiles, url: str | None, api_key: str | None) -> Connection:
    """An existing server from settings wins; otherwise the managed server under the data home."""
    if url:
        if not api_key:
            raise EndpointError(
                "LABEL_STUDIO_URL is set but LABEL_STUDIO_API_KEY is not (setting label_studio_api_key)"
            )
        return Connection(url.rstrip("/"), api_key, "settings")
    state = status(files)
    creds = files.read_credentials()
    if not state.get("running") or creds is None:
        raise EndpointError(
            "no Label Studio server: start one with `valuecorpus annotation server start`, "
            "or set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY"
        )
    return Connection(state["url"], creds.token, "managed")


def connect(conn: Connection) -> Any:
    """A `label_studio_sdk.LabelStudio` client, after checking the server answers and accepts the key."""
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    if not health(conn.url):
        raise EndpointError(f"Label Studio at {conn.url} is not reachable (GET /health failed); is the server running?")
    try:
        client = LabelStudio(base_url=conn.url, api_key=conn.api_key, timeout=120)
        client.users.whoami()
    except ApiError as exc:
        if exc.status_code in (401, 403):
            raise EndpointError(
                f"Label Studio at {conn.url} refused the API key (HTTP {exc.status_code}); "
                "check LABEL_STUDIO_API_KEY (setting label_studio_api_key)"
            ) from None
        raise EndpointError(f"Label Studio at {conn.url} answered HTTP {exc.status_code}") from None
    except Exception as exc:  # JWT exchange failures and transport errors surface here
        raise EndpointError(
            f"Label Studio at {conn.url}: could not authenticate ({exc.__class__.__name__}); "
            "check LABEL_STUDIO_API_KEY (setting label_studio_api_key)"
        ) from None
    return client
