"""`healthpipe forget PARTICIPANT [--apply]`: erase one participant from every stored copy
(issue 18; the procedure and its limits: docs/privacy.md).

PARTICIPANT is the id as uploaded, or its pseudonym (`P-…`: the id is then found among the
ids of the processed readings). Without `--apply` nothing changes: the command counts what
would go. With it, in this order:

1. the rows: `stages/erase.py` rewrites raw uploads, processed CSV/Parquet, rejected CSVs and
   the anomalies without the participant's rows, and lowers the manifests' counts;
2. what was derived from them, for each dataset that held their rows: the analysis is made
   again from what is left (with the builtin analyst: no language model sees the data
   again), which rewrites `analyzed/<id>.json`, the anomalies and the analysis store's
   summary and flagged items; its stored report page is rendered again, and the copies of
   its emails in a local outbox are deleted (the messages sent are out of reach); then
   their history (per-day histograms, by pseudonym) is erased from the history store;
3. other report pages (digests) that name the participant's pseudonym are deleted;
4. a store with versions (S3) loses every older version of what was rewritten; the local
   database is compacted so that no deleted row stays in its free pages or WAL;
5. an erasure record, `erasures/<time>-<pseudonym>.json`: counts, never the id.

Output and logs hold the pseudonym and counts only.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from healthpipe import constants as c
from healthpipe.commands.aws import BucketOpt
from healthpipe.commands.options import (
    ConfigOpt,
    JsonOpt,
    LogJsonOpt,
    VerboseOpt,
    WorkspaceOpt,
    flag_help,
)
from healthpipe.commands.output import (
    EXIT_UNUSABLE,
    PlainUsage,
    cli_errors,
    fail,
    out,
    require_workspace,
    settings_from,
)
from healthpipe.config import Settings
from healthpipe.domain.documents import Manifest, ProcessingComplete
from healthpipe.domain.documents.erasure import ErasureRecord, erasure_key
from healthpipe.domain.identity import (
    analysis_key,
    anomalies_key,
    bucket_of_pseudonym,
    manifest_key,
    pseudonym,
    report_key,
)
from healthpipe.ports import ObjectStore
from healthpipe.stages.base import Ports
from healthpipe.stages.engine import engine_limits
from healthpipe.stages.erase import Erasure, erase_rows, find_user_id

PSEUDONYM_FORM = re.compile(r"P-[0-9a-f]{16}")

Runtime = Literal["local", "aws"]


@dataclass
class Forgotten:
    """The outcome: the participant's pseudonym, the rows removed, the derived copies."""

    pseudonym: str
    applied: bool
    erasure: Erasure
    derived: dict[str, int] = field(default_factory=dict)
    record_key: str | None = None

    def document(self) -> dict[str, object]:
        return {
            "pseudonym": self.pseudonym,
            "applied": self.applied,
            "rows": self.erasure.rows,
            "files": self.erasure.files,
            "datasets": len(self.erasure.datasets),
            "derived": self.derived,
            "record": self.record_key,
        }


def forget(
    participant: str,
    ports: Ports,
    *,
    apply: bool,
    runtime: Runtime = "local",
    outbox: Path | None = None,
    compact: Callable[[], None] | None = None,
) -> Forgotten:
    """Erase (with `apply`; else count) the participant; see the module docstring.

    `ports` must carry the builtin analyst (the caller builds them so). Raises `LookupError`
    when a pseudonym matches no participant of the processed readings."""
    secret = ports.analyze_settings.pseudonym_secret
    limits = engine_limits(ports.analyze_settings.engine, ports.workdir)
    user_id = participant
    if PSEUDONYM_FORM.fullmatch(participant):
        found = find_user_id(participant, secret, ports.store, ports.workdir, limits)
        if found is None:
            raise LookupError(f"no participant of the processed readings has {participant}")
        user_id = found
    label = pseudonym(user_id, secret)
    erasure = erase_rows(
        user_id,
        ports.store,
        ports.ledger,
        ports.workdir,
        limits,
        apply=apply,
        bucket=bucket_of_pseudonym(label),
    )
    forgotten = Forgotten(label, apply, erasure)
    if not apply:
        return forgotten
    derived = forgotten.derived
    for dataset_id in sorted(erasure.datasets):
        _derive_again(dataset_id, ports, derived)
    # their day histograms (baselines, trends); the analyses above no longer add any
    derived["history_days_erased"] = ports.history.erase(label)
    derived["other_reports_deleted"] = _delete_reports_naming(ports.store, label, erasure)
    if outbox is not None:
        derived["emails_deleted"] = _delete_outbox_copies(outbox, label, erasure.datasets)
    derived["manifests_rewritten"] = erasure.manifests
    derived["old_versions_deleted"] = erasure.versions_deleted + derived.pop("_versions", 0)
    if compact is not None:
        compact()
    now = datetime.now(UTC)
    record = ErasureRecord(
        pseudonym=label,
        erased_at=now.isoformat(timespec="seconds"),
        runtime=runtime,
        rows_removed=erasure.rows,
        files_rewritten=erasure.files,
        derived=dict(derived),
        datasets=sorted(erasure.datasets),
    )
    forgotten.record_key = erasure_key(label, now.strftime("%Y%m%dT%H%M%SZ"))
    ports.store.put_document(forgotten.record_key, record)
    return forgotten


def _count(derived: dict[str, int], name: str, n: int = 1) -> None:
    derived[name] = derived.get(name, 0) + n


def _derive_again(dataset_id: str, ports: Ports, derived: dict[str, int]) -> None:
    """Make the dataset's analysis, anomalies, store items and report page anew from the
    rows that are left; delete their older versions."""
    from healthpipe.domain.documents import Analysis
    from healthpipe.stages.analyze import analyze_again
    from healthpipe.stages.archive import save_report, withdraw

    store = ports.store
    if not store.exists(analysis_key(dataset_id)) or not store.exists(manifest_key(dataset_id)):
        return
    manifest = store.get_document(manifest_key(dataset_id), Manifest)
    outputs = manifest.outputs
    if not outputs.processed_parquet:
        return
    analyze_again(
        ProcessingComplete(
            correlation_id=manifest.correlation_id,
            dataset_id=dataset_id,
            status="success",
            manifest_key=manifest_key(dataset_id),
            processed_key=outputs.processed_parquet,
            processed_csv_key=outputs.processed_csv,
            rejected_key=outputs.rejected_csv,
        ),
        ports,
    )
    _count(derived, "analyses_redone")
    versions = store.delete_old_versions(analysis_key(dataset_id))
    versions += store.delete_old_versions(anomalies_key(dataset_id))
    if store.exists(report_key(dataset_id)):
        withdraw(store, dataset_id)  # its old card named the old analysis's time
        analysis = store.get_document(analysis_key(dataset_id), Analysis)
        settings = ports.notify_settings
        saved, _, _ = save_report(
            store, analysis, secret=settings.pseudonym_secret, top_users=settings.top_users
        )
        versions += store.delete_old_versions(saved)
        versions += store.delete_old_versions("reports/index.html")
        _count(derived, "reports_redone")
    _count(derived, "_versions", versions)


def _delete_reports_naming(store: ObjectStore, label: str, erasure: Erasure) -> int:
    """Delete the pages under reports/ not made anew that name the pseudonym (digests, the
    participant's `healthpipe history` page), a report page with its cards; how many."""
    from healthpipe.stages.archive import withdraw

    redone = {report_key(dataset_id) for dataset_id in erasure.datasets}
    deleted = 0
    for key in store.list_keys(c.REPORTS_PREFIX):
        name = key.removeprefix(c.REPORTS_PREFIX).removesuffix(".html")
        if key in redone or not key.endswith(".html") or name == "index":
            continue
        if label not in key and label.encode() not in store.get_bytes(key):
            continue
        if "/" in name:
            store.delete(key)
        else:
            withdraw(store, name)
        deleted += 1
    return deleted


def _delete_outbox_copies(outbox: Path, label: str, datasets: set[str]) -> int:
    """Delete the local outbox's copies of the emails about the datasets touched, and of any
    other email (a digest) whose copy names the pseudonym: every file of such a message."""
    if not outbox.is_dir():
        return 0
    files = [path for path in sorted(outbox.iterdir()) if path.is_file()]
    doomed = {
        path.stem
        for path in files
        if any(dataset_id in path.name for dataset_id in datasets)
        or label.encode() in path.read_bytes()
    }
    deleted = 0
    for path in files:
        if path.stem in doomed:
            path.unlink()
            deleted += 1
    return deleted


def _print(forgotten: Forgotten) -> None:
    erasure = forgotten.erasure
    verb = "erased" if forgotten.applied else "dry run (--apply erases), would remove"
    rows = ", ".join(
        f"{store}: {n} row(s) in {erasure.files[store]} file(s)"
        for store, n in erasure.rows.items()
    )
    out.print(
        f"participant {forgotten.pseudonym}: {verb}: {rows}; "
        f"{len(erasure.datasets)} dataset(s) touched",
        highlight=False,
        soft_wrap=True,
    )
    if forgotten.applied:
        derived = ", ".join(f"{name}: {n}" for name, n in forgotten.derived.items())
        out.print(f"derived copies: {derived}", highlight=False, soft_wrap=True)
        out.print(f"erasure record: {forgotten.record_key}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command(name="forget", cls=PlainUsage)
    def forget_command(
        participant: Annotated[
            str,
            typer.Argument(
                metavar="PARTICIPANT", help="Participant id as uploaded, or its pseudonym (P-…)"
            ),
        ],
        apply: Annotated[
            bool,
            typer.Option("--apply", help=flag_help("Erase (without it: only count)")),
        ] = False,
        runtime: Annotated[
            str | None,
            typer.Option(
                "--runtime",
                metavar="local|aws",
                help="Where the data is [env HEALTHPIPE_RUNTIME; default local]",
                show_default=False,
            ),
        ] = None,
        bucket: BucketOpt = None,
        workspace: WorkspaceOpt = None,
        config: ConfigOpt = None,
        as_json: JsonOpt = False,
        verbose: VerboseOpt = False,
        log_json: LogJsonOpt = False,
    ) -> None:
        """Erase one participant's rows from every stored copy (dry run unless --apply)."""
        from healthpipe import logs

        logs.configure(verbose, log_json)
        with cli_errors(verbose):
            flags = {"runtime": runtime, "bucket": bucket, "analyst": "builtin"}
            settings = settings_from(workspace, config, **flags)
            try:
                forgotten = (
                    _forget_aws(participant, settings, apply)
                    if settings.runtime == "aws"
                    else _forget_local(participant, settings, apply)
                )
            except LookupError as exc:
                raise fail(str(exc.args[0]), EXIT_UNUSABLE) from None
        if as_json:
            sys.stdout.write(json.dumps(forgotten.document()) + "\n")
        else:
            _print(forgotten)


def _forget_local(participant: str, settings: Settings, apply: bool) -> Forgotten:
    from healthpipe.bootstrap import build_local

    require_workspace(settings)
    local = build_local(settings)
    try:
        return forget(
            participant,
            local.ports,
            apply=apply,
            outbox=settings.outbox_dir,
            compact=local.db.compact,
        )
    finally:
        local.close()


def _forget_aws(participant: str, settings: Settings, apply: bool) -> Forgotten:
    """On the bucket and tables; the participant's files are downloaded to the workspace's
    work directory (`Settings.work_dir`, created if need be), never the system's TMPDIR
    (docs/privacy.md: copies outside the workspace are out of the erasure's reach), and
    deleted as the command ends."""
    from healthpipe.bootstrap import build_aws

    try:
        settings.work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(
            f"cannot use the work directory {settings.work_dir} (--workspace): "
            f"{exc.strerror or exc}",
            EXIT_UNUSABLE,
        ) from None
    with tempfile.TemporaryDirectory(dir=settings.work_dir, prefix="forget-") as tmp:
        ports = build_aws(settings, workdir=Path(tmp))
        ports = replace(ports, workdir=Path(tmp) / "work")
        return forget(participant, ports, apply=apply, runtime="aws")
