"""`healthpipe history PARTICIPANT`: one participant's vitals over time, findings, episodes and
source files, across every upload (docs/lake.md#healthpipe-history).

PARTICIPANT is a raw id (as in the CSV) or its pseudonym (`healthpipe pseudonym ID`). The
lake (`dataops/history.py`) gives the readings, findings and files; the analysis store gives
the episodes and the upload names. Output names the participant by pseudonym only: the raw id
the operator typed is never echoed, in output, the page, errors or logs.

Exit codes (commands/output.py): 0 shown; 2 no workspace, no participant matching, or an
unwritable page; 1 an internal failure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from healthpipe import constants as c
from healthpipe.commands.options import (
    ConfigOpt,
    JsonOpt,
    LogJsonOpt,
    VerboseOpt,
    WideOpt,
    WorkspaceOpt,
)
from healthpipe.commands.output import (
    EXIT_INTERNAL,
    EXIT_UNUSABLE,
    PlainUsage,
    cli_errors,
    fail,
    out,
    require_workspace,
    settings_from,
)

if TYPE_CHECKING:
    from healthpipe.domain.documents.participant_timeline import (
        HistoryEpisode,
        ParticipantTimeline,
    )
    from healthpipe.ports import AnalysisStore, ParticipantHistoryStore
    from healthpipe.report.history import HistoryView

HELP = (
    "Show one participant's history across every upload: vitals over time (per vital: "
    "readings, median, latest, range), findings by type with their criterion, episodes and "
    "the files the readings came from, and write an HTML page with a chart. PARTICIPANT is "
    "the id as in the CSV or its pseudonym; output names the pseudonym only. Exit 2 when no "
    "participant in the workspace matches."
)
HISTORY_DIR = f"{c.REPORTS_PREFIX}history/"
SHOWN_ROWS = 20  # files and episodes in the terminal, the newest; --json has them all
UNKNOWN = "no participant in this workspace's lake matches that id or pseudonym"

HtmlOpt = Annotated[
    Path | None,
    typer.Option(
        "--html",
        metavar="PATH",
        help="Where to write the HTML page [default <workspace>/bucket/reports/history/"
        "<pseudonym>.html]",
        show_default=False,
    ),
]


def default_page(bucket_dir: Path, label: str) -> Path:
    return bucket_dir / HISTORY_DIR / f"{label}.html"


def store_parts(
    store: AnalysisStore, label: str, history: ParticipantTimeline
) -> ParticipantTimeline:
    """The history with the store's part added: the participant's episodes (keyed by the
    pseudonym) and each file's upload name and day of analysis."""
    from healthpipe.domain.documents.participant_timeline import HistoryEpisode
    from healthpipe.domain.documents.summary import FlaggedEpisode

    episodes: list[HistoryEpisode] = [
        HistoryEpisode(
            kind=item.kind,
            metric=item.metric,
            severity=item.severity,
            readings=item.readings,
            start_time=item.start_time,
            end_time=item.end_time,
            worst_value=item.worst_value if item.worst_value is not None else item.peak_value,
        )
        for item in store.flagged_for_user(label)
        if isinstance(item, FlaggedEpisode)
    ]
    episodes.sort(key=lambda e: (e.start_time or "", e.kind))
    files = []
    for source in history.files:
        summary = store.get(source.dataset_id)
        name = summary.source_key.rsplit("/", 1)[-1] if summary and summary.source_key else ""
        analysed = summary.created_at[:10] if summary else ""
        files.append(source.model_copy(update={"name": name, "analysed": analysed}))
    return history.model_copy(
        update={"episodes": episodes, "episodes_total": len(episodes), "files": files}
    )


def with_baselines(
    store: ParticipantHistoryStore, history: ParticipantTimeline, window_days: int
) -> ParticipantTimeline:
    """The history with the participant's stored baselines over the `window_days` days to
    their last reading day (none when the store holds no histogram of theirs, e.g. files
    analysed before the store existed)."""
    from datetime import date

    from healthpipe.dataops.history import stored_baselines
    from healthpipe.domain.history import window

    if not history.last_reading:
        return history
    last_day = date.fromisoformat(history.last_reading[:10])
    start, end = window(last_day, last_day, window_days)
    histograms = store.load([history.pseudonym], start, end)
    baselines = stored_baselines(history.pseudonym, histograms, last_day, window_days)
    return history.model_copy(update={"baseline_window_days": window_days, "baselines": baselines})


def _table(title: str, wide: bool) -> Table:
    return Table(
        title=title, box=box.SIMPLE_HEAD, pad_edge=False, expand=wide, title_justify="left"
    )


def print_summary(view: HistoryView, page: Path, wide: bool) -> None:
    out.print(
        f"participant [bold]{escape(view.pseudonym)}[/]: {escape(view.period)}; "
        f"{view.readings} valid readings on {view.days} day(s) from {len(view.files):,} "
        f"file(s); {view.findings_total} finding(s), worst severity {view.worst_severity}",
        highlight=False,
        soft_wrap=True,
    )
    vitals = _table("vitals", wide)
    vitals.add_column("vital", overflow="fold")
    for name in ("n", "median", "latest", "range", "baseline"):
        vitals.add_column(name, justify="right")
    for v in view.vitals:
        vitals.add_row(
            escape(v.label),
            v.n,
            escape(v.median),
            escape(v.latest),
            escape(v.range),
            escape(v.baseline),
        )
    out.print(vitals)
    out.print(escape(view.baseline_note), highlight=False, soft_wrap=True)
    if view.findings:
        findings = _table("findings by type (criterion the code applies)", wide)
        findings.add_column("type", overflow="fold")
        findings.add_column("criterion", overflow="fold")
        findings.add_column("n", justify="right")
        findings.add_column("worst")
        for f in view.findings:
            findings.add_row(escape(f.label), escape(f.criterion), f.total, f.worst)
        out.print(findings)
        out.print(escape(view.findings_legend), highlight=False, soft_wrap=True)
    else:
        out.print("findings: none in these readings", highlight=False)
    if view.trends:
        trends = _table("trends across uploads (rule the code applies)", wide)
        trends.add_column("vital", overflow="fold")
        trends.add_column("criterion", overflow="fold")
        trends.add_column("change", justify="right")
        trends.add_column("fitted", justify="right")
        for t in view.trends:
            trends.add_row(escape(t.label), escape(t.criterion), escape(t.change), escape(t.fitted))
        out.print(trends)
    out.print(f"trends: {escape(view.trends_note)}", highlight=False, soft_wrap=True)
    if view.episodes:
        newest = view.episodes[:SHOWN_ROWS]
        shown = f", the newest {len(newest)} of {view.episodes_total:,}"
        episodes = _table(f"episodes{shown if len(newest) < view.episodes_total else ''}", wide)
        episodes.add_column("type", overflow="fold")
        episodes.add_column("severity")
        episodes.add_column("readings", justify="right")
        episodes.add_column("when", overflow="fold")
        for e in newest:
            episodes.add_row(escape(e.label), e.severity, e.readings, e.span)
        out.print(episodes)
    else:
        out.print("episodes: none recorded", highlight=False)
    files = _table("files", wide)
    files.add_column("file", overflow="fold")
    files.add_column("dataset", no_wrap=True)
    files.add_column("analysed", no_wrap=True)
    files.add_column("readings", justify="right")
    files.add_column("findings", justify="right")
    for s in view.files[-SHOWN_ROWS:]:
        dataset = s.dataset_id if wide else s.dataset_id[:12]
        files.add_row(escape(s.name), escape(dataset), s.analysed, s.readings, s.findings)
    out.print(files)
    if len(view.files) > SHOWN_ROWS:
        out.print(
            f"the newest {SHOWN_ROWS} of {len(view.files):,} files (all on the page)",
            highlight=False,
        )
    out.print(f"page: {page}", highlight=False, soft_wrap=True)


def write_page(history: ParticipantTimeline, view: HistoryView, page: Path) -> None:
    from healthpipe.report.charts import vitals_history_chart
    from healthpipe.report.history import render_history_html

    html = render_history_html(view, [vitals_history_chart(history.vitals)])
    try:
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write the page {page}: {exc.strerror or exc}", EXIT_UNUSABLE) from None


def register(app: typer.Typer) -> None:
    @app.command(help=HELP, cls=PlainUsage)
    def history(
        participant: Annotated[
            str,
            typer.Argument(
                metavar="PARTICIPANT", help="Participant id as in the CSV, or its pseudonym"
            ),
        ],
        html: HtmlOpt = None,
        workspace: WorkspaceOpt = None,
        config: ConfigOpt = None,
        as_json: JsonOpt = False,
        wide: WideOpt = False,
        verbose: VerboseOpt = False,
        log_json: LogJsonOpt = False,
    ) -> None:
        from healthpipe import logs
        from healthpipe.bootstrap import build_local
        from healthpipe.dataops.engine import EngineLimits
        from healthpipe.dataops.history import participant_timeline, resolve_participant
        from healthpipe.dataops.lake import Lake, LakeQueryError
        from healthpipe.domain.identity import pseudonym
        from healthpipe.report.history import build_history_view

        logs.configure(verbose, log_json)
        with cli_errors(verbose):
            settings = settings_from(workspace, config)
            require_workspace(settings)
            limits = EngineLimits(settings.duckdb_memory_mb, settings.duckdb_threads)
            lake = Lake(settings.bucket_dir.resolve())
            runtime = build_local(settings)
            try:
                secret = runtime.ports.analyze_settings.pseudonym_secret
                try:
                    user_id = resolve_participant(lake, participant, secret, limits)
                    if user_id is None:
                        raise fail(UNKNOWN, EXIT_UNUSABLE)
                    label = pseudonym(user_id, secret)
                    found = participant_timeline(lake, user_id, label, limits)
                except LakeQueryError:
                    # DuckDB's message may quote the SQL, and the SQL holds the raw id
                    raise fail(
                        "the lake could not be read (try `healthpipe query`)", EXIT_INTERNAL
                    ) from None
                found = store_parts(runtime.ports.analyses, label, found)
                found = with_baselines(runtime.ports.history, found, settings.baseline_window_days)
            finally:
                runtime.close()
            view = build_history_view(found)
            page = (html or default_page(settings.bucket_dir, label)).resolve()
            write_page(found, view, page)
        if as_json:
            sys.stdout.write(json.dumps({**found.as_json(), "html": str(page)}) + "\n")
        else:
            print_summary(view, page, wide)
