"""`healthpipe watch`: process files as they land in the workspace's raw/, until stopped."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from healthpipe.commands.options import (
    AnalystOpt,
    ConfigOpt,
    LogJsonOpt,
    RulesOpt,
    VerboseOpt,
    WorkersOpt,
    WorkspaceOpt,
)

SettleOpt = Annotated[
    float,
    typer.Option(
        "--settle",
        min=0.0,
        metavar="SECONDS",
        show_default=False,
        help="Seconds a file's size must stay unchanged before it is processed [default 2]",
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json", help="One JSON object per finished file [default off]", show_default=False
    ),
]


def register(app: typer.Typer) -> None:
    @app.command()
    def watch(
        workspace: WorkspaceOpt = None,
        config: ConfigOpt = None,
        rules: RulesOpt = None,
        analyst: AnalystOpt = None,
        workers: WorkersOpt = None,
        settle: SettleOpt = 2.0,
        as_json: JsonOpt = False,
        verbose: VerboseOpt = False,
        log_json: LogJsonOpt = False,
    ) -> None:
        """Watch the workspace's bucket/raw/ and process each file once it has settled.

        Resumes unfinished work first. Ctrl-C or SIGTERM stops after the step in hand.
        """
        from healthpipe import logs
        from healthpipe.bootstrap import build_local
        from healthpipe.commands.output import EXIT_OK, cli_errors, err, out, settings_from
        from healthpipe.dataops.profiles import load_profile
        from healthpipe.orchestration.runs import FileOutcome
        from healthpipe.orchestration.watch import RawWatcher

        logs.configure(verbose, log_json)

        def show(outcome: FileOutcome) -> None:
            if as_json:
                sys.stdout.write(json.dumps(outcome.to_dict()) + "\n")
                sys.stdout.flush()
                return
            line = (
                f"{Path(outcome.source).name}: {outcome.status} "
                f"(rows {outcome.rows['input']}, valid {outcome.rows['valid']}, "
                f"rejected {outcome.rows['rejected']}, findings {outcome.anomalies})"
            )
            out.print(line, highlight=False, soft_wrap=True)
            if outcome.error:
                err.print(f"  {outcome.error}", highlight=False, soft_wrap=True)
            if outcome.report:
                out.print(f"  report: {outcome.report}", highlight=False, soft_wrap=True)

        with cli_errors(verbose):
            settings = settings_from(
                workspace, config, rules=rules, analyst=analyst, workers=workers
            )
            load_profile(settings.rules)
            runtime = build_local(settings)
            watcher = RawWatcher(runtime, settle_seconds=settle, on_outcome=show)

            def on_signal(signum: int, frame: FrameType | None) -> None:
                watcher.stop()
                signal.signal(signal.SIGINT, signal.default_int_handler)  # 2nd Ctrl-C: now

            previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
            if not as_json:
                err.print(f"watching {watcher.raw_dir} (Ctrl-C to stop)", highlight=False)
            try:
                watcher.run()
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
                runtime.close()
            if not as_json:
                err.print("stopped", highlight=False)
        raise typer.Exit(EXIT_OK)
