"""Ports: the small interfaces the stages see. Adapters fill in the `_primitives`.

Following the Powertools idempotency layer, shared logic (lease expiry, retries of the
outbox, idempotent sending) lives in these base classes; an adapter only translates a
few primitives to its store. `bootstrap.py` is the one place that picks adapters.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from healthpipe.domain.documents import (
    AnalysisSummary,
    Brief,
    DayHistogram,
    Document,
    FlaggedItem,
    JsonObject,
    flagged_item,
)
from healthpipe.domain.insights import AnalystReport, Usage
from healthpipe.errors import AdapterError, PermanentError
from healthpipe.events import Event
from healthpipe.owners import default_owner

HASH_CHUNK = 1024 * 1024
DocumentT = TypeVar("DocumentT", bound=Document)


class HashedPieces:
    """Pieces of bytes hashed as they pass (`for piece in hashed`): the one place that
    computes a SHA-256; `size` and `sha256` (hex) are set once the last piece is read."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = pieces
        self.size = 0
        self.sha256 = ""

    def __iter__(self) -> Iterator[bytes]:
        digest = hashlib.sha256()
        size = 0
        for piece in self._pieces:
            digest.update(piece)
            size += len(piece)
            yield piece
        self.size, self.sha256 = size, digest.hexdigest()


def sha256_chunks(
    chunks: Iterable[bytes], sink: Callable[[bytes], object] | None = None
) -> tuple[str, int]:
    """The SHA-256 (hex) and byte size of a stream of chunks, each handed on to `sink`
    (a file's `write`, say) as it passes: one pass, never the whole stream in memory."""
    hashed = HashedPieces(chunks)
    for chunk in hashed:
        if sink is not None:
            sink(chunk)
    return hashed.sha256, hashed.size


def sha256_file(path: Path) -> tuple[str, int]:
    """The SHA-256 (hex) and byte size of a local file, read in `HASH_CHUNK` pieces."""
    with path.open("rb") as handle:
        return sha256_chunks(iter(lambda: handle.read(HASH_CHUNK), b""))


# --------------------------------------------------------------------------- object store
@dataclass(frozen=True)
class LocalObject:
    """An object made available as a local file (in place, or downloaded to a work dir)."""

    key: str
    path: Path
    size: int
    sha256: str
    version_id: str | None


class ObjectStore(ABC):
    """A bucket of objects addressed by key (S3, or a folder)."""

    bucket: str

    def materialize(self, key: str, workdir: Path, version_id: str | None = None) -> LocalObject:
        """Make `key` a local file and hash it while streaming; never loads it whole. With
        `version_id`, that version of the object (a store without versions has one)."""
        if version_id:
            return self._materialize_version(key, workdir, version_id)
        return self._materialize(key, workdir)

    def put_file(
        self,
        key: str,
        path: Path,
        content_type: str = "application/octet-stream",
        *,
        consume: bool = False,
    ) -> str:
        """Upload a local file; returns the version id ('' when the store has none). With
        `consume` the caller is done with `path`: a store on the same disk may move it in."""
        if consume:
            return self._adopt_file(key, path, content_type)
        return self._put_file(key, path, content_type)

    def put_files(
        self,
        files: Sequence[tuple[str, Path]],
        content_type: str = "application/octet-stream",
        *,
        consume: bool = False,
    ) -> list[str]:
        """Upload local files, each `(key, path)` as `put_file` does; returns their version
        ids in order. A store may send several at once (S3: a few threads, the lake's parts).
        A failure is raised (the first of the list that failed) once every other upload has
        finished or been cancelled: each object is written whole or not at all, and the
        caller sees the error as with one `put_file`."""
        return self._put_files(list(files), content_type, consume)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/json") -> str:
        return self._put_bytes(key, data, content_type)

    def get_bytes(self, key: str) -> bytes:
        return self._get_bytes(key)

    def put_document(self, key: str, document: Document, *, indent: int = 1) -> str:
        """Write a typed document as JSON (`indent` as that document was always written)."""
        return self._put_bytes(
            key, document.dumps(indent=indent, default=str).encode(), "application/json"
        )

    def get_document(self, key: str, model: type[DocumentT]) -> DocumentT:
        """Read a JSON document written by any version into its model. Raises
        `PermanentError` when it is not one (no retry can mend it; the message names the
        key and the number of problems, never a value)."""
        data = self._get_bytes(key)
        try:
            return model.model_validate_json(data)
        except ValidationError as exc:
            problems = exc.error_count()
            raise PermanentError(
                f"{key} is not a valid {model.__name__} ({problems} problem(s))"
            ) from None

    def exists(self, key: str) -> bool:
        return self._exists(key)

    def download_ranges(self, key: str, target: Path, ranges: Sequence[tuple[int, int]]) -> Path:
        """Write the byte ranges [start, end) of `key`, one after the other, to the local file
        `target` (streamed: a chunk of a large object without the rest of it)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for start, end in ranges:
                if end > start:
                    self._read_range_into(key, start, end, out.write)
        return target

    def stream(self, key: str, version_id: str | None = None) -> ObjectStream:
        """The bytes of `key` (that version) as they arrive, in pieces, hashed on the way:
        never held whole, never written to disk (one pass over a file larger than the
        disk). The size, SHA-256 and version id are the stream's once it is read to the
        end."""
        return ObjectStream(key, self._stream(key, version_id), version_id)

    def put_stream(
        self, key: str, blocks: Iterable[bytes], content_type: str = "application/octet-stream"
    ) -> str:
        """Write `key` from `blocks` as they come (S3: a multipart upload of bounded parts;
        a folder: one atomic file write); returns the version id. A failure leaves no
        partial object."""
        return self._put_stream(key, blocks, content_type)

    def compose(
        self,
        key: str,
        part_keys: Sequence[str],
        content_type: str = "text/csv",
        *,
        skip: Sequence[int] = (),
    ) -> str:
        """Write `key` as the concatenation, in order, of the objects `part_keys` (left in
        place), without the first `skip[i]` bytes of part i (a CSV header kept from the first
        part only); returns its version id. The chunked engine's assembly: S3 copies the parts
        server side (multipart `UploadPartCopy`), a folder concatenates the files."""
        heads = list(skip) or [0] * len(part_keys)
        if len(heads) != len(part_keys) or min(heads, default=0) < 0:
            raise ValueError("compose: one skip count >= 0 per part")
        return self._compose(key, list(zip(part_keys, heads, strict=True)), content_type)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(self._list_keys(prefix))

    def delete_old_versions(self, key: str) -> int:
        """Delete every stored version of `key` but the current one, delete markers too
        (erasure: a rewritten object must not keep its old bytes). Returns how many were
        deleted; a store without versions (a folder) has none to delete."""
        return self._delete_old_versions(key)

    def delete(self, key: str) -> None:
        """Delete `key` with every stored version of it (nothing when it does not exist)."""
        self._delete(key)

    def _delete_old_versions(self, key: str) -> int:
        return 0

    def _delete(self, key: str) -> None:
        raise PermanentError(f"{type(self).__name__} cannot delete {key}")

    @abstractmethod
    def _materialize(self, key: str, workdir: Path) -> LocalObject: ...

    def _materialize_version(self, key: str, workdir: Path, version_id: str) -> LocalObject:
        return self._materialize(key, workdir)

    @abstractmethod
    def _put_file(self, key: str, path: Path, content_type: str) -> str: ...

    def _adopt_file(self, key: str, path: Path, content_type: str) -> str:
        return self._put_file(key, path, content_type)

    def _put_files(
        self, files: list[tuple[str, Path]], content_type: str, consume: bool
    ) -> list[str]:
        """One after the other (a folder: a rename or a local copy each)."""
        return [self.put_file(key, path, content_type, consume=consume) for key, path in files]

    @abstractmethod
    def _put_bytes(self, key: str, data: bytes, content_type: str) -> str: ...

    @abstractmethod
    def _get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def _exists(self, key: str) -> bool: ...

    @abstractmethod
    def _list_keys(self, prefix: str) -> list[str]: ...

    @abstractmethod
    def _read_range_into(
        self, key: str, start: int, end: int, write: Callable[[bytes], object]
    ) -> None:
        """Hand bytes [start, end) of `key` to `write`, in pieces."""

    @abstractmethod
    def _compose(self, key: str, parts: list[tuple[str, int]], content_type: str) -> str:
        """`parts`: (key, bytes to skip at its start), in order."""

    @abstractmethod
    def _stream(self, key: str, version_id: str | None) -> Iterator[tuple[bytes, str | None]]:
        """The pieces of `key` (that version), each with the version id read (the same
        for every piece)."""

    @abstractmethod
    def _put_stream(self, key: str, blocks: Iterable[bytes], content_type: str) -> str: ...


class ObjectStream:
    """One object's bytes in pieces (`for piece in stream`), hashed as they pass; `size`,
    `sha256` and `version_id` are set when the last piece has been read."""

    def __init__(
        self, key: str, pieces: Iterator[tuple[bytes, str | None]], version_id: str | None
    ) -> None:
        self.key = key
        self._pieces = pieces
        self.version_id = version_id
        self.size = 0
        self.sha256 = ""

    def __iter__(self) -> Iterator[bytes]:
        hashed = HashedPieces(self._versioned())
        yield from hashed
        self.size, self.sha256 = hashed.size, hashed.sha256

    def _versioned(self) -> Iterator[bytes]:
        for piece, version in self._pieces:
            self.version_id = self.version_id or version
            yield piece


# --------------------------------------------------------------------------- ledger
ClaimOutcome = Literal["acquired", "in_progress", "completed"]


@dataclass(frozen=True)
class LedgerRecord:
    """One idempotency record. Times are epoch seconds: `updated_at` is the `now` of the
    claim that wrote it, `lease_expires_at` that `now` plus the ledger's lease."""

    key: str
    status: Literal["in_progress", "completed"]
    owner: str
    lease_expires_at: float
    result: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1
    updated_at: float = 0.0


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    record: LedgerRecord

    @property
    def acquired(self) -> bool:
        return self.outcome == "acquired"


class Ledger(ABC):
    """Idempotency records with leases: at most one worker holds `key` at a time.

    A claim succeeds when no record exists, or the existing in-progress record's lease has
    expired (a crashed worker), or its owner is provably dead. Completed records are final.
    Stages do not call these methods by hand: `stages.base.run_once` runs the whole
    lifecycle (claim, then complete or release; replay a completed result).

    The decisions live here; an adapter fills in the primitives below, and must guarantee:
    - each write primitive is one atomic conditional write on one record (SQLite: one
      statement in a transaction; DynamoDB: a condition expression), so that two workers
      racing on one key can never both see True;
    - `_get` reads the latest committed write (DynamoDB: `ConsistentRead`);
    - records keep `result` as JSON (values that are not JSON are written with `str`);
    - failures of the store are raised as `TransientError` (worth a retry) or
      `PermanentError` (a missing table, access denied), never swallowed.

    Parameters common to the constructor: `lease_seconds`, how long a claim holds before
    another worker may take it over (longer than the longest stage run); `owner`, who we
    are (default `host:pid:nonce`, see `default_owner`).
    """

    def __init__(self, lease_seconds: float = 900.0, owner: str | None = None) -> None:
        self.lease_seconds = lease_seconds
        self.owner = owner or default_owner()

    def claim(self, key: str, *, now: float | None = None) -> Claim:
        """Try to take `key` for this owner at `now` (epoch seconds; default the clock).

        Returns a `Claim`: `acquired` with our in-progress record (a first claim, or a
        takeover of an expired lease or a dead owner's claim, `attempts` counting up);
        `completed` with the stored record and its `result`; `in_progress` with the record
        of the live owner. Raises `TransientError` / `PermanentError` from the store.
        """
        now = time.time() if now is None else now
        record = LedgerRecord(
            key, "in_progress", self.owner, now + self.lease_seconds, updated_at=now
        )
        if self._insert_if_absent(record):
            return Claim("acquired", record)
        existing = self._get(key)
        if existing is None:  # deleted between our two calls: try once more
            if self._insert_if_absent(record):
                return Claim("acquired", record)
            existing = self._get(key)
            assert existing is not None
        if existing.status == "completed":
            return Claim("completed", existing)
        if existing.lease_expires_at <= now or self._owner_is_dead(existing.owner):
            taken = LedgerRecord(
                key,
                "in_progress",
                self.owner,
                now + self.lease_seconds,
                attempts=existing.attempts + 1,
                updated_at=now,
            )
            if self._replace_if_owner(taken, expected_owner=existing.owner):
                return Claim("acquired", taken)
            again = self._get(key)
            return Claim(
                "completed" if again and again.status == "completed" else "in_progress",
                again or existing,
            )
        return Claim("in_progress", existing)

    def complete(self, key: str, result: dict[str, Any]) -> None:
        """Mark our claim on `key` completed, storing `result` (final: every later claim
        returns it). Raises `PermanentError` when we no longer own the claim (it expired
        and another worker took it over)."""
        self._complete(key, self.owner, result)

    def release(self, key: str) -> None:
        """Give up our in-progress claim on `key` after a failure, so that a retry can claim
        at once. Does nothing when the record is another owner's, completed, or gone."""
        self._delete_if_owner(key, self.owner)

    def get(self, key: str) -> LedgerRecord | None:
        """The record of `key`, or None."""
        return self._get(key)

    def _owner_is_dead(self, owner: str) -> bool:
        """True only when `owner` is provably gone (then its claim is taken over before its
        lease ends). Only the local runtime can tell; elsewhere the lease expiry decides."""
        return False

    @abstractmethod
    def _insert_if_absent(self, record: LedgerRecord) -> bool:
        """Write `record` if no record of `record.key` exists (its `updated_at` is the
        time of the write). Returns True if written, False if one existed."""

    @abstractmethod
    def _replace_if_owner(self, record: LedgerRecord, expected_owner: str) -> bool:
        """Take over an in-progress record: set `record`'s owner, lease, attempts and
        `updated_at` if the stored record is still in progress and owned by
        `expected_owner` (an adapter that can also check the stored lease against
        `record.updated_at`, the claim's `now`, does). Returns True if replaced."""

    @abstractmethod
    def _get(self, key: str) -> LedgerRecord | None:
        """The stored record of `key` (a consistent read), or None."""

    @abstractmethod
    def _complete(self, key: str, owner: str, result: dict[str, Any]) -> None:
        """Set the record completed with `result` if it is owned by `owner`; raise
        `PermanentError` otherwise (the claim was lost). `updated_at` is the adapter's
        clock: a bookkeeping stamp that no decision reads."""

    @abstractmethod
    def _delete_if_owner(self, key: str, owner: str) -> None:
        """Delete the record if it is in progress and owned by `owner`; else nothing."""


# --------------------------------------------------------------------------- event bus
class EventBus(ABC):
    """Publishes pipeline events (EventBridge, or the durable SQLite outbox)."""

    def publish(self, event: Event) -> None:
        self._publish([event])

    def publish_many(self, events: list[Event]) -> None:
        if events:
            self._publish(events)

    @abstractmethod
    def _publish(self, events: list[Event]) -> None: ...


# --------------------------------------------------------------------------- analysis store
class AnalysisStore(ABC):
    """Analysis summaries (one per dataset) plus flagged users/episodes, queryable per user.
    Documents written before the models existed load unchanged (tests/fixtures/documents)."""

    def save(self, summary: AnalysisSummary, flagged: list[FlaggedItem]) -> None:
        if not summary.dataset_id:
            raise ValueError("summary needs a dataset_id")
        self._save(summary.as_json(), [item.as_json() for item in flagged])

    def get(self, dataset_id: str) -> AnalysisSummary | None:
        found = self._get(dataset_id)
        return AnalysisSummary.model_validate(found) if found is not None else None

    def recent(self, limit: int = 20, since_epoch: float | None = None) -> list[AnalysisSummary]:
        return [AnalysisSummary.model_validate(doc) for doc in self._recent(limit, since_epoch)]

    def flagged_for_user(self, user_key: str) -> list[FlaggedItem]:
        return [flagged_item(doc) for doc in self._flagged_for_user(user_key)]

    # primitives: stored documents as JSON objects, exactly as written
    @abstractmethod
    def _save(self, summary: JsonObject, flagged: list[JsonObject]) -> None: ...

    @abstractmethod
    def _get(self, dataset_id: str) -> JsonObject | None: ...

    @abstractmethod
    def _recent(self, limit: int, since_epoch: float | None) -> list[JsonObject]: ...

    @abstractmethod
    def _flagged_for_user(self, user_key: str) -> list[JsonObject]: ...


# --------------------------------------------------------------------------- history
class ParticipantHistoryStore(ABC):
    """Each participant's readings across files, per pseudonym, as per-day histograms
    (`documents.history.DayHistogram`), one per (pseudonym, reading day, dataset). Keys hold
    pseudonyms, days and dataset ids only; never a raw id."""

    def load(self, pseudonyms: Sequence[str], since: date, until: date) -> list[DayHistogram]:
        """The stored histograms of these participants with days from `since` to `until`."""
        if not pseudonyms:
            return []
        found = self._load(sorted(set(pseudonyms)), since.isoformat(), until.isoformat())
        return [DayHistogram.model_validate_json(text) for text in found]

    def save(self, histograms: Iterable[DayHistogram], drop_before: date) -> None:
        """Store `histograms` (a dataset's histogram of a participant-day replaces the one it
        had), then drop those participants' histograms of days before `drop_before`. They
        reach the adapter one at a time, as JSON objects made as it reads them, so a file's
        histograms need not all be held as documents and JSON at once."""
        self._save((h.as_json() for h in histograms), drop_before.isoformat())

    def erase(self, pseudonym: str) -> int:
        """Remove every histogram of the participant; returns how many there were."""
        if not pseudonym:
            raise ValueError("erase needs a pseudonym")
        return self._erase(pseudonym)

    @abstractmethod
    def _load(self, pseudonyms: list[str], since: str, until: str) -> list[str]:
        """The stored histograms, each as the JSON text it was saved as."""

    @abstractmethod
    def _save(self, histograms: Iterator[JsonObject], drop_before: str) -> None:
        """Store them all or none (an empty iterator stores nothing)."""

    @abstractmethod
    def _erase(self, pseudonym: str) -> int: ...


# --------------------------------------------------------------------------- mailer
class Mailer(ABC):
    """Sends one MIME message; returns where it went (a path, or a provider message id)."""

    def send(self, message: EmailMessage, *, name: str) -> str:
        if not message["To"]:
            raise ValueError("message has no recipient")
        return self._send(message, name)

    @abstractmethod
    def _send(self, message: EmailMessage, name: str) -> str: ...


# --------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    unit: str
    stage: str


class Metrics(ABC):
    """Counters and timings with the dimension `stage` (CloudWatch EMF, or SQLite)."""

    def __init__(self) -> None:
        self._pending: list[MetricPoint] = []

    def add(self, name: str, value: float, *, stage: str, unit: str = "Count") -> None:
        self._pending.append(MetricPoint(name, float(value), unit, stage))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self._write(pending)

    def totals(self) -> dict[str, float]:
        """Sum of each metric over the store's history (where the store can tell)."""
        return self._totals()

    @abstractmethod
    def _write(self, points: list[MetricPoint]) -> None: ...

    def _totals(self) -> dict[str, float]:
        return {}


# --------------------------------------------------------------------------- language model
OutputMode = Literal["tool", "json"]
DEFAULT_MAX_OUTPUT_TOKENS = 1200
LLM_RETRYABLE = frozenset(
    {"throttled", "server_error", "malformed_output", "schema_invalid", "ungrounded"}
)
MAX_ERROR_DETAIL_CHARS = 300


@dataclass(frozen=True)
class OutputTool:
    """The one tool a `tool`-mode model must call: its input schema is the answer's schema."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str
    facts: dict[str, Any]  # exactly what the model was given (grounding checks against it)
    estimated_input_tokens: int
    trimmed: int  # how many reduction steps were needed to fit the budget
    tool: OutputTool | None = None  # set in `tool` mode


@dataclass(frozen=True)
class Completion:
    """A model's raw answer: a tool-input object or text, and what it cost in tokens."""

    output: dict[str, Any] | str
    input_tokens: int | None = None
    output_tokens: int | None = None


class AnalystError(AdapterError):
    """An LLM call gave no usable InsightSet (HealthpipeError > AdapterError > AnalystError).

    `reason` is one code: throttled, timeout, unavailable, server_error (retryable:
    throttled, server_error); no_credentials, access_denied, model_not_found, bad_request,
    refused, truncated; malformed_output, schema_invalid, ungrounded (retryable once: a
    model's output can differ on a second try); unexpected_error (a bug: never retried).
    A LanguageModel adapter translates its library's errors into these at the boundary and
    gives `tokens` (input, output as the provider reported them) when a call that answered
    unusably was still billed; the LLM analyst prices them into `usage`.
    """

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        retryable: bool | None = None,
        usage: Usage | None = None,
        tokens: tuple[int | None, int | None] | None = None,
        retry_after: float | None = None,
        grounding: dict[str, Any] | None = None,
    ) -> None:
        detail = " ".join(detail.split())[:MAX_ERROR_DETAIL_CHARS]
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = reason in LLM_RETRYABLE if retryable is None else retryable
        self.usage = usage or Usage()
        self.tokens = tokens  # reported by the provider for a billed, unusable answer
        self.retry_after = retry_after  # seconds the provider asked us to wait, if it did
        self.grounding = grounding  # the grounding record, when the output was ungrounded


class LanguageModel(ABC):
    """Completes a prompt: the port behind every LLM analyst (Bedrock, OpenAI-compatible).

    An adapter sends the prompt (in `output_mode`: forcing `prompt.tool`, or asking for a
    JSON object) and returns the raw answer with the token counts the provider reported;
    it neither parses nor checks the answer (analysts.llm.LLMAnalyst does).
    """

    provider: str = "unknown"
    output_mode: OutputMode = "json"

    def __init__(self, model: str, *, max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS) -> None:
        self.model = model
        self.max_output_tokens = max_output_tokens

    @abstractmethod
    def complete(self, prompt: Prompt, deadline: float) -> Completion:
        """Send `prompt`; its answer, which the caller waits for until `deadline`.

        Parameters: `deadline`, a time.monotonic() value: the caller runs this in a worker
        thread and stops waiting when it passes; an adapter that can stop early (a streamed
        body) should. Raises: AnalystError (with `tokens` when an unusable answer was billed).
        """


# --------------------------------------------------------------------------- analyst
class Analyst(ABC):
    """Writes insights, recommendations and a summary from a de-identified brief."""

    provider: str = "unknown"
    model: str = "unknown"

    def analyze(self, brief: Brief) -> AnalystReport:
        started = time.perf_counter()
        report = self._analyze(brief)
        if not report.latency_ms:
            report.latency_ms = int((time.perf_counter() - started) * 1000)
        return report

    @abstractmethod
    def _analyze(self, brief: Brief) -> AnalystReport: ...
