"""Settings: CLI flags > HEALTHPIPE_* environment variables > healthpipe.toml > defaults.

The TOML file is `$HEALTHPIPE_CONFIG`, else `healthpipe.toml` in the current directory (if
present). Keys are the field names below, at top level; an unknown key is an error that names
the closest valid one. Secrets (`SECRET_FIELDS`: SMTP password, API keys, the pseudonym key)
come from the environment only: one in the file is an error naming the variable to use.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from healthpipe.constants import ENV_CONFIG, ENV_PREFIX
from healthpipe.errors import ConfigError

DEFAULT_CONFIG_FILE = "healthpipe.toml"

# USD per 1,000 tokens (input, output); override with `llm_prices` in the config file.
DEFAULT_LLM_PRICES: dict[str, tuple[float, float]] = {
    "amazon.nova-lite-v1:0": (0.00006, 0.00024),
    "amazon.nova-micro-v1:0": (0.000035, 0.00014),
}


class Settings(BaseSettings):
    """Everything configurable, with the defaults of the embedded one-machine runtime."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX.lower(),
        case_sensitive=False,
        extra="ignore",
        env_nested_delimiter="__",
    )

    # runtime and storage
    runtime: Literal["local", "aws"] = "local"
    workspace: Path = Path("healthpipe-data")
    bucket: str = ""
    kms_key_id: str = ""
    ledger_table: str = ""
    analyses_table: str = ""
    event_bus_name: str = "default"
    analysis_ttl_days: int = Field(default=400, ge=1)
    # local: days after which `healthpipe retention --apply` deletes raw/ and reports/ files
    # (by modification time); None keeps them (docs/lake.md#retention)
    retention_days: int | None = Field(default=None, ge=1)

    # validation and analysis
    rules: str = "plausible"
    lease_seconds: float = Field(default=900.0, gt=0)
    duckdb_memory_mb: int = Field(default=256, ge=64)
    duckdb_threads: int = Field(default=0, ge=0)
    # local runtime: a file larger than this is ingested in chunks of `chunk_mb` on `workers`
    # processes (0: one per core), outputs unchanged (docs/scaling.md, "The chunked engine")
    chunked_threshold_mb: int = Field(default=1024, ge=0)
    # AWS ingestor: a .gz upload of chunked_threshold_mb / chunked_gzip_ratio MiB and more is the
    # chunked-ingest state machine's, as infra/terraform/events.tf routes it (the ingestor
    # leaves it alone: healthpipe.routing.taken_by_chunked_rule)
    chunked_gzip_ratio: float = Field(default=8.0, ge=1, le=100)
    chunk_mb: int = Field(default=128, ge=1, le=4096)
    workers: int = Field(default=0, ge=0, le=256)
    # local runtime: a processed file of more rows than this is analysed in groups of
    # participants of at most this many rows on `workers` processes, facts unchanged (0: never;
    # docs/scaling.md, "Analyze at that size")
    analyze_group_rows: int = Field(default=2_000_000, ge=0)
    top_users: int = Field(default=25, ge=1, le=500)
    # clinical context (docs/clinical-rules.md): an episode is broken where consecutive
    # readings are more than this apart; a reading with more steps than this (or the
    # participant's reading just before it) is during activity
    episode_gap_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    activity_steps_above: int = Field(default=1000, ge=0, le=100_000)
    # personal baselines: the participant's readings this many days before a file, plus the
    # file's (docs/baselines.md)
    baseline_window_days: int = Field(default=28, ge=1, le=366)
    pseudonym_secret: SecretStr = SecretStr("")

    # analyst (LLM)
    analyst: Literal["builtin", "bedrock", "openai"] = "builtin"
    bedrock_model_id: str = "amazon.nova-lite-v1:0"
    bedrock_region: str = ""
    llm_timeout_seconds: float = Field(default=30.0, gt=0)
    openai_base_url: str = "http://127.0.0.1:11434/v1"
    openai_model: str = "llama3.2"
    openai_api_key: SecretStr = SecretStr("")
    llm_prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: dict(DEFAULT_LLM_PRICES)
    )

    # email
    mailer: Literal["outbox", "smtp", "ses"] = "outbox"
    email_from: str = "healthpipe@localhost"
    email_to: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["care-team@localhost"]
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_seconds: float = Field(default=20.0, gt=0)
    alert_min_severity: Literal["low", "medium", "high", "never"] = "high"
    digest_only: bool = False
    ses_configuration_set: str = ""

    # orchestration (local twin)
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_base_seconds: float = Field(default=0.2, ge=0)

    @field_validator("email_to", mode="before")
    @classmethod
    def _split_recipients(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def db_path(self) -> Path:
        return self.workspace / "healthpipe.db"

    @property
    def bucket_dir(self) -> Path:
        return self.workspace / "bucket"

    @property
    def outbox_dir(self) -> Path:
        return self.workspace / "outbox"

    @property
    def work_dir(self) -> Path:
        """Where commands and the local stages put their working files (health data too):
        inside the workspace, never the system's temporary directory (docs/privacy.md)."""
        return self.workspace / "tmp"

    def llm_price(self, model: str) -> tuple[float, float]:
        """(input, output) USD per 1k tokens. An inference-profile id (`us.`, `eu.`, `apac.`,
        `global.`, `us-gov.` + model id) is priced as its model."""
        if model in self.llm_prices:
            return self.llm_prices[model]
        _, _, bare = model.partition(".")
        return self.llm_prices.get(bare, (0.0, 0.0))


SECRET_FIELDS: tuple[str, ...] = tuple(
    name for name, field in Settings.model_fields.items() if field.annotation is SecretStr
)


def check_file_keys(path: Path) -> None:
    """Unknown keys (typos) and secrets in the settings file are errors, not silently ignored."""
    try:
        with path.open("rb") as handle:
            keys = list(tomllib.load(handle))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    fields = list(Settings.model_fields)
    for key in keys:
        if key.lower() in SECRET_FIELDS:
            raise ConfigError(
                f"{path}: {key} is a secret and is read from the environment only: "
                f"set {ENV_PREFIX}{key.upper()} instead"
            )
        if key.lower() not in fields:
            close = difflib.get_close_matches(key.lower(), fields, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{path}: unknown setting {key!r}{hint}")


def config_file(explicit: Path | None = None) -> Path | None:
    if explicit is not None:
        return explicit
    from_env = os.environ.get(ENV_CONFIG)
    if from_env:
        return Path(from_env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_settings(overrides: dict[str, Any] | None = None, file: Path | None = None) -> Settings:
    """Build settings from flags (`overrides`, None values ignored), env, and the TOML file."""
    path = config_file(file)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path is not None:
        check_file_keys(path)
    cls: type[Settings] = Settings
    if path is not None:
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": path})
        cls = type("FileSettings", (Settings,), {"model_config": config})
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return cls(**given)
    except SettingsError as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from exc
