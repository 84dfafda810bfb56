"""Atomic file writes: a temp file in the target's folder, then a rename. A reader sees the
old file or the new one, never a half-written one; a failed write leaves no temp file."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = ".tmp-"


def write_atomic(target: Path, write: Callable[[BinaryIO], None]) -> None:
    """Create `target` (and its folder) from what `write` puts into the open file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX, suffix=target.name)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(target: Path, data: bytes) -> None:
    def write(out: BinaryIO) -> None:
        out.write(data)

    write_atomic(target, write)


def copy_atomic(source: Path, target: Path) -> None:
    """Copy `source` to `target` (shutil.copyfile: the kernel copies, no bytes via Python)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX, suffix=target.name)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def move_atomic(source: Path, target: Path) -> None:
    """Move `source` to `target`: a rename on the same file system, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        copy_atomic(source, target)
