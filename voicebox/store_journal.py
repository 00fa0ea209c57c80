"""The store's journal: one fsynced JSON line per change, replayed over the JSON snapshot.

Why a journal: rewriting the whole ``voicebox.json`` on every insert made a write cost grow with
the history (234 ms at 100,000 generations). Appending one line that names the documents a write
changed costs the same at any size; the snapshot is brought up to date now and then by compaction
(see :mod:`voicebox.json_storage`).

Why replay is safe to repeat: a change says "document 12 of table t is now X", "document 7 is
gone" or "table t is empty" – it never says "add one". Applying the same sequence again over a
newer state therefore ends in the same state (the last change that touches a document decides it),
so a crash between writing a compacted snapshot and truncating the journal loses nothing and
duplicates nothing.

Why a checksum: a crash can leave the last line half written, and a power cut can leave zeros or
stale bytes at the tail. Each line carries the CRC-32 of its change; a line that fails it is not
applied. A bad line after the last good one is the torn tail of a write that never returned; a bad
line *between* good ones is real damage, reported so a person can look.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .atomic import atomic_write_bytes, fsync_directory

JOURNAL_SUFFIX = ".journal"
Document = dict[str, Any]
Tables = dict[str, dict[str, Document]]

_LINE_RE = re.compile(rb'\{"crc":(\d{1,10}),"op":')
_datasync = getattr(os, "fdatasync", os.fsync)


def journal_path(snapshot: Path) -> Path:
    """Where the journal of ``snapshot`` lives (beside it, so one rename never crosses disks)."""
    return snapshot.with_name(snapshot.name + JOURNAL_SUFFIX)


@dataclass(frozen=True)
class Change:
    """What one write did to one table: documents now holding a value, documents removed, or the
    whole table emptied first. Keys are TinyDB's document ids as strings (as in the JSON file)."""

    table: str
    put: dict[str, Document] = field(default_factory=dict)
    deleted: tuple[str, ...] = ()
    cleared: bool = False

    @property
    def empty(self) -> bool:
        return not (self.put or self.deleted or self.cleared)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": self.table}
        if self.cleared:
            out["clear"] = True
        if self.deleted:
            out["del"] = list(self.deleted)
        if self.put:
            out["put"] = self.put
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Change:
        if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
            raise ValueError("not a change")  # noqa: TRY004 - all "bad line" is ValueError
        put = obj.get("put", {})
        deleted = obj.get("del", [])
        if not isinstance(put, dict) or not all(isinstance(d, dict) for d in put.values()):
            raise ValueError("bad put")
        if not isinstance(deleted, list) or not all(isinstance(k, str) for k in deleted):
            raise ValueError("bad del")
        return cls(obj["t"], put, tuple(deleted), bool(obj.get("clear", False)))


def apply_change(data: Tables, change: Change) -> None:
    """Apply ``change`` to ``data`` in place: empty the table, drop, then put (idempotent)."""
    table = data.setdefault(change.table, {})
    if change.cleared:
        table.clear()
    for key in change.deleted:
        table.pop(key, None)
    for key, doc in change.put.items():
        table[key] = doc


def encode_line(change: Change) -> bytes:
    """One journal line: ``{"crc":<crc32 of op>,"op":<change>}`` and a newline; valid JSON."""
    payload = orjson.dumps(change.to_json())
    return b'{"crc":%d,"op":%s}\n' % (zlib.crc32(payload), payload)


def decode_line(line: bytes) -> Change | None:
    """The change in one line (without its newline), or ``None`` if torn, damaged or foreign."""
    match = _LINE_RE.match(line)
    if match is None or not line.endswith(b"}"):
        return None
    payload = line[match.end() : -1]
    if zlib.crc32(payload) != int(match.group(1)):
        return None
    try:
        return Change.from_json(orjson.loads(payload))
    except ValueError:
        return None


@dataclass(frozen=True)
class Replay:
    """What replaying a journal found. ``valid_end`` is the byte just after the last good line."""

    applied: int
    valid_end: int
    torn_tail: bool
    damaged_lines: int


def replay(blob: bytes, data: Tables) -> Replay:
    """Apply every good line of ``blob`` to ``data`` in order; see the module docstring for what a
    bad line means where."""
    applied = damaged_pending = damaged = 0
    valid_end = pos = 0
    size = len(blob)
    while pos < size:
        newline = blob.find(b"\n", pos)
        end = size if newline < 0 else newline
        change = decode_line(blob[pos:end]) if newline >= 0 else None
        if change is None:
            damaged_pending += 1
        else:
            apply_change(data, change)
            applied += 1
            damaged += damaged_pending  # bad lines followed by a good one were not a torn tail
            damaged_pending = 0
            valid_end = end + 1
        pos = end + 1
    return Replay(applied, valid_end, torn_tail=damaged_pending > 0, damaged_lines=damaged)


class JournalFile:
    """The append handle of the journal. Every :meth:`append` is on disk (fdatasync) before it
    returns; a failed append is cut back off so a later line never follows garbage."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._ino: int | None = None

    def identity(self) -> tuple[int, int] | None:
        """(inode, size) of the file at the path now, ``None`` if there is none."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size)

    def read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""

    def _handle(self) -> int:
        if self._fd is not None:
            return self._fd
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if created:
            fsync_directory(self.path.parent)  # the new name must survive a crash too
        self._fd, self._ino = fd, os.fstat(fd).st_ino
        return fd

    def append(self, line: bytes, size_before: int) -> tuple[int, int]:
        """Append ``line`` durably; returns the journal's (inode, size) afterwards."""
        fd = self._handle()
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            _datasync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, size_before)
                _datasync(fd)
            except OSError:
                pass
            raise
        return (self._ino or 0, size_before + len(line))

    def cut(self, size: int) -> None:
        """Shorten the file to ``size`` bytes (drop a torn tail, or everything after compaction)."""
        current = self.identity()
        if self._fd is not None and current is not None and self._ino == current[0]:
            os.ftruncate(self._fd, size)
            _datasync(self._fd)
            return
        self.close()
        try:
            with open(self.path, "r+b") as handle:
                handle.truncate(size)
                handle.flush()
                os.fsync(handle.fileno())
        except FileNotFoundError:
            pass

    def replace_with(self, data: bytes) -> None:
        """Atomically make ``data`` the whole journal (temp file, fsync, rename)."""
        atomic_write_bytes(self.path, data)
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._ino = None
