"""A stage's work folder, named for the process that owns it, and the sweep of those whose
owner has died.

A stage works in a folder of its own under the runtime's work directory (the workspace's
`tmp/`; on AWS a fresh folder per invocation): its outputs before they are moved into the
bucket, DuckDB's spill files, the chunked engine's chunks. It is removed when the stage ends,
whether it succeeded or raised; a process killed with SIGKILL, by the OOM killer or a power
cut leaves it behind, up to several times the input's size for a large file. So each folder
is named `<stage>-<pid>@<host>~<random>`, and a stage that starts removes first the folders
whose owner is a process of this host that has exited (`owners.owner_is_dead`, as the ledger
takes over a dead owner's claim). Folders of live processes, of other hosts (a workspace on
a shared disk) and of other names are left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from healthpipe.owners import owner_is_dead

OWNED = re.compile(r"^(?P<stage>[a-z]+)-(?P<pid>\d+)@(?P<host>[^~/]+)~[^/]+$")


def owner_of(folder: Path) -> str | None:
    """The owner id (`host:pid:`) a work folder's name holds, or None: not a work folder."""
    match = OWNED.match(folder.name)
    return f"{match['host']}:{match['pid']}:" if match else None


def sweep_dead_owners(root: Path) -> list[Path]:
    """Remove the work folders under `root` whose owner has exited; returns them."""
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        owner = owner_of(entry)
        if owner and entry.is_dir() and not entry.is_symlink() and owner_is_dead(owner):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


@contextmanager
def work_folder(root: Path, stage: str) -> Iterator[Path]:
    """A new folder under `root` for one run of `stage`, removed when the block ends; the
    folders dead processes left under `root` are removed first."""
    if not re.fullmatch(r"[a-z]+", stage):
        raise ValueError(f"a stage name is lower-case letters: {stage!r}")
    root.mkdir(parents=True, exist_ok=True)
    sweep_dead_owners(root)
    prefix = f"{stage}-{os.getpid()}@{socket.gethostname()}~"
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
