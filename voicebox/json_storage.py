"""The store's files: a JSON snapshot plus an append-only journal, and recovery from a bad file.

Kept apart from :mod:`voicebox.store` (the records and their rules) because this is the part that
touches the disk. The rules it keeps:

* **Every acknowledged write is on disk.** A write appends one line to ``voicebox.json.journal``
  and fdatasyncs it before returning (:mod:`voicebox.store_journal`); its cost does not grow with
  the history, unlike rewriting the whole file (234 ms at 100,000 generations).
* **The JSON file stays the database.** ``voicebox.json`` keeps TinyDB's format; a data dir from
  before the journal opens unchanged (it is simply a snapshot with an empty journal). While the
  store is small (under :attr:`JournalStorage.INLINE_MAX_BYTES`) every write still rewrites the
  snapshot atomically, so a small data dir is one current, readable file and no journal.
* **Compaction is atomic and repeatable.** When the journal passes a size, a background thread
  serialises the state (under the store lock, a consistent cut), writes it to a temp file and
  fsyncs it (outside the lock, writes continue into the journal), then under the lock renames it
  over the snapshot and drops the journal's compacted prefix. A crash between the rename and the
  truncation replays lines the snapshot already holds, which is harmless (replay is idempotent).
* **One writer, but others may look.** The state lives in memory; before each use it compares the
  files' identities with what it last wrote and reloads if another process (or a second
  :class:`~voicebox.store.Store` on the same dir) changed them, as the old storage did.
* **A bad file is moved aside, never overwritten** (:func:`check_database_file`).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import orjson
from tinydb.storages import Storage

from .atomic import atomic_write_bytes, fsync_directory, write_temp
from .store_journal import Change, JournalFile, Tables, apply_change, encode_line, journal_path, replay

log = logging.getLogger(__name__)

Stamp = tuple[tuple[int, int, int] | None, tuple[int, int] | None]


class ChangeListener(Protocol):
    """An in-memory index kept in step with the data (see :mod:`voicebox.store_index`)."""

    def reset(self, data: Tables) -> None: ...

    def apply(self, change: Change) -> None: ...


def read_database(path: Path | str) -> Tables:
    """The database as it stands on disk: the snapshot with its journal replayed (read-only).

    For tools and tests that look at the files directly: ``voicebox.json`` alone may be behind.
    """
    path = Path(path)
    data: Tables = {}
    if path.exists() and path.stat().st_size:
        data = orjson.loads(path.read_bytes())
    replay(JournalFile(journal_path(path)).read(), data)
    return data


class JournalStorage(Storage):
    """TinyDB storage over a JSON snapshot and a journal; see the module docstring.

    TinyDB's own tables hand the storage the whole database on every write; use it with
    :class:`voicebox.store_table.JournalDB`, whose tables call :meth:`commit` with just what
    changed. :meth:`write` (whole database) is still honoured, as a compaction.

    Args:
        path: the JSON snapshot.
        lock: the store's lock (threads and processes); compaction takes it for its two short
            critical sections. Without one, a private lock is used.
        background: compact in a background thread (else only on :meth:`compact` and close).
    """

    INLINE_MAX_BYTES = 64 * 1024
    COMPACT_MIN_BYTES = 4 * 1024 * 1024
    COMPACT_RATIO = 0.5  # compact when the journal reaches half the snapshot (amortised O(1))

    def __init__(
        self,
        path: str | Path,
        lock: Callable[[], AbstractContextManager[Any]] | None = None,
        background: bool = True,
    ) -> None:
        self.path = Path(path)
        self.journal = JournalFile(journal_path(self.path))
        self.mutex = threading.RLock()  # the in-memory state; always taken inside the store lock
        own_lock = threading.RLock()
        self._lock = lock or (lambda: own_lock)
        self._background = background
        self._compact_lock_path = self.path.with_name(self.path.name + ".compact.lock")
        self._compactor: threading.Thread | None = None
        self._listeners: list[ChangeListener] = []
        self._data: Tables = {}
        self._next_ids: dict[str, int] = {}
        self._stamp: Stamp = (None, None)
        self._snapshot_bytes = 0
        self._journal_bytes = 0
        self._stale = True
        self.recovery_message: str | None = None
        self.compactions = 0
        with self.locked():
            if any(self.path.parent.glob(f".{self.path.name}.*.tmp")):
                with _try_exclusive(self._compact_lock_path) as nobody_compacting:
                    if nobody_compacting:
                        _remove_temps(self.path)
            self._load()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The store lock (threads and processes), then the state's mutex: every entry point
        takes both, in that order, so a reload never cuts a line another process is writing."""
        with self._lock(), self.mutex:
            yield

    # ---- loading and noticing other writers ------------------------------------------------
    def _snapshot_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _current_stamp(self) -> Stamp:
        return (self._snapshot_stamp(), self.journal.identity())

    def _load(self) -> None:
        """Read the snapshot, replay the journal, cut a torn tail, and rebuild the indexes."""
        with _gc_paused():
            self._load_unpaused()

    def _load_unpaused(self) -> None:
        snapshot = self._snapshot_stamp()
        raw = self.path.read_bytes() if snapshot and snapshot[1] else b""
        data = orjson.loads(raw) if raw else {}
        if not isinstance(data, dict):
            raise ValueError("database root is not a JSON object")  # noqa: TRY004 - Store moves it aside
        self.journal.close()  # another writer may have replaced the file: append to the one at the path
        blob = self.journal.read()
        result = replay(blob, data)
        if result.damaged_lines:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            aside = self.journal.path.with_name(f"{self.journal.path.name}.damaged-{stamp}")
            shutil.copyfile(self.journal.path, aside)
            self.recovery_message = (
                f"{result.damaged_lines} damaged line(s) in {self.journal.path} were skipped; a copy "
                f"was kept at {aside}."
            )
            log.error(self.recovery_message)
        if result.valid_end < len(blob):  # a torn tail or damage at the end: appends must not follow it
            self.journal.cut(result.valid_end)
            if result.torn_tail:
                log.warning("ignored the torn last line of %s (a write that never returned)", self.journal.path)
        self._data = data
        self._next_ids = {}
        self._snapshot_bytes = len(raw)
        self._journal_bytes = result.valid_end
        self._stamp = self._current_stamp()
        self._stale = False
        if result.damaged_lines:  # fold now, so the damage (kept aside) is reported once
            self._write_snapshot(orjson.dumps(data), journal_upto=self._journal_bytes)
        for listener in self._listeners:
            listener.reset(data)

    def _sync(self) -> None:
        if self._stale or self._current_stamp() != self._stamp:
            self._load()

    def add_listener(self, listener: ChangeListener) -> None:
        """Keep ``listener`` in step with every change from now on (it is reset to the data now)."""
        with self.locked():
            self._sync()
            self._listeners.append(listener)
            listener.reset(self._data)

    # ---- TinyDB's storage interface -----------------------------------------------------------
    def read(self) -> Tables:
        """The live in-memory database (not a copy); change it only through :meth:`commit`."""
        with self.locked():
            self._sync()
            return self._data

    def write(self, data: dict[str, Any]) -> None:
        """Replace the whole database (TinyDB's drop_table(s) do this): a synchronous compaction."""
        with self.locked():
            self._sync()
            try:
                self._data = data
                self._write_snapshot(orjson.dumps(data), journal_upto=self._journal_bytes)
            except BaseException:
                self._stale = True
                raise
            self._next_ids = {}
            for listener in self._listeners:
                listener.reset(data)

    def close(self) -> None:
        """Bring the snapshot up to date and let go of the journal. Call :meth:`stop_background`
        first, without holding the store lock, or a compaction in flight is left to finish alone."""
        self._background = False
        with self.locked():
            if not self._stale and self._journal_bytes:
                try:
                    self.compact()
                except OSError:
                    log.exception("could not compact %s on close; the journal keeps the data", self.path)
            self.journal.close()

    # ---- writes -------------------------------------------------------------------------------
    def allocate_id(self, table: str) -> int:
        """The next TinyDB document id of ``table`` (one past the largest ever seen)."""
        with self.locked():
            self._sync()
            next_id = self._next_ids.get(table)
            if next_id is None:
                next_id = max((int(k) for k in self._data.get(table, {}) if k.isdigit()), default=0) + 1
            self._next_ids[table] = next_id + 1
            return next_id

    def commit(self, change: Change) -> None:
        """Make ``change`` durable, then apply it to memory and the indexes.

        Small stores rewrite the snapshot atomically (old behaviour); larger ones append one
        fsynced journal line. If the disk write fails, memory is left as it was (journal path) or
        reloaded from disk on next use (snapshot path), so memory never disagrees with disk.
        """
        with self.locked():
            self._sync()
            if change.empty and change.table in self._data:
                return
            if self._snapshot_bytes + self._journal_bytes < self.INLINE_MAX_BYTES:
                apply_change(self._data, change)
                try:
                    self._write_snapshot(orjson.dumps(self._data), journal_upto=self._journal_bytes)
                except BaseException:
                    self._stale = True
                    raise
            else:
                line = encode_line(change)
                identity = self.journal.append(line, self._journal_bytes)
                self._journal_bytes = identity[1]
                self._stamp = (self._stamp[0], identity)
                apply_change(self._data, change)
            self._note_ids(change)
            for listener in self._listeners:
                listener.apply(change)
            self._maybe_compact()

    def _note_ids(self, change: Change) -> None:
        next_id = self._next_ids.get(change.table)
        if change.cleared:
            self._next_ids.pop(change.table, None)
        elif next_id is not None:
            for key in change.put:
                if key.isdigit() and int(key) >= next_id:
                    next_id = int(key) + 1
            self._next_ids[change.table] = next_id

    # ---- compaction -------------------------------------------------------------------------
    def _compact_due(self) -> bool:
        limit = max(self.COMPACT_MIN_BYTES, int(self._snapshot_bytes * self.COMPACT_RATIO))
        return self._journal_bytes >= limit

    def _maybe_compact(self) -> None:
        if not self._compact_due():
            return
        if not self._background:
            return
        if self._compactor is None or not self._compactor.is_alive():
            self._compactor = threading.Thread(target=self._compact_quietly, name="store-compactor", daemon=True)
            self._compactor.start()

    def _compact_quietly(self) -> None:
        try:
            self.compact()
        except Exception:  # the journal still holds everything; the next write tries again
            log.exception("background compaction of %s failed", self.path)

    def stop_background(self) -> None:
        """Wait for a running background compaction (call without holding the store lock)."""
        self._background = False
        thread = self._compactor
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def compact(self) -> bool:
        """Fold the journal into the snapshot now. Returns False if there was nothing to fold or
        another compaction is running (never waits for one: that could deadlock with the lock)."""
        with _try_exclusive(self._compact_lock_path) as ours:
            if not ours:
                return False
            return self._compact()

    def _compact(self) -> bool:
        """Serialise under the lock, write the temp file outside it, install under it."""
        with self.locked():
            self._sync()
            if not self._journal_bytes:
                return False
            payload = orjson.dumps(self._data)  # a consistent cut: nothing changes under the lock
            upto, stamp = self._journal_bytes, self._stamp
        tmp = write_temp(self.path, payload)  # the slow part; writes go on into the journal
        try:
            with self.locked():
                moved = self._current_stamp() != self._stamp or self._stamp[0] != stamp[0]
                if self._stale or moved or self._journal_bytes < upto:
                    return False  # another writer moved the files: its state wins, try later
                self._write_snapshot(payload, journal_upto=upto, tmp=tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return True

    def _write_snapshot(self, payload: bytes, journal_upto: int, tmp: Path | None = None) -> None:
        """Install ``payload`` (state through journal byte ``journal_upto``) as the snapshot, then
        drop that journal prefix. Caller holds the lock."""
        if tmp is None:
            atomic_write_bytes(self.path, payload)
        else:
            os.replace(tmp, self.path)
            fsync_directory(self.path.parent)
        # A crash here leaves the old journal over the new snapshot: replay is idempotent.
        if self._journal_bytes:
            if self._journal_bytes == journal_upto:
                self.journal.cut(0)
            else:
                tail = self.journal.read()[journal_upto : self._journal_bytes]
                self.journal.replace_with(tail)
            self.compactions += 1
        self._snapshot_bytes = len(payload)
        self._journal_bytes -= journal_upto
        self._stamp = self._current_stamp()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC while loading: building 100,000 documents and their index entries otherwise
    sets off full collections over millions of young objects (1.5 s instead of 0.5 s to index)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _try_exclusive(lock_path: Path) -> Iterator[bool]:
    """Hold an advisory lock on ``lock_path`` if nobody else (thread, store or process) does;
    yields whether we got it. Compaction runs under it, so at most one runs at a time and a
    store opening can tell that a temp file beside the snapshot is a crash's leftover."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)  # releases the lock


def _remove_temps(path: Path) -> None:
    """Delete temp files a killed compaction or rewrite left beside ``path`` (up to the size of
    the database each); call only while holding the compaction lock and the store lock."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):  # the journal's temps match too
        with contextlib.suppress(OSError):
            leftover.unlink()


def check_database_file(path: Path) -> str | None:
    """Make sure ``path`` is loadable; move a corrupt file aside instead of overwriting it.

    Returns:
        A warning message when a corrupt file was moved aside, else ``None``.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        data = orjson.loads(path.read_bytes())
        if not isinstance(data, dict):
            raise ValueError("root is not an object")
        return None
    except (ValueError, OSError) as exc:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        os.replace(path, aside)
        message = (
            f"The database {path} could not be read ({exc}); it was moved aside to {aside} "
            "and an empty database was started. Restore it from the moved file if needed."
        )
        log.error(message)
        return message
