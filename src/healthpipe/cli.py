"""The `healthpipe` command (Typer + Rich).

Exit codes: 0 every file processed or skipped; 2 a file is unusable or the command's input
(arguments, settings, rules, credentials, an unwritable output) is wrong; 1 an internal
failure. Errors are one line on stderr, with no traceback and no log line before them; logs go
to stderr only with `-v` (readable) or `--log-json`. Progress goes to stderr on a terminal only.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from healthpipe import __version__, logs
from healthpipe import constants as c
from healthpipe.bootstrap import LocalRuntime, build_local
from healthpipe.commands import aws as aws_commands
from healthpipe.commands import digest as digest_commands
from healthpipe.commands import forget as forget_commands
from healthpipe.commands import history as history_commands
from healthpipe.commands import pseudonym as pseudonym_commands
from healthpipe.commands import query as query_commands
from healthpipe.commands import retention as retention_commands
from healthpipe.commands import watch as watch_commands
from healthpipe.commands.options import (
    AnalystOpt,
    ConfigOpt,
    JsonOpt,
    LogJsonOpt,
    RulesOpt,
    VerboseOpt,
    WideOpt,
    WorkersOpt,
    WorkspaceOpt,
    flag_help,
)
from healthpipe.commands.output import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_UNUSABLE,
    OneLineErrors,
    PlainUsage,
    cli_errors,
    err,
    fail,
    out,
    require_workspace,
    settings_from,
)
from healthpipe.orchestration.local import Dispatcher
from healthpipe.orchestration.runs import FileOutcome, run_files
from healthpipe.synthetic import (
    Drift,
    SyntheticSpec,
    daily_specs,
    generate_csv,
    parse_drift,
)

__all__ = ["EXIT_INTERNAL", "EXIT_OK", "EXIT_UNUSABLE", "app", "cli_errors", "main"]

app = typer.Typer(
    name="healthpipe",
    cls=OneLineErrors,
    help="Validate, analyze and report health-vitals CSV files — on AWS or on one machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def exit_code(results: list[FileOutcome]) -> int:
    if any(r.status == "failed" for r in results):
        return EXIT_INTERNAL
    if any(r.status == "rejected" for r in results):
        return EXIT_UNUSABLE
    return EXIT_OK


def _table(title: str, wide: bool) -> Table:
    """A table that fits the terminal: light borders; long text folds instead of being cut."""
    return Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, expand=wide)


def _print_outcomes(results: list[FileOutcome], wide: bool = False) -> None:
    table = _table("healthpipe run", wide)
    table.add_column("file", overflow="fold")
    table.add_column("status")
    table.add_column("dataset", no_wrap=True, min_width=16 if wide else None)
    for column in ("rows in", "valid", "rejected", "findings"):
        table.add_column(column, justify="right")
    colours = {"processed": "green", "skipped": "cyan", "rejected": "yellow", "failed": "red"}
    for r in results:
        table.add_row(
            escape(Path(r.source).name),
            f"[{colours[r.status]}]{r.status}[/]",
            (r.dataset_id or "-") if wide else (r.dataset_id or "-")[:12],
            f"{r.rows['input']:,}",
            f"{r.rows['valid']:,}",
            f"{r.rows['rejected']:,}",
            f"{r.anomalies:,}",
        )
    out.print(table)
    for r in results:
        if r.error:
            err.print(
                f"[yellow]{escape(Path(r.source).name)}:[/] {escape(r.error)}",
                highlight=False,
                soft_wrap=True,
            )
        if r.note:
            out.print(f"{escape(Path(r.source).name)}: {escape(r.note)}", highlight=False)
        if r.report:
            out.print(f"report: {r.report}", highlight=False, soft_wrap=True)
        if r.email:
            out.print(f"email:  {r.email}", highlight=False, soft_wrap=True)


def _run(runtime: LocalRuntime, files: list[Path], show_progress: bool) -> list[FileOutcome]:
    if not show_progress:
        return run_files(runtime, files)
    from healthpipe.commands.live import RunDisplay

    with RunDisplay(err, len(files)) as display:
        return run_files(runtime, files, on_file=display.done, on_start=display.start)


def _check_rules(rules: str) -> None:
    from healthpipe.dataops.profiles import load_profile

    load_profile(rules)  # a bad profile is the user's error: say so before any work


@app.command(cls=PlainUsage)
def run(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...", help="CSV or CSV.GZ files of vitals")
    ],
    workspace: WorkspaceOpt = None,
    rules: RulesOpt = None,
    analyst: AnalystOpt = None,
    workers: WorkersOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
    verbose: VerboseOpt = False,
    log_json: LogJsonOpt = False,
) -> None:
    """Ingest, validate, analyze and report each FILE (copied into the workspace's raw/)."""
    logs.configure(verbose, log_json)
    with cli_errors(verbose):
        settings = settings_from(workspace, config, rules=rules, analyst=analyst, workers=workers)
        _check_rules(settings.rules)
        runtime = build_local(settings)
        try:
            results = _run(runtime, files, show_progress=not as_json and err.is_terminal)
        finally:
            runtime.close()
    if as_json:
        sys.stdout.write(json.dumps({"files": [r.to_dict() for r in results]}) + "\n")
    else:
        _print_outcomes(results, wide)
    raise typer.Exit(exit_code(results))


def _check_output(path: Path) -> None:
    """`generate` writes only what `run` accepts, and says at once when it cannot write."""
    if not path.name.lower().endswith(c.ACCEPTED_SUFFIXES):
        raise fail(
            f"--out must end in .csv or .csv.gz (`healthpipe run` accepts only those): {path}",
            EXIT_UNUSABLE,
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab"):
            pass
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_UNUSABLE) from None


def _generate(spec: SyntheticSpec, path: Path, show_progress: bool) -> None:
    if not show_progress:
        generate_csv(spec, path)
        return
    from healthpipe.commands.live import rows_written

    with rows_written(err, spec.rows):
        generate_csv(spec, path)


def _generate_days(
    spec: SyntheticSpec, out_file: Path, days: int, drifts: tuple[Drift, ...]
) -> list[Path]:
    """One file per day next to `out_file` (`vitals.csv` -> `vitals-2026-11-30.csv`); a single
    day keeps `out_file`'s name."""
    name = out_file.name
    suffix = next(s for s in (".csv.gz", ".csv") if name.lower().endswith(s))
    stem = name[: -len(suffix)]
    files = []
    for day in daily_specs(spec, days, drifts):
        assert day.end is not None
        path = (
            out_file
            if days == 1
            else out_file.with_name(f"{stem}-{day.end:%Y-%m-%d}{name[-len(suffix) :]}")
        )
        files.append(generate_csv(day, path))
    return files


@app.command()
def generate(
    out_file: Annotated[
        Path, typer.Option("--out", metavar="FILE", help="Output .csv or .csv.gz (required)")
    ],
    rows: Annotated[
        int, typer.Option(min=1, metavar="N", help="Data rows to write, exactly")
    ] = 5000,
    users: Annotated[int, typer.Option(min=1, metavar="N", help="Distinct users")] = 20,
    seed: Annotated[
        int, typer.Option(metavar="N", help="Random seed (same seed and --end, same file)")
    ] = 42,
    bad_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="RATE",
            help="Share of bad rows; a tenth as many repeated readings",
        ),
    ] = 0.02,
    end: Annotated[
        datetime | None,
        typer.Option(
            "--end",
            metavar="TIME",
            help=flag_help("Time of the last reading, UTC (2026-01-31T12:00:00)", "now"),
            show_default=False,
        ),
    ] = None,
    days: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="Write N files, one per day up to the end time, named FILE-YYYY-MM-DD.csv",
        ),
    ] = 1,
    drift: Annotated[
        list[str] | None,
        typer.Option(
            "--drift",
            metavar="USER:VITAL:CHANGE:DAYS",
            help=flag_help(
                "Move one user's vital linearly over the last DAYS days, reaching CHANGE on "
                "the last (user_003:heart_rate:+15:14); repeatable"
            ),
            show_default=False,
        ),
    ] = None,
    upload: Annotated[
        bool,
        typer.Option(
            "--upload", help=flag_help("Then put it under raw/ in S3"), show_default=False
        ),
    ] = False,
    bucket: Annotated[
        str | None,
        typer.Option(
            "--bucket",
            metavar="NAME",
            help="Bucket for --upload [env HEALTHPIPE_BUCKET; default none]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write synthetic vitals ending now, with injected clinical episodes and bad rows."""
    with cli_errors(False):
        existed = out_file.exists()
        _check_output(out_file)
        try:
            drifts = tuple(parse_drift(text) for text in drift or ())
        except ValueError as exc:
            raise fail(f"--drift: {exc}", EXIT_UNUSABLE) from None
        started = time.perf_counter()
        spec = SyntheticSpec(rows=rows, users=users, seed=seed, bad_row_rate=bad_rate, end=end)
        files = _generate_days(spec, out_file, days, drifts) if days > 1 or drifts else []
        if days > 1 and not existed:
            out_file.unlink(missing_ok=True)  # _check_output's probe: the files are dated
        if not files:
            _generate(spec, out_file, show_progress=err.is_terminal)
            files = [out_file]
        what = f"{out_file}" if len(files) == 1 else f"{len(files)} files ({files[0]} …)"
        out.print(
            f"wrote {what} ({rows:,} rows, {min(users, rows):,} users each) in "
            f"{time.perf_counter() - started:.1f}s",
            highlight=False,
            soft_wrap=True,
        )
        if upload:
            from healthpipe.commands.aws import upload_files

            upload_files(files, bucket=bucket)


@app.command()
def demo(
    workspace: WorkspaceOpt = None,
    rows: Annotated[int, typer.Option(min=100, metavar="N", help="Rows of sample data")] = 5000,
    users: Annotated[int, typer.Option(min=1, metavar="N", help="Users in the sample data")] = 20,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed")] = 7,
    verbose: VerboseOpt = False,
    log_json: LogJsonOpt = False,
) -> None:
    """Generate realistic sample data and run the whole pipeline on it, on this machine."""
    logs.configure(verbose, log_json)
    with cli_errors(verbose):
        settings = settings_from(workspace, None)
        sample = settings.workspace / "samples" / f"demo-vitals-{seed}-{rows}.csv"
        generate_csv(SyntheticSpec(rows=rows, users=users, seed=seed), sample)
        out.print(
            f"generated {sample} ({rows:,} rows, {min(users, rows):,} users)", highlight=False
        )
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


def reject_ratio(items: list[dict[str, Any]]) -> tuple[int, int]:
    """(rejected, input) summed over datasets: the overall ratio is their quotient, never a
    sum of per-file ratios."""
    rejected = sum(int(i["rows"]["rejected"]) for i in items)
    rows_in = sum(int(i["rows"]["input"]) for i in items)
    return rejected, rows_in


def _ratio(rejected: int, rows_in: int) -> str:
    return f"{rejected / rows_in:.3f}" if rows_in else "-"


@app.command()
def status(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="Datasets to list")] = 10,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Recent datasets, counts, dead letters and metric totals of a workspace."""
    with cli_errors(False):
        settings = settings_from(workspace, config)
        require_workspace(settings)
        runtime = build_local(settings)
        try:
            recent = [s.as_json() for s in runtime.ports.analyses.recent(limit)]
            dead = runtime.bus.dead_letters()
            deliveries = runtime.bus.counts()
            totals = runtime.ports.metrics.totals()
        finally:
            runtime.close()
    rejected, rows_in = reject_ratio(recent)
    totals.pop("RejectRatio", None)  # a sum of per-file ratios means nothing
    if as_json:
        overall = {"rejected": rejected, "input": rows_in, "datasets": len(recent)}
        overall["ratio"] = rejected / rows_in if rows_in else None  # type: ignore[assignment]
        document = {
            "datasets": [{**i, "reject_ratio": _item_ratio(i)} for i in recent],
            "reject_ratio": overall,
            "dead_letters": dead,
            "deliveries": deliveries,
            "metrics": totals,
        }
        sys.stdout.write(json.dumps(document, default=str) + "\n")
        return
    _print_status(settings.workspace, recent, wide)
    out.print(
        f"reject ratio: {_ratio(rejected, rows_in)} overall "
        f"({rejected:,} rejected of {rows_in:,} rows in {len(recent)} dataset(s))",
        highlight=False,
    )
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
            "metrics: " + ", ".join(f"{k}={v:,.0f}" for k, v in sorted(totals.items())),
            highlight=False,
        )
        out.print(
            f"LLM usage: {totals.get('LLMInputTokens', 0):,.0f} input tokens, "
            f"{totals.get('LLMOutputTokens', 0):,.0f} output tokens, "
            f"cost ${totals.get('LLMCostUSD', 0):.6f} USD, "
            f"{totals.get('AnalystFallbacks', 0):,.0f} analyst fallback(s)",
            highlight=False,
        )


def _item_ratio(item: dict[str, Any]) -> float | None:
    rows_in = int(item["rows"]["input"])
    return int(item["rows"]["rejected"]) / rows_in if rows_in else None


def _print_status(workspace: Path, recent: list[dict[str, Any]], wide: bool) -> None:
    table = _table(f"Recent datasets in {escape(str(workspace))}", wide)
    table.add_column("created", no_wrap=True)
    table.add_column("dataset", no_wrap=True)
    table.add_column("source", overflow="fold")
    for column in ("rows in", "rejected", "ratio", "findings"):
        table.add_column(column, justify="right")
    table.add_column("worst")
    if wide:
        table.add_column("analyst", overflow="fold")
    for item in recent:
        created = str(item["created_at"])
        row = [
            created if wide else created[5:16].replace("T", " "),
            item["dataset_id"] if wide else item["dataset_id"][:8],
            escape(Path(str(item["source_key"])).name if not wide else str(item["source_key"])),
            f"{int(item['rows']['input']):,}",
            f"{int(item['rows']['rejected']):,}",
            _ratio(int(item["rows"]["rejected"]), int(item["rows"]["input"])),
            f"{int(item['anomalies']['total']):,}",
            str(item["worst_severity"]),
        ]
        if wide:
            row.append(escape(_analyst_label(item["analyst"])))
        table.add_row(*row)
    out.print(table)


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
        list[int] | None,
        typer.Option("--id", metavar="ID", help="Dead letter id(s) [default all]"),
    ] = None,
    verbose: VerboseOpt = False,
    log_json: LogJsonOpt = False,
) -> None:
    """Re-drive dead-lettered deliveries (after fixing their cause) and run them to completion."""
    logs.configure(verbose, log_json)
    with cli_errors(verbose):
        settings = settings_from(workspace, config)
        require_workspace(settings)
        runtime = build_local(settings)
        try:
            if delivery:
                known = {int(letter["id"]) for letter in runtime.bus.dead_letters()}
                unknown = sorted(set(delivery) - known)
                if unknown:
                    raise fail(
                        f"no dead letter with id {', '.join(map(str, unknown))} "
                        "(`healthpipe status` lists them)",
                        EXIT_UNUSABLE,
                    )
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


# Sub-commands that live in their own modules (each module has `register(app)`); imported
# by name, so `lint-imports` sees cli -> commands (and commands never import cli).
for _commands in (
    digest_commands,
    watch_commands,
    aws_commands,
    pseudonym_commands,
    query_commands,
    retention_commands,
    history_commands,
    forget_commands,
):
    _commands.register(app)


def main() -> None:
    app()
