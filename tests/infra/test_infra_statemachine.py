"""The Step Functions definition of the chunked ingest (infra/terraform/statemachine):
valid by a real ASL validator (npm `asl-validator`, installed from tools/asl's lockfile by
`make asl`), and shaped as issue 17 asks: a Distributed Map reading the plan's chunk list
from S3, bounded concurrency, per-item retries, a failure threshold, and a failure path
that publishes Data Processing Failed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from infra_terraform import ROOT

from healthpipe import constants as c


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validate_asl", ROOT / "scripts/validate_asl.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("validate_asl", module)
    spec.loader.exec_module(module)
    return module


asl = _script()
DEFINITION = asl.STATEMACHINE / "chunked_ingest.asl.json"


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    rendered: dict[str, Any] = asl.render(DEFINITION)
    return rendered


def states(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, nested ones (a Map's ItemProcessor) included."""
    for name, state in machine["States"].items():
        yield name, state
        if state["Type"] == "Map":
            yield from states(state["ItemProcessor"])


def installed() -> bool:
    return asl.VALIDATOR.exists() and asl.shutil.which("node") is not None


needs_validator = pytest.mark.skipif(
    not installed(), reason="asl-validator not installed (node + `make asl`: npm ci in tools/asl)"
)


@needs_validator
def test_the_definition_passes_the_asl_validator(tmp_path: Path) -> None:
    result = asl.validate([DEFINITION])
    assert result.returncode == 0, result.stdout + result.stderr
    # and the validator does reject a broken one (so the pass above means something)
    broken = asl.render(DEFINITION)
    broken["States"]["StageChunks"]["MaxConcurrency"] = "ten"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(broken))
    node = asl.shutil.which("node")
    failed = subprocess.run(
        [node, str(asl.VALIDATOR), "--json-path", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "MaxConcurrency" in failed.stdout + failed.stderr


def test_every_state_is_reachable_and_every_transition_lands(definition: dict[str, Any]) -> None:
    def walk(machine: dict[str, Any]) -> None:
        names = set(machine["States"])
        seen: set[str] = set()
        todo = [machine["StartAt"]]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            assert name in names, name
            seen.add(name)
            state = machine["States"][name]
            targets = [state.get("Next")] + [ch["Next"] for ch in state.get("Choices", [])]
            targets += [state.get("Default")] + [x["Next"] for x in state.get("Catch", [])]
            todo += [t for t in targets if t]
            if state["Type"] == "Map":
                walk(state["ItemProcessor"])
        assert seen == names, names - seen

    walk(definition)


def test_the_maps_are_distributed_over_the_plan_s_chunk_list(definition: dict[str, Any]) -> None:
    maps = {n: s for n, s in definition["States"].items() if s["Type"] == "Map"}
    assert set(maps) == {"StageChunks", "SplitChunks"}
    template = DEFINITION.read_text()
    assert template.count('"MaxConcurrency": ${max_concurrency}') == 2
    assert template.count('"ToleratedFailurePercentage": ${tolerated_failure_percentage}') == 2
    for state in maps.values():
        assert state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        reader = state["ItemReader"]
        assert reader["Resource"] == "arn:aws:states:::s3:getObject"
        assert reader["ReaderConfig"]["InputType"] == "JSON"
        assert reader["Parameters"] == {"Bucket.$": "$.job.bucket", "Key.$": "$.job.chunks_key"}
        assert state["ItemSelector"] == {"job.$": "$.job", "chunk.$": "$$.Map.Item.Value"}
        assert state["ResultPath"] is None  # results go to S3, not into the state
        assert [x["Next"] for x in state["Catch"]] == ["ChunksFailed"]


def test_every_lambda_task_retries_all_but_permanent_errors(definition: dict[str, Any]) -> None:
    tasks = {
        n: s for n, s in states(definition) if s.get("Resource") == "arn:aws:states:::lambda:invoke"
    }
    assert set(tasks) == {"Plan", "StageChunk", "FindRepeats", "SplitChunk", "Assemble"}
    for name, task in tasks.items():
        first, then = task["Retry"]
        assert first == {"ErrorEquals": ["PermanentError"], "MaxAttempts": 0}, name
        assert then["ErrorEquals"] == ["States.ALL"] and then["MaxAttempts"] >= 1, name
        assert task["Parameters"]["FunctionName"].startswith(asl.ACCOUNT_ARN), name


def test_failures_publish_data_processing_failed(definition: dict[str, Any]) -> None:
    for name in ("PlanFailed", "ChunksFailed"):
        state = definition["States"][name]
        assert state["Resource"] == "arn:aws:states:::events:putEvents"
        (entry,) = state["Parameters"]["Entries"]
        assert entry["Source"] == c.SOURCE_INGESTOR
        assert entry["DetailType"] == c.PROCESSING_FAILED
        assert entry["Detail"]["status"] == "failed"
        assert state["Next"] == "Failed"
    assert definition["States"]["Failed"]["Type"] == "Fail"
    catches = [x["Next"] for _, s in states(definition) for x in s.get("Catch", [])]
    assert set(catches) == {"PlanFailed", "ChunksFailed"}
