"""The seam between voicebox and whatever turns text into speech: :class:`SpeechBackend`.

The service layer (:mod:`voicebox.services`) talks to a backend only through this protocol: what
models and languages it offers, load/unload/status, voice prompts (build ahead, forget, clear) and
:meth:`SpeechBackend.speak`, which turns a request into a stream of typed events. The local
Qwen3-TTS engine (:class:`voicebox.engines.tts.TTSEngine`) is the first implementation; the
ZeroGPU wrapper (:mod:`voicebox.hf_spaces`) wraps another backend; a GGML engine or a remote
vLLM-Omni server are further ones. The test suite has one that speaks with espeak-ng.

Why events rather than one return value: one shape serves a finished take and a live stream.
``speak`` yields :class:`Progress` as stages start, :class:`AudioPiece` while audio is made
(streaming only), one :class:`ChunkResult` per sentence chunk (its whole audio, seed, frames,
whether it hit the length cap) and finally :class:`SpeechDone`. The service joins the chunks,
saves the take and records each chunk; the backend knows nothing of profiles or the store.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from .engines.params import GenerationParams

#: The Qwen3-TTS model families: cloning from samples, named speakers, voices designed from words.
VARIANTS = ("base", "custom_voice", "voice_design")


@dataclass(frozen=True)
class ModelSpec:
    """What a model is: its family (``variant``), its ``size`` and where it comes from
    (``source``: a hub id or a local directory)."""

    variant: str
    size: str
    source: str

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown model variant {self.variant!r}; use one of {', '.join(VARIANTS)}")


@dataclass(frozen=True)
class VoiceSample:
    """One cleaned sample as a backend needs it: audio on disk, its hash and its transcript."""

    path: Path
    sha256: str
    text: str = ""


@dataclass(frozen=True)
class SpeechRequest:
    """One take for a backend: the text already cut into sentence chunks, the voice, the stored
    language (``auto`` or a name), the model size (``None``: the loaded one) and the sampling
    parameters with a concrete seed. ``stream`` asks for :class:`AudioPiece` events.
    ``instruct``: words for a model that takes them (a VoiceDesign description, a named
    speaker's style); a cloning (Base) model has no use for them and is never sent them.
    ``speaker``: a CustomVoice model's named speaker (:mod:`voicebox.speakers`) instead of samples."""

    chunks: tuple[str, ...]
    voice: tuple[VoiceSample, ...]
    params: GenerationParams
    language: str = "auto"
    size: str | None = None
    stream: bool = False
    instruct: str = ""
    speaker: str = ""


@dataclass(frozen=True)
class Progress:
    """A stage has started: ``stage`` with ``done`` of ``total`` chunks finished."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class AudioPiece:
    """Audio of chunk ``index`` to play now (float32 mono at the backend's sample rate)."""

    index: int
    audio: np.ndarray


@dataclass(frozen=True)
class ChunkResult:
    """One finished sentence chunk: its text, its whole audio and how it was made.

    ``hit_cap`` is true when the model reached the chunk's length cap without saying it had
    finished (the take may be cut off or noisy there); ``seed`` remakes its random draws.
    """

    index: int
    text: str
    audio: np.ndarray
    sample_rate: int
    seed: int
    frames: int = 0
    hit_cap: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return round(len(self.audio) / self.sample_rate, 3)


@dataclass(frozen=True)
class SpeechDone:
    """The take is complete: which model spoke, in which mode, and where the time went.

    ``timings`` holds at least ``prompt`` (the voice), ``generate``, ``decode`` and ``total``
    seconds (a backend without a stage reports 0 for it): the history and REST show them.
    """

    model: ModelSpec
    mode: str
    language: str
    cache_hit: bool
    sample_rate: int
    timings: dict[str, float] = field(default_factory=dict)


SpeechEvent = Union[Progress, AudioPiece, ChunkResult, SpeechDone]


@runtime_checkable
class SpeechBackend(Protocol):
    """What the service layer needs from a speech engine."""

    #: A short name recorded with every take (``qwen3-tts``, ``espeak-ng``, ...).
    name: str

    def model_specs(self) -> list[ModelSpec]:
        """The models this backend can load, smallest first."""

    def languages(self) -> list[str]:
        """Languages it speaks, ``Auto`` first, title case."""

    @property
    def loaded_size(self) -> str | None:
        """The size in memory now, or ``None``."""

    def load(self, size: str | None = None) -> dict[str, Any]:
        """Load ``size`` (default: the current or smallest); returns :meth:`status`."""

    def unload(self) -> None:
        """Free the model's memory."""

    def status(self) -> dict[str, Any]:
        """What the Models tab and ``/health`` show (``loaded``, ``size``, ``model``, ``device``...)."""

    def prepare_voice(self, voice: Sequence[VoiceSample], size: str | None = None) -> bool:
        """Build (or find) the voice prompt for these samples ahead of a take; True on a cache hit."""

    def forget_voices(self, sample_hashes: Iterable[str]) -> int:
        """Drop cached voice prompts built from these samples (edited or deleted)."""

    def clear_voices(self) -> dict[str, Any]:
        """Drop every cached voice prompt; returns :meth:`voice_cache_stats`."""

    def voice_cache_stats(self) -> dict[str, Any]:
        """Entries and bytes of the voice-prompt cache."""

    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[SpeechEvent]:
        """Make the take, yielding :data:`SpeechEvent` items; stops with ``Cancelled`` when
        ``cancel`` is set. Takes the model lock per chunk (or batch of chunks), not per request,
        so another request's short take is not stuck behind a long one."""


def batch_rows(backend: SpeechBackend) -> int:
    """How many sentence chunks ``backend`` makes together in one pass: its optional
    ``rows_per_batch()`` (the Qwen3-TTS engine: 4, or 1 under CUDA graphs), else 1.

    Optional, not part of :class:`SpeechBackend`: a backend that speaks chunk by chunk (espeak-ng,
    a remote server) gains nothing from being handed several takes' chunks at once, so the studio
    gives it one take at a time; a wrapper (ZeroGPU) that does not forward it counts as such.
    """
    rows = getattr(backend, "rows_per_batch", None)
    if not callable(rows):
        return 1
    try:
        return max(1, int(rows()))
    except (TypeError, ValueError):
        return 1


def model_sizes(backend: SpeechBackend) -> list[str]:
    """The sizes a backend offers, in its order."""
    return [spec.size for spec in backend.model_specs()]
