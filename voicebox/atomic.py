"""Crash-safe file writes.

Every file voicebox persists (the JSON database, audio, cache entries) goes through
:func:`atomic_write_bytes`: the bytes land in a temporary file in the same directory, are flushed
and fsynced, and the temp file is renamed over the target with ``os.replace`` (atomic on POSIX and
Windows). A crash at any instant therefore leaves either the old file or the new one, never a
half-written one, and a reader never sees a partial file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int = 0o600) -> Path:
    """Write ``data`` to ``path`` atomically and durably.

    Args:
        path: destination; its parent directory is created if needed.
        data: the complete new contents.
        mode: permission bits for the new file (private by default: the data dir is the user's).

    Returns:
        The destination path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = write_temp(target, data, mode=mode)
    try:
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_directory(target.parent)
    return target


def write_temp(path: Path, data: bytes, *, mode: int = 0o600) -> Path:
    """``data`` in a fsynced temp file beside ``path``, ready for ``os.replace``: the slow half of
    an atomic write, for callers that must install it later (the store's compaction writes it
    outside its lock and renames it under the lock)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, mode)
    except BaseException:
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        raise
    return Path(name)


@contextmanager
def replacing(out: Path) -> Iterator[Path]:
    """A temporary path beside ``out`` for a writer that needs a path (a ZIP, an encoder); on
    success it is fsynced and renamed over ``out``, on failure removed. The atomic write of a
    file too large to hold in memory."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(out.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def remove_quietly(path: Path | str) -> None:
    """Delete a file if it exists; deleting twice is not an error."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_quietly_dir(directory: Path) -> None:
    """Remove a folder whose files voicebox deleted (a profile's samples, a take's sentences):
    stray temporary files go with it; anything else is kept, not forced."""
    try:
        for leftover in directory.glob(".*.tmp"):
            remove_quietly(leftover)
        directory.rmdir()
    except OSError:
        pass
