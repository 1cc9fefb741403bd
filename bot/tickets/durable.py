"""Durable ticket writes: commit now, or keep the request on local disk until the database is back.

``TicketWriter.submit`` validates the request, then tries to commit it. When the database is
unavailable the request is written as one JSON file (fsync'd, atomic rename, directory fsync'd)
into ``queue_dir`` with a ``client_ref``; ``flush`` replays the files in submission order and
deletes each only after its ticket is committed. ``client_ref`` makes every replay idempotent,
so a crash between commit and delete (or an ambiguous commit) never creates a duplicate.

A replayed ticket is marked as owing the patron its number (``bot.tickets.notice``) in the transaction that
stores it: the patron was only given a reference, and whoever tells them the number later works from that
mark, so it is told once however many flushers or restarts there were.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from bot.models import Ticket
from bot.tickets import notice
from bot.tickets._common import utc_naive
from bot.tickets.store import create_ticket, prepare_ticket

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

__all__ = ["Receipt", "TicketWriter", "is_unavailable"]

QUEUE_FORMAT = 1
_SUFFIX = ".json"


@dataclass(frozen=True)
class Receipt:
    """Outcome of ``TicketWriter.submit``.

    ``queued`` is True when the ticket is only on local disk (no number yet); ``reply_due`` is the
    SLA deadline (naive UTC) either way, so the patron can be told when to expect a reply.
    """

    queued: bool
    number: Optional[str]
    client_ref: str
    reply_due: Optional[dt.datetime] = None


def is_unavailable(exc: BaseException) -> bool:
    """True for errors meaning "database unavailable" (worth queueing and retrying later).

    Any DBAPI error counts except integrity and data errors, which a retry cannot fix.
    """
    if isinstance(exc, PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or not isinstance(exc, (IntegrityError, DataError))
    return False


def _encode(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = dict(kwargs)
    if isinstance(out.get("now"), dt.datetime):
        out["now"] = out["now"].isoformat()
    return out


def _decode(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = dict(kwargs)
    if isinstance(out.get("now"), str):
        out["now"] = dt.datetime.fromisoformat(out["now"])
    return out


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TicketWriter:
    """Create tickets through ``session_factory`` (a zero-argument callable returning a Session,
    e.g. a ``sessionmaker``), falling back to a durable queue in ``queue_dir``.

    ``on_flushed(client_ref, ticket)`` is called after a queued ticket was committed, e.g. to send
    the patron the ticket number.
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        queue_dir: Path,
        *,
        on_flushed: Callable[[str, Ticket], None] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.queue_dir = Path(queue_dir)
        self.queue_dir.mkdir(parents=True, exist_ok=True)
        self.failed_dir = self.queue_dir / "failed"
        self.on_flushed = on_flushed
        self._flush_lock = threading.Lock()
        self._seq_lock = threading.Lock()
        self._last_ns = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ writing
    def _commit(self, kwargs: dict[str, Any], replay: bool = False) -> Ticket:
        session = self.session_factory()
        try:
            ticket = create_ticket(session, **kwargs)
            if replay:  # also when an ambiguous first commit stored it: the patron was told only the reference
                notice.mark_owed(ticket)
            session.commit()
            return ticket
        except BaseException:
            try:
                session.rollback()
            except Exception:  # the connection may already be gone
                pass
            raise
        finally:
            try:
                session.close()
            except Exception:
                pass

    def submit(self, **ticket_kwargs: Any) -> Receipt:
        """Create a ticket (arguments of ``store.create_ticket`` without ``session``).

        Raises ``ValueError`` for invalid input and re-raises database errors that a retry cannot
        fix; queues the request and returns ``Receipt(queued=True, number=None, ...)`` when the
        database is unavailable.
        """
        kwargs = dict(ticket_kwargs)
        kwargs["client_ref"] = kwargs.get("client_ref") or uuid.uuid4().hex
        kwargs["now"] = utc_naive(kwargs.get("now"))  # replays keep the original time
        prepared = prepare_ticket(**kwargs)  # validate before anything is acknowledged
        try:
            ticket = self._commit(kwargs)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("database unavailable (%s); queueing ticket %s", type(exc).__name__, kwargs["client_ref"])
            self._enqueue(kwargs)
            return Receipt(queued=True, number=None, client_ref=kwargs["client_ref"], reply_due=prepared["reply_due"])
        return Receipt(queued=False, number=ticket.number, client_ref=kwargs["client_ref"], reply_due=ticket.reply_due)

    def _file_stem(self, client_ref: str) -> str:
        with self._seq_lock:  # strictly increasing within the process, so names sort by submission
            ns = max(time.time_ns(), self._last_ns + 1)
            self._last_ns = ns
        return f"{ns:020d}-{client_ref}"

    def _enqueue(self, kwargs: dict[str, Any]) -> Path:
        """Write the request durably: temp file, fsync, atomic rename, fsync the directory."""
        stem = self._file_stem(kwargs["client_ref"])
        payload = {
            "format": QUEUE_FORMAT,
            "queued_at": utc_naive().isoformat(),
            "kwargs": _encode(kwargs),
        }
        data = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        tmp = self.queue_dir / f".{stem}.tmp"
        final = self.queue_dir / f"{stem}{_SUFFIX}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.queue_dir)
        return final

    # ------------------------------------------------------------------ replay
    def pending(self) -> list[Path]:
        """Queued request files, oldest first."""
        return sorted(p for p in self.queue_dir.glob(f"*{_SUFFIX}") if p.is_file())

    def flush(self) -> int:
        """Replay queued requests in order; returns how many were committed (or already existed).

        Stops at the first "unavailable" error, keeping that file and the rest for the next try.
        A file that can never succeed (unreadable, invalid, integrity error) moves to ``failed/``.
        """
        if not self._flush_lock.acquire(blocking=False):
            return 0  # another thread is flushing
        try:
            lock_fh = open(self.queue_dir / ".flush.lock", "a+")
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        return 0  # another process is flushing
                return self._flush_locked()
            finally:
                lock_fh.close()
        finally:
            self._flush_lock.release()

    def _flush_locked(self) -> int:
        done = 0
        for path in self.pending():
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
                kwargs = _decode(payload["kwargs"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                if not path.exists():
                    continue
                self._dead_letter(path, exc)
                continue
            try:
                ticket = self._commit(kwargs, replay=True)
            except ValueError as exc:  # invalid request; cannot succeed later either
                self._dead_letter(path, exc)
                continue
            except (IntegrityError, DataError) as exc:  # the request itself is bad
                self._dead_letter(path, exc)
                continue
            except Exception as exc:  # unavailable (or unexpected): keep this file and the rest
                if is_unavailable(exc):
                    log.info("database still unavailable; %d ticket(s) remain queued", len(self.pending()))
                else:
                    log.exception("replaying queued ticket %s failed; will retry", path.name)
                break
            path.unlink(missing_ok=True)
            _fsync_dir(self.queue_dir)
            done += 1
            log.info("queued ticket %s stored as %s", kwargs.get("client_ref"), ticket.number)
            if self.on_flushed is not None:
                try:
                    self.on_flushed(kwargs["client_ref"], ticket)
                except Exception:
                    log.exception("on_flushed callback failed for %s", ticket.number)
        return done

    def _dead_letter(self, path: Path, exc: BaseException) -> None:
        self.failed_dir.mkdir(exist_ok=True)
        target = self.failed_dir / path.name
        os.replace(path, target)
        _fsync_dir(self.queue_dir)
        log.error("queued ticket %s cannot be stored (%s: %s); moved to %s", path.name, type(exc).__name__, exc, target)

    # ------------------------------------------------------------------ background
    def start_background_flusher(self, interval: float = 5.0) -> threading.Thread:
        """Start (once) a daemon thread that calls ``flush`` every ``interval`` seconds."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    if self.pending():
                        self.flush()
                except Exception:  # keep the thread alive whatever happens
                    log.exception("background ticket flush failed")

        self._thread = threading.Thread(target=run, name="ticket-flusher", daemon=True)
        self._thread.start()
        return self._thread

    def stop_background_flusher(self, timeout: float | None = 5.0) -> None:
        """Stop the background thread (it finishes a flush in progress first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
