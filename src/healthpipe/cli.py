"""The `healthpipe` command (Typer + Rich).

Exit codes: 0 every file processed or skipped; 2 a file is unusable or the command's input
(settings, rules, arguments) is wrong; 1 an internal failure. No traceback on bad input.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from healthpipe import __version__, logs
from healthpipe.bootstrap import LocalRuntime, build_local
from healthpipe.commands.options import AnalystOpt, ConfigOpt, RulesOpt, VerboseOpt, WorkspaceOpt
from healthpipe.config import Settings, load_settings
from healthpipe.errors import ConfigError, HealthpipeError
from healthpipe.orchestration.local import Dispatcher
from healthpipe.orchestration.runs import FileOutcome, run_files
from healthpipe.synthetic import SyntheticSpec, generate_csv

EXIT_OK, EXIT_INTERNAL, EXIT_UNUSABLE = 0, 1, 2

app = typer.Typer(
    name="healthpipe",
    help="Validate, analyze and report health-vitals CSV files — on AWS or on one machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def cli_errors(verbose: bool) -> Iterator[None]:
    """One clear line and a documented exit code instead of a traceback."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except ConfigError as exc:
        raise fail(str(exc), EXIT_UNUSABLE) from None
    except HealthpipeError as exc:
        raise fail(str(exc), EXIT_INTERNAL) from None
    except Exception as exc:
        if verbose:
            raise
        raise fail(f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL) from None


def settings_from(workspace: Path | None, config: Path | None, **flags: Any) -> Settings:
    return load_settings({"workspace": workspace, **flags}, config)


def exit_code(results: list[FileOutcome]) -> int:
    if any(r.status == "failed" for r in results):
        return EXIT_INTERNAL
    if any(r.status == "rejected" for r in results):
        return EXIT_UNUSABLE
    return EXIT_OK


def _print_outcomes(results: list[FileOutcome]) -> None:
    table = Table(title="healthpipe run", show_lines=False)
    for column in ("file", "status", "dataset", "rows in", "valid", "rejected", "findings"):
        table.add_column(column)
    colours = {"processed": "green", "skipped": "cyan", "rejected": "yellow", "failed": "red"}
    for r in results:
        table.add_row(
            escape(Path(r.source).name),
            f"[{colours[r.status]}]{r.status}[/]",
            r.dataset_id or "-",
            str(r.rows["input"]),
            str(r.rows["valid"]),
            str(r.rows["rejected"]),
            str(r.anomalies),
        )
    out.print(table)
    for r in results:
        if r.error:
            err.print(
                f"[yellow]{escape(Path(r.source).name)}:[/] {escape(r.error)}",
                highlight=False,
                soft_wrap=True,
            )
        if r.report:
            out.print(f"report: {r.report}", highlight=False, soft_wrap=True)
        if r.email:
            out.print(f"email:  {r.email}", highlight=False, soft_wrap=True)


def _run(runtime: LocalRuntime, files: list[Path], show_progress: bool) -> list[FileOutcome]:
    if not show_progress:
        return run_files(runtime, files)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} files"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("processing", total=len(files))
        return run_files(runtime, files, on_file=lambda _: progress.advance(task))


@app.command()
def run(
    files: Annotated[list[Path], typer.Argument(help="CSV or CSV.GZ files of vitals")],
    workspace: WorkspaceOpt = None,
    rules: RulesOpt = None,
    analyst: AnalystOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Ingest, validate, analyze and report each FILE (copied into the workspace's raw/)."""
    logs.configure(logging.INFO if verbose else logging.WARNING)
    with cli_errors(verbose):
        settings = settings_from(workspace, config, rules=rules, analyst=analyst)
        from healthpipe.domain.rules import load_profile

        load_profile(settings.rules)  # a bad profile is the user's error: say so before work
        runtime = build_local(settings)
        try:
            results = _run(runtime, files, show_progress=not as_json and err.is_terminal)
        finally:
            runtime.close()
    if as_json:
        sys.stdout.write(json.dumps({"files": [r.to_dict() for r in results]}) + "\n")
    else:
        _print_outcomes(results)
    raise typer.Exit(exit_code(results))


@app.command()
def generate(
    out_file: Annotated[Path, typer.Option("--out", help="Output .csv or .csv.gz")],
    rows: Annotated[int, typer.Option(min=1, help="Rows to generate")] = 5000,
    users: Annotated[int, typer.Option(min=1, help="Distinct users")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same file)")] = 42,
    bad_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of bad rows")] = 0.02,
    upload: Annotated[bool, typer.Option("--upload", help="Then put it under raw/ in S3")] = False,
    bucket: Annotated[str | None, typer.Option("--bucket", help="Bucket for --upload")] = None,
) -> None:
    """Write synthetic vitals with injected clinical episodes and bad rows."""
    with cli_errors(False):
        started = time.perf_counter()
        generate_csv(
            SyntheticSpec(rows=rows, users=users, seed=seed, bad_row_rate=bad_rate), out_file
        )
        out.print(
            f"wrote {out_file} ({rows} rows, {users} users) in "
            f"{time.perf_counter() - started:.1f}s",
            highlight=False,
        )
        if upload:
            from healthpipe.commands.aws import upload_files

            upload_files([out_file], bucket=bucket)


@app.command()
def demo(
    workspace: WorkspaceOpt = None,
    rows: Annotated[int, typer.Option(min=100, help="Rows of sample data")] = 5000,
    users: Annotated[int, typer.Option(min=1, help="Users in the sample data")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed")] = 7,
    verbose: VerboseOpt = False,
) -> None:
    """Generate realistic sample data and run the whole pipeline on it, on this machine."""
    logs.configure(logging.INFO if verbose else logging.WARNING)
    with cli_errors(verbose):
        settings = settings_from(workspace, None)
        sample = settings.workspace / "samples" / f"demo-vitals-{seed}-{rows}.csv"
        generate_csv(SyntheticSpec(rows=rows, users=users, seed=seed), sample)
        out.print(f"generated {sample} ({rows} rows, {users} users)", highlight=False)
        runtime = build_local(settings)
        try:
            results = _run(runtime, [sample], show_progress=err.is_terminal)
        finally:
            runtime.close()
    _print_outcomes(results)
    result = results[0]
    if result.report:
        out.print(f"\n[bold]Report:[/] {result.report}", highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code(results))


@app.command()
def status(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="Datasets to list")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
) -> None:
    """Recent datasets, counts, dead letters and metric totals of a workspace."""
    with cli_errors(False):
        settings = settings_from(workspace, config)
        if not settings.db_path.exists():
            raise fail(
                f"no workspace at {settings.workspace} (run `healthpipe demo` first)", EXIT_UNUSABLE
            )
        runtime = build_local(settings)
        try:
            recent = runtime.ports.analyses.recent(limit)
            dead = runtime.bus.dead_letters()
            deliveries = runtime.bus.counts()
            totals = runtime.ports.metrics.totals()
        finally:
            runtime.close()
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "datasets": recent,
                    "dead_letters": dead,
                    "deliveries": deliveries,
                    "metrics": totals,
                },
                default=str,
            )
            + "\n"
        )
        return
    table = Table(title=f"Recent datasets in {settings.workspace}")
    for column in (
        "created",
        "dataset",
        "source",
        "rows in",
        "rejected",
        "findings",
        "worst",
        "analyst",
    ):
        table.add_column(column)
    for item in recent:
        table.add_row(
            str(item["created_at"]),
            item["dataset_id"],
            escape(item["source_key"]),
            str(item["rows"]["input"]),
            str(item["rows"]["rejected"]),
            str(item["anomalies"]["total"]),
            item["worst_severity"],
            _analyst_label(item["analyst"]),
        )
    out.print(table)
    out.print(
        "deliveries: " + ", ".join(f"{k} {v}" for k, v in sorted(deliveries.items())),
        highlight=False,
    )
    out.print(f"dead letters: {len(dead)}", highlight=False)
    for letter in dead:
        out.print(
            f"  #{letter['id']} {letter['target']} ({letter['detail_type']}): "
            f"{letter['last_error']}",
            highlight=False,
            soft_wrap=True,
        )
    if totals:
        out.print(
            "metrics: " + ", ".join(f"{k}={v:g}" for k, v in sorted(totals.items())),
            highlight=False,
            soft_wrap=True,
        )
        out.print(
            f"LLM usage: {totals.get('LLMInputTokens', 0):,.0f} input tokens, "
            f"{totals.get('LLMOutputTokens', 0):,.0f} output tokens, "
            f"cost ${totals.get('LLMCostUSD', 0):.6f} USD, "
            f"{totals.get('AnalystFallbacks', 0):,.0f} analyst fallback(s)",
            highlight=False,
        )


def _analyst_label(analyst: dict[str, Any]) -> str:
    label = f"{analyst.get('provider')}"
    if analyst.get("fallback_reason"):
        label += f" (fallback: {analyst['fallback_reason']})"
    return label


@app.command()
def retry(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    delivery: Annotated[
        list[int] | None, typer.Option("--id", help="Dead letter id(s); default: all")
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Re-drive dead-lettered deliveries (after fixing their cause) and run them to completion."""
    logs.configure(logging.INFO if verbose else logging.WARNING)
    with cli_errors(verbose):
        settings = settings_from(workspace, config)
        runtime = build_local(settings)
        try:
            count = runtime.bus.redrive(delivery or None)
            Dispatcher(runtime.ports, runtime.bus).drain()
            remaining = len(runtime.bus.dead_letters())
        finally:
            runtime.close()
    out.print(f"re-drove {count} dead letter(s); {remaining} remain", highlight=False)
    raise typer.Exit(EXIT_INTERNAL if remaining else EXIT_OK)


@app.callback(invoke_without_command=True)
def main_options(
    version: Annotated[bool, typer.Option("--version", help="Print the version")] = False,
) -> None:
    if version:
        out.print(f"healthpipe {__version__}")
        raise typer.Exit(0)


# Sub-commands that live in their own modules (each module has `register(app)`).
COMMAND_MODULES: tuple[str, ...] = ("digest", "watch", "aws", "pseudonym")


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"healthpipe.commands.{name}").register(app)


_register_commands()


def main() -> None:
    app()
