"""The profile's voice as the checks need it: :class:`VoiceRef`, and :class:`VoiceCache`, which
keeps each voice's embedding and speaking rate so a take of 40 sentences embeds the profile once.

Why a cache keyed by the samples' hashes: a profile's voice changes exactly when its samples do,
so ``"|".join(sorted(sha256s))`` names it; adding, removing or replacing a sample gives a new key
and :meth:`VoiceCache.forget` drops whatever was built from a sample that went away. Memory only
(an embedding is 1 KB; rebuilding one costs well under a second of CPU per minute of samples).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from voicebox import audio as audio_io
from voicebox.speech import VoiceSample

from . import signal
from .text import spoken_length

#: Voices kept in memory.
CACHE_SIZE = 32
#: Rate at which samples are decoded for the checks (Whisper's and Resemblyzer's).
RATE = 16_000


@dataclass(frozen=True)
class VoiceRef:
    """The profile's voice: its samples (audio path, SHA-256, transcript) and a cache key.

    Use :meth:`of` to build one with the standard key.
    """

    key: str
    samples: tuple[VoiceSample, ...]

    @classmethod
    def of(cls, samples: Iterable[VoiceSample]) -> VoiceRef:
        """A voice with the key ``"|".join(sorted sample hashes)``."""
        samples = tuple(samples)
        return cls(key="|".join(sorted(sample.sha256 for sample in samples)), samples=samples)

    @property
    def hashes(self) -> set[str]:
        return {sample.sha256 for sample in self.samples}


@dataclass
class _Entry:
    hashes: set[str]
    embedding: np.ndarray | None = None
    has_embedding: bool = False
    rates: dict[str | None, float | None] = field(default_factory=dict)


def speaking_rate(voice: VoiceRef, lang: str | None) -> float | None:
    """The voice's own pace: letters of its samples' transcripts per second of their speech
    (from the first to the last voiced frame, so the silence appended to references does not
    count). ``None`` when no sample has a transcript."""
    letters = seconds = 0.0
    for sample in voice.samples:
        if not sample.text.strip():
            continue
        samples = audio_io.load_mono(sample.path, RATE)
        speech = signal.stats(samples, RATE).speech
        if speech > 0:
            letters += spoken_length(sample.text, lang)
            seconds += speech
    return letters / seconds if seconds > 0 and letters > 0 else None


class VoiceCache:
    """Embeddings and speaking rates per voice key: a thread-safe memory LRU.

    Attributes:
        hits, builds: embedding look-ups answered from memory, and embeddings built.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.RLock()
        self.hits = 0
        self.builds = 0

    def _entry(self, voice: VoiceRef) -> _Entry:
        entry = self._entries.get(voice.key)
        if entry is None:
            entry = self._entries[voice.key] = _Entry(hashes=voice.hashes)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        self._entries.move_to_end(voice.key)
        return entry

    def embedding(self, voice: VoiceRef, build: Callable[[VoiceRef], np.ndarray | None]) -> np.ndarray | None:
        """The voice's embedding, built with ``build`` the first time (under the cache's lock, so
        concurrent first calls build it once)."""
        with self._lock:
            entry = self._entry(voice)
            if entry.has_embedding:
                self.hits += 1
                return entry.embedding
            entry.embedding = build(voice)
            entry.has_embedding = True
            self.builds += 1
            return entry.embedding

    def rate(self, voice: VoiceRef, lang: str | None) -> float | None:
        """The voice's speaking rate (see :func:`speaking_rate`), measured once per language."""
        with self._lock:
            entry = self._entry(voice)
            if lang not in entry.rates:
                entry.rates[lang] = speaking_rate(voice, lang)
            return entry.rates[lang]

    def forget(self, sample_hashes: Iterable[str]) -> int:
        """Drop every voice built from any of these samples; returns how many were dropped."""
        gone = set(sample_hashes)
        with self._lock:
            stale = [key for key, entry in self._entries.items() if entry.hashes & gone]
            for key in stale:
                del self._entries[key]
            return len(stale)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and entry.has_embedding

    def __len__(self) -> int:
        return len(self._entries)
