"""Which speech engine runs, and why: the torch engine, the GGML engine, or remote servers.

``VOICEBOX_BACKEND``:

* ``torch`` - :class:`~voicebox.engines.tts.TTSEngine` (PyTorch, ``qwen_tts``): CUDA, MPS or CPU.
* ``ggml`` - :class:`~voicebox.engines.ggml_backend.GGMLBackend` (qwentts.cpp, CPU only), at
  ``VOICEBOX_GGUF_QUANT``.
* ``remote`` - :class:`~voicebox.remote.backend.RemoteBackend`: the model work goes to the
  vLLM-Omni servers at ``VOICEBOX_REMOTE_URLS`` (nothing is loaded here; see
  ``docs/remote-protocol.md``).
* ``auto`` (default) - the GGML engine when the model runs on the CPU, the library can run on this
  machine (:func:`~voicebox.engines.ggml_runtime.probe`) and its GGUF files are at hand
  (:func:`~voicebox.engines.ggml_files.obtainable`: a local folder of GGUFs or a checkpoint it
  converts, or a released model whose GGUFs are cached or downloadable); otherwise the torch
  engine. Why GGML on a CPU: in one same-run comparison on this project's 2-core machine
  (``bench/results/tts_speed_cpu_ggml.json``) GGML Q8_0 made 1.2x the torch engine's frames/s,
  and the quality guard passes it (``bench/results/loop_guard_cpu.json``: its arithmetic
  reproduced in the torch loop stays within 1 - cosine 0.0013 of fp32, layer by layer). Its
  first audio with an in-context voice comes later (2.1 s against 1.45 s: its prefill of the
  reference is slower), which the status says. Q4_K_M fails the guard (``GGUF_GUARD``).

Whichever way the GGML engine was chosen, its first failed load (a download that cannot happen, a
file the library refuses) switches to the torch engine for good, and the engine's ``status()``
carries the notice; both engines share the model lock and the voice-prompt cache folder (their
cache keys differ). Every status says ``engine`` and ``why``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from .config import Settings
from .engines.model_lock import FairLock
from .engines.prompt_cache import PromptCache
from .errors import InvalidInput
from .speech import ModelSpec, SpeechBackend, SpeechEvent, SpeechRequest, VoiceSample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineChoice:
    """The engine to build (``torch`` or ``ggml``) and the reason, in words."""

    engine: str
    why: str


def choose_engine(settings: Settings) -> EngineChoice:
    """Apply ``VOICEBOX_BACKEND`` (see the module docstring)."""
    if settings.backend == "torch":
        return EngineChoice("torch", "VOICEBOX_BACKEND=torch")
    if settings.backend == "ggml":
        return EngineChoice("ggml", f"VOICEBOX_BACKEND=ggml; {guard_note(settings.gguf_quant)}")
    from .engines.device import resolve_device
    from .engines.ggml_files import obtainable
    from .engines.ggml_runtime import probe

    device = resolve_device(settings.device)
    if device != "cpu":
        return EngineChoice("torch", f"auto: the model runs on {device}, where the torch engine is the fast one")
    runtime = probe()
    if not runtime.ok:
        return EngineChoice("torch", f"auto: {runtime.why}")
    ok, why = obtainable(settings.tts_model, settings.gguf_quant, settings.cache_dir)
    if not ok:
        return EngineChoice("torch", f"auto: {why}")
    return EngineChoice("ggml", f"auto: CPU, {why}; {runtime.why}; {guard_note(settings.gguf_quant)}")


#: What the quality guard said of each GGUF quantisation on full-size 0.6B weights
#: (bench/loop_guard.py --ggml; lowest cosine to fp32 over 30 teacher-forced frames).
GGUF_GUARD = {
    "F32": "passes the quality guard",
    "BF16": "passes the quality guard",
    "Q8_0": "passes the quality guard (1 - cosine to fp32 at most 0.0013)",
    "Q4_K_M": "fails the quality guard (1 - cosine to fp32 up to 0.10): faster and smaller, but further "
              "from the model; Q8_0 keeps quality",
}


def guard_note(quant: str) -> str:
    """``Q8_0 passes the quality guard (...)``: what the engine's status says of its quantisation."""
    return f"{quant} {GGUF_GUARD.get(quant, 'has not been judged by the quality guard')}"


def torch_backend(settings: Settings, lock: FairLock, why: str = "") -> SpeechBackend:
    """The local Qwen3-TTS torch engine built from the settings."""
    from .engines.tts import TTSEngine

    engine = TTSEngine(
        dict(configured_models(settings)),
        device=settings.device,
        lock=lock,
        prompt_cache=PromptCache(settings.cache_dir / "prompts"),
        max_frames=settings.max_frames,
        quantize=settings.cpu_int8,
        cuda_graphs=settings.cuda_graphs,
        precision_memory=settings.precision_memory,
    )
    engine.why = why
    return engine


def ggml_backend(settings: Settings, lock: FairLock, why: str = "") -> SpeechBackend:
    """The GGML engine built from the settings (nothing is loaded yet)."""
    from .engines.ggml_backend import GGMLBackend

    return GGMLBackend(
        dict(configured_models(settings)),
        quant=settings.gguf_quant,
        lock=lock,
        prompt_cache=PromptCache(settings.cache_dir / "prompts"),
        cache_dir=settings.cache_dir,
        max_frames=settings.max_frames,
        why=why,
    )


def remote_backend(settings: Settings, lock: FairLock) -> SpeechBackend:
    """The vLLM-Omni servers of ``VOICEBOX_REMOTE_URLS`` behind the speech seam."""
    from .remote.backend import RemoteBackend

    return RemoteBackend(
        settings.remote_urls,
        api_key=settings.remote_api_key,
        timeout=settings.remote_timeout,
        concurrency=settings.remote_concurrency,
        max_frames=settings.max_frames,
        models=remote_models(settings),
        lock=lock,
    )


def configured_models(settings: Settings) -> list[tuple[str, str]]:
    """``(size slot, model)`` of each model setting that is set: 0.6B, then 1.7B."""
    return [(slot, model) for slot, model in (("0.6B", settings.tts_model), ("1.7B", settings.tts_model_large))
            if model]


def remote_models(settings: Settings) -> dict[str, str]:
    """The configured models by the size their ids name (``VOICEBOX_TTS_MODEL`` set to the 1.7B
    model the servers serve is the 1.7B size, not the 0.6B slot it sits in), so the size picker
    offers, and starts on, what the servers serve before they are first asked."""
    from .remote.router import model_size

    models: dict[str, str] = {}
    for slot, model in configured_models(settings):
        models.setdefault(model_size(model) or slot, model)
    return models


def local_backend(settings: Settings, lock: FairLock) -> SpeechBackend:
    """The speech engine ``VOICEBOX_BACKEND`` asks for (see the module docstring)."""
    if settings.backend == "remote":
        log.info("speech engine: remote (%d vLLM-Omni servers)", len(settings.remote_urls))
        return remote_backend(settings, lock)
    choice = choose_engine(settings)
    log.info("speech engine: %s (%s)", choice.engine, choice.why)
    if choice.engine == "torch":
        return torch_backend(settings, lock, choice.why)
    return FallbackBackend(ggml_backend(settings, lock, choice.why),
                           lambda why: torch_backend(settings, lock, why))


class FallbackBackend:
    """The GGML engine, with the torch engine behind it.

    Everything goes to the GGML engine until one of its loads fails; then the torch engine is built
    (``fallback(notice)``) and answers from then on. Loads happen in :meth:`load`, and before a take
    or a voice prompt when nothing is loaded, so the switch never happens in the middle of a take.
    Attributes not defined here are read from the active engine.
    """

    def __init__(self, primary: SpeechBackend, fallback: Callable[[str], SpeechBackend]) -> None:
        self.primary = primary
        self.active: SpeechBackend = primary
        self._fallback = fallback
        self._switch = threading.Lock()
        self.notice = ""
        self.lock = getattr(primary, "lock", None)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.active.name

    def __getattr__(self, attribute: str) -> Any:
        if attribute in ("primary", "active"):
            raise AttributeError(attribute)
        return getattr(self.active, attribute)

    @property
    def fell_back(self) -> bool:
        return self.active is not self.primary

    def _ready(self, size: str | None) -> None:
        if not self.fell_back and self.primary.loaded_size is None:
            self.load(size)

    def load(self, size: str | None = None) -> dict[str, Any]:
        if not self.fell_back:
            try:
                return self.primary.load(size)
            except InvalidInput:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the GGML engine means "use torch"
                self._fall_back(exc)
        return self.active.load(size)

    def _fall_back(self, exc: BaseException) -> None:
        with self._switch:
            if self.fell_back:
                return
            self.notice = f"The GGML engine could not load ({exc}); using the torch engine."
            log.warning("%s", self.notice)
            self.active = self._fallback(self.notice)
            self.primary.unload()

    # ---- the protocol, delegated -------------------------------------------------------------
    def model_specs(self) -> list[ModelSpec]:
        return self.active.model_specs()

    def languages(self) -> list[str]:
        return self.active.languages()

    @property
    def loaded_size(self) -> str | None:
        return self.active.loaded_size

    def unload(self) -> None:
        self.active.unload()

    def status(self) -> dict[str, Any]:
        status = dict(self.active.status())
        status.setdefault("engine", "torch" if self.fell_back else "ggml")
        if self.notice:
            status["notice"] = self.notice
        return status

    def prepare_voice(self, voice: Sequence[VoiceSample], size: str | None = None) -> bool:
        self._ready(size)
        return self.active.prepare_voice(voice, size)

    def forget_voices(self, sample_hashes: Iterable[str]) -> int:
        return self.active.forget_voices(sample_hashes)

    def clear_voices(self) -> dict[str, Any]:
        return self.active.clear_voices()

    def voice_cache_stats(self) -> dict[str, Any]:
        return self.active.voice_cache_stats()

    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[SpeechEvent]:
        self._ready(request.size)
        yield from self.active.speak(request, cancel)
