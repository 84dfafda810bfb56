"""The claim lifecycle in the alert path, and the typed settings each stage sees."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from healthpipe import constants as c
from healthpipe.adapters.local.ledger import SqliteLedger
from healthpipe.bootstrap import LocalRuntime, build_local, stage_settings
from healthpipe.config import load_settings
from healthpipe.domain.identity import dataset_id_for
from healthpipe.events import Event
from healthpipe.orchestration.runs import run_files
from healthpipe.ports import Mailer
from healthpipe.stages import base as stages_base
from healthpipe.stages.base import Ports
from healthpipe.stages.notify import notify
from healthpipe.synthetic import SyntheticSpec, generate_csv

OTHER_HOST_OWNER = "another-host:4242:feedbeef"  # alive as far as this host can tell


class RecordingMailer(Mailer):
    def __init__(self) -> None:
        self.names: list[str] = []

    def _send(self, message: EmailMessage, name: str) -> str:
        self.names.append(name.split("-", 1)[0])
        return f"recorded:{name}"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LocalRuntime]:
    settings = load_settings(
        {"workspace": tmp_path / "ws", "retry_base_seconds": 0.0, "max_attempts": 1}
    )
    rt = build_local(settings)
    try:
        yield rt
    finally:
        rt.close()


def test_a_report_waits_while_another_worker_holds_the_alert_claim(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    # GIVEN a file with high-severity findings whose alert another live worker is sending
    vitals = tmp_path / "ward.csv"
    generate_csv(SyntheticSpec(rows=600, users=6, seed=3), vitals)
    dataset_id = dataset_id_for(hashlib.sha256(vitals.read_bytes()).hexdigest())
    other = SqliteLedger(runtime.db, owner=OTHER_HOST_OWNER)
    assert other.claim(f"alert:{dataset_id}").acquired
    mailer = RecordingMailer()
    runtime.ports.mailer = mailer
    # WHEN the pipeline runs
    (result,) = run_files(runtime, [vitals])
    # THEN no report goes out without its alert: notify fails (retryable) and lets go of
    # its claim, instead of completing with alert "in_progress" and never alerting
    assert result.status == "failed"
    assert mailer.names == []
    assert runtime.ports.ledger.get(f"notify:{dataset_id}") is None
    # WHEN the other worker finishes its alert and the analysis event is delivered again
    other.complete(f"alert:{dataset_id}", {"email": "sent-elsewhere"})
    event = Event(c.SOURCE_ANALYZER, c.ANALYSIS_COMPLETE, {"dataset_id": dataset_id})
    again = notify(event, runtime.ports)
    # THEN the report goes out once, naming where the alert went; no second alert
    assert again.outcome == "done"
    assert mailer.names == ["report"]
    assert again.info["alert"] == "sent-elsewhere"


def test_ports_carry_each_stage_its_own_typed_settings_not_the_whole_settings() -> None:
    # GIVEN settings that differ from every default
    settings = load_settings(
        {
            "rules": "seed",
            "duckdb_memory_mb": 300,
            "duckdb_threads": 3,
            "top_users": 7,
            "episode_gap_minutes": 45,
            "activity_steps_above": 2500,
            "pseudonym_secret": "s3cret",
            "alert_min_severity": "medium",
            "digest_only": True,
            "email_from": "from@example.org",
            "email_to": "a@example.org,b@example.org",
            "lease_seconds": 120.0,
            "max_attempts": 5,
            "retry_base_seconds": 1.5,
        }
    )
    # WHEN bootstrap builds the stage settings
    built = stage_settings(settings)
    ingest, analyze = built["ingest_settings"], built["analyze_settings"]
    notify_settings, digest = built["notify_settings"], built["digest_settings"]
    delivery = built["delivery_settings"]
    # THEN each stage gets exactly its values
    assert (ingest.rules, ingest.engine.memory_limit_mb, ingest.engine.threads) == ("seed", 300, 3)
    assert analyze.engine == ingest.engine
    assert (analyze.top_users, analyze.episode_gap_minutes, analyze.activity_steps_above) == (
        7,
        45,
        2500,
    )
    assert analyze.pseudonym_secret == notify_settings.pseudonym_secret == "s3cret"
    assert "s3cret" not in repr(analyze) + repr(notify_settings)
    assert notify_settings.alert_min_severity == "medium" and notify_settings.digest_only
    assert notify_settings.top_users == 7
    assert notify_settings.mail == digest.mail
    assert digest.mail.sender == "from@example.org"
    assert digest.mail.recipients == ("a@example.org", "b@example.org")
    assert (delivery.lease_seconds, delivery.max_attempts, delivery.retry_base_seconds) == (
        120.0,
        5,
        1.5,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        ingest.rules = "plausible"  # type: ignore[misc]
    # and Ports holds no `Settings` at all
    assert all(f.type != "Settings" for f in dataclasses.fields(Ports))


def test_no_stage_module_imports_the_settings_module() -> None:
    stages_dir = Path(stages_base.__file__).parent
    importers = []
    for path in sorted(stages_dir.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(name == "healthpipe.config" for name in names):
                importers.append(path.name)
    assert importers == []


def test_only_the_lifecycle_helper_claims_completes_or_releases() -> None:
    # every stage and the alert path go through stages.base.run_once / run_claimed
    package = Path(stages_base.__file__).parents[1]
    callers = sorted(
        f"{path.relative_to(package)}:{name}"
        for path in package.rglob("*.py")
        for name in ("claim", "complete", "release")
        if f"ledger.{name}(" in path.read_text(encoding="utf-8")
    )
    assert callers == ["stages/base.py:claim", "stages/base.py:complete", "stages/base.py:release"]
