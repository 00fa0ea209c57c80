"""Quota messages in words: how long a text takes to say, sizes, waits and reset times.

Kept apart from :mod:`voicebox.quotas` (the ledger and its rules) because the REST API's rate
limits say their waits the same way.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import datetime, timezone
from typing import Any


def estimate_seconds(text: Any) -> float:
    """About how long ``text`` takes to say: ~15 characters a second, CJK ~5 (as the engine's
    runaway cap in :func:`voicebox.engines.tts.max_frames_for` assumes, at normal speed)."""
    if not isinstance(text, str):
        return 0.0
    wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in ("W", "F"))
    return (len(text.strip()) - wide) / 15.0 + wide / 5.0


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def megabytes(value: float) -> str:
    """"500 MB", "0.17 MB": whole megabytes from 100 up, else three figures."""
    return f"{value:,.0f} MB" if value >= 100 else f"{value:.3g} MB"


def span(seconds: float) -> str:
    """A wait in words, rounded up: "40 s", "12 min", "3 h 5 min"."""
    whole = max(1, math.ceil(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes = math.ceil(whole / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def when(reset_at: float, now: float) -> str:
    """"14:05 UTC (in 12 min)": the clock time rounded up to the minute, so it is never early."""
    clock = datetime.fromtimestamp(math.ceil(reset_at / 60) * 60, timezone.utc).strftime("%H:%M UTC")
    return f"{clock} (in {span(reset_at - now)})"
