"""Qwen3-TTS engine: one model in memory, loaded once, shared by every caller.

Responsibilities, and only these: find and load a checkpoint (hub id or local directory), build
voice prompts (through :class:`PromptCache`), and turn text into 24 kHz audio. It knows nothing of
profiles, the store or the UI; the service layer feeds it samples and stores what it returns.

Why the generation is split into stages rather than one ``generate_voice_clone`` call:

* the talker (codes) and the codec decoder (audio) are timed separately, and the runaway guard
  needs the codes (a chunk that hits ``max_new_tokens`` never emitted end-of-speech);
* in ICL mode the official path decodes the whole reference again on every call and then cuts it
  off. The codec decoder is causal and upstream decodes in chunks with a 25-frame left context
  anyway (``chunked_decode``), so voicebox decodes only the new frames after the last
  :data:`DECODE_LEFT_CONTEXT` reference frames: the same quality, a fraction of the work.

Fast path (``fast=True``, the default): the talker and code predictor run in voicebox's own decode
loop (:mod:`.fast_talker`: static key/value buffers, no nested Hugging Face ``generate``; the same
codec tokens as the official code under greedy decoding), the codec decoder runs incrementally
(:mod:`.codec_stream`: only new frames are decoded, a voice's reference primes it once), and
:meth:`TTSEngine.stream` yields audio every few frames instead of once per sentence. On a CPU the
loop's linear layers can use reduced-precision copies (:mod:`.quantize`, setting
``VOICEBOX_CPU_INT8``). On CUDA, with ``faster-qwen3-tts`` installed, the frames come from its
CUDA graphs instead (:mod:`.cuda_graphs`); everything around them stays the same.
``fast=False`` restores the official ``generate`` path exactly.

All model work runs under one lock (shared with Whisper), so the UI, the REST API and batch jobs
never enter a model at the same time.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import logging
import os
import re
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..audio import MODEL_SAMPLE_RATE, PREPROCESSING_VERSION, CrossfadeJoiner, combine_references, crossfade_concat
from ..errors import Cancelled, InvalidInput, ModelUnavailable
from .device import attention_implementation, default_dtype_name, resolve_device
from .codec_stream import PRIME_FRAMES, CodecStream
from .cuda_graphs import GraphedTalker, wanted as graphs_wanted
from .fast_talker import FastTalker, TalkerInputs, capture_talker_inputs, supported as fast_supported
from .params import GenerationParams
from .prompt_cache import PromptCache, VoicePrompt, prompt_key
from .text_split import chunk_text

log = logging.getLogger(__name__)

SIZES = ("0.6B", "1.7B")
SIZE_VARIABLES = {"0.6B": "VOICEBOX_TTS_MODEL", "1.7B": "VOICEBOX_TTS_MODEL_LARGE"}
FRAME_RATE = 12.5
SAMPLES_PER_FRAME = 1920
DECODE_LEFT_CONTEXT = 25
CHUNK_MAX_CHARS = 250
#: Streaming: frames in the first audio piece; each next piece doubles, up to ``STREAM_FRAMES``
#: (12.5 frames = 1 s). One frame first keeps the first audio within ~2 s on a 2-core CPU; the
#: ramp keeps a fast GPU ahead of playback; 8-frame pieces amortise the codec's per-call cost.
STREAM_FIRST_FRAMES = 1
STREAM_FRAMES = 8
#: ``VOICEBOX_CPU_INT8`` -> precision of the fast loop's linear layers on a CPU. ``auto`` picks the
#: reduced precision whose token agreement with fp32 held on full-size weights (bench/tts_speed.py:
#: fp16 weights agreed on 100 % of tokens over 50 greedy frames; int8 did not reach 95 %), so it
#: is fp16 here; ``on`` forces int8; ``off`` keeps fp32 (token-exact with the official path).
CPU_PRECISION = {"off": "fp32", "auto": "fp16", "on": "int8"}
PRIMED_VOICES = 8
CROSSFADE_SECONDS = 0.02  # between sentence chunks, as crossfade_concat
#: Languages of the released Qwen3-TTS Base checkpoints, shown before a model is loaded.
DEFAULT_LANGUAGES = (
    "Chinese", "English", "Japanese", "Korean", "German", "French", "Russian", "Portuguese", "Spanish", "Italian",
)

ProgressFn = Callable[[str, int, int], None]


@dataclass
class StreamChunk:
    """One piece of a streamed generation: audio to play now; the last piece carries ``result``
    (the whole take and its metadata) and no new audio."""

    audio: np.ndarray
    result: "SynthesisResult | None" = None


@dataclass(frozen=True)
class ReferenceSample:
    """One cleaned sample as the engine needs it: audio on disk, its hash and transcript."""

    path: Path
    sha256: str
    text: str = ""


@dataclass
class SynthesisResult:
    """Audio plus everything worth recording about how it was made."""

    audio: np.ndarray
    sample_rate: int
    model: str
    size: str
    mode: str
    seed: int
    language: str
    timings: dict[str, float]
    cache_hit: bool
    chunks: int
    status: str = "ok"
    message: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return round(len(self.audio) / self.sample_rate, 3)

    def metadata(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "audio"}
        data["duration"] = self.duration
        return data


def max_frames_for(text: str, ceiling: int) -> int:
    """Runaway cap for one chunk: about twice the frames a slow speaker needs, plus slack.

    Latin text is read at ~15 characters/s, CJK at ~5; the cap assumes half that speed.
    """
    wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in ("W", "F"))
    seconds = (len(text) - wide) / 7.5 + wide / 2.5 + 2.0
    return min(ceiling, max(16, int(seconds * FRAME_RATE)))


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", ".", "~")) or value.count("/") > 1 or os.sep != "/" and os.sep in value


class TTSEngine:
    """Loads Qwen3-TTS checkpoints on demand and synthesises speech from voice prompts.

    Args:
        models: checkpoint per size, e.g. ``{"0.6B": "Qwen/Qwen3-TTS-12Hz-0.6B-Base"}``.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        lock: the process-wide model lock (shared with the ASR engine).
        prompt_cache: voice-prompt cache (memory + disk).
        max_batch: text chunks generated together by :meth:`synthesize`.
        max_frames: hard cap on frames per chunk (0: derived from the text).
        fast: voicebox's decode loop and incremental codec decoding (falls back to the official
            path by itself when a checkpoint's configuration is not supported); ``False``: always
            the official ``generate`` path.
        quantize: ``VOICEBOX_CPU_INT8`` - ``off`` (fp32), ``auto`` (see :data:`CPU_PRECISION`) or
            ``on`` (int8). Only the fast loop's talker and code-predictor linear layers, only on CPU.
        stream_first_frames, stream_frames: frames in the first streamed piece; later pieces double
            in size up to ``stream_frames``.
        cuda_graphs: ``VOICEBOX_CUDA_GRAPHS`` - ``auto`` replays the talker and code predictor as
            CUDA graphs (:mod:`.cuda_graphs`) when the model is on CUDA and ``faster-qwen3-tts`` is
            installed; ``off`` keeps voicebox's loop there too.
        keep_fp32: keep the fp32 linear layers that reduced-precision copies replace (only the
            benchmark and tests need them, to run the official path or compare precisions on the
            same model); by default they are released, which saves 2.2 GB for the 0.6B model.
    """

    def __init__(
        self,
        models: dict[str, str],
        device: str = "auto",
        lock: threading.RLock | None = None,
        prompt_cache: PromptCache | None = None,
        max_batch: int = 4,
        max_frames: int = 0,
        fast: bool = True,
        quantize: str = "auto",
        stream_first_frames: int = STREAM_FIRST_FRAMES,
        stream_frames: int = STREAM_FRAMES,
        cuda_graphs: str = "auto",
        keep_fp32: bool = False,
    ) -> None:
        unknown = set(models) - set(SIZES)
        if unknown:
            raise ValueError(f"unknown model sizes: {unknown}")
        if quantize not in CPU_PRECISION:
            raise ValueError(f"quantize must be one of {', '.join(CPU_PRECISION)}, not {quantize!r}")
        if cuda_graphs not in ("auto", "off"):
            raise ValueError(f"cuda_graphs must be auto or off, not {cuda_graphs!r}")
        if stream_first_frames < 1 or stream_frames < 1:
            raise ValueError("stream_first_frames and stream_frames must be at least 1")
        self.models = dict(models)
        self.device_setting = device
        self.lock = lock or threading.RLock()
        self.prompt_cache = prompt_cache or PromptCache(None)
        self.max_batch = max_batch
        self.max_frames = max_frames
        self._model: Any = None
        self._size: str | None = None
        self._device: str | None = None
        self._dtype_name: str | None = None
        self._load_seconds = 0.0
        self.fast = bool(fast)
        self.quantize = quantize
        self.stream_first_frames = int(stream_first_frames)
        self.stream_frames = int(stream_frames)
        self._fast: FastTalker | None = None
        self.cuda_graphs = cuda_graphs
        self.keep_fp32 = bool(keep_fp32)
        self._released = 0  # bytes of fp32 loop layers freed after the reduced copies were made
        self._graphs: GraphedTalker | None = None
        self._graphs_note = ""
        self._tables: dict[str, dict[str, Any]] = {}  # reduced-precision linear copies, per precision
        self._precision: str | None = None
        self._extra_bytes = 0
        self._primed: dict[str, Any] = {}
        # counters: observable facts for tests and the Models tab
        self.loads = 0
        self.prompt_builds = 0
        self.fast_generations = 0
        self.official_generations = 0
        self.graph_generations = 0
        #: Per-stage seconds of the last generation (prefill, talker, code_predictor, decode,
        #: first_audio, frames); for benchmarks and the Models tab.
        self.last_profile: dict[str, float] = {}

    # ---- loading --------------------------------------------------------------------------
    @property
    def loaded_size(self) -> str | None:
        return self._size if self._model is not None else None

    def _check_size(self, size: str | None) -> str:
        size = size or self._size or SIZES[0]
        if size not in self.models:
            raise InvalidInput(f"Model size {size!r} is not available; use one of {', '.join(self.models)}.")
        return size

    def resolve_checkpoint(self, size: str) -> str:
        """A local directory for ``size``'s checkpoint, downloading it if needed and possible.

        Fails in seconds, with the model, the reason and the fix, when it cannot be had.
        """
        source = self.models[size]
        variable = SIZE_VARIABLES[size]
        if os.path.isdir(os.path.expanduser(source)):
            return os.path.expanduser(source)
        if _looks_like_path(source):
            raise ModelUnavailable(
                f"{variable}={source!r} is not a directory. Point it at a downloaded Qwen3-TTS "
                "checkpoint folder, or at a Hugging Face model id such as Qwen/Qwen3-TTS-12Hz-0.6B-Base."
            )
        from huggingface_hub import snapshot_download

        with contextlib.suppress(Exception):
            return snapshot_download(source, local_files_only=True)
        fix = f"run once with internet access to download it, or set {variable} to a local directory"
        if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
            raise ModelUnavailable(f"The TTS model {source!r} is not downloaded and HF_HUB_OFFLINE is set: {fix}.")
        from huggingface_hub import HfApi

        try:
            HfApi().model_info(source, timeout=10)
        except Exception as exc:
            raise ModelUnavailable(f"The TTS model {source!r} cannot be downloaded ({type(exc).__name__}): {fix}.") from None
        try:
            return snapshot_download(source)
        except Exception as exc:
            raise ModelUnavailable(f"Downloading the TTS model {source!r} failed ({exc}): {fix}.") from None

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
            self._model = self._load_model(path, device, dtype_name, size)
            self._size, self._device, self._dtype_name = size, device, dtype_name
            self._tables = {}
            self._released = 0
            self._primed.clear()
            self._setup_fast_path()
            self._load_seconds = time.perf_counter() - started
            self.loads += 1
            log.info("loaded Qwen3-TTS %s from %s on %s (%s) in %.1fs", size, path, device, dtype_name, self._load_seconds)
            return self.status()

    def _load_model(self, path: str, device: str, dtype_name: str, size: str) -> Any:
        import torch

        with contextlib.redirect_stdout(io.StringIO()):  # qwen_tts prints a flash-attn banner
            from qwen_tts import Qwen3TTSModel
        device_map = "cuda:0" if device == "cuda" else device
        try:
            model = Qwen3TTSModel.from_pretrained(
                path, device_map=device_map, dtype=getattr(torch, dtype_name), attn_implementation=attention_implementation()
            )
        except (MemoryError, torch.cuda.OutOfMemoryError) as exc:
            raise ModelUnavailable(
                f"Not enough memory to load the {size} TTS model on {device} ({exc}). "
                "Use the 0.6B size, unload Whisper, or set VOICEBOX_DEVICE=cpu."
            ) from None
        except Exception as exc:
            raise ModelUnavailable(
                f"The TTS model at {path} could not be loaded ({type(exc).__name__}: {exc}). "
                f"Check that {SIZE_VARIABLES[size]} points to a complete Qwen3-TTS Base checkpoint."
            ) from None
        if getattr(model.model, "tts_model_type", "base") != "base":
            raise ModelUnavailable(
                f"{path} is a Qwen3-TTS {model.model.tts_model_type} model; voice cloning needs a Base model."
            )
        return model

    def use_precision(self, precision: str) -> dict[str, Any]:
        """Rebuild the fast loop of the loaded model with ``fp32``, ``fp16`` or ``int8`` linear
        layers (CPU only; for benchmarks and the Models tab). Returns :meth:`status`."""
        if precision not in ("fp32", "fp16", "int8"):
            raise InvalidInput(f"precision must be fp32, fp16 or int8, not {precision!r}")
        with self.lock:
            if self._model is None:
                raise InvalidInput("Load a model first.")
            if self._released and precision not in self._tables:
                raise InvalidInput(
                    f"The fp32 weights of the decode loop were released after the {self._precision} copies were "
                    "made (to save memory), so other precisions cannot be built; set VOICEBOX_CPU_INT8 and reload."
                )
            self._setup_fast_path(precision)
            return self.status()

    def _setup_fast_path(self, wanted: str | None = None) -> None:
        """Build the decode loop (and reduced-precision linear copies on CPU) for the loaded model."""
        self._fast, self._precision, self._extra_bytes = None, None, 0
        if not self.fast:
            return
        inner = self._model.model
        if not fast_supported(inner):
            log.warning("this checkpoint's configuration is not supported by the fast path; using the official one")
            return
        precision = self._dtype_name or "float32"
        linears = None
        wanted = wanted or CPU_PRECISION[self.quantize]
        if self._device == "cpu" and precision == "float32" and wanted != "fp32":
            from .quantize import quantized_available, reduced_linears, release_originals, table_bytes

            if quantized_available():
                try:
                    linears = self._tables.get(wanted)
                    if linears is None:
                        linears = self._tables[wanted] = reduced_linears(inner, wanted)
                    self._extra_bytes = sum(table_bytes(t) for t in self._tables.values())
                    precision = wanted
                except Exception as exc:  # an exotic CPU/build: the fp32 loop still works
                    log.warning("could not build %s linear layers (%s); using fp32", wanted, exc)
                    linears = None
            if linears is not None and not self.keep_fp32 and not self._released:
                self._released = release_originals(inner)
                log.info("released %.0f MB of fp32 loop weights (replaced by %s copies)", self._released / 2**20, wanted)
        self._fast = FastTalker(inner, linears=linears, profile=True)
        self._setup_graphs(inner)
        self._precision = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(precision, precision)

    def _setup_graphs(self, inner: Any) -> None:
        """On CUDA, capture faster-qwen3-tts's graphs over the loaded model (once per load)."""
        if self._graphs is not None:
            return
        ok, why = graphs_wanted(self.cuda_graphs, self._device or "cpu")
        if ok:
            import torch

            try:
                graphs = GraphedTalker(inner, getattr(torch, self._dtype_name or "bfloat16"))
                graphs.capture()
                self._graphs = graphs
            except Exception as exc:  # a driver, version or memory problem: the loop still works
                why = f"capturing CUDA graphs failed ({type(exc).__name__}: {exc})"
                log.warning("%s; using voicebox's decode loop", why)
        self._graphs_note = why

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
            self._fast = None
            self._graphs = None
            self._graphs_note = ""
            self._tables = {}
            self._precision = None
            self._extra_bytes = 0
            self._primed.clear()
            gc.collect()
            with contextlib.suppress(Exception):
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

    def status(self) -> dict[str, Any]:
        """Loaded model, device, dtype and memory in use, for the Models tab and /health."""
        loaded = self._model is not None
        info: dict[str, Any] = {
            "loaded": loaded,
            "size": self._size if loaded else None,
            "model": self.models.get(self._size or "", None) if loaded else None,
            "device": self._device if loaded else resolve_device(self.device_setting),
            "dtype": self._dtype_name if loaded else None,
            "attention": attention_implementation(),
            "sizes": {s: m for s, m in self.models.items()},
            "load_seconds": round(self._load_seconds, 2) if loaded else None,
            "memory_mb": self._memory_mb() if loaded else 0.0,
            "fast_path": self._fast is not None if loaded else self.fast,
            "decode_loop": self._decode_loop() if loaded else None,
            "cuda_graphs": ("on" if self._graphs is not None else self._graphs_note) if loaded else None,
            "linear_precision": self._precision if loaded else None,
            "fp32_loop_weights": ("released" if self._released else "kept") if loaded else None,
        }
        return info

    def _decode_loop(self) -> str:
        if self._graphs is not None:
            return "cuda-graphs"
        return "voicebox" if self._fast is not None else "official"

    def _memory_mb(self) -> float:
        import torch

        if self._device == "cuda":
            return round(torch.cuda.memory_allocated() / 2**20, 1)
        params = sum(p.numel() * p.element_size() for p in self._model.model.parameters())
        return round((params + self._extra_bytes) / 2**20, 1)

    def languages(self) -> list[str]:
        """Languages the loaded model reports (title case, ``Auto`` first)."""
        if self._model is None:
            return ["Auto", *DEFAULT_LANGUAGES]
        names = [n for n in (self._model.get_supported_languages() or []) if n != "auto"]
        return ["Auto", *sorted(n.title() for n in names)]

    def _language_for_model(self, language: str | None) -> str:
        """Map a user's choice to the model's name; ``Auto`` or empty means auto-detect."""
        if language is None or str(language).strip().lower() in ("", "auto"):
            return "auto"
        wanted = str(language).strip().lower()
        supported = [n.lower() for n in (self._model.get_supported_languages() or [])]
        if supported and wanted not in supported:
            raise InvalidInput(f"Language {language!r} is not supported by this model; use one of {', '.join(self.languages())}.")
        return wanted

    # ---- voice prompts ------------------------------------------------------------------------
    def voice_prompt(self, samples: Sequence[ReferenceSample], size: str | None = None) -> tuple[VoicePrompt, bool, float]:
        """The voice prompt for these samples: from the cache, or built and cached.

        ICL mode when every used sample has a transcript; otherwise x-vector-only mode.

        Returns:
            (prompt, cache_hit, seconds spent).
        """
        if not samples:
            raise InvalidInput("This profile has no samples yet. Add a recording first.")
        started = time.perf_counter()
        with self.lock:
            self.ensure_loaded(size)
            mode = "icl" if all(s.text.strip() for s in samples) else "xvector"
            key = prompt_key(
                self.models[self._size], self._size, self._dtype_name, mode,
                [(s.sha256, s.text.strip() if mode == "icl" else "") for s in samples], PREPROCESSING_VERSION,
            )
            prompt = self.prompt_cache.get(key, device=self._model.device)
            if prompt is not None:
                return prompt, True, time.perf_counter() - started
            prompt = self._build_prompt(samples, mode)
            self.prompt_cache.put(key, prompt)
            return prompt, False, time.perf_counter() - started

    def _build_prompt(self, samples: Sequence[ReferenceSample], mode: str) -> VoicePrompt:
        from ..audio import load_mono

        parts = [(load_mono(s.path, MODEL_SAMPLE_RATE), s.text) for s in samples]
        audio, text = combine_references(parts, MODEL_SAMPLE_RATE)
        items = self._model.create_voice_clone_prompt(
            ref_audio=(audio, MODEL_SAMPLE_RATE), ref_text=text if mode == "icl" else None, x_vector_only_mode=mode != "icl"
        )
        self.prompt_builds += 1
        item = items[0]
        return VoicePrompt(
            mode=mode,
            ref_spk_embedding=item.ref_spk_embedding,
            ref_code=item.ref_code if mode == "icl" else None,
            ref_text=text if mode == "icl" else None,
            sample_hashes=[s.sha256 for s in samples],
            model=self.models[self._size],
        )

    # ---- synthesis ----------------------------------------------------------------------------
    def synthesize(
        self,
        text: str,
        samples: Sequence[ReferenceSample],
        language: str | None = None,
        size: str | None = None,
        params: GenerationParams | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> SynthesisResult:
        """Speak ``text`` in the voice of ``samples``.

        Long text is split at sentence boundaries into chunks, generated in batches and joined
        with a short crossfade. A chunk that never emits end-of-speech is retried once with a new
        seed; if it fails again the result's status is ``incomplete`` with a message saying so.
        """
        request = self._open(text, params, progress)
        chunks = request.chunks
        pieces: list[np.ndarray] = [np.zeros(0, np.float32)] * len(chunks)
        with self.lock:
            self._prepare(request, samples, language, size)
            batch_size = self._rows_per_batch()
            for first in range(0, len(chunks), batch_size):
                _check(cancel)
                batch = list(range(first, min(first + batch_size, len(chunks))))
                request.report("generating", first, len(chunks))
                codes, runaway = self._generate_codes(request, [chunks[i] for i in batch])
                for index, chunk_codes, ran_away in zip(batch, codes, runaway):
                    chunk_codes = self._settle(request, index, chunk_codes, ran_away)
                    t0 = time.perf_counter()
                    if self._fast is not None:
                        pieces[index] = self._codec_stream(request.prompt).push(chunk_codes).float().cpu().numpy()
                    else:
                        pieces[index] = self.decode(chunk_codes, request.prompt)
                    request.decode_s += time.perf_counter() - t0
                request.report("generating", batch[-1] + 1, len(chunks))
        request.report("saving", len(chunks), len(chunks))
        return self._result(request, crossfade_concat(pieces, MODEL_SAMPLE_RATE))

    def stream(
        self,
        text: str,
        samples: Sequence[ReferenceSample],
        language: str | None = None,
        size: str | None = None,
        params: GenerationParams | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[StreamChunk]:
        """Like :meth:`synthesize`, but yields audio while it is being generated.

        Fast path: the first piece comes after ``stream_first_frames`` codec frames of the first
        sentence chunk, the next ones after twice as many frames each time, up to ``stream_frames``
        frames per piece; pieces of one chunk join without any seam (the codec decoder carries its
        state), sentence chunks are joined with the same crossfade as :meth:`synthesize` (its last
        few milliseconds are held back until the next chunk starts). A chunk that hits the length
        cap cannot be retried here (its audio is already out): it is reported as ``incomplete``.
        A long text's later chunks are generated in batches while the first one plays alone
        (:meth:`_stream_groups`); their audio still comes out in chunk order.
        Official path: one piece per chunk, with the same retry as :meth:`synthesize`. The final
        :class:`StreamChunk` carries the complete :class:`SynthesisResult`; concatenating every
        piece's audio gives exactly its ``audio``.
        """
        request = self._open(text, params, progress)
        joiner = CrossfadeJoiner(MODEL_SAMPLE_RATE, CROSSFADE_SECONDS)
        with self.lock:
            self._prepare(request, samples, language, size)
            current = -1
            for group in self._stream_groups(len(request.chunks)):
                _check(cancel)
                request.report("generating", group[0], len(request.chunks))
                if self._fast is not None:
                    pieces = self._stream_rows(request, group, cancel)
                else:
                    pieces = ((index, piece) for index in group for piece in self._official_chunk(request, index))
                for index, piece in pieces:
                    ready = joiner.push(piece, crossfade=index != current)
                    current = index
                    if request.first_audio is None:
                        request.first_audio = time.perf_counter() - request.started
                    if len(ready):
                        yield StreamChunk(ready)
        rest = joiner.finish()
        if len(rest):
            yield StreamChunk(rest)
        request.report("saving", len(request.chunks), len(request.chunks))
        yield StreamChunk(np.zeros(0, dtype=np.float32), self._result(request, joiner.whole()))

    # ---- one request, shared by synthesize() and stream() -----------------------------------------
    def _open(self, text: str, params: GenerationParams | None, progress: ProgressFn | None) -> "_Request":
        """Check the text and fix the seed before anything waits for the model lock."""
        chunks = chunk_text(text, CHUNK_MAX_CHARS) if isinstance(text, str) else []
        if not chunks:
            raise InvalidInput("Type some text to speak.")
        return _Request(
            chunks=chunks,
            params=(params or GenerationParams()).with_seed(),
            report=progress or (lambda stage, done, total: None),
            started=time.perf_counter(),
        )

    def _prepare(self, request: "_Request", samples: Sequence[ReferenceSample], language: str | None,
                 size: str | None) -> None:
        """Under the model lock: the model, the language, the voice prompt, then the seed."""
        import torch

        total = len(request.chunks)
        request.report("loading model", 0, total)
        self.ensure_loaded(size)
        request.language = self._language_for_model(language)
        request.report("building voice", 0, total)
        request.prompt, request.cache_hit, request.prompt_seconds = self.voice_prompt(samples, self._size)
        torch.manual_seed(request.params.seed)

    def _settle(self, request: "_Request", index: int, codes: Any, ran_away: bool) -> Any:
        """A chunk's final codes: one that ran away is generated again with another seed (derived
        from the request's, so a take is reproducible); if that runs away too it is recorded."""
        if not ran_away:
            return codes
        import torch

        torch.manual_seed((request.params.seed + 7919 * (index + 1)) % (2**31 - 1))
        retry, again = self._generate_codes(request, [request.chunks[index]])
        if again[0]:
            request.failed.append(index)
        return retry[0]

    def _official_chunk(self, request: "_Request", index: int) -> Iterator[np.ndarray]:
        """Official path, one sentence chunk: generate (with the retry), decode, one piece."""
        codes, runaway = self._generate_codes(request, [request.chunks[index]])
        codes = self._settle(request, index, codes[0], runaway[0])
        t0 = time.perf_counter()
        piece = self.decode(codes, request.prompt)
        request.decode_s += time.perf_counter() - t0
        yield piece

    def _result(self, request: "_Request", audio: np.ndarray) -> SynthesisResult:
        """The take and what is worth recording about it; also sets :attr:`last_profile`."""
        status, message = self._status_for(request.failed, len(request.chunks))
        total = time.perf_counter() - request.started
        timings = {
            "prompt": round(request.prompt_seconds, 4),
            "generate": round(request.generate_s, 4),
            "decode": round(request.decode_s, 4),
        }
        if request.first_audio is not None:
            timings["first_audio"] = round(request.first_audio, 4)
        timings["total"] = round(total, 4)
        self.last_profile = request.profile.finish(request.decode_s, total, frames=len(audio) // SAMPLES_PER_FRAME,
                                                   first_audio=request.first_audio)
        lang = request.language
        return SynthesisResult(
            audio=audio,
            sample_rate=MODEL_SAMPLE_RATE,
            model=self.models[self._size],
            size=self._size,
            mode=request.prompt.mode,
            seed=request.params.seed,
            language="Auto" if lang == "auto" else lang.title(),
            timings=timings,
            cache_hit=request.cache_hit,
            chunks=len(request.chunks),
            status=status,
            message=message,
            params=request.params.to_dict(),
        )

    def _stream_groups(self, count: int) -> list[list[int]]:
        """Which sentence chunks :meth:`stream` generates together.

        The first chunk goes alone, so the first audio waits for one prompt's prefill only; the
        rest go in batches of up to ``max_batch``. On a CPU the decode loop is bound by reading the
        weights, so a batch of four costs little more per frame than one row: a long text is
        done in about a third of the time. The CUDA graphs take one row, so they get one chunk
        at a time.
        """
        rows = self._rows_per_batch()
        if self._fast is None or rows < 2 or count < 3:
            return [[i] for i in range(count)]
        rest = list(range(1, count))
        return [[0]] + [rest[i : i + rows] for i in range(0, len(rest), rows)]

    def _rows_per_batch(self) -> int:
        """Chunks generated together: ``max_batch``, or one when the CUDA graphs make the frames."""
        return 1 if self._graphs is not None else self.max_batch

    def _stream_rows(self, request: "_Request", indices: list[int],
                     cancel: threading.Event | None) -> Iterator[tuple[int, np.ndarray]]:
        """Fast path, one or more sentence chunks generated together: ``(chunk index, audio)`` in
        chunk order. The first row plays as its frames are made (the first piece after
        ``stream_first_frames`` frames, then doubling up to ``stream_frames``); the other rows are
        decoded as they go and held back until every row before them has finished."""
        import torch

        texts = [request.chunks[i] for i in indices]
        inputs, caps = self._talker_inputs(texts, request.prompt, request.language, request.params)
        rows = len(indices)
        codecs = [self._codec_stream(request.prompt) for _ in indices]
        pending: list[list[Any]] = [[] for _ in indices]  # frames not decoded yet
        held: list[list[np.ndarray]] = [[] for _ in indices]  # audio of rows still waiting their turn
        produced = [0] * rows
        finished = [False] * rows
        live = 0  # the row whose audio is going out now
        due = self.stream_first_frames
        eos = inputs.kwargs.get("eos_token_id")
        clock = time.perf_counter

        def decode(row: int) -> np.ndarray:
            started = clock()
            audio = codecs[row].push(torch.stack(pending[row])).float().cpu().numpy()
            request.decode_s += clock() - started
            pending[row] = []
            return audio

        frames, source = self._frames(inputs, max(caps))
        t0 = clock()
        try:
            for frame in frames:
                request.generate_s += clock() - t0
                for row in range(rows):
                    if finished[row]:
                        continue
                    if eos is not None and int(frame[row, 0]) == eos:
                        finished[row] = True
                        continue
                    pending[row].append(frame[row])
                    produced[row] += 1
                    finished[row] = produced[row] >= caps[row] - 1
                _check(cancel)
                if pending[live] and (len(pending[live]) >= due or finished[live]):
                    yield indices[live], decode(live)
                    due = min(2 * due, self.stream_frames)
                for row in range(live + 1, rows):
                    if pending[row] and (len(pending[row]) >= self.stream_frames or finished[row]):
                        held[row].append(decode(row))
                while finished[live] and not pending[live] and live + 1 < rows:
                    live += 1
                    for audio in held[live]:
                        yield indices[live], audio
                    held[live] = []
                if all(finished):
                    break
                t0 = clock()
        finally:
            frames.close()
        request.profile.add_generation(source)
        for row in range(live, rows):
            for audio in held[row]:
                yield indices[row], audio
            if pending[row]:
                yield indices[row], decode(row)
        request.failed.extend(index for row, index in enumerate(indices) if produced[row] >= caps[row] - 1)

    def _use_graphs(self, inputs: TalkerInputs, cap: int) -> bool:
        return self._graphs is not None and self._graphs.fits(inputs, cap - 1)

    def _frames(self, inputs: TalkerInputs, cap: int) -> tuple[Iterator[Any], Any]:
        """The frame source for these inputs: the CUDA graphs when they can take them, else
        voicebox's loop; and the object whose ``stats`` describe the run."""
        if self._use_graphs(inputs, cap):
            return self._graph_frames(inputs, cap), self._graphs
        self.fast_generations += 1
        return self._fast.frames(inputs), self._fast

    def _graph_frames(self, inputs: TalkerInputs, cap: int) -> Iterator[Any]:
        """The graphs' frames; if they fail before the first frame (a replay error on some driver
        or version), the graphs are switched off for this load and voicebox's loop makes the take."""
        self.graph_generations += 1
        frames = self._graphs.frames(inputs, cap - 1)
        try:
            first = next(frames)
        except StopIteration:
            return
        except Exception as exc:
            frames.close()
            self._graphs = None
            self._graphs_note = f"CUDA graphs failed while generating ({type(exc).__name__}: {exc})"
            log.warning("%s; using voicebox's decode loop from now on", self._graphs_note)
            self.fast_generations += 1
            yield from self._fast.frames(inputs)
            return
        yield first
        yield from frames

    @staticmethod
    def _status_for(failed: list[int], total: int) -> tuple[str, str]:
        if not failed:
            return "ok", ""
        which = ", ".join(str(i + 1) for i in failed)
        return "incomplete", (
            f"The model did not finish speaking chunk {which} of {total} (it hit the length limit); "
            "that part may be cut off or noisy. Try another seed, or shorter sentences."
        )

    def _caps(self, texts: list[str], params: GenerationParams) -> list[int]:
        model = self._model
        ceiling = int((model.generate_defaults or {}).get("max_new_tokens", 8192))
        if self.max_frames:
            ceiling = min(ceiling, self.max_frames + 1)
        return [params.max_new_tokens or max_frames_for(t, ceiling) for t in texts]

    def _generate_kwargs(
        self, texts: list[str], prompt: VoicePrompt, language: str, params: GenerationParams, max_new_tokens: int
    ) -> dict[str, Any]:
        """Arguments of the official ``Qwen3TTSForConditionalGeneration.generate`` for these chunks."""
        model = self._model
        ref_ids = None
        if prompt.mode == "icl":
            ref_ids = [model._tokenize_texts([model._build_ref_text(prompt.ref_text)])[0]] * len(texts)
        voice = {
            "ref_code": [prompt.ref_code] * len(texts),
            "ref_spk_embedding": [prompt.ref_spk_embedding] * len(texts),
            "x_vector_only_mode": [prompt.mode != "icl"] * len(texts),
            "icl_mode": [prompt.mode == "icl"] * len(texts),
        }
        return dict(
            input_ids=model._tokenize_texts([model._build_assistant_text(t) for t in texts]),
            ref_ids=ref_ids,
            voice_clone_prompt=voice,
            languages=[language] * len(texts),
            non_streaming_mode=False,
            max_new_tokens=max_new_tokens,
            **params.sampling_kwargs(),
        )

    def _talker_inputs(
        self, texts: list[str], prompt: VoicePrompt, language: str, params: GenerationParams
    ) -> tuple[TalkerInputs, list[int]]:
        """The talker's inputs for these chunks (built by the official code) and each one's frame cap."""
        caps = self._caps(texts, params)
        kwargs = self._generate_kwargs(texts, prompt, language, params, max(caps))
        return capture_talker_inputs(self._model.model, **kwargs), caps

    def _generate_codes(self, request: "_Request", texts: list[str]) -> tuple[list[Any], list[bool]]:
        """Talker + code predictor for a batch of chunks: codec frames per chunk and runaway flags
        (a chunk that reached its cap never emitted end-of-speech)."""
        import torch

        caps = self._caps(texts, request.params)
        kwargs = self._generate_kwargs(texts, request.prompt, request.language, request.params, max(caps))
        started = time.perf_counter()
        if self._fast is not None:
            inputs = capture_talker_inputs(self._model.model, **kwargs)
            if len(texts) == 1 and self._use_graphs(inputs, caps[0]):
                source = self._graphs
                made = list(self._graph_frames(inputs, caps[0]))
                empty = inputs.inputs_embeds.new_zeros((0, 16), dtype=torch.long)
                codes_list = [torch.cat(made) if made else empty]
            else:
                codes_list, source = self._fast.generate(inputs), self._fast
                self.fast_generations += 1
            request.profile.add_generation(source)
        else:
            codes_list, _ = self._model.model.generate(**kwargs)
            self.official_generations += 1
        request.generate_s += time.perf_counter() - started
        trimmed, runaway = [], []
        for codes, cap in zip(codes_list, caps):
            runaway.append(int(codes.shape[0]) >= cap - 1)
            trimmed.append(codes[: cap - 1])
        return trimmed, runaway

    def _codec_stream(self, prompt: VoicePrompt) -> CodecStream:
        """An incremental codec decoder primed with this voice's reference (primed once per voice)."""
        decoder = self._model.model.speech_tokenizer.model.decoder
        stream = CodecStream(decoder)
        if prompt.ref_code is None:
            return stream
        ref = prompt.ref_code[-PRIME_FRAMES:]
        key = hashlib.sha256(ref.detach().cpu().numpy().astype(np.int64).tobytes()).hexdigest()
        state = self._primed.pop(key, None)
        if state is None:
            stream.prime(ref)
            state = stream.snapshot()
        self._primed[key] = state  # most recently used last
        while len(self._primed) > PRIMED_VOICES:
            self._primed.pop(next(iter(self._primed)))
        return stream.restore(state)

    def decode(self, codes: Any, prompt: VoicePrompt | None = None) -> np.ndarray:
        """Codec frames -> float32 audio, with up to 25 reference frames as left context."""
        import torch

        if codes is None or int(codes.shape[0]) == 0:
            return np.zeros(0, dtype=np.float32)
        decoder = self._model.model.speech_tokenizer.model.decoder
        context = None
        if prompt is not None and prompt.ref_code is not None:
            context = prompt.ref_code[-DECODE_LEFT_CONTEXT:].to(codes.device)
        frames = codes if context is None else torch.cat([context, codes], dim=0)
        with torch.inference_mode():
            wav = decoder.chunked_decode(torch.clamp(frames, min=0).T.unsqueeze(0).long())
        wav = wav.reshape(-1).float().cpu().numpy()
        skip = 0 if context is None else int(context.shape[0]) * SAMPLES_PER_FRAME
        return wav[skip : int(frames.shape[0]) * SAMPLES_PER_FRAME].astype(np.float32)


class _Profile:
    """Adds up the decode loop's per-stage seconds over the generations of one request."""

    def __init__(self) -> None:
        self.stages = {"prefill": 0.0, "talker": 0.0, "code_predictor": 0.0}

    def add_generation(self, source: Any) -> None:
        """``source``: the loop that ran (its ``stats`` is a ``FrameStats``), or ``None``."""
        stats = getattr(source, "stats", None)
        if stats is None:
            return
        self.stages["prefill"] += stats.prefill
        self.stages["talker"] += stats.talker
        self.stages["code_predictor"] += stats.code_predictor

    def finish(self, decode: float, total: float, frames: int, first_audio: float | None = None) -> dict[str, float]:
        out = {k: round(v, 4) for k, v in self.stages.items()}
        out.update(decode=round(decode, 4), total=round(total, 4), frames=frames)
        if first_audio is not None:
            out["first_audio"] = round(first_audio, 4)
        return out


@dataclass
class _Request:
    """One request's state, shared by :meth:`TTSEngine.synthesize` and :meth:`TTSEngine.stream`."""

    chunks: list[str]
    params: GenerationParams
    report: ProgressFn
    started: float
    language: str = "auto"
    prompt: VoicePrompt | None = None
    cache_hit: bool = False
    prompt_seconds: float = 0.0
    failed: list[int] = field(default_factory=list)  # chunks that never finished
    generate_s: float = 0.0
    decode_s: float = 0.0
    first_audio: float | None = None  # streaming only
    profile: _Profile = field(default_factory=_Profile)


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("Generation cancelled.")
