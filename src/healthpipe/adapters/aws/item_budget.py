"""Keep a JSON document under a byte budget by trimming its longest lists and strings.

DynamoDB items may not exceed 400 KB; an analysis of any file size must fit far below that.
The full analysis lives in S3, so the stored copy may be shortened: lists and nested objects
keep their first entries, long strings are cut, and `_trimmed` records that it happened.
"""

from __future__ import annotations

import json
from typing import Any

MIN_STRING = 64
MAP_KEYS = 20
KEEP = ("dataset_id", "user_key", "kind", "item_key")


def size_of(doc: Any) -> int:
    return len(json.dumps(doc, default=str, separators=(",", ":")).encode())


def _largest(doc: Any, path: tuple[Any, ...] = ()) -> tuple[int, tuple[Any, ...]] | None:
    """(size, path) of the biggest trimmable list or string inside `doc`."""
    best: tuple[int, tuple[Any, ...]] | None = None
    children: list[tuple[Any, Any]] = []
    if isinstance(doc, dict):
        if path and len(doc) > MAP_KEYS:  # a map (e.g. counts by reason), not a record
            best = (size_of(doc), path)
        children = list(doc.items())
    elif isinstance(doc, list):
        if len(doc) > 1:
            best = (size_of(doc), path)
        children = list(enumerate(doc))
    elif isinstance(doc, str) and len(doc) > MIN_STRING:
        best = (len(doc.encode()), path)
    for key, child in children:
        if isinstance(child, dict | list | str):
            found = _largest(child, (*path, key))
            if found is not None and (best is None or found[0] > best[0]):
                best = found
    return best


def _shrink(doc: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        if isinstance(doc, list):
            return doc[: max(1, len(doc) // 2)]
        if isinstance(doc, dict):
            return dict(list(doc.items())[: max(1, len(doc) // 2)])
        return doc[: max(MIN_STRING, len(doc) // 2) - 1] + "…"
    head, *rest = path
    copy: Any = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[head] = _shrink(doc[head], tuple(rest))
    return copy


def fit(doc: dict[str, Any], budget: int, keep: tuple[str, ...] = KEEP) -> dict[str, Any]:
    """`doc` itself if it fits `budget` bytes of JSON, else a trimmed copy that does.

    When nothing is left to shorten, the largest top-level fields (other than `keep`) are
    dropped and listed under `_dropped`.
    """
    if size_of(doc) <= budget:
        return doc
    trimmed: dict[str, Any] = {**doc, "_trimmed": True}
    while size_of(trimmed) > budget:
        target = _largest(trimmed)
        if target is not None:
            trimmed = _shrink(trimmed, target[1])
            continue
        droppable = [k for k in trimmed if k not in keep and k not in ("_trimmed", "_dropped")]
        if not droppable:
            raise ValueError(f"document cannot be trimmed under {budget} bytes")
        biggest = max(droppable, key=lambda k: size_of(trimmed[k]))
        dropped = [*trimmed.get("_dropped", []), biggest]
        trimmed = {k: v for k, v in trimmed.items() if k != biggest} | {"_dropped": dropped}
    return trimmed
