"""A folder as a bucket: keys are relative paths; writes are atomic (temp file + rename)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from healthpipe.adapters.local.files import (
    TEMP_PREFIX,
    copy_atomic,
    move_atomic,
    write_atomic,
    write_bytes_atomic,
)
from healthpipe.errors import PermanentError
from healthpipe.ports import HASH_CHUNK, LocalObject, ObjectStore, sha256_file


class FolderObjectStore(ObjectStore):
    def __init__(self, root: Path, bucket: str = "local") -> None:
        self.root = root
        self.bucket = bucket
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()) or key.startswith("/"):
            raise PermanentError(f"key escapes the bucket: {key!r}")
        return path

    @staticmethod
    def version_of(path: Path) -> str:
        stat = path.stat()
        return f"{stat.st_mtime_ns:x}-{stat.st_size:x}"

    def _materialize(self, key: str, workdir: Path) -> LocalObject:
        path = self.path_for(key)
        if not path.is_file():
            raise PermanentError(f"no such object: {key}")
        sha256, size = sha256_file(path)
        return LocalObject(key, path, size, sha256, self.version_of(path))

    def _put_file(self, key: str, path: Path, content_type: str) -> str:
        target = self.path_for(key)
        copy_atomic(path, target)
        return self.version_of(target)

    def _adopt_file(self, key: str, path: Path, content_type: str) -> str:
        target = self.path_for(key)
        move_atomic(path, target)
        return self.version_of(target)

    def _put_bytes(self, key: str, data: bytes, content_type: str) -> str:
        target = self.path_for(key)
        write_bytes_atomic(target, data)
        return self.version_of(target)

    def _get_bytes(self, key: str) -> bytes:
        path = self.path_for(key)
        if not path.is_file():
            raise PermanentError(f"no such object: {key}")
        return path.read_bytes()

    def _read_range_into(
        self, key: str, start: int, end: int, write: Callable[[bytes], object]
    ) -> None:
        path = self.path_for(key)
        if not path.is_file():
            raise PermanentError(f"no such object: {key}")
        with path.open("rb") as handle:
            handle.seek(start)
            left = end - start
            while left > 0 and (block := handle.read(min(1024 * 1024, left))):
                write(block)
                left -= len(block)

    def _compose(self, key: str, parts: list[tuple[str, int]], content_type: str) -> str:
        """The parts' files concatenated in order into one atomic write of `key`."""
        sources = [(self.path_for(part), skip) for part, skip in parts]
        for (part, _), (source, _) in zip(parts, sources, strict=True):
            if not source.is_file():
                raise PermanentError(f"no such object: {part}")
        target = self.path_for(key)

        def write(out: BinaryIO) -> None:
            for source, skip in sources:
                with source.open("rb") as handle:
                    handle.seek(skip)
                    shutil.copyfileobj(handle, out, 1024 * 1024)

        write_atomic(target, write)
        return self.version_of(target)

    def _stream(self, key: str, version_id: str | None) -> Iterator[tuple[bytes, str | None]]:
        path = self.path_for(key)
        if not path.is_file():
            raise PermanentError(f"no such object: {key}")
        version = self.version_of(path)
        with path.open("rb") as handle:
            while block := handle.read(HASH_CHUNK):
                yield block, version

    def _put_stream(self, key: str, blocks: Iterable[bytes], content_type: str) -> str:
        target = self.path_for(key)

        def write(out: BinaryIO) -> None:
            for block in blocks:
                out.write(block)

        write_atomic(target, write)
        return self.version_of(target)

    def _delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def _exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def _list_keys(self, prefix: str) -> list[str]:
        base = self.root.resolve()
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(TEMP_PREFIX):
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return keys
