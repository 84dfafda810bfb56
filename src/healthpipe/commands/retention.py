"""`healthpipe retention [--apply]`: delete a local workspace's raw uploads and reports older
than `retention_days` (docs/lake.md#retention).

A file's age is its modification time: when it was written into the workspace, as an S3
object's age is its creation (the lifecycle rules of `data_retention` count from there).
Without `--apply` nothing is deleted: the command says what would be. Output and logs hold
counts only, never file names (a name can hold an id).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from healthpipe import constants as c
from healthpipe.commands.options import (
    ConfigOpt,
    JsonOpt,
    LogJsonOpt,
    VerboseOpt,
    WorkspaceOpt,
    flag_help,
)
from healthpipe.commands.output import cli_errors, out, require_workspace, settings_from

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
# What expires locally: the uploads, and the reports with their cards (reports/index.html is
# kept: it is rebuilt from the cards that remain on the next report).
EXPIRING = {"raw": (c.RAW_PREFIX, "**/*"), "reports": (c.REPORTS_PREFIX, "**/*")}
KEPT_NAMES = frozenset({"index.html"})
clock = time.time  # the command's "now" (a test shifts it)


@dataclass
class Expired:
    files: dict[str, list[Path]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {prefix: len(paths) for prefix, paths in self.files.items()}


def expired(bucket_dir: Path, days: int, now: float) -> Expired:
    """The raw and report files last written more than `days` days before `now`."""
    cutoff = now - days * DAY_SECONDS
    found = Expired()
    for name, (prefix, pattern) in EXPIRING.items():
        folder = bucket_dir / prefix
        found.files[name] = sorted(
            path
            for path in folder.glob(pattern)
            if path.is_file() and path.name not in KEPT_NAMES and path.stat().st_mtime < cutoff
        )
    return found


def delete(found: Expired) -> dict[str, int]:
    """Delete the expired files; the number deleted per prefix (a file already gone counts
    as nothing)."""
    deleted: dict[str, int] = {}
    for name, paths in found.files.items():
        deleted[name] = 0
        for path in paths:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            deleted[name] += 1
    log.info("retention applied", extra={f"deleted_{k}": v for k, v in deleted.items()})
    return deleted


def register(app: typer.Typer) -> None:
    @app.command()
    def retention(
        apply: Annotated[
            bool,
            typer.Option("--apply", help=flag_help("Delete (without it: only count)")),
        ] = False,
        days: Annotated[
            int | None,
            typer.Option(
                "--days",
                min=1,
                metavar="N",
                help="Keep N days [env HEALTHPIPE_RETENTION_DAYS; default none: keep all]",
                show_default=False,
            ),
        ] = None,
        workspace: WorkspaceOpt = None,
        config: ConfigOpt = None,
        as_json: JsonOpt = False,
        verbose: VerboseOpt = False,
        log_json: LogJsonOpt = False,
    ) -> None:
        """Delete raw uploads and reports older than retention_days (dry run unless --apply)."""
        from healthpipe import logs

        logs.configure(verbose, log_json)
        with cli_errors(verbose):
            settings = settings_from(workspace, config)
            require_workspace(settings)
            keep = days or settings.retention_days
            if keep is None:
                counts: dict[str, int] = {}
            else:
                found = expired(settings.bucket_dir, keep, clock())
                counts = delete(found) if apply else found.counts()
        if as_json:
            document = {"retention_days": keep, "applied": apply, "files": counts}
            sys.stdout.write(json.dumps(document) + "\n")
        elif keep is None:
            out.print("retention_days is not set: every file is kept", highlight=False)
        else:
            verb = "deleted" if apply else "dry run (--apply deletes), would delete"
            listed = ", ".join(f"{prefix}: {n} file(s)" for prefix, n in counts.items())
            out.print(
                f"older than {keep} day(s), {verb}: {listed}", highlight=False, soft_wrap=True
            )
