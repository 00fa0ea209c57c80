"""Qwen3-TTS engine: the local :class:`~voicebox.speech.SpeechBackend`, one model in memory.

Responsibilities, and only these: find and load a checkpoint (hub id or local directory, through
:mod:`.hub`), keep voice prompts (through :class:`PromptCache`, built by the variant's
:mod:`.prompt_builders`), and make takes (:mod:`.synthesis`). It knows nothing of profiles, the
store or the UI; the service layer feeds it samples and stores what it returns.

The pieces it composes, one concern each: :mod:`.precision` (which linear layers voicebox's loop
runs on a CPU), :mod:`.frame_source` (official ``generate``, voicebox's loop in
:mod:`.fast_talker`, or CUDA graphs in :mod:`.cuda_graphs`, with the fallback between them),
:mod:`.voice_decoder` (codec frames to audio, continuing from the voice's reference) and
:mod:`.synthesis` (one take as a stream of events, the model lock taken per batch of chunks).
``fast=False`` restores the official ``generate`` path exactly.

All model work runs under one lock (shared with Whisper), first come first served.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
import unicodedata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..assembly import CHUNK_MAX_CHARS, StreamChunk, SynthesisResult, stream_take, synthesize_take
from ..audio import PREPROCESSING_VERSION
from ..errors import InvalidInput
from ..languages import AUTO, QWEN_LANGUAGES, display, is_auto
from ..languages import key as language_key
from ..speech import ModelSpec, SpeechEvent, SpeechRequest, VoiceSample
from .cuda_graphs import GraphedTalker
from .device import attention_implementation, default_dtype_name, resolve_device
from .fast_talker import FastTalker, TalkerInputs
from .fast_talker import supported as fast_supported
from .frame_source import FrameSource, SourceCounts
from .model_lock import FairLock
from .params import GenerationParams
from .precision import CPU_PRECISION, LoopPrecision
from .prompt_builders import BaseCloneBuilder, PromptBuilder, builder_for
from .prompt_cache import PromptCache, VoicePrompt, prompt_key
from .qwen_loader import SIZE_VARIABLES, capture_graphs, load_model, resolve_checkpoint
from .synthesis import Take, TakeRunner
from .voice_decoder import DECODE_LEFT_CONTEXT, SAMPLES_PER_FRAME, VoiceDecoder

log = logging.getLogger(__name__)

__all__ = [
    "CHUNK_MAX_CHARS", "CPU_PRECISION", "DECODE_LEFT_CONTEXT", "SAMPLES_PER_FRAME", "SIZES", "SIZE_VARIABLES",
    "ReferenceSample",
    "StreamChunk", "SynthesisResult", "TTSEngine", "max_frames_for",
]

SIZES = ("0.6B", "1.7B")
FRAME_RATE = 12.5
#: Streaming: frames in the first audio piece; each next piece doubles, up to ``STREAM_FRAMES``
#: (12.5 frames = 1 s). One frame first keeps the first audio within ~2 s on a 2-core CPU; the
#: ramp keeps a fast GPU ahead of playback; 8-frame pieces amortise the codec's per-call cost.
STREAM_FIRST_FRAMES = 1
STREAM_FRAMES = 8
#: Languages of the released Qwen3-TTS Base checkpoints, shown before a model is loaded.
DEFAULT_LANGUAGES = QWEN_LANGUAGES

ProgressFn = Callable[[str, int, int], None]
#: The engine's name for a sample; the protocol's :class:`~voicebox.speech.VoiceSample`.
ReferenceSample = VoiceSample


def max_frames_for(text: str, ceiling: int) -> int:
    """Runaway cap for one chunk: about twice the frames a slow speaker needs, plus slack
    (Latin text is read at ~15 characters/s, CJK at ~5; the cap assumes half that speed)."""
    wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in ("W", "F"))
    seconds = (len(text) - wide) / 7.5 + wide / 2.5 + 2.0
    return min(ceiling, max(16, int(seconds * FRAME_RATE)))


class TTSEngine:
    """Loads Qwen3-TTS checkpoints on demand and speaks with voice prompts.

    Args:
        models: checkpoint per size, e.g. ``{"0.6B": "Qwen/Qwen3-TTS-12Hz-0.6B-Base"}``.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        lock: the process-wide model lock (shared with the ASR engine).
        prompt_cache: voice-prompt cache (memory + disk).
        max_batch: text chunks generated together.
        max_frames: hard cap on frames per chunk (0: derived from the text).
        fast: voicebox's decode loop and incremental codec decoding (falls back to the official
            path by itself when a checkpoint's configuration is not supported); ``False``: always
            the official ``generate`` path.
        quantize: ``VOICEBOX_CPU_INT8`` - ``off``, ``auto`` or ``on`` (see :mod:`.precision`).
        stream_first_frames, stream_frames: frames in the first streamed piece; later pieces double
            in size up to ``stream_frames``.
        cuda_graphs: ``VOICEBOX_CUDA_GRAPHS`` - ``auto`` replays the talker and code predictor as
            CUDA graphs when the model is on CUDA and ``faster-qwen3-tts`` is installed.
        keep_fp32: keep the fp32 linear layers that reduced-precision copies replace (only the
            benchmark and tests need them).
        precision_memory: where ``auto`` remembers the precision it timed on this machine.
    """

    name = "qwen3-tts"
    variant = "base"  # the model family it drives (voice cloning); see prompt_builders
    #: Why this engine runs (set by :func:`voicebox.backends.local_backend`; see VOICEBOX_BACKEND).
    why = ""

    def __init__(
        self,
        models: dict[str, str],
        device: str = "auto",
        lock: Any = None,
        prompt_cache: PromptCache | None = None,
        max_batch: int = 4,
        max_frames: int = 0,
        fast: bool = True,
        quantize: str = "auto",
        stream_first_frames: int = STREAM_FIRST_FRAMES,
        stream_frames: int = STREAM_FRAMES,
        cuda_graphs: str = "auto",
        keep_fp32: bool = False,
        precision_memory: Path | None = None,
    ) -> None:
        unknown = set(models) - set(SIZES)
        if unknown:
            raise ValueError(f"unknown model sizes: {unknown}")
        if cuda_graphs not in ("auto", "off"):
            raise ValueError(f"cuda_graphs must be auto or off, not {cuda_graphs!r}")
        if stream_first_frames < 1 or stream_frames < 1:
            raise ValueError("stream_first_frames and stream_frames must be at least 1")
        self.precision = LoopPrecision(quantize, keep_fp32, precision_memory)
        self.models_by_size = dict(models)
        self.device_setting = device
        self.lock = lock or FairLock()
        self.prompt_cache = prompt_cache or PromptCache(None)
        self.max_batch = max_batch
        self.max_frames = max_frames
        self.fast = bool(fast)
        self.quantize = quantize
        self.stream_first_frames = int(stream_first_frames)
        self.stream_frames = int(stream_frames)
        self.cuda_graphs = cuda_graphs
        self.keep_fp32 = bool(keep_fp32)
        self._model: Any = None
        self._size: str | None = None
        self._device: str | None = None
        self._dtype_name: str | None = None
        self._load_seconds = 0.0
        self.builder: PromptBuilder = BaseCloneBuilder()
        self.counts = SourceCounts()
        self.frame_source: FrameSource | None = None
        self.decoder: VoiceDecoder | None = None
        self.runner = TakeRunner(self)
        self.loads = 0
        self.prompt_builds = 0
        #: Per-stage seconds of the last take (prefill, talker, code_predictor, decode,
        #: first_audio, frames); for benchmarks and the Models tab.
        self.last_profile: dict[str, float] = {}

    # ---- what it offers ---------------------------------------------------------------------
    @property
    def models(self) -> dict[str, str]:
        """Checkpoint source per size (kept for the CLI and benchmarks; see :meth:`model_specs`)."""
        return self.models_by_size

    def model_specs(self) -> list[ModelSpec]:
        return [ModelSpec("base", size, source) for size, source in self.models_by_size.items()]

    def spec(self, size: str | None = None) -> ModelSpec:
        size = size or self._size or SIZES[0]
        variant = getattr(self.builder, "variant", "base")
        return ModelSpec(variant, size, self.models_by_size.get(size, ""))

    @property
    def fast_generations(self) -> int:
        return self.counts.fast

    @property
    def official_generations(self) -> int:
        return self.counts.official

    @property
    def graph_generations(self) -> int:
        return self.counts.graphs

    @property
    def _fast(self) -> FastTalker | None:
        return None if self.frame_source is None else self.frame_source.fast

    @property
    def _graphs(self) -> GraphedTalker | None:
        return None if self.frame_source is None else self.frame_source.graphs

    @_graphs.setter
    def _graphs(self, graphs: GraphedTalker | None) -> None:
        self.frame_source.graphs = graphs

    # ---- loading --------------------------------------------------------------------------
    @property
    def loaded_size(self) -> str | None:
        return self._size if self._model is not None else None

    def _check_size(self, size: str | None) -> str:
        size = size or self._size or SIZES[0]
        if size not in self.models_by_size:
            raise InvalidInput(f"Model size {size!r} is not available; use one of {', '.join(self.models_by_size)}.")
        return size

    def resolve_checkpoint(self, size: str) -> str:
        """A local directory for ``size``'s checkpoint (see :func:`.qwen_loader.resolve_checkpoint`)."""
        return resolve_checkpoint(self.models_by_size[size], size)

    def load(self, size: str | None = None) -> dict[str, Any]:
        """Load ``size`` (default: the current or smallest) once; switching frees the other."""
        size = self._check_size(size)
        with self.lock:
            if self._model is not None and self._size == size:
                return self.status()
            self.unload()
            path = self.resolve_checkpoint(size)
            device = resolve_device(self.device_setting)
            dtype_name = default_dtype_name(device)
            started = time.perf_counter()
            model = self._load_model(path, device, dtype_name, size)
            self.builder = builder_for(model, path, self.variant)
            self._model = model
            self._size, self._device, self._dtype_name = size, device, dtype_name
            self.precision.reset()
            self.decoder = VoiceDecoder(model.model.speech_tokenizer.model.decoder)
            self._setup_frames()
            self._load_seconds = time.perf_counter() - started
            self.loads += 1
            log.info("loaded Qwen3-TTS %s from %s on %s (%s) in %.1fs", size, path, device, dtype_name, self._load_seconds)
            return self.status()

    def _load_model(self, path: str, device: str, dtype_name: str, size: str) -> Any:
        return load_model(path, device, dtype_name, size)

    def use_precision(self, precision: str) -> dict[str, Any]:
        """Rebuild the fast loop of the loaded model with ``fp32``, ``fp16`` or ``int8`` linear
        layers (CPU only; for benchmarks and the Models tab). Returns :meth:`status`."""
        with self.lock:
            self.precision.check(precision)
            if self._model is None:
                raise InvalidInput("Load a model first.")
            self._setup_frames(precision)
            return self.status()

    def _setup_frames(self, precision: str | None = None) -> None:
        """The frame source of the loaded model: the loop (at ``precision``) and, on CUDA, graphs."""
        inner = self._model.model
        fast, graphs, note = None, None, ""
        if self.fast and fast_supported(inner):
            fast = self.precision.build(inner, self._device or "cpu", self._dtype_name, precision)
            graphs = self._graphs
            if graphs is None:
                graphs, note = capture_graphs(inner, self.cuda_graphs, self._device or "cpu", self._dtype_name)
        elif self.fast:
            log.warning("this checkpoint's configuration is not supported by the fast path; using the official one")
        if not self.fast or fast is None:
            self.precision.precision = None
        self.frame_source = FrameSource(self._model, fast, graphs, self.counts, note)

    def ensure_loaded(self, size: str | None = None) -> Any:
        size = self._check_size(size)
        if self._model is None or self._size != size:
            self.load(size)
        return self._model

    def unload(self) -> None:
        """Drop the model and give its memory back."""
        with self.lock:
            if self._model is None:
                return
            self._model = None
            self._size = None
            self.frame_source = None
            self.decoder = None
            self.precision.reset()
            gc.collect()
            with contextlib.suppress(Exception):
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

    def status(self) -> dict[str, Any]:
        """Loaded model, device, dtype and memory in use, for the Models tab and /health."""
        loaded = self._model is not None
        source = self.frame_source
        return {
            "loaded": loaded,
            "backend": self.name,
            "engine": "torch",
            "why": self.why,
            "variant": self.builder.variant if loaded else None,
            "size": self._size if loaded else None,
            "model": self.models_by_size.get(self._size or "", None) if loaded else None,
            "device": self._device if loaded else resolve_device(self.device_setting),
            "dtype": self._dtype_name if loaded else None,
            "attention": attention_implementation(),
            "sizes": dict(self.models_by_size),
            "load_seconds": round(self._load_seconds, 2) if loaded else None,
            "memory_mb": self._memory_mb() if loaded else 0.0,
            "fast_path": source.fast is not None if loaded else self.fast,
            "decode_loop": source.name if loaded else None,
            "cuda_graphs": ("on" if source.graphs is not None else source.graphs_note) if loaded else None,
            "linear_precision": self.precision.precision if loaded else None,
            "precision_why": self.precision.why if loaded and self.precision.precision else None,
            "fp32_loop_weights": ("released" if self.precision.released else "kept") if loaded else None,
        }

    def _memory_mb(self) -> float:
        import torch

        if self._device == "cuda":
            return round(torch.cuda.memory_allocated() / 2**20, 1)
        params = sum(p.numel() * p.element_size() for p in self._model.model.parameters())
        return round((params + self.precision.extra_bytes) / 2**20, 1)

    def languages(self) -> list[str]:
        """Languages the loaded model reports (title case, ``Auto`` first)."""
        if self._model is None:
            return ["Auto", *DEFAULT_LANGUAGES]
        names = [n for n in (self._model.get_supported_languages() or []) if n != AUTO]
        return ["Auto", *sorted(display(n) for n in names)]

    def language_for_model(self, language: str | None) -> str:
        """The model's name for a stored language (lower case); ``auto`` means auto-detect."""
        if is_auto(language):
            return AUTO
        wanted = language_key(language)
        supported = [n.lower() for n in (self._model.get_supported_languages() or [])]
        if supported and wanted not in supported:
            raise InvalidInput(f"Language {language!r} is not supported by this model; use one of {', '.join(self.languages())}.")
        return wanted

    # ---- voice prompts ------------------------------------------------------------------------
    def voice_prompt(self, samples: Sequence[VoiceSample], size: str | None = None) -> tuple[VoicePrompt, bool, float]:
        """The voice prompt for these samples: from the cache, or built and cached.

        Returns:
            (prompt, cache_hit, seconds spent).
        """
        if not samples:
            raise InvalidInput("This profile has no samples yet. Add a recording first.")
        started = time.perf_counter()
        with self.lock:
            self.ensure_loaded(size)
            mode = self.builder.mode_for(samples)
            key = prompt_key(
                self.models_by_size[self._size], self._size, self._dtype_name, mode,
                [(s.sha256, s.text.strip() if mode == "icl" else "") for s in samples], PREPROCESSING_VERSION,
            )
            prompt = self.prompt_cache.get(key, device=self._model.device)
            if prompt is not None:
                return prompt, True, time.perf_counter() - started
            prompt = self.builder.build(self._model, samples, mode, self.models_by_size[self._size])
            self.prompt_builds += 1
            self.prompt_cache.put(key, prompt)
            return prompt, False, time.perf_counter() - started

    def prepare_voice(self, voice: Sequence[VoiceSample], size: str | None = None) -> bool:
        return self.voice_prompt(voice, size)[1]

    def forget_voices(self, sample_hashes: Iterable[str]) -> int:
        return self.prompt_cache.invalidate_samples(sample_hashes)

    def clear_voices(self) -> dict[str, Any]:
        self.prompt_cache.clear()
        return self.prompt_cache.stats()

    def voice_cache_stats(self) -> dict[str, Any]:
        return self.prompt_cache.stats()

    # ---- takes --------------------------------------------------------------------------------
    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[SpeechEvent]:
        """Make a take as a stream of events (see :class:`~voicebox.engines.synthesis.TakeRunner`)."""
        return self.runner.run(request, cancel)

    def synthesize(self, text: str, samples: Sequence[VoiceSample], language: str | None = None,
                   size: str | None = None, params: GenerationParams | None = None,
                   progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> SynthesisResult:
        """Speak ``text`` in the voice of ``samples`` and return the whole take (for benchmarks,
        tests and the CLI; the studio goes through :meth:`speak`)."""
        return synthesize_take(self, text, samples, language, size, params, progress, cancel)

    def stream(self, text: str, samples: Sequence[VoiceSample], language: str | None = None,
               size: str | None = None, params: GenerationParams | None = None,
               progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> Iterator[StreamChunk]:
        """Like :meth:`synthesize`, yielding audio while it is made; the last piece carries the result."""
        return stream_take(self, text, samples, language, size, params, progress, cancel)

    # ---- the model's side of a take (used by :class:`TakeRunner`) ---------------------------------
    def rows_per_batch(self) -> int:
        """Chunks generated together: ``max_batch``, or one when the CUDA graphs make the frames."""
        limit = self.frame_source.rows_per_batch_limit if self.frame_source is not None else None
        return limit or self.max_batch

    def _stream_groups(self, count: int) -> list[list[int]]:
        return self.runner.groups(count, stream=True)

    def generator(self, seed: int) -> Any:
        """A random generator for one batch, on the model's device; the global RNG is seeded too,
        for the sources that cannot take a generator (the official path, the CUDA graphs). Both
        happen under the model lock, so no other request draws from them in between."""
        import torch

        torch.manual_seed(seed)
        return torch.Generator(device=self._model.device).manual_seed(seed)

    def _caps(self, texts: list[str], params: GenerationParams) -> list[int]:
        ceiling = int((self._model.generate_defaults or {}).get("max_new_tokens", 8192))
        if self.max_frames:
            ceiling = min(ceiling, self.max_frames + 1)
        return [params.max_new_tokens or max_frames_for(t, ceiling) for t in texts]

    def _generate_kwargs(self, texts: list[str], prompt: VoicePrompt, language: str, params: GenerationParams,
                         max_new_tokens: int) -> dict[str, Any]:
        return self.builder.generate_kwargs(self._model, texts, prompt, language, params, max_new_tokens)

    def _talker_inputs(self, texts: list[str], prompt: VoicePrompt, language: str,
                       params: GenerationParams) -> tuple[TalkerInputs, list[int]]:
        """The talker's inputs for these chunks (built by the official code) and each one's frame cap."""
        caps = self._caps(texts, params)
        kwargs = self._generate_kwargs(texts, prompt, language, params, max(caps))
        return self.frame_source.capture(kwargs), caps

    def _codec_stream(self, prompt: VoicePrompt) -> Any:
        return self.decoder.stream_for(prompt)

    def decode(self, codes: Any, prompt: VoicePrompt | None = None) -> Any:
        return self.decoder.decode(codes, prompt)

    def _generate_codes(self, take: Take, texts: list[str], seed: int) -> tuple[list[Any], list[bool]]:
        """Talker + code predictor for a batch of chunks, seeded with ``seed``: codec frames per
        chunk and runaway flags (a chunk that reached its cap never emitted end-of-speech)."""
        caps = self._caps(texts, take.request.params)
        kwargs = self._generate_kwargs(texts, take.prompt, take.language, take.request.params, max(caps))
        generator = self.generator(seed)
        started = time.perf_counter()
        codes_list, source = self.frame_source.codes(kwargs, len(texts), caps[0], generator)
        take.stages.add(source)
        take.generate_s += time.perf_counter() - started
        trimmed, runaway = [], []
        for codes, cap in zip(codes_list, caps):
            runaway.append(int(codes.shape[0]) >= cap - 1)
            trimmed.append(codes[: cap - 1])
        return trimmed, runaway
