"""What a transcript is, and where finished ones are kept so no clip is transcribed twice.

The records (:class:`Segment`, :class:`Transcription`, :class:`Word`) are shaped like faster-whisper's results
and serialise to the plain JSON the REST API returns and the disk cache stores, so they live with
the cache that reads and writes them.

:class:`TranscriptCache` keys transcripts by (model actually used, audio SHA-256, language hint,
:data:`CACHE_VERSION`) and keeps them in a bounded in-memory LRU and as JSON files under
``cache_dir / "transcripts"``, written atomically; unreadable or mismatching files are misses.
It takes no model lock, so a cached transcript returns instantly even while speech is generated.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voicebox.atomic import atomic_write_bytes

logger = logging.getLogger(__name__)

#: Bump when decoding options change, so transcripts made with the old options are not reused.
CACHE_VERSION = 1


@dataclass(frozen=True)
class Segment:
    """One timed piece of a transcript (seconds from the start of the clip).

    Times are rounded to milliseconds so a transcript read back from the JSON cache compares
    equal to the one first produced.
    """

    start: float
    end: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {"start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class Word:
    """One word Whisper heard, with its time (seconds from the start of the clip).

    Word-level subtitles mark when each word is spoken; ``probability`` is Whisper's confidence
    in the word, kept so a caller can tell a sure word from a guess. Not cached: word timings
    are asked for once per export, and storing them would grow the transcript cache for nothing.
    """

    text: str
    start: float
    end: float
    probability: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {"text": self.text, "start": self.start, "end": self.end, "probability": self.probability}


@dataclass
class Transcription:
    """A finished transcript, shaped like faster-whisper's results.

    Attributes:
        text: the whole transcript, segments joined the way Whisper spaced them.
        language: ISO 639-1 code of the language transcribed (detected or hinted).
        language_probability: detection confidence (1.0 when the language was given).
        duration: length of the input audio in seconds.
        segments: the timed pieces of ``text``.
        model: the Whisper model that produced it (the fallback's name when one was used).
        cached: True when this came from the transcript cache instead of a model call.
    """

    text: str
    language: str
    language_probability: float
    duration: float
    segments: list[Segment] = field(default_factory=list)
    model: str = ""
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (what the REST API returns and the disk cache stores)."""
        data = asdict(self)
        data["segments"] = [segment.to_dict() for segment in self.segments]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcription:
        """Rebuild from :meth:`to_dict` output; raises ``KeyError``/``TypeError``/``ValueError``
        on malformed data so the cache can treat it as a miss."""
        segments = [
            Segment(start=float(s["start"]), end=float(s["end"]), text=str(s["text"]))
            for s in data["segments"]
        ]
        return cls(
            text=str(data["text"]),
            language=str(data["language"]),
            language_probability=float(data["language_probability"]),
            duration=float(data["duration"]),
            segments=segments,
            model=str(data["model"]),
            cached=bool(data.get("cached", False)),
        )


def audio_sha256(samples: np.ndarray) -> str:
    """SHA-256 of a clip's float32 samples: the cache identity of an in-memory clip.

    The array is made contiguous float32 first, so the same audio hashes the same whichever
    dtype or memory layout it arrived in.
    """
    data = np.ascontiguousarray(samples, dtype=np.float32)
    return hashlib.sha256(data.tobytes()).hexdigest()


class TranscriptCache:
    """Memory LRU in front of a directory of JSON transcripts; thread-safe.

    Args:
        cache_dir: transcripts go to ``cache_dir / "transcripts"``; None keeps them in memory only.
        memory_size: transcripts kept in the in-memory LRU (0: none).
    """

    def __init__(self, cache_dir: Path | None, memory_size: int = 128) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._memory: OrderedDict[str, Transcription] = OrderedDict()
        self._memory_size = max(0, int(memory_size))
        self._lock = threading.Lock()

    @staticmethod
    def key(model: str, digest: str, hint: str | None) -> str:
        """The cache key of a clip (``digest``) transcribed by ``model`` with language ``hint``."""
        raw = f"v{CACHE_VERSION}\0{model}\0{digest}\0{hint or 'auto'}"
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path | None:
        return self.cache_dir / "transcripts" / f"{key}.json" if self.cache_dir is not None else None

    def get(self, key: str, model: str, digest: str, hint: str | None) -> Transcription | None:
        """A copy of the stored transcript with ``cached=True``, or None on a miss."""
        with self._lock:
            hit = self._memory.get(key)
            if hit is not None:
                self._memory.move_to_end(key)
        if hit is None:
            hit = self._disk_get(key, model, digest, hint)
            if hit is None:
                return None
            self._memory_put(key, hit)
        result = copy.deepcopy(hit)
        result.cached = True
        return result

    def put(self, key: str, model: str, digest: str, hint: str | None, result: Transcription) -> None:
        """Store a copy of ``result`` in memory and on disk (a disk error is logged, not raised)."""
        stored = copy.deepcopy(result)
        stored.cached = False
        self._memory_put(key, stored)
        path = self._path(key)
        if path is None:
            return
        entry = {
            "version": CACHE_VERSION,
            "model": model,
            "sha256": digest,
            "language_hint": hint,
            "transcription": stored.to_dict(),
        }
        try:
            atomic_write_bytes(path, json.dumps(entry, ensure_ascii=False, indent=1).encode("utf-8"))
        except OSError as exc:  # a full or read-only disk must not fail the transcription
            logger.warning("could not write transcript cache %s: %s", path, exc)

    def _disk_get(self, key: str, model: str, digest: str, hint: str | None) -> Transcription | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if (
                entry.get("version") != CACHE_VERSION
                or entry.get("model") != model
                or entry.get("sha256") != digest
                or entry.get("language_hint") != hint
            ):
                return None
            result = Transcription.from_dict(entry["transcription"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("ignoring unreadable transcript cache file %s: %s", path, exc)
            return None
        result.cached = False
        return result

    def _memory_put(self, key: str, result: Transcription) -> None:
        if self._memory_size == 0:
            return
        with self._lock:
            self._memory[key] = result
            self._memory.move_to_end(key)
            while len(self._memory) > self._memory_size:
                self._memory.popitem(last=False)
