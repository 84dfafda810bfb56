"""The handler modules as the tests drive them, and what the sample file holds."""

from __future__ import annotations

import csv
from pathlib import Path

from healthpipe.lambdas import analyzer, ingestor, notifier

HANDLERS = {"ingestor": ingestor, "analyzer": analyzer, "notifier": notifier}


def user_ids(path: Path) -> set[str]:
    with path.open(newline="") as handle:
        return {row["user_id"] for row in csv.DictReader(handle) if row.get("user_id")}
