"""The download engine every data source shares.

Concurrent (a bounded thread pool), resumable (a file appears under its final name only
once complete: it is streamed to ``.<name>.part`` and renamed), retrying with
exponential backoff on transient errors (HTTP 5xx, throttling, connection resets,
truncated bodies) and never on permanent ones (403, 404...), which are counted and
written to a JSONL failure log. Every destination path comes from remote metadata and
goes through :func:`ct_io.paths.safe_join` first.

Transports (HTTP, S3, Azure Blob) live in :mod:`ct_io.sources.transports`; the engine
only needs ``transport.download(key, fh, on_bytes) -> int`` and ``transport.url(key)``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from attrs import define, field, frozen

from ct_io.atomic import atomic_open
from ct_io.errors import CamtrapError, UnsafePathError
from ct_io.jsonio import encode_json
from ct_io.paths import safe_join
from ct_io.redact import redact_mapping, redact_text

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.table import Table

log = logging.getLogger(__name__)

FAILURE_LOG_NAME = "download_failures.jsonl"
_CHUNK = 1 << 20


class TransientError(Exception):
    """A failure worth retrying (5xx, throttling, reset connection, short body)."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class PermanentError(Exception):
    """A failure that retrying cannot fix (403, 404, 400, a malformed answer): counted and
    logged; ``kind`` names it in the failure log (default: from the status)."""

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


#: The failure kind of an answer a transport could not make sense of.
BAD_RESPONSE = "bad_response"


class FatalDownloadError(CamtrapError):
    """A failure that dooms every file (no credentials, no such bucket): stops the run."""


class Transport(Protocol):
    """Fetches one object by key into an open binary file."""

    def download(self, key: str, fh: BinaryIO, on_bytes: Callable[[int], None]) -> int:
        """Write the object's bytes to ``fh``, calling ``on_bytes(n)`` per chunk; return the size.

        Raise ``TransientError``, ``PermanentError`` or ``FatalDownloadError``.
        """
        ...

    def url(self, key: str) -> str:
        """Where ``key`` lives, for logs (never with credentials)."""
        ...


@frozen
class DownloadItem:
    """One file to fetch: ``key`` for the transport, ``dest`` relative to the output folder."""

    key: str
    dest: str
    size: int | None = None


@frozen
class Failure:
    """One file that could not be downloaded (one line of the JSONL failure log)."""

    dest: str
    url: str
    kind: str  # "not_found", "forbidden", "client_error", "bad_response", "gave_up", "unsafe_path"
    error: str
    status: int | None = None
    attempts: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "dest": self.dest,
            "url": self.url,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
        }


@frozen
class RetryPolicy:
    """How many attempts a transient failure gets and how long to wait between them."""

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (full jitter; honours Retry-After)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        return random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


@define
class DownloadReport:
    """What a download run did."""

    total: int = 0
    downloaded: int = 0
    skipped: int = 0
    bytes: int = 0
    retries: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(factory=list)
    failure_log: Path | None = None

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return not self.failures

    def failed_dests(self) -> set[str]:
        return {f.dest for f in self.failures}

    def summary_table(self, title: str = "download") -> Table:
        """A rich table of the counts, rates and failure kinds."""
        from rich.table import Table

        table = Table(title=title, show_header=False)
        table.add_column("what")
        table.add_column("value", justify="right")
        secs = max(self.seconds, 1e-9)
        table.add_row("files listed", f"{self.total:,}")
        table.add_row("downloaded", f"{self.downloaded:,}")
        table.add_row("already complete (skipped)", f"{self.skipped:,}")
        table.add_row("failed", f"[red]{self.failed:,}[/]" if self.failed else "0")
        kinds: dict[str, int] = {}
        for f in self.failures:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        for kind, n in sorted(kinds.items()):
            table.add_row(f"  {kind}", f"{n:,}")
        table.add_row("retries", f"{self.retries:,}")
        table.add_row("data", f"{self.bytes / 1e6:,.1f} MB")
        table.add_row(
            "rate", f"{self.downloaded / secs:,.1f} files/s, {self.bytes / 1e6 / secs:,.2f} MB/s"
        )
        if self.failure_log:
            table.add_row("failure log", str(self.failure_log))
        return table


@define
class _Counters:
    lock: threading.Lock = field(factory=threading.Lock)
    report: DownloadReport = field(factory=DownloadReport)


class _StoppedError(Exception):
    """The run is stopping (Ctrl-C or a fatal error elsewhere)."""


def part_path(dest: Path) -> Path:
    """The temporary name a file is streamed to before it is renamed into place."""
    return dest.with_name(f".{dest.name}.part")


def is_complete(dest: Path, size: int | None) -> bool:
    """A file counts as done when it exists under its final name (and has the expected size)."""
    try:
        st = dest.stat()
    except OSError:
        return False
    return st.st_size == size if size is not None else True


class Downloader:
    """Downloads many files concurrently through one transport (see the module docstring)."""

    def __init__(
        self,
        transport: Transport,
        root: str | os.PathLike[str],
        *,
        threads: int = 16,
        retry: RetryPolicy | None = None,
        fsync: bool = True,
        failure_log: str | os.PathLike[str] | None = None,
    ) -> None:
        if threads < 1:
            raise CamtrapError(f"threads must be at least 1, got {threads}")
        self.transport = transport
        self.root = Path(root)
        self.threads = threads
        self.retry = retry or RetryPolicy()
        self.fsync = fsync
        self.failure_log = (
            Path(failure_log) if failure_log is not None else self.root / FAILURE_LOG_NAME
        )
        self._stop = threading.Event()
        self._fatal: BaseException | None = None
        self._bytes_lock = threading.Lock()
        self._bytes_seen = 0

    # ------------------------------------------------------------------ public

    def run(
        self,
        items: Iterable[DownloadItem],
        *,
        progress: Progress | None = None,
        description: str = "downloading",
    ) -> DownloadReport:
        """Fetch every item; return the report and write the failure log (removed when clean)."""
        todo = _unique(items)
        self.root.mkdir(parents=True, exist_ok=True)
        counters = _Counters()
        counters.report.total = len(todo)
        task = (
            progress.add_task(description, total=len(todo), bytes=0)
            if progress is not None
            else None
        )
        start = time.perf_counter()
        try:
            self._run_pool(todo, counters, progress, task)
        finally:
            counters.report.seconds = time.perf_counter() - start
            self._write_failure_log(counters.report)
        if self._fatal is not None:
            raise self._fatal
        return counters.report

    # ------------------------------------------------------------------ pool

    def _run_pool(
        self,
        todo: list[DownloadItem],
        counters: _Counters,
        progress: Progress | None,
        task: TaskID | None,
    ) -> None:
        pending: set[Future[None]] = set()
        window = self.threads * 4  # bounded: never millions of futures in memory
        items = iter(todo)
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="ct-download") as pool:
            try:
                for item in items:
                    if self._stop.is_set():
                        break
                    pending.add(pool.submit(self._one, item, counters, progress, task))
                    if len(pending) >= window:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        _reraise(done)
                done, pending = wait(pending)
                _reraise(done)
            except BaseException:
                self._stop.set()
                for fut in pending:
                    fut.cancel()
                raise

    def _one(
        self,
        item: DownloadItem,
        counters: _Counters,
        progress: Progress | None,
        task: TaskID | None,
    ) -> None:
        if self._stop.is_set():
            return
        try:
            outcome, nbytes = self._fetch(item, counters, progress, task)
        except FatalDownloadError as exc:
            self._fatal = exc
            self._stop.set()
            return
        except _StoppedError:
            return
        with counters.lock:
            rep = counters.report
            if isinstance(outcome, Failure):
                rep.failures.append(outcome)
                log.debug("failed %s: %s", outcome.dest, outcome.error)
            elif outcome == "skipped":
                rep.skipped += 1
            else:
                rep.downloaded += 1
                rep.bytes += nbytes
        if progress is not None and task is not None:
            progress.advance(task)

    # ------------------------------------------------------------------ one file

    def _fetch(
        self,
        item: DownloadItem,
        counters: _Counters,
        progress: Progress | None,
        task: TaskID | None,
    ) -> tuple[Failure | str, int]:
        url = self.transport.url(item.key)
        try:
            dest = safe_join(self.root, item.dest)
        except UnsafePathError as exc:
            return Failure(item.dest, url, "unsafe_path", str(exc)), 0
        if is_complete(dest, item.size):
            return "skipped", 0
        attempt = 0
        while True:
            attempt += 1
            try:
                return "downloaded", self._attempt(item, dest, progress, task)
            except PermanentError as exc:
                kind = exc.kind or {
                    404: "not_found",
                    410: "not_found",
                    403: "forbidden",
                    401: "forbidden",
                }.get(exc.status or 0, "client_error")
                return Failure(item.dest, url, kind, str(exc), exc.status, attempt), 0
            except TransientError as exc:
                if attempt >= self.retry.attempts:
                    return Failure(
                        item.dest,
                        url,
                        "gave_up",
                        f"{exc} (after {attempt} attempts)",
                        exc.status,
                        attempt,
                    ), 0
                with counters.lock:
                    counters.report.retries += 1
                log.debug("retrying %s after: %s", item.dest, exc)
                if self._stop.wait(self.retry.delay(attempt, exc.retry_after)):
                    raise _StoppedError() from None
            except OSError as exc:  # local disk trouble: not the server's fault, do not hammer it
                return Failure(
                    item.dest, url, "local_error", f"{type(exc).__name__}: {exc}", None, attempt
                ), 0

    def _attempt(
        self, item: DownloadItem, dest: Path, progress: Progress | None, task: TaskID | None
    ) -> int:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = part_path(dest)
        seen = 0

        def on_bytes(n: int) -> None:
            nonlocal seen
            if self._stop.is_set():
                raise _StoppedError()
            seen += n
            self._add_bytes(n, progress, task)

        try:
            with tmp.open("wb") as fh:
                try:
                    size = self.transport.download(item.key, fh, on_bytes)
                except (
                    ConnectionError,
                    TimeoutError,
                ) as exc:  # a network error a transport let through
                    raise TransientError(
                        f"{self.transport.url(item.key)}: {type(exc).__name__}: {exc}"
                    ) from None
                except (TransientError, PermanentError, CamtrapError, _StoppedError, OSError):
                    raise
                except Exception as exc:  # anything else a transport let through: this file fails
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise PermanentError(
                        f"{self.transport.url(item.key)}: unexpected answer "
                        f"({type(exc).__name__}: {redact_text(first)})",
                        kind=BAD_RESPONSE,
                    ) from None
                if item.size is not None and size != item.size:
                    raise TransientError(f"got {size} bytes, expected {item.size}")
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            tmp.replace(dest)
        except BaseException:
            self._add_bytes(-seen, progress, task)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return size

    def _add_bytes(self, n: int, progress: Progress | None, task: TaskID | None) -> None:
        with self._bytes_lock:
            self._bytes_seen += n
            total = self._bytes_seen
        if progress is not None and task is not None and n:
            progress.update(task, bytes=total)

    # ------------------------------------------------------------------ log

    def _write_failure_log(self, report: DownloadReport) -> None:
        if not report.failures:
            with contextlib.suppress(OSError):
                self.failure_log.unlink()
            return
        with atomic_open(self.failure_log, "wb") as fh:
            for f in sorted(report.failures, key=lambda f: f.dest):
                fh.write(encode_json(redact_mapping(f.to_dict()), indent=None) + b"\n")
        report.failure_log = self.failure_log


def download_all(
    items: Iterable[DownloadItem],
    root: str | os.PathLike[str],
    transport: Transport,
    *,
    threads: int = 16,
    retry: RetryPolicy | None = None,
    progress: Progress | None = None,
    description: str = "downloading",
    failure_log: str | os.PathLike[str] | None = None,
    fsync: bool = True,
) -> DownloadReport:
    """Download ``items`` under ``root`` with ``transport``; see :class:`Downloader`."""
    downloader = Downloader(
        transport, root, threads=threads, retry=retry, fsync=fsync, failure_log=failure_log
    )
    return downloader.run(items, progress=progress, description=description)


def stream_to(fh: BinaryIO, chunks: Iterator[bytes], on_bytes: Callable[[int], None]) -> int:
    """Write ``chunks`` to ``fh`` and count them (a helper for transports)."""
    total = 0
    for chunk in chunks:
        if chunk:
            fh.write(chunk)
            total += len(chunk)
            on_bytes(len(chunk))
    return total


def _unique(items: Iterable[DownloadItem]) -> list[DownloadItem]:
    seen: set[str] = set()
    out: list[DownloadItem] = []
    for item in items:
        if item.dest not in seen:
            seen.add(item.dest)
            out.append(item)
    return out


def _reraise(done: set[Future[None]]) -> None:
    for fut in done:
        exc = fut.exception()
        if exc is not None:
            raise exc


def make_progress() -> Progress:
    """A rich progress display for downloads: files, bytes, rate and ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from ct_io.clitools import console

    class BytesColumn(ProgressColumn):
        def render(self, task: object) -> Text:
            nbytes = getattr(task, "fields", {}).get("bytes", 0)
            elapsed = getattr(task, "elapsed", None) or 0.0
            rate = nbytes / elapsed / 1e6 if elapsed > 0 else 0.0
            return Text(f"{nbytes / 1e6:,.1f} MB  {rate:,.1f} MB/s", style="progress.data.speed")

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        BytesColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
