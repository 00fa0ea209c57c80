"""Speech-to-text with faster-whisper: the engine voicebox calls to transcribe voice samples.

voicebox transcribes voice samples so the user does not have to type the reference text that
Qwen3-TTS needs for cloning. :class:`WhisperEngine` owns the orchestration of that and nothing
else (no UI, no store); the parts it orchestrates live next to it:

* :mod:`voicebox.engines.whisper_models` - model names, device and compute type, finding the
  weights (offline first, via :mod:`voicebox.engines.hub`), the bundled ``tiny.en`` fallback,
  constructing the model, VAD and the model call itself;
* :mod:`voicebox.engines.transcripts` - the :class:`Transcription` and :class:`Word` records and
  the transcript cache (memory LRU + JSON files);
* :mod:`voicebox.engines.asr_input` - what callers may pass (arrays, uploads, paths): validation
  and cache identity without decoding; decoding itself is :mod:`voicebox.audio`'s.

What the engine itself guarantees:

* **Lazy, single load.** Nothing is loaded until the first transcription (or :meth:`load`), and
  concurrent first calls load once.
* **One heavy call at a time.** Every model call (load, warm-up, transcription) holds ``lock``,
  a lock shared with the TTS engine, so Whisper and Qwen3-TTS never compete for the same
  GPU/CPU at once. Cache look-ups do not take it, so a cached transcript returns instantly even
  while speech is being generated.
* **Never twice.** Transcripts are cached by (model actually used, audio SHA-256, language
  hint); the same clip arriving from several threads is transcribed once.

Errors a user can act on are raised as :mod:`voicebox.errors` types with a message that says
what to do: :class:`UnsupportedMedia` for files that are not audio, :class:`InvalidInput` for
empty/silent clips and bad language hints, :class:`NotFound` for a missing file, and
:class:`ModelUnavailable` when no Whisper model can be loaded.
"""

from __future__ import annotations

import copy
import gc
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from voicebox.engines.asr_input import UNREADABLE_AUDIO_MESSAGE, AudioInput, identify
from voicebox.engines.hub import HUB_PROBE_TIMEOUT_S
from voicebox.engines.transcripts import (
    CACHE_VERSION,
    Segment,
    TranscriptCache,
    Transcription,
    Word,
    audio_sha256,
)
from voicebox.engines.whisper_models import (
    DEFAULT_CPU_MODEL,
    DEFAULT_CUDA_MODEL,
    FALLBACK_MODEL_NAME,
    SAMPLE_RATE,
    Resolved,
    decode,
    has_speech,
    load_model,
    normalise_language,
    run_model,
    weights_mb,
)
from voicebox.errors import InvalidInput, ModelUnavailable

# Re-exported: callers and tests import these from here, where they lived before the split.
__all__ = [
    "CACHE_VERSION",
    "DEFAULT_CPU_MODEL",
    "DEFAULT_CUDA_MODEL",
    "FALLBACK_MODEL_NAME",
    "HUB_PROBE_TIMEOUT_S",
    "NO_SPEECH_MESSAGE",
    "SAMPLE_RATE",
    "UNREADABLE_AUDIO_MESSAGE",
    "AudioInput",
    "Segment",
    "Transcription",
    "WhisperEngine",
    "Word",
    "audio_sha256",
]

logger = logging.getLogger(__name__)

NO_SPEECH_MESSAGE = (
    "No speech found in this clip. Upload a recording of someone speaking, or type the "
    "transcript yourself."
)


class WhisperEngine:
    """Transcribes speech with faster-whisper; loads lazily, caches transcripts.

    Thread-safe: any number of threads may call :meth:`transcribe`; model work is serialised by
    ``lock`` and the same clip is transcribed once.

    Attributes:
        model_calls: number of real Whisper transcriptions run (cache hits do not count).
        load_count: number of times a model was loaded (reloads after :meth:`unload` count).
    """

    def __init__(
        self,
        model: str = "auto",
        device: str = "auto",
        cache_dir: Path | None = None,
        lock: threading.RLock | None = None,
        fallback: bool = True,
        *,
        download_root: Path | None = None,
        memory_cache_size: int = 128,
        beam_size: int = 5,
        cpu_threads: int | None = None,
    ) -> None:
        """Configure the engine; nothing is loaded or downloaded here.

        Args:
            model: Whisper size or alias, Hub repo id, local CTranslate2 model directory, or
                ``"auto"`` (``base`` on CPU, ``large-v3-turbo`` on CUDA).
            device: ``auto``, ``cpu``, ``cuda`` or ``mps`` (MPS runs on the CPU: CTranslate2 has
                no MPS backend).
            cache_dir: directory for the on-disk transcript cache (``cache_dir/transcripts``);
                None keeps transcripts in memory only.
            lock: lock shared with the other heavy engines; every model call holds it. A
                private one is made when None.
            fallback: use the bundled ``tiny.en`` when the configured model is unavailable.
            download_root: Hugging Face cache for model downloads (default: the standard HF
                cache, shared with other tools).
            memory_cache_size: transcripts kept in the in-memory LRU.
            beam_size: beam width; 5 is Whisper's accuracy-oriented default.
            cpu_threads: CTranslate2 threads on the CPU; default: all cores up to 8, unless
                ``OMP_NUM_THREADS`` is set.
        """
        self.requested_model = (model or "auto").strip() or "auto"
        self.requested_device = (device or "auto").strip().lower() or "auto"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.download_root = Path(download_root) if download_root is not None else None
        self.fallback = fallback
        self.beam_size = max(1, int(beam_size))
        self._cpu_threads = cpu_threads
        self._lock: threading.RLock = lock if lock is not None else threading.RLock()
        self._cache = TranscriptCache(self.cache_dir, memory_cache_size)

        self._model: Any = None  # faster_whisper.WhisperModel once loaded
        self._resolved: Resolved | None = None
        self._device: str | None = None
        self._compute_type: str | None = None
        self._multilingual: bool | None = None
        self._device_note = ""
        self._last_error: str | None = None
        self.load_seconds: float | None = None

        self.model_calls = 0
        self.load_count = 0

    # ---- state ----------------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """The heavy-model lock (shared with the TTS engine when one was passed in)."""
        return self._lock

    @property
    def loaded(self) -> bool:
        """Whether a Whisper model is in memory now."""
        return self._model is not None

    @property
    def model_name(self) -> str | None:
        """Name of the model in use (the fallback's when one is used); None before loading."""
        return self._resolved.name if self._resolved else None

    def status(self) -> dict[str, Any]:
        """A snapshot for the UI's status panel and the health endpoint.

        Never loads anything and never waits for the model lock, so it answers instantly even
        during a long generation.

        Returns:
            ``loaded``, ``model`` (in use, or the one that will be tried), ``requested_model``,
            ``device``, ``compute_type``, ``fallback_used``, ``multilingual`` (None before
            loading), ``model_calls``, ``load_seconds`` and a one-line ``message`` for people.
        """
        resolved = self._resolved
        loaded = self._model is not None
        if loaded and resolved is not None:
            message = resolved.message or (
                f"Whisper '{resolved.name}' loaded on {self._device} ({self._compute_type})."
            )
            if self._device_note:
                message = f"{message} {self._device_note}"
        elif self._last_error:
            message = self._last_error
        elif self.load_count:
            message = "Whisper is unloaded; it loads again on the next transcription."
        else:
            message = "Whisper loads on first use."
        if resolved is not None:
            model_name = resolved.name
        elif self.requested_model.lower() != "auto":
            model_name = self.requested_model
        else:
            model_name = None
        return {
            "loaded": loaded,
            "model": model_name,
            "requested_model": self.requested_model,
            "device": self._device or self.requested_device,
            "compute_type": self._compute_type,
            "fallback_used": bool(resolved.fallback_used) if resolved else False,
            "multilingual": self._multilingual,
            "model_calls": self.model_calls,
            "load_seconds": self.load_seconds,
            "memory_mb": weights_mb(resolved.path) if loaded and resolved is not None else 0.0,
            "message": message,
        }

    # ---- loading --------------------------------------------------------------------------

    def load(self) -> None:
        """Load the model now (it otherwise loads on the first transcription).

        Concurrent callers wait for one load; later calls return at once.

        Raises:
            ModelUnavailable: when neither the configured model nor the fallback can be loaded.
        """
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            try:
                self._load_locked()
            except ModelUnavailable as exc:
                self._last_error = exc.message
                raise
            self._last_error = None

    def unload(self) -> None:
        """Free the model's memory (RAM or VRAM); the next transcription loads it again.

        Cached transcripts are kept: they stay valid for the same model.
        """
        with self._lock:
            model = self._model
            if model is None:
                return
            self._model = None
            try:
                model.model.unload_model()
            except Exception:  # already freed or an older CTranslate2: dropping it is enough
                pass
            del model
            gc.collect()
            logger.info("Whisper unloaded")

    def _load_locked(self) -> None:
        started = time.perf_counter()
        loaded = load_model(
            self.requested_model,
            self.requested_device,
            download_root=self.download_root,
            fallback=self.fallback,
            cpu_threads=self._cpu_threads,
        )
        self._model = loaded.model
        self._resolved = resolved = loaded.resolved
        self._device, self._compute_type = loaded.device, loaded.compute_type
        self._multilingual = loaded.multilingual
        self._device_note = loaded.device_note
        self.load_seconds = round(time.perf_counter() - started, 3)
        self.load_count += 1
        logger.info(
            "Whisper '%s' loaded on %s (%s) in %.1f s%s",
            resolved.name, loaded.device, loaded.compute_type, self.load_seconds,
            f"; {resolved.message}" if resolved.message else "",
        )

    # ---- transcription --------------------------------------------------------------------

    def transcribe(
        self,
        audio: AudioInput,
        language: str | None = None,
        *,
        sha256: str | None = None,
        use_cache: bool = True,
        remember: bool = True,
    ) -> Transcription:
        """Transcribe a clip of any length, reusing a cached transcript when there is one.

        Args:
            audio: mono float32 samples at 16 kHz, or a path to (or the bytes of) an audio file
                in any format :mod:`voicebox.audio` reads (decoded and resampled here).
            language: a language code hint (``"en"``, ``"de-DE"``); None/""/"auto" detects it.
            sha256: the clip's identity for the cache when the caller already has one (e.g. the
                stored sample's hash). Default: the hash of the file's bytes for paths/bytes,
                or of the float32 samples for arrays.
            use_cache: False forces a fresh model call (benchmarks); the result is still stored.
            remember: False keeps the result out of the cache: the quality gate hears every new
                sentence once, and storing each would grow the disk cache without end.

        Returns:
            The transcript; ``cached`` says whether a model call was needed.

        Raises:
            InvalidInput: empty or silent audio, a bad array, an unknown language, or a
                non-English hint for an English-only model.
            UnsupportedMedia: the file is not audio.
            NotFound: the path does not exist.
            ModelUnavailable: no Whisper model can be loaded.
        """
        hint = normalise_language(language)
        clip = identify(audio, sha256)
        digest = clip.sha256

        self.load()
        resolved = self._resolved
        assert resolved is not None
        self._check_language(hint, resolved, "Type the transcript yourself, or set")

        key = self._cache.key(resolved.name, digest, hint)
        if use_cache:
            hit = self._cache.get(key, resolved.name, digest, hint)
            if hit is not None:
                return hit

        samples = clip.load()
        if not has_speech(samples):
            raise InvalidInput(NO_SPEECH_MESSAGE)

        with self._lock:
            # Another thread may have transcribed this clip while we waited for the lock.
            if use_cache:
                hit = self._cache.get(key, resolved.name, digest, hint)
                if hit is not None:
                    return hit
            if self._model is None:  # unloaded while we waited
                self.load()
                if self._resolved is not None and self._resolved.name != resolved.name:
                    resolved = self._resolved
                    key = self._cache.key(resolved.name, digest, hint)
            assert self._model is not None and self._resolved is not None
            self.model_calls += 1
            result = run_model(self._model, samples, hint, self.beam_size, self._resolved.name)

        if not result.text:
            raise InvalidInput(NO_SPEECH_MESSAGE)
        if remember:
            self._cache.put(key, resolved.name, digest, hint, result)
        return copy.deepcopy(result)

    def words(self, audio: AudioInput, language: str | None = None) -> list[Word]:
        """Each word Whisper hears in a clip, with its start and end: what word-level subtitles
        are timed by.

        A separate call from :meth:`transcribe` because word timestamps cost an extra alignment
        pass over the decoder's attention, which a transcript does not need; its results are not
        cached (an export asks once per take, and the cache would only grow). A clip with no
        speech gives an empty list rather than an error: for subtitles that is an answer (the
        caller falls back to the block's text), not a mistake.

        Args:
            audio: as for :meth:`transcribe`.
            language: a language code hint; None/""/"auto" detects it.

        Returns:
            The words in spoken order, times in seconds from the clip's start (rounded to ms).

        Raises:
            InvalidInput: a bad array or file, an unknown language, or a non-English hint for an
                English-only model.
            UnsupportedMedia: the file is not audio.
            NotFound: the path does not exist.
            ModelUnavailable: no Whisper model can be loaded.
        """
        hint = normalise_language(language)
        clip = identify(audio)
        self.load()
        assert self._resolved is not None
        self._check_language(hint, self._resolved, "Choose block or sentence subtitles, or set")
        samples = clip.load()
        if not has_speech(samples):
            return []
        with self._lock:
            if self._model is None:  # unloaded while we waited
                self.load()
            assert self._model is not None
            self.model_calls += 1
            return _run_words(self._model, samples, hint, self.beam_size)

    def _check_language(self, hint: str | None, resolved: Resolved, advice: str) -> None:
        """Refuse a non-English hint for an English-only model; ``advice`` starts the way out
        (it ends with "set VOICEBOX_WHISPER_MODEL to a multilingual model")."""
        if hint in (None, "en") or self._multilingual is not False:
            return
        why = " (the full model is not available offline)" if resolved.fallback_used else ""
        raise InvalidInput(
            f"The Whisper model in use, {resolved.name}, only understands English{why}, so it "
            f"cannot transcribe '{hint}'. {advice} "
            "VOICEBOX_WHISPER_MODEL to a multilingual model such as 'base' or 'large-v3-turbo'."
        )


def _run_words(model: Any, samples: np.ndarray, hint: str | None, beam_size: int) -> list[Word]:
    """One Whisper call with word timestamps on 16 kHz samples, decoded as :func:`run_model`
    decodes (VAD, each 30 s window on its own); the caller holds the model lock.

    faster-whisper maps word times back over the silences its VAD cut out, so the times are in
    the clip's own timeline.

    Raises:
        ModelUnavailable: out of memory.
    """
    message = "Not enough memory to time the words of this clip; try a shorter one."
    raw, _ = decode(model, samples, hint, beam_size, words=True, memory_message=message)
    words = []
    for segment in raw:
        for word in segment.words or ():
            text = " ".join(str(word.word).split())
            if text:
                words.append(Word(text, round(float(word.start), 3), round(float(word.end), 3),
                                  round(float(word.probability), 4)))
    return words
