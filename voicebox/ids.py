"""Record ids, timestamps and profile names: the small rules every record follows.

Kept apart from :mod:`voicebox.store` because projects, batches, exports and the UI use them too,
without needing the store itself.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime, timezone

from .errors import InvalidInput

NAME_MAX_CHARS = 100
_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    """A fresh UUID4 in hex: safe as a file name and in URLs."""
    return uuid.uuid4().hex


def utc_now() -> str:
    """Current UTC time as ISO-8601 with an explicit offset."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def is_valid_id(value: object) -> bool:
    """True for the 32-hex-digit ids voicebox issues (anything else can never match a record)."""
    return isinstance(value, str) and bool(_ID_RE.match(value))


def normalise_name(name: object) -> str:
    """Trim and NFC-normalise a profile name; enforce 1-100 characters."""
    if not isinstance(name, str):
        raise InvalidInput("Profile name must be text.")
    cleaned = unicodedata.normalize("NFC", " ".join(name.split()))
    if not cleaned:
        raise InvalidInput("Give the profile a name (1 to 100 characters).")
    if len(cleaned) > NAME_MAX_CHARS:
        raise InvalidInput(f"Profile name is {len(cleaned)} characters; use at most {NAME_MAX_CHARS}.")
    return cleaned


def name_key(name: str) -> str:
    """What two profile names are compared by: NFC, case-folded."""
    return unicodedata.normalize("NFC", name).casefold()
