"""The flags of a reading, bits of `flags` in the anomaly rows of a group."""

from __future__ import annotations

CONFLICTING_BIT = 1  # a conflicting reading (rejected as `conflicting_reading`), scored anyway
ACTIVITY_BIT = 2  # steps above the threshold in the reading or the user's one just before
CLINICAL_BIT = 4  # the reading has a NEWS2 or ACC/AHA finding
# the reading is not within the episode gap of the user's reading before (or is the
# user's first, or a time is missing): no episode runs across it
BREAK_BIT = 8


def in_list(items: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, items or (-1,))) + ")"
