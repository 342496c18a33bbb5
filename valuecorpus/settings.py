"""Settings: environment variables first, then an optional YAML file, then defaults.

Secrets (API keys, Label Studio tokens) are `SecretStr`: they print as `**********` and are never written to
manifests, logs or Parquet. Components never read the environment themselves; the CLI hands them what they need.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from valuecorpus.schemas.errors import SettingsError
from valuecorpus.schemas.layout import DataHome

ENV_PREFIX = "VALUECORPUS_"
# Settings whose conventional environment names are not prefixed.
ENV_ALIASES = {
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "label_studio_url": "LABEL_STUDIO_URL",
    "label_studio_api_key": "LABEL_STUDIO_API_KEY",
}


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    home: str = Field("./corpus-home", description="Data home: runs, caches, warehouse. Local path, gs:// or s3://.")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible endpoint; unset = embedded local model.")
    openai_api_key: SecretStr | None = None
    model: str | None = Field(None, description="Model name at the endpoint.")
    structured_output: str = Field("auto", description="auto | openai | vllm | llamacpp | prompt")
    label_studio_url: str | None = None
    label_studio_api_key: SecretStr | None = None
    label_studio_port: int = 8089
    prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per-model prices in USD per million tokens: {model: {prompt: x, completion: y}}.",
    )

    @property
    def data_home(self) -> DataHome:
        return DataHome(self.home)


def settings_file() -> Path | None:
    explicit = os.environ.get(ENV_PREFIX + "SETTINGS")
    if explicit:
        path = Path(explicit)
        if not path.exists():
            raise SettingsError(f"{ENV_PREFIX}SETTINGS points to {path}, which does not exist")
        return path
    default = Path("valuecorpus.yaml")
    return default if default.exists() else None


def load_settings(**overrides: Any) -> Settings:
    """Defaults < settings file < environment < explicit overrides (CLI flags)."""
    values: dict[str, Any] = {}
    path = settings_file()
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise SettingsError(f"{path}: not valid YAML ({err.__class__.__name__})") from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path}: expected a mapping of settings")
        values.update(loaded)
    for name in Settings.model_fields:
        env = ENV_ALIASES.get(name, ENV_PREFIX + name.upper())
        if env in os.environ and os.environ[env] != "":
            values[name] = os.environ[env]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        src = f" (from {path})" if path else ""
        raise SettingsError(f"setting '{where}'{src}: {first['msg']}") from None
