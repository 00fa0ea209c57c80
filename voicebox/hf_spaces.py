"""Running on Hugging Face Spaces, including ZeroGPU.

On ZeroGPU, a function decorated with ``spaces.GPU`` runs in a forked worker that holds a GPU for
the call's duration; its arguments and yielded values are pickled across. So the studio's speech
backend is wrapped (:class:`ZeroGPUBackend`): a take's :class:`~voicebox.speech.SpeechRequest`
goes into one GPU call, which runs the wrapped backend there and yields its events back (plain
dataclasses: progress, audio, chunk results). The GPU function reaches the wrapped backend
through a module global set once at start-up (the fork inherits it); the studio writes the store
in this process. A cancel event cannot cross the fork: the wrapper stops reading instead.

Off Spaces, or when the ``spaces`` package is absent, ``gpu`` is a no-op decorator: the same code
runs locally. On a CPU-only Space only the 0.6B size is offered, with a notice that it is slow.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .config import Settings
from .errors import Cancelled
from .speech import ModelSpec, SpeechBackend, SpeechEvent, SpeechRequest, VoiceSample

log = logging.getLogger(__name__)

#: Seconds a ZeroGPU call may hold the GPU: a base for loading plus time that grows with the text.
GPU_BASE_SECONDS = 40
GPU_SECONDS_PER_CHAR = 0.12
GPU_MAX_SECONDS = 300

CPU_NOTICE = (
    "This Space runs on a CPU: generation takes roughly ten times longer than the audio it makes, "
    "and only the 0.6B model is offered. Duplicate the Space on GPU hardware for real-time speed."
)

_engine: Any = None


def on_spaces(env: dict[str, str] | None = None) -> bool:
    """True inside a Hugging Face Space (the platform sets ``SPACE_ID``)."""
    return bool((os.environ if env is None else env).get("SPACE_ID"))


def gpu_duration(request: Any, *args: Any, **kwargs: Any) -> int:
    """The GPU time to ask ZeroGPU for: longer texts get longer leases, within a cap."""
    chunks = getattr(request, "chunks", None)
    chars = sum(len(c) for c in chunks) if chunks is not None else len(request or "")
    return int(min(GPU_MAX_SECONDS, GPU_BASE_SECONDS + GPU_SECONDS_PER_CHAR * chars))


def gpu_decorator() -> tuple[Callable[..., Any], str]:
    """``spaces.GPU(duration=gpu_duration)`` when the package is importable, else a no-op."""
    try:
        import spaces
    except ImportError:
        return (lambda fn: fn), "local"
    return spaces.GPU(duration=gpu_duration), "spaces"


def _speak(request: SpeechRequest) -> Iterator[SpeechEvent]:
    """The GPU function: the wrapped backend's events for one take (no callbacks, no cancel)."""
    yield from _engine.speak(request)


class ZeroGPUBackend:
    """A :class:`~voicebox.speech.SpeechBackend` that runs another one's takes in GPU calls.

    Everything but :meth:`speak` is the wrapped backend's own (loading happens in the main
    process, so forks inherit the model).
    """

    def __init__(self, inner: SpeechBackend, decorate: Callable[..., Any]) -> None:
        self.inner = inner
        self.name = inner.name
        self.lock = getattr(inner, "lock", None)
        self._speak = decorate(_speak)

    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[SpeechEvent]:
        events = self._speak(request)
        try:
            for event in events:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("Generation cancelled.")
                yield event
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def model_specs(self) -> list[ModelSpec]:
        return self.inner.model_specs()

    def languages(self) -> list[str]:
        return self.inner.languages()

    @property
    def loaded_size(self) -> str | None:
        return self.inner.loaded_size

    def load(self, size: str | None = None) -> dict[str, Any]:
        return self.inner.load(size)

    def unload(self) -> None:
        self.inner.unload()

    def status(self) -> dict[str, Any]:
        return self.inner.status()

    def prepare_voice(self, voice: Sequence[VoiceSample], size: str | None = None) -> bool:
        return self.inner.prepare_voice(voice, size)

    def forget_voices(self, sample_hashes: Iterable[str]) -> int:
        return self.inner.forget_voices(sample_hashes)

    def clear_voices(self) -> dict[str, Any]:
        return self.inner.clear_voices()

    def voice_cache_stats(self) -> dict[str, Any]:
        return self.inner.voice_cache_stats()


def install(studio: Any) -> str:
    """Wrap the studio's speech backend so its takes run through ``spaces.GPU``; returns the
    decorator's name (``spaces`` or ``local``)."""
    global _engine
    _engine = studio.tts
    decorate, backend = gpu_decorator()
    studio.tts = ZeroGPUBackend(studio.tts, decorate)
    studio.gpu_backend = backend
    return backend


def spaces_settings(settings: Settings, cuda_available: bool) -> tuple[Settings, str | None]:
    """Adapt settings to a Space: persistent storage when mounted, 0.6B only on CPU.

    Returns:
        (settings, notice for the UI or ``None``).
    """
    changes: dict[str, Any] = {"host": "0.0.0.0"}  # the Space's proxy reaches the app from outside
    if "VOICEBOX_DATA_DIR" not in os.environ and Path("/data").is_dir() and os.access("/data", os.W_OK):
        changes["data_dir"] = Path("/data/voicebox")  # Spaces persistent storage (or a mounted bucket)
    notice = None
    if cuda_available and settings.backend == "auto":
        changes["backend"] = "torch"  # ZeroGPU: CUDA appears only inside @spaces.GPU calls, not at start
    if not cuda_available:
        changes["tts_model_large"] = ""
        changes["design_model"] = ""  # a 1.7B model only: minutes per design on a CPU Space
        if settings.speaker_model.endswith("1.7B-CustomVoice"):  # the small one (it takes no styles)
            changes["speaker_model"] = settings.speaker_model.replace("1.7B-CustomVoice", "0.6B-CustomVoice")
        notice = CPU_NOTICE
    return settings.with_overrides(**changes), notice


def build_spaces_app() -> tuple[Any, dict[str, Any], Any]:
    """The Gradio app as a Space runs it: ``demo.launch(**kwargs)`` stays the entry point.

    Returns:
        (demo, launch keyword arguments, studio).
    """
    import contextlib

    with contextlib.suppress(ImportError):
        import spaces  # noqa: F401  - must come before torch initialises CUDA on ZeroGPU
    import torch

    from .auth import gradio_auth
    from .services import Studio
    from .ui import appearance, build_ui
    from .ui.files import middleware
    from .ui.mcp_guard import enabled, mcp_middleware

    zero_gpu = bool(os.environ.get("SPACES_ZERO_GPU"))
    settings, notice = spaces_settings(Settings.from_env(), zero_gpu or torch.cuda.is_available())
    studio = Studio(settings)
    if notice:
        studio.notices.append(notice)
    backend = install(studio)
    if zero_gpu:
        # Load in the main process: ZeroGPU workers are forks, so a model loaded inside one
        # would be thrown away after every call.
        studio.tts.load()  # the wrapped backend's model, in this process
    log.info("voicebox on Spaces: GPU backend %s, data in %s", backend, settings.data_dir)
    demo = build_ui(studio, settings)
    launch_kwargs = {
        "server_name": settings.host,
        "auth": gradio_auth(settings),  # VOICEBOX_AUTH adds a login; otherwise the Space's visibility decides
        "show_error": False,
        "blocked_paths": [str(settings.data_dir.resolve())],
        "max_file_size": settings.max_upload_bytes,
        # each person's temp files for them only, and anonymous visitors' cookie (voicebox.identity)
        "app_kwargs": {"middleware": [*middleware(demo.voicebox_context.temp.served, settings),
                                      *mcp_middleware(settings, demo)]},
        "mcp_server": enabled(settings),  # tools for AI assistants, behind account credentials (mcp_guard)
        **appearance(),
    }
    return demo, launch_kwargs, studio
