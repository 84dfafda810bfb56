"""`healthpipe forget --runtime aws` downloads a participant's files into the workspace's work
directory, never the system's TMPDIR (docs/privacy.md: copies outside the workspace are out
of the erasure's reach)."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import healthpipe.bootstrap as bootstrap
from healthpipe.bootstrap import build_local
from healthpipe.cli import app
from healthpipe.commands import forget as forget_command
from healthpipe.commands.forget import Forgotten
from healthpipe.config import Settings
from healthpipe.stages.base import Ports
from healthpipe.stages.erase import Erasure


def _aws_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`build_aws` gives local ports (no AWS needed), and `forget` writes a downloaded file
    where its ports say, as `erase_rows` and the re-analysis do; both record what they saw."""
    seen: dict[str, Any] = {}
    local = build_local(Settings(workspace=tmp_path / "local-ports"))

    def build_aws(settings: Settings, *, workdir: Path, **_: Any) -> Ports:
        seen["build_workdir"] = workdir
        return replace(local.ports, workdir=workdir)

    def forget(participant: str, ports: Ports, **_: Any) -> Forgotten:
        ports.workdir.mkdir(parents=True, exist_ok=True)
        downloaded = ports.workdir / "raw-upload.csv"
        downloaded.write_text("event_time,user_id\n")
        seen["downloaded"] = downloaded
        return Forgotten("P-0000000000000000", False, Erasure())

    monkeypatch.setattr(bootstrap, "build_aws", build_aws)
    monkeypatch.setattr(forget_command, "forget", forget)
    # the system's temporary directory, empty, watched
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    seen["system_tmp"] = system_tmp
    return seen


def test_forget_on_aws_downloads_into_the_workspace_work_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _aws_stand_in(tmp_path, monkeypatch)
    workspace = tmp_path / "operator-workspace"
    # WHEN an operator runs forget on AWS with a workspace
    result = CliRunner().invoke(
        app,
        ["forget", "alice-01", "--runtime", "aws", "--bucket", "b", "--workspace", str(workspace)],
    )
    assert result.exit_code == 0, result.output
    # THEN the participant's files went under the workspace's work directory
    work_dir = Settings(workspace=workspace).work_dir
    assert work_dir == workspace / "tmp"
    assert seen["downloaded"].is_relative_to(work_dir)
    assert seen["build_workdir"].is_relative_to(work_dir)
    # AND nothing went to the system's temporary directory, and nothing is left behind
    assert list(seen["system_tmp"].iterdir()) == []
    assert list(work_dir.iterdir()) == []


def test_forget_on_aws_with_an_unusable_workspace_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _aws_stand_in(tmp_path, monkeypatch)
    workspace = tmp_path / "a-file"
    workspace.write_text("not a folder")
    result = CliRunner().invoke(
        app,
        ["forget", "alice-01", "--runtime", "aws", "--bucket", "b", "--workspace", str(workspace)],
    )
    assert result.exit_code == 2
    assert "cannot use the work directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "downloaded" not in seen


def test_the_local_runtime_works_in_the_same_work_dir(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    local = build_local(settings)
    try:
        assert local.ports.workdir == settings.work_dir
    finally:
        local.close()
