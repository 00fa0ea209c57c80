"""Running on Hugging Face Spaces, including ZeroGPU.

On ZeroGPU, a function decorated with ``spaces.GPU`` runs in a forked worker that holds a GPU for
the call's duration; its arguments and return value are pickled across. So the GPU functions here
are *pure*: text, reference-sample paths and parameters in, a :class:`SynthesisResult` (audio and
metadata) out. They reach the engine through a module global set once at start-up (the fork
inherits it), and the caller (:class:`voicebox.services.Studio`) writes the store. Progress
callbacks and cancel events cannot cross the fork, so they are dropped there.

Off Spaces, or when the ``spaces`` package is absent, ``gpu`` is a no-op decorator: the same code
runs locally. On a CPU-only Space only the 0.6B size is offered, with a notice that it is slow.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .config import Settings

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


def gpu_duration(text: str, *args: Any, **kwargs: Any) -> int:
    """The GPU time to ask ZeroGPU for: longer texts get longer leases, within a cap."""
    return int(min(GPU_MAX_SECONDS, GPU_BASE_SECONDS + GPU_SECONDS_PER_CHAR * len(text or "")))


def gpu_decorator() -> tuple[Callable[..., Any], str]:
    """``spaces.GPU(duration=gpu_duration)`` when the package is importable, else a no-op."""
    try:
        import spaces
    except ImportError:
        return (lambda fn: fn), "local"
    return spaces.GPU(duration=gpu_duration), "spaces"


def _synthesize(text: str, references: Sequence[Any], language: str | None, size: str | None, params: Any,
                progress: Any = None, cancel: Any = None) -> Any:
    """Pure GPU function: no store, no callbacks (they cannot be pickled into the worker)."""
    return _engine.synthesize(text, references, language, size, params)


def _stream(text: str, references: Sequence[Any], language: str | None, size: str | None, params: Any,
            progress: Any = None, cancel: Any = None) -> Iterator[Any]:
    """Pure GPU generator: audio pieces, then the final result."""
    yield from _engine.stream(text, references, language, size, params)


def install(studio: Any) -> str:
    """Route the studio's GPU-bound calls through ``spaces.GPU``; returns the backend name."""
    global _engine
    _engine = studio.tts
    decorate, backend = gpu_decorator()
    studio.synthesize = decorate(_synthesize)
    studio.stream = decorate(_stream)
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
    if not cuda_available:
        changes["tts_model_large"] = ""
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

    zero_gpu = bool(os.environ.get("SPACES_ZERO_GPU"))
    settings, notice = spaces_settings(Settings.from_env(), zero_gpu or torch.cuda.is_available())
    studio = Studio(settings)
    if notice:
        studio.notices.append(notice)
    backend = install(studio)
    if zero_gpu:
        # Load in the main process: ZeroGPU workers are forks, so a model loaded inside one
        # would be thrown away after every call.
        studio.tts.load()
    log.info("voicebox on Spaces: GPU backend %s, data in %s", backend, settings.data_dir)
    demo = build_ui(studio, settings)
    launch_kwargs = {
        "server_name": settings.host,
        "auth": gradio_auth(settings),  # VOICEBOX_AUTH adds a login; otherwise the Space's visibility decides
        "show_error": False,
        "blocked_paths": [str(settings.data_dir.resolve())],
        "max_file_size": settings.max_upload_bytes,
        **appearance(),
    }
    return demo, launch_kwargs, studio
