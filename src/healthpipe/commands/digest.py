"""`healthpipe digest`: email one summary of every dataset analysed in a recent window."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Annotated

import typer

from healthpipe.commands.options import ConfigOpt, JsonOpt, LogJsonOpt, VerboseOpt, WorkspaceOpt
from healthpipe.commands.output import EXIT_OK, cli_errors, out, require_workspace, settings_from

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
UNIT_SECONDS = {"": 3600, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

SinceOpt = Annotated[
    str,
    typer.Option(
        "--since",
        metavar="DURATION",
        show_default=False,
        help="Window length ending now: 24h, 90m, 7d, 1w [default 24h]",
    ),
]


def parse_duration(text: str) -> float:
    """'24h', '90m', '7d', '1w', '3600s'; a bare number means hours."""
    match = DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration like 24h, 90m or 7d")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2).lower()]


def register(app: typer.Typer) -> None:
    @app.command()
    def digest(
        since: SinceOpt = "24h",
        workspace: WorkspaceOpt = None,
        config: ConfigOpt = None,
        as_json: JsonOpt = False,
        verbose: VerboseOpt = False,
        log_json: LogJsonOpt = False,
    ) -> None:
        """Email a digest of all datasets analysed in the window, with trends vs the one before."""
        from healthpipe import constants as c
        from healthpipe import logs
        from healthpipe.bootstrap import build_local
        from healthpipe.events import Event
        from healthpipe.stages.digest import digest as digest_stage

        logs.configure(verbose, log_json)
        seconds = parse_duration(since)
        with cli_errors(verbose):
            settings = settings_from(workspace, config)
            require_workspace(settings)
            runtime = build_local(settings)
            try:
                until = time.time()
                if not runtime.ports.analyses.recent(1, since_epoch=until - seconds):
                    runtime.close()
                    if as_json:
                        sys.stdout.write(json.dumps({"outcome": "empty", "datasets": 0}) + "\n")
                    else:
                        out.print(f"no dataset analysed in the last {since}: no digest sent")
                    raise typer.Exit(EXIT_OK)
                event = Event(
                    c.SOURCE_SCHEDULER,
                    c.DIGEST_REQUESTED,
                    {"window_seconds": seconds, "until": until},
                )
                result = digest_stage(event, runtime.ports)
            finally:
                runtime.close()
        if as_json:
            sys.stdout.write(json.dumps({"outcome": result.outcome, **result.info}) + "\n")
            raise typer.Exit(EXIT_OK)
        info = result.info
        if result.outcome != "done":
            out.print(f"digest for this window already {result.outcome}", highlight=False)
        else:
            out.print(
                f"digest: {info['datasets']} dataset(s) in the window, "
                f"{info['previous_datasets']} in the previous one",
                highlight=False,
            )
        if info.get("report_key"):
            out.print(f"report: {settings.bucket_dir / str(info['report_key'])}", highlight=False)
        if info.get("email"):
            out.print(f"email:  {info['email']}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_OK)
