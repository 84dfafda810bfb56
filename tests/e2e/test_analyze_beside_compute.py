"""What the analyze stage does beside its compute, on the core the anomaly file's one-thread
write leaves idle: it stores the file's histograms (and returns only once they are stored,
whether the compute ends well or fails), and it hands its facts to `healthpipe run`'s chart
worker before that write is done (the statistics as soon as the file is scanned)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from healthpipe.bootstrap import build_local
from healthpipe.config import load_settings
from healthpipe.dataops.analysis import facts as facts_module
from healthpipe.dataops.analysis import findings
from healthpipe.domain.identity import pseudonym
from healthpipe.orchestration.runs import upload_event, upload_raw
from healthpipe.stages import analyze as analyze_stage
from healthpipe.stages.analyze import analyze
from healthpipe.stages.base import facts_listener
from healthpipe.stages.ingest import ingest
from support.readings import write_csv

WAIT_S = 20.0


@pytest.fixture
def processed(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A workspace's runtime with one small file ingested, and its Processing Complete."""
    rows = [f"2025-06-01T{h:02d}:00:00Z,p{h % 3},{60 + h},98,10,36.8,115,75" for h in range(24)]
    source = write_csv(tmp_path / "day.csv", rows)
    runtime = build_local(load_settings({"workspace": tmp_path / "ws"}))
    try:
        ingested = ingest(upload_event(runtime, upload_raw(runtime, source)), runtime.ports)
        assert ingested.outcome == "done", ingested.info
        yield runtime, ingested.events[0]
    finally:
        runtime.close()


def test_the_histograms_are_stored_while_the_anomalies_are_computed(
    processed: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, event = processed
    stored = threading.Event()
    real_save, real_facts = analyze_stage.save_history, analyze_stage._facts

    def save(*args: Any) -> None:
        real_save(*args)
        stored.set()

    def facts(*args: Any) -> Any:
        # after the history is stored, in another thread, the compute finishes; stored one
        # after the other, this would wait in vain
        assert stored.wait(WAIT_S), "the histograms were not stored beside the compute"
        return real_facts(*args)

    monkeypatch.setattr(analyze_stage, "save_history", save)
    monkeypatch.setattr(analyze_stage, "_facts", facts)
    result = analyze(event, runtime.ports)
    assert result.outcome == "done", result.info
    secret = runtime.ports.analyze_settings.pseudonym_secret
    labels = {pseudonym(f"p{i}", secret) for i in range(3)}
    day = date(2025, 6, 1)
    assert {h.pseudonym for h in runtime.ports.history.load(sorted(labels), day, day)} == labels


def test_a_failed_compute_fails_the_stage_after_the_histograms_are_stored(
    processed: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, event = processed
    order: list[str] = []
    real_save = analyze_stage.save_history
    release = threading.Event()

    def save(*args: Any) -> None:
        assert release.wait(WAIT_S)
        real_save(*args)
        order.append("stored")

    def facts(*args: Any) -> Any:
        release.set()
        raise OSError("No space left on device")

    monkeypatch.setattr(analyze_stage, "save_history", save)
    monkeypatch.setattr(analyze_stage, "_facts", facts)
    with pytest.raises(OSError, match="No space left"):
        analyze_stage.analyze_again(
            analyze_stage.ProcessingComplete.model_validate(event.detail), runtime.ports
        )
    assert order == ["stored"]  # done before the stage's error reached its caller
    assert not [t for t in threading.enumerate() if t.name.startswith("history_")]


def test_the_facts_are_heard_of_before_the_anomaly_file_is_written(
    processed: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, event = processed
    # one group of participants each, so that their parts are joined into the file
    monkeypatch.setattr(findings, "READINGS_PER_MB", 0)
    monkeypatch.setattr(findings, "MIN_READINGS_PER_GROUP", 1)
    heard = threading.Event()
    joins: list[int] = []
    real_join = facts_module.join_parts

    def join(cursor: Any, parts: list[Path], out: Path) -> None:
        joins.append(len(parts))
        assert heard.wait(WAIT_S), "the facts were not given before the file was written"
        real_join(cursor, parts, out)

    monkeypatch.setattr(facts_module, "join_parts", join)
    found: list[Any] = []

    def listen(facts: Any) -> None:
        found.append(facts)
        if "anomalies" in facts.model_fields_set:
            heard.set()

    with facts_listener(listen):
        result = analyze(event, runtime.ports)
    assert result.outcome == "done", result.info
    assert joins == [3]
    # the statistics once the file is scanned, then the final facts
    given = [sorted(f.model_fields_set & {"metrics", "anomalies"}) for f in found]
    assert given == [["metrics"], ["anomalies", "metrics"]]
    assert found[0].metrics == found[1].metrics
    assert found[1].anomalies.total == result.info["anomalies"]


def test_nobody_listening_the_facts_are_not_built_twice(
    processed: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a Lambda never listens: the stage then asks analyze_parquet for no early facts
    runtime, event = processed
    asked: list[object] = []
    real = analyze_stage.analyze_parquet

    def analyze_parquet(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs.get("on_facts"))
        return real(*args, **kwargs)

    monkeypatch.setattr(analyze_stage, "analyze_parquet", analyze_parquet)
    assert analyze(event, runtime.ports).outcome == "done"
    with facts_listener(lambda facts: None):
        analyze_stage.analyze_again(
            analyze_stage.ProcessingComplete.model_validate(event.detail), runtime.ports
        )
    assert asked[0] is None and callable(asked[1])
