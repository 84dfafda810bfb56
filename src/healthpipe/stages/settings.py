"""The settings each stage reads, typed and frozen; `bootstrap` builds them from `Settings`
(the one home of their defaults and bounds).

A stage sees its own settings only (`ports.ingest_settings`, `ports.analyze_settings`, …),
never the whole `Settings`: what a stage depends on is in its signature, and a test builds
exactly that. `DeliverySettings` is the local dispatcher's retry policy (on AWS, Lambda and
EventBridge retry, as configured in Terraform).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EngineSettings:
    """DuckDB's memory limit and threads (0: one per core) for a stage's queries."""

    memory_limit_mb: int
    threads: int


@dataclass(frozen=True)
class MailSettings:
    sender: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class ChunkedSettings:
    """Files larger than `threshold_mb` are ingested in chunks of about `chunk_mb` on
    `workers` processes (0: one per core): docs/scaling.md, "The chunked engine"."""

    threshold_mb: int
    chunk_mb: int
    workers: int


@dataclass(frozen=True)
class IngestSettings:
    rules: str  # a builtin profile name or a path to a TOML profile
    engine: EngineSettings
    # None: every file on the single-file path (tests that build IngestSettings directly)
    chunked: ChunkedSettings | None = None


@dataclass(frozen=True)
class AnalyzeSettings:
    pseudonym_secret: str = field(repr=False)
    engine: EngineSettings
    top_users: int
    episode_gap_minutes: int
    activity_steps_above: int
    baseline_window_days: int = 28
    # a processed file of more rows than `group_rows` is analysed in groups of participants
    # of at most that many rows on `workers` processes (0: one per core); 0: never (AWS)
    group_rows: int = 0
    workers: int = 0


@dataclass(frozen=True)
class NotifySettings:
    pseudonym_secret: str = field(repr=False)
    mail: MailSettings
    top_users: int
    alert_min_severity: str  # low | medium | high | never
    digest_only: bool


@dataclass(frozen=True)
class DigestSettings:
    mail: MailSettings


@dataclass(frozen=True)
class DeliverySettings:
    """How the local dispatcher runs a delivery: its lease, attempts and backoff base."""

    lease_seconds: float
    max_attempts: int
    retry_base_seconds: float
