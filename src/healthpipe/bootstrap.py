"""The one place that picks adapters: builds the ports of a runtime from settings.

Nothing is built at import. The AWS adapters (and boto3) are imported only when the AWS
runtime is asked for.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from healthpipe.adapters.local.analysis_store import SqliteAnalysisStore
from healthpipe.adapters.local.event_bus import SqliteEventBus
from healthpipe.adapters.local.ledger import SqliteLedger
from healthpipe.adapters.local.mailer import OutboxMailer, SmtpMailer
from healthpipe.adapters.local.metrics import SqliteMetrics
from healthpipe.adapters.local.object_store import FolderObjectStore
from healthpipe.adapters.local.sqlite import Database
from healthpipe.analysts.builtin import BuiltinAnalyst
from healthpipe.config import Settings
from healthpipe.errors import ConfigError
from healthpipe.ports import Analyst, Mailer
from healthpipe.stages.base import Ports


@dataclass
class LocalRuntime:
    """The ports of the one-machine runtime, plus the outbox bus the dispatcher drives."""

    ports: Ports
    bus: SqliteEventBus
    db: Database
    store: FolderObjectStore

    def close(self) -> None:
        self.db.close()


def build_analyst(settings: Settings) -> Analyst:
    if settings.analyst == "builtin":
        return BuiltinAnalyst()
    raise ConfigError(f"analyst {settings.analyst!r} is not available in this build")


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


def build_local(settings: Settings) -> LocalRuntime:
    workspace = settings.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_path)
    store = FolderObjectStore(settings.bucket_dir)
    bus = SqliteEventBus(db)
    ports = Ports(
        settings=settings,
        store=store,
        ledger=SqliteLedger(db, lease_seconds=settings.lease_seconds),
        bus=bus,
        analyses=SqliteAnalysisStore(db),
        mailer=build_local_mailer(settings),
        analyst=build_analyst(settings),
        metrics=SqliteMetrics(db),
        workdir=workspace / "tmp",
    )
    return LocalRuntime(ports=ports, bus=bus, db=db, store=store)


def default_workdir() -> Path:
    return Path(tempfile.gettempdir()) / "healthpipe"
