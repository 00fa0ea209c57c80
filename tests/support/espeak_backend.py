"""A second, real :class:`~voicebox.speech.SpeechBackend`: it speaks with espeak-ng.

Why it exists: it proves that nothing above the protocol depends on Qwen3-TTS internals (the
studio, REST, the OpenAI route and the UI run unchanged on it), and it speaks intelligibly, so a
test can check a whole take with Whisper, which the tiny random Qwen checkpoint cannot (its audio
is noise). It does not clone: the voice's samples only pick the pitch (higher for a higher
sample), which is enough to tell that the samples reached the backend.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from voicebox import audio
from voicebox.engines.model_lock import FairLock
from voicebox.engines.params import chunk_seed
from voicebox.errors import Cancelled, InvalidInput, ModelUnavailable
from voicebox.languages import display, is_auto, key
from voicebox.speech import (
    AudioPiece,
    ChunkResult,
    ModelSpec,
    Progress,
    SpeechDone,
    SpeechEvent,
    SpeechRequest,
    VoiceSample,
)

VOICES = {"english": "en-us", "german": "de", "french": "fr", "spanish": "es", "italian": "it"}


class EspeakBackend:
    """Speaks each sentence chunk with the ``espeak-ng`` program, under a fair model lock."""

    name = "espeak-ng"

    def __init__(self, lock: Any = None) -> None:
        if shutil.which("espeak-ng") is None:
            raise ModelUnavailable("espeak-ng is not installed (make test installs it).")
        self.lock = lock or FairLock()
        self._loaded: str | None = None
        self._voices: dict[tuple[str, ...], int] = {}  # sample hashes -> pitch
        self.takes = 0
        self.chunks_spoken = 0

    def model_specs(self) -> list[ModelSpec]:
        return [ModelSpec("base", "0.6B", "espeak-ng")]

    def languages(self) -> list[str]:
        return ["Auto", *sorted(name.title() for name in VOICES)]

    @property
    def loaded_size(self) -> str | None:
        return self._loaded

    def load(self, size: str | None = None) -> dict[str, Any]:
        if size not in (None, "0.6B"):
            raise InvalidInput(f"Model size {size!r} is not available; use one of 0.6B.")
        self._loaded = "0.6B"
        return self.status()

    def unload(self) -> None:
        self._loaded = None

    def status(self) -> dict[str, Any]:
        loaded = self._loaded is not None
        return {"loaded": loaded, "backend": self.name, "size": self._loaded, "model": "espeak-ng" if loaded else None,
                "device": "cpu", "sizes": {"0.6B": "espeak-ng"}}

    def prepare_voice(self, voice: Sequence[VoiceSample], size: str | None = None) -> bool:
        return self._pitch(voice)[1]

    def _pitch(self, voice: Sequence[VoiceSample]) -> tuple[int, bool]:
        """espeak's pitch (0-99) from the samples' median frequency; cached per sample set."""
        cache_key = tuple(s.sha256 for s in voice)
        if cache_key in self._voices:
            return self._voices[cache_key], True
        import librosa

        samples = np.concatenate([audio.load_mono(s.path, 16000) for s in voice])
        f0 = librosa.yin(samples, fmin=60, fmax=400, sr=16000)
        pitch = int(np.clip((float(np.median(f0)) - 60) / 3.4, 0, 99))
        self._voices[cache_key] = pitch
        return pitch, False

    def forget_voices(self, sample_hashes: Iterable[str]) -> int:
        gone = set(sample_hashes)
        stale = [k for k in self._voices if gone.intersection(k)]
        for k in stale:
            del self._voices[k]
        return len(stale)

    def clear_voices(self) -> dict[str, Any]:
        self._voices.clear()
        return self.voice_cache_stats()

    def voice_cache_stats(self) -> dict[str, Any]:
        return {"memory_entries": len(self._voices), "disk_entries": 0, "disk_bytes": 0}

    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[SpeechEvent]:
        if not request.voice:
            raise InvalidInput("This profile has no samples yet. Add a recording first.")
        total = len(request.chunks)
        started = time.perf_counter()
        yield Progress("loading model", 0, total)
        with self.lock:
            self.load(request.size or self._loaded)
            pitch, hit = self._pitch(request.voice)
        prompt_s = time.perf_counter() - started
        voice = "en-us" if is_auto(request.language) else VOICES.get(key(request.language), "en-us")
        for index, text in enumerate(request.chunks):
            if cancel is not None and cancel.is_set():
                raise Cancelled("Generation cancelled.")
            yield Progress("generating", index, total)
            with self.lock:  # per chunk, as the protocol asks
                samples = self._say(text, voice, pitch)
            if request.stream:
                yield AudioPiece(index, samples)
            yield ChunkResult(index, text, samples, audio.MODEL_SAMPLE_RATE, chunk_seed(request.params.seed, index),
                              frames=len(samples) // 1920)
        self.takes += 1
        yield Progress("saving", total, total)
        total_s = time.perf_counter() - started
        timings = {"prompt": round(prompt_s, 4), "generate": round(total_s - prompt_s, 4), "decode": 0.0,
                   "total": round(total_s, 4)}
        yield SpeechDone(ModelSpec("base", "0.6B", "espeak-ng"), "espeak", display(request.language), hit,
                         audio.MODEL_SAMPLE_RATE, timings)

    def _say(self, text: str, voice: str, pitch: int) -> np.ndarray:
        wav = subprocess.run(
            ["espeak-ng", "--stdout", "-v", voice, "-p", str(pitch), text], check=True, capture_output=True
        ).stdout
        samples, rate = audio.decode(wav)
        self.chunks_spoken += 1
        return audio.resample(audio.to_mono(samples), rate, audio.MODEL_SAMPLE_RATE).astype(np.float32)
