"""The one place that picks adapters: builds the ports of a runtime from settings.

Nothing is built at import. The AWS adapters (and boto3) are imported only when the AWS
runtime is asked for.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from pydantic import SecretStr

from healthpipe import routing
from healthpipe.adapters.local.analysis_store import SqliteAnalysisStore
from healthpipe.adapters.local.event_bus import SqliteEventBus
from healthpipe.adapters.local.history_store import SqliteParticipantHistoryStore
from healthpipe.adapters.local.ledger import SqliteLedger
from healthpipe.adapters.local.mailer import OutboxMailer, SmtpMailer
from healthpipe.adapters.local.metrics import SqliteMetrics
from healthpipe.adapters.local.object_store import FolderObjectStore
from healthpipe.adapters.local.sqlite import Database
from healthpipe.analysts.builtin import BuiltinAnalyst
from healthpipe.config import Settings
from healthpipe.errors import ConfigError
from healthpipe.ports import Analyst, LanguageModel, Mailer, ObjectStore
from healthpipe.stages.base import Ports
from healthpipe.stages.settings import (
    AnalyzeSettings,
    ChunkedSettings,
    DeliverySettings,
    DigestSettings,
    EngineSettings,
    IngestSettings,
    MailSettings,
    NotifySettings,
)


@dataclass
class LocalRuntime:
    """The ports of the one-machine runtime, plus the outbox bus the dispatcher drives."""

    ports: Ports
    bus: SqliteEventBus
    db: Database
    store: FolderObjectStore

    def close(self) -> None:
        self.db.close()


class StageSettings(TypedDict):
    ingest_settings: IngestSettings
    analyze_settings: AnalyzeSettings
    notify_settings: NotifySettings
    digest_settings: DigestSettings
    delivery_settings: DeliverySettings


def stage_settings(settings: Settings) -> StageSettings:
    """Each stage's own settings (and the dispatcher's), read from `settings` here only."""
    engine = EngineSettings(settings.duckdb_memory_mb, settings.duckdb_threads)
    mail = MailSettings(settings.email_from, tuple(settings.email_to))
    secret = settings.pseudonym_secret.get_secret_value()
    return StageSettings(
        ingest_settings=IngestSettings(
            rules=settings.rules,
            engine=engine,
            # on AWS, large uploads go to the Step Functions executor, not a process pool
            chunked=ChunkedSettings(
                settings.chunked_threshold_mb, settings.chunk_mb, settings.workers
            )
            if settings.runtime == "local"
            else None,
        ),
        analyze_settings=AnalyzeSettings(
            pseudonym_secret=secret,
            engine=engine,
            top_users=settings.top_users,
            episode_gap_minutes=settings.episode_gap_minutes,
            activity_steps_above=settings.activity_steps_above,
            baseline_window_days=settings.baseline_window_days,
            # on AWS, one analyzer process (a Lambda has no process pool)
            group_rows=settings.analyze_group_rows if settings.runtime == "local" else 0,
            workers=settings.workers,
        ),
        notify_settings=NotifySettings(
            pseudonym_secret=secret,
            mail=mail,
            top_users=settings.top_users,
            alert_min_severity=settings.alert_min_severity,
            digest_only=settings.digest_only,
        ),
        digest_settings=DigestSettings(mail=mail),
        delivery_settings=DeliverySettings(
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.max_attempts,
            retry_base_seconds=settings.retry_base_seconds,
        ),
    )


def build_analyst(settings: Settings, session: Any | None = None) -> Analyst:
    """The configured analyst; an LLM one is wrapped in the builtin fallback policy.

    The Bedrock client is built on the first analysis from `session` (default: a new boto3
    session; boto3 imported only then), so a machine without AWS credentials runs and
    records the fallback instead of failing.
    """
    if settings.analyst == "builtin":
        return BuiltinAnalyst()
    from healthpipe.analysts.guarded import GuardedAnalyst
    from healthpipe.analysts.llm import LLMAnalyst

    model = build_language_model(settings, session)
    primary = LLMAnalyst(
        model,
        prices=settings.llm_price(model.model),
        deadline_seconds=settings.llm_timeout_seconds,
    )
    return GuardedAnalyst(primary, BuiltinAnalyst())


def build_language_model(settings: Settings, session: Any | None = None) -> LanguageModel:
    """The LanguageModel adapter for `settings.analyst` (`bedrock` or `openai`)."""
    if settings.analyst == "bedrock":
        from healthpipe.adapters.aws.bedrock_completion import (
            BedrockLanguageModel,
            bedrock_client_factory,
        )

        return BedrockLanguageModel(
            settings.bedrock_model_id,
            client_factory=bedrock_client_factory(
                region=settings.bedrock_region,
                timeout_seconds=settings.llm_timeout_seconds,
                session=session,
            ),
        )
    if settings.analyst == "openai":
        from healthpipe.adapters.llm.openai_compat import OpenAICompatLanguageModel

        return OpenAICompatLanguageModel(
            settings.openai_base_url,
            settings.openai_model,
            api_key=settings.openai_api_key.get_secret_value(),
            timeout_seconds=settings.llm_timeout_seconds,
        )
    raise ConfigError(f"unknown analyst {settings.analyst!r}")


def build_local_mailer(settings: Settings) -> Mailer:
    if settings.mailer == "outbox":
        return OutboxMailer(settings.outbox_dir)
    if settings.mailer == "smtp":
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value(),
            timeout=settings.smtp_timeout_seconds,
        )
    raise ConfigError(f"mailer {settings.mailer!r} needs the aws runtime")


PSEUDONYM_KEY_FILE = "pseudonym.key"


def workspace_pseudonym_secret(workspace: Path) -> str:
    """The workspace's own pseudonym key (created once, mode 0600), used when none is set:
    without a secret, anyone who knows a user id could recompute its pseudonym."""
    path = workspace / PSEUDONYM_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_text(encoding="ascii").strip()


def build_local(settings: Settings) -> LocalRuntime:
    workspace = settings.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    if not settings.pseudonym_secret.get_secret_value():
        secret = SecretStr(workspace_pseudonym_secret(workspace))
        settings = settings.model_copy(update={"pseudonym_secret": secret})
    db = Database(settings.db_path)
    store = FolderObjectStore(settings.bucket_dir)
    bus = SqliteEventBus(db, routing.routes_for)
    ports = Ports(
        **stage_settings(settings),
        store=store,
        ledger=SqliteLedger(db, lease_seconds=settings.lease_seconds),
        bus=bus,
        analyses=SqliteAnalysisStore(db),
        history=SqliteParticipantHistoryStore(db),
        mailer=build_local_mailer(settings),
        analyst=build_analyst(settings),
        metrics=SqliteMetrics(db),
        workdir=settings.work_dir,
    )
    return LocalRuntime(ports=ports, bus=bus, db=db, store=store)


# --------------------------------------------------------------------------- AWS runtime
LAMBDA_WORKDIR = Path("/tmp/healthpipe")  # noqa: S108 - Lambda's only writable place
LAMBDA_MEMORY_ENV = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
DUCKDB_SHARE_OF_LAMBDA_MEMORY = 0.6


def lambda_duckdb_memory_mb(settings: Settings) -> int:
    """The DuckDB memory limit: the setting when given, else 60% of the function's memory."""
    if "duckdb_memory_mb" in settings.model_fields_set:
        return settings.duckdb_memory_mb
    configured = os.environ.get(LAMBDA_MEMORY_ENV, "")
    if configured.isdigit():
        return max(64, int(int(configured) * DUCKDB_SHARE_OF_LAMBDA_MEMORY))
    return settings.duckdb_memory_mb


def _aws_client(service: str, clients: Mapping[str, Any] | None, session: Any | None) -> Any:
    if clients and service in clients:
        return clients[service]
    from healthpipe.adapters.aws.clients import make_client

    return make_client(service, session)


def build_aws_store(
    settings: Settings,
    *,
    session: Any | None = None,
    clients: Mapping[str, Any] | None = None,
) -> ObjectStore:
    """The S3 object store alone (for `healthpipe upload`)."""
    from healthpipe.adapters.aws.s3 import S3ObjectStore

    if not settings.bucket:
        raise ConfigError("bucket is not set (HEALTHPIPE_BUCKET or --bucket)")
    return S3ObjectStore(
        settings.bucket, _aws_client("s3", clients, session), kms_key_id=settings.kms_key_id
    )


def build_aws_mailer(
    settings: Settings, clients: Mapping[str, Any] | None, session: Any | None, workdir: Path
) -> Mailer:
    if settings.mailer == "ses":
        from healthpipe.adapters.aws.mailer import SesMailer

        return SesMailer(
            _aws_client("ses", clients, session),
            configuration_set=settings.ses_configuration_set,
        )
    if settings.mailer == "outbox":  # functions that send no mail keep the default
        return OutboxMailer(workdir / "outbox")
    return build_local_mailer(settings)


def build_aws(
    settings: Settings,
    *,
    session: Any | None = None,
    clients: Mapping[str, Any] | None = None,
    workdir: Path | None = None,
    silent: str | None = None,
) -> Ports:
    """The ports of one Lambda function (S3, DynamoDB, EventBridge, SES, EMF).

    `clients` maps a service name ("s3", "dynamodb", "events", "ses") to a ready client;
    the others are made from `session` (default: a new boto3 session) on first use here.
    `silent` names a function that publishes nothing (no `event_bus` among its adapters,
    so no `events:PutEvents`): its bus is `NoEventBus`, and no EventBridge client is built.
    """
    from healthpipe.adapters.aws.analysis_store import (
        DynamoAnalysisStore,
        DynamoParticipantHistoryStore,
    )
    from healthpipe.adapters.aws.event_bus import EventBridgeBus, NoEventBus
    from healthpipe.adapters.aws.ledger import DynamoLedger
    from healthpipe.adapters.aws.metrics import EmfMetrics

    settings = settings.model_copy(update={"duckdb_memory_mb": lambda_duckdb_memory_mb(settings)})
    workdir = workdir or LAMBDA_WORKDIR
    # matplotlib caches fonts under $MPLCONFIGDIR; on Lambda only /tmp is writable
    os.environ.setdefault("MPLCONFIGDIR", str(workdir / "matplotlib"))
    dynamodb = _aws_client("dynamodb", clients, session)
    return Ports(
        **stage_settings(settings),
        store=build_aws_store(settings, session=session, clients=clients),
        ledger=DynamoLedger(settings.ledger_table, dynamodb, lease_seconds=settings.lease_seconds),
        bus=NoEventBus(silent)
        if silent
        else EventBridgeBus(settings.event_bus_name, _aws_client("events", clients, session)),
        analyses=DynamoAnalysisStore(
            settings.analyses_table, dynamodb, ttl_days=settings.analysis_ttl_days
        ),
        history=DynamoParticipantHistoryStore(
            settings.analyses_table, dynamodb, ttl_days=settings.analysis_ttl_days
        ),
        mailer=build_aws_mailer(settings, clients, session, workdir),
        analyst=build_analyst(settings, session),
        metrics=EmfMetrics(),
        workdir=workdir,
    )
