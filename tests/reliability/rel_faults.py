"""Fault-injecting adapters: each subclasses the real local adapter and raises on demand.

A `FaultPlan` holds, per `port.method`, the errors still to raise; every faulty adapter asks
the plan before calling the real method. `build_faulty` swaps them into a local runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from healthpipe.adapters.local.analysis_store import SqliteAnalysisStore
from healthpipe.adapters.local.event_bus import Delivery, SqliteEventBus
from healthpipe.adapters.local.ledger import SqliteLedger
from healthpipe.adapters.local.mailer import OutboxMailer
from healthpipe.adapters.local.metrics import SqliteMetrics
from healthpipe.adapters.local.object_store import FolderObjectStore
from healthpipe.analysts.builtin import BuiltinAnalyst
from healthpipe.bootstrap import LocalRuntime, build_local
from healthpipe.config import Settings
from healthpipe.domain.insights import AnalystReport
from healthpipe.events import Event
from healthpipe.ports import LedgerRecord, LocalObject, MetricPoint


@dataclass
class FaultPlan:
    """`arm("store.get_bytes", make_error, times)`; `forever` until `clear()`."""

    pending: dict[str, list[Callable[[], Exception]]] = field(default_factory=dict)
    forever: dict[str, Callable[[], Exception]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def arm(self, point: str, error: Callable[[], Exception], times: int | None = 1) -> None:
        if times is None:
            self.forever[point] = error
        else:
            self.pending.setdefault(point, []).extend([error] * times)

    def clear(self) -> None:
        self.pending.clear()
        self.forever.clear()

    def check(self, point: str) -> None:
        if point in self.forever:
            self.hits[point] = self.hits.get(point, 0) + 1
            raise self.forever[point]()
        queue = self.pending.get(point)
        if queue:
            self.hits[point] = self.hits.get(point, 0) + 1
            raise queue.pop(0)()


class FaultyStore(FolderObjectStore):
    def __init__(self, root: Path, plan: FaultPlan) -> None:
        super().__init__(root)
        self.plan = plan

    def _materialize(self, key: str, workdir: Path) -> LocalObject:
        self.plan.check("store.materialize")
        return super()._materialize(key, workdir)

    def _put_file(self, key: str, path: Path, content_type: str) -> str:
        self.plan.check("store.put_file")
        return super()._put_file(key, path, content_type)

    def _adopt_file(self, key: str, path: Path, content_type: str) -> str:
        self.plan.check("store.put_file")
        return super()._adopt_file(key, path, content_type)

    def _put_bytes(self, key: str, data: bytes, content_type: str) -> str:
        self.plan.check("store.put_bytes")
        return super()._put_bytes(key, data, content_type)

    def _get_bytes(self, key: str) -> bytes:
        self.plan.check("store.get_bytes")
        return super()._get_bytes(key)


class FaultyLedger(SqliteLedger):
    def __init__(self, base: SqliteLedger, plan: FaultPlan) -> None:
        super().__init__(base.db, base.lease_seconds)
        self.plan = plan

    def _insert_if_absent(self, record: LedgerRecord) -> bool:
        self.plan.check("ledger.claim")
        return super()._insert_if_absent(record)

    def _complete(self, key: str, owner: str, result: dict[str, Any]) -> None:
        self.plan.check("ledger.complete")
        super()._complete(key, owner, result)


class FaultyBus(SqliteEventBus):
    def __init__(self, base: SqliteEventBus, plan: FaultPlan) -> None:
        super().__init__(base.db, base.routes_for)
        self.plan = plan

    def _publish(self, events: list[Event]) -> None:
        self.plan.check("bus.publish")
        super()._publish(events)

    def finish(
        self, delivery: Delivery, outcome: str, result: dict[str, Any], emitted: list[Event]
    ) -> None:
        self.plan.check("bus.finish")
        super().finish(delivery, outcome, result, emitted)


class FaultyAnalyses(SqliteAnalysisStore):
    def __init__(self, base: SqliteAnalysisStore, plan: FaultPlan) -> None:
        super().__init__(base.db)
        self.plan = plan

    def _save(self, summary: dict[str, Any], flagged: list[dict[str, Any]]) -> None:
        self.plan.check("analyses.save")
        super()._save(summary, flagged)


class FaultyMailer(OutboxMailer):
    def __init__(self, folder: Path, plan: FaultPlan) -> None:
        super().__init__(folder)
        self.plan = plan

    def _send(self, message: EmailMessage, name: str) -> str:
        self.plan.check("mailer.send")
        return super()._send(message, name)


class FaultyAnalyst(BuiltinAnalyst):
    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan

    def _analyze(self, brief: dict[str, Any]) -> AnalystReport:
        self.plan.check("analyst.analyze")
        return super()._analyze(brief)


class FaultyMetrics(SqliteMetrics):
    def __init__(self, base: SqliteMetrics, plan: FaultPlan) -> None:
        super().__init__(base.db)
        self.plan = plan

    def _write(self, points: list[MetricPoint]) -> None:
        self.plan.check("metrics.write")
        super()._write(points)


def build_faulty(settings: Settings, plan: FaultPlan) -> LocalRuntime:
    """A local runtime whose every port is the real adapter behind a fault plan."""
    runtime = build_local(settings)
    ports = runtime.ports
    assert isinstance(ports.ledger, SqliteLedger)
    assert isinstance(ports.analyses, SqliteAnalysisStore)
    assert isinstance(ports.metrics, SqliteMetrics)
    store = FaultyStore(settings.bucket_dir, plan)
    bus = FaultyBus(runtime.bus, plan)
    ports.store = store
    ports.ledger = FaultyLedger(ports.ledger, plan)
    ports.bus = bus
    ports.analyses = FaultyAnalyses(ports.analyses, plan)
    ports.mailer = FaultyMailer(settings.outbox_dir, plan)
    ports.analyst = FaultyAnalyst(plan)
    ports.metrics = FaultyMetrics(ports.metrics, plan)
    runtime.store = store
    runtime.bus = bus
    return runtime
