"""Who a record belongs to, and where that owner's files live (issue #16, isolation).

**An owner is a plain string.** ``""`` is the one local user: every record made before accounts
existed, and everything made on a server without accounts, keeps working unchanged on disk and in
behaviour. An account's owner is its name; later sign-ins may add ``"hf:<name>"`` or
``"anon:<id>"``. A record without an ``owner`` field is the local user's (:func:`owner_of`).

**Scoping is a lookup rule, not a filter afterwards.** Every read by id checks the owner inside
the store (:meth:`voicebox.store.Store._get`) and answers another owner's record with the very
same :class:`~voicebox.errors.NotFound` as an id that does not exist, so an id cannot be used to
learn whether someone else's record exists (no existence oracle). Listings, searches and
statistics read only the caller's records.

**Files.** The local user's files keep today's layout (``samples/``, ``generations/``,
``exports/`` under the data directory). Another owner's live under ``owners/<folder>/`` with the
same layout inside, where the folder name is derived from the owner (:func:`folder`): letters,
digits, ``-`` and ``_`` of the name for a human reading the disk, then a hash of the whole name,
so two owners never share a folder and a name is never used as a path (no ``..``, no ``/``).

**Content-addressed caches are shared on purpose.** The voice-prompt cache is keyed by the
SHA-256 of a profile's cleaned sample audio and its reference text
(:func:`voicebox.engines.prompt_cache.cache_key`), the transcript cache by the SHA-256 of the
uploaded bytes and the language. A hit is therefore always derived from exactly the bytes (and
words) the caller sent themselves, so reusing another owner's entry tells them nothing they did
not already hold; at most it is faster. No cache is ever looked up by a record id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The one local user (no accounts, or data from before them).
LOCAL = ""
#: The folder under the data directory that holds every non-local owner's files.
OWNERS_DIR = "owners"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def owner_of(record: Mapping[str, Any]) -> str:
    """The owner a stored record says it has; records from before owners are the local user's."""
    value = record.get("owner")
    return value if isinstance(value, str) else LOCAL


def owns(owner: str | None, record: Mapping[str, Any]) -> bool:
    """Whether ``owner`` may see ``record``; ``None`` is the studio itself (start-up, quotas)."""
    return owner is None or owner_of(record) == owner


def folder(owner: str) -> str:
    """The owner's folder relative to the data directory, with a trailing ``/`` (``""`` for the
    local user): ``owners/<safe name>-<hash>/``."""
    if not owner:
        return ""
    readable = _UNSAFE.sub("_", owner).strip("_")[:40] or "owner"
    digest = hashlib.sha256(owner.encode("utf-8")).hexdigest()[:16]
    return f"{OWNERS_DIR}/{readable}-{digest}/"


def relative(owner: str, path: str) -> str:
    """``path`` (e.g. ``generations/<id>.wav``) inside the owner's folder, relative to the data dir."""
    return folder(owner) + path


def root(data_dir: Path, owner: str) -> Path:
    """The owner's folder on disk (the data directory itself for the local user)."""
    return data_dir / folder(owner) if owner else data_dir
