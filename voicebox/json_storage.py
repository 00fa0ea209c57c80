"""The store's file: TinyDB storage that writes atomically, and recovery from a corrupt file.

Kept apart from :mod:`voicebox.store` (the records and their rules) because this is the part that
touches the disk: a crash mid-write must leave the old file intact, and an unreadable file must be
moved aside (never overwritten) so a person can restore it.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from tinydb.storages import Storage

from .atomic import atomic_write_bytes

log = logging.getLogger(__name__)


class AtomicJSONStorage(Storage):
    """TinyDB storage that writes atomically and caches the parsed file.

    ``read`` re-parses only when the file's identity (inode, size, mtime) changed, which keeps
    reads free while still noticing a write by another process. If a write fails, the cache is
    dropped so memory never disagrees with disk.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._cache: dict[str, Any] | None = None
        self._stamp: tuple[int, int, int] | None = None

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def read(self) -> dict[str, Any] | None:
        stamp = self._file_stamp()
        if stamp is None:
            self._cache, self._stamp = None, None
            return None
        if self._cache is None or stamp != self._stamp:
            data = orjson.loads(self.path.read_bytes()) if stamp[1] else None
            if data is not None and not isinstance(data, dict):
                raise ValueError("database root is not a JSON object")
            self._cache, self._stamp = data, stamp
        return self._cache

    def write(self, data: dict[str, Any]) -> None:
        try:
            atomic_write_bytes(self.path, orjson.dumps(data))
        except BaseException:
            self._cache, self._stamp = None, None
            raise
        self._cache, self._stamp = data, self._file_stamp()

    def close(self) -> None:
        self._cache = None


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
