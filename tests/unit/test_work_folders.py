"""A stage's work folder: named for its owner, removed when the stage ends, and removed by
the next stage once its owner has died; nothing else under the work directory is touched."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from healthpipe.dataops.work_folders import owner_of, sweep_dead_owners, work_folder
from healthpipe.owners import owner_is_dead

HOST = socket.gethostname()


def dead_pid() -> int:
    """The pid of a process that has exited (reused by another only after the pid space
    wraps, far beyond a test's time)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_folder_is_named_for_this_process_and_removed_when_the_block_ends(
    tmp_path: Path,
) -> None:
    with work_folder(tmp_path / "tmp", "ingest") as folder:
        assert folder.parent == tmp_path / "tmp" and folder.is_dir()
        assert folder.name.startswith(f"ingest-{os.getpid()}@{HOST}~")
        assert owner_of(folder) == f"{HOST}:{os.getpid()}:"
        assert not owner_is_dead(owner_of(folder) or "")
        (folder / "spill").mkdir()
        (folder / "spill" / "part.parquet").write_bytes(b"x" * 1024)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_folder_is_removed_when_the_stage_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), work_folder(tmp_path, "analyze") as folder:
        (folder / "half-written.csv").write_text("event_time,user_id\n")
        raise RuntimeError("the stage failed")
    assert list(tmp_path.iterdir()) == []


def test_a_new_folder_removes_those_of_dead_processes_and_only_those(tmp_path: Path) -> None:
    gone = dead_pid()
    dead = tmp_path / f"ingest-{gone}@{HOST}~abc123"
    (dead / "chunked-x" / "chunk-00000").mkdir(parents=True)
    (dead / "chunked-x" / "chunk-00000" / "staged.parquet").write_bytes(b"x" * 4096)
    dead_erase = tmp_path / f"erase-{gone}@{HOST}~q1"
    dead_erase.mkdir()
    live = tmp_path / f"analyze-{os.getpid()}@{HOST}~live"  # another stage of a live process
    live.mkdir()
    elsewhere = tmp_path / f"ingest-{gone}@another-host.example~x"  # a shared disk's
    elsewhere.mkdir()
    unowned = tmp_path / "ingest-k2j3h4"  # an older version's name: whose it is is unknown
    unowned.mkdir()
    a_file = tmp_path / f"ingest-{gone}@{HOST}~file"
    a_file.write_text("not a folder")
    target = tmp_path.parent / f"{tmp_path.name}-kept"
    target.mkdir()
    (target / "precious").write_text("kept")
    link = tmp_path / f"ingest-{gone}@{HOST}~link"
    link.symlink_to(target, target_is_directory=True)

    with work_folder(tmp_path, "ingest") as folder:
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted(
            [folder.name, live.name, elsewhere.name, unowned.name, a_file.name, link.name]
        )
    assert (target / "precious").read_text() == "kept"


def test_the_sweep_finds_nothing_in_a_missing_directory(tmp_path: Path) -> None:
    assert sweep_dead_owners(tmp_path / "never-made") == []


@pytest.mark.parametrize("name", ["ingest-12", "ingest-x@h~y", "Ingest-1@h~y", "-1@h~y"])
def test_other_names_have_no_owner(name: str) -> None:
    assert owner_of(Path(name)) is None


def test_a_stage_name_is_lower_case_letters(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lower-case"), work_folder(tmp_path, "in-gest"):
        pass
