"""The GGML engine: Qwen3-TTS on qwentts.cpp's quantised CPU kernels, behind the speech seam.

Why a second engine: on a CPU, generating a frame means reading every talker and code-predictor
weight (~1.7 billion per 80 ms frame for 0.6B), so speed is memory bandwidth, and PyTorch's CPU
kernels reach it only in fp32 (16-bit and int8 matrix-vector products are slower still). GGML's
Q8_0 / Q4_K kernels (llama.cpp's) read 8- or 4.5-bit weights near bandwidth. What the library is
and how it is driven: :mod:`.ggml_runtime`; its files: :mod:`.ggml_files`, :mod:`.gguf_convert`.

:class:`GGMLBackend` is a :class:`~voicebox.speech.SpeechBackend` like the torch
:class:`~voicebox.engines.tts.TTSEngine`, with the same contract:

* **voice prompts** are the library's speaker embedding and, when every sample has a transcript
  (ICL mode), the reference's codec codes: built once with ``extract_voice_ref`` and kept in
  voicebox's :class:`~.prompt_cache.PromptCache` (memory + safetensors), keyed with the engine,
  its files and the quantisation, so they never mix with the torch engine's;
* **chunks** are made one at a time, the model lock taken per chunk; each is seeded with
  :func:`~.params.chunk_seed` and capped with :func:`~.tts.max_frames_for` (or
  ``params.max_new_tokens``); a whole (not streamed) chunk that reaches its cap is made once more
  with its re-take seed, as on the torch engine;
* **streaming** yields the library's audio as its stateful codec decodes it; **cancel** reaches
  the native loop through the library's cancel callback;
* the sampling options map one to one (the sub-talker samples like the talker, as voicebox's
  torch engine does).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..audio import MODEL_SAMPLE_RATE, PREPROCESSING_VERSION, combine_references, load_mono
from ..errors import Cancelled, InvalidInput, ModelUnavailable
from ..languages import AUTO, display, is_auto
from ..languages import key as language_key
from ..speech import AudioPiece, ChunkResult, ModelSpec, Progress, SpeechDone, SpeechEvent, SpeechRequest, VoiceSample
from .ggml_files import GGUFPair, gguf_problems, resolve
from .ggml_runtime import probe, thread_count
from .gguf_convert import normalize_quant
from .model_lock import FairLock
from .params import GenerationParams, chunk_seed
from .prompt_cache import PromptCache, VoicePrompt, prompt_key

SIZES = ("0.6B", "1.7B")
SIZE_VARIABLES = {"0.6B": "VOICEBOX_TTS_MODEL", "1.7B": "VOICEBOX_TTS_MODEL_LARGE"}
SAMPLES_PER_FRAME = 1920
#: The shortest reference the codec encoder takes (one frame); shorter ones are padded with silence.
MIN_REFERENCE = SAMPLES_PER_FRAME
_PERF = re.compile(r"\[Perf\] (\w+) ([\d.]+) ms")
#: The ctypes thunks handed to the library's log hook. The hook is process-wide and outlives the
#: ``QwenTTS`` that set it: a freed thunk would be called by the next load (it logs) - undefined
#: behaviour, seen as a crash. So they are kept for the process, and unloading unhooks first.
_LOG_HOOKS: list[Any] = []


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("Generation cancelled.")


class GGMLBackend:
    """Qwen3-TTS Base on qwentts.cpp (CPU), one model in memory.

    Args:
        models: model setting per size (hub id, checkpoint folder or GGUF folder).
        quant: ``Q8_0``, ``Q4_K_M``, ``BF16`` or ``F32`` (``VOICEBOX_GGUF_QUANT``).
        lock: the process-wide model lock (shared with Whisper).
        prompt_cache: voice-prompt cache (memory + disk).
        cache_dir: where local checkpoints are converted to GGUF.
        max_frames: hard cap on frames per chunk (0: derived from the text).
        threads: CPU threads for the library (default: the CPUs this process may use).
        why: why this engine was chosen (shown by :meth:`status`).
    """

    name = "qwen3-tts-ggml"

    def __init__(self, models: dict[str, str], quant: str = "Q8_0", lock: Any = None,
                 prompt_cache: PromptCache | None = None, cache_dir: Path | str | None = None,
                 max_frames: int = 0, threads: int | None = None, why: str = "") -> None:
        unknown = set(models) - set(SIZES)
        if unknown:
            raise ValueError(f"unknown model sizes: {unknown}")
        self.models_by_size = dict(models)
        self.quant = normalize_quant(quant)
        self.lock = lock or FairLock()
        self.prompt_cache = prompt_cache or PromptCache(None)
        self.cache_dir = Path(cache_dir) if cache_dir else Path("cache")
        self.max_frames = int(max_frames)
        self.threads = int(threads or thread_count())
        self.why = why
        self._tts: Any = None
        self._size: str | None = None
        self._files: GGUFPair | None = None
        self._how = ""
        self._languages: list[str] = []
        self._ceiling = 8192
        self._load_seconds = 0.0
        self._perf: dict[str, float] = {}
        self.loads = 0
        self.prompt_builds = 0
        #: Per-stage seconds of the last chunk as the library reports them (prefill, talker,
        #: code_predictor, decode) plus first_audio; for benchmarks and the Models tab.
        self.last_profile: dict[str, float] = {}

    # ---- what it offers ---------------------------------------------------------------------
    def model_specs(self) -> list[ModelSpec]:
        return [ModelSpec("base", size, source) for size, source in self.models_by_size.items()]

    def spec(self, size: str | None = None) -> ModelSpec:
        size = size or self._size or SIZES[0]
        return ModelSpec("base", size, self.models_by_size.get(size, ""))

    @property
    def loaded_size(self) -> str | None:
        return self._size if self._tts is not None else None

    def languages(self) -> list[str]:
        from .tts import DEFAULT_LANGUAGES

        names = self._languages if self._tts is not None else [n.lower() for n in DEFAULT_LANGUAGES]
        return ["Auto", *sorted(display(n) for n in names)]

    def language_for_model(self, language: str | None) -> str:
        """The library's name for a stored language (``auto`` or a lower-case name)."""
        if is_auto(language):
            return AUTO
        wanted = language_key(language)
        if self._languages and wanted not in self._languages:
            raise InvalidInput(f"Language {language!r} is not supported by this model; use one of "
                               f"{', '.join(self.languages())}.")
        return wanted

    # ---- loading --------------------------------------------------------------------------
    def _check_size(self, size: str | None) -> str:
        size = size or self._size or next(iter(self.models_by_size), SIZES[0])
        if size not in self.models_by_size:
            raise InvalidInput(f"Model size {size!r} is not available; use one of {', '.join(self.models_by_size)}.")
        return size

    def load(self, size: str | None = None) -> dict[str, Any]:
        """Load ``size`` (default: the current or smallest) once; switching frees the other.

        Raises:
            ModelUnavailable: the library cannot run here, or the GGUF files cannot be had or run.
        """
        size = self._check_size(size)
        with self.lock:
            if self._tts is not None and self._size == size:
                return self.status()
            runtime = probe()
            if not runtime.ok:
                raise ModelUnavailable(f"The GGML engine cannot run: {runtime.why}.")
            self.unload()
            started = time.perf_counter()
            resolved = resolve(self.models_by_size[size], self.quant, self.cache_dir, SIZE_VARIABLES[size])
            problems = gguf_problems(resolved.files)
            if problems:
                raise ModelUnavailable(f"The GGML engine cannot run {resolved.files.talker.parent}: "
                                       + "; ".join(problems) + ".")
            from qwentts_cpp_cpu import QwenTTS, QwenTTSError

            try:
                tts = QwenTTS(resolved.files.talker, resolved.files.codec, cpu_threads=self.threads)
            except (QwenTTSError, OSError, ValueError) as exc:
                raise ModelUnavailable(f"qwentts.cpp could not load {resolved.files.talker.name}: {exc}") from exc
            tts.set_log_callback(self._on_log)
            _LOG_HOOKS.append(getattr(tts.library, "_log_callback", None))
            self._read_metadata(resolved.files.talker)
            self._tts, self._size, self._files, self._how = tts, size, resolved.files, resolved.how
            self._load_seconds = time.perf_counter() - started
            self.loads += 1
            return self.status()

    def _read_metadata(self, talker: Path) -> None:
        from gguf import GGUFReader

        reader = GGUFReader(talker)
        names = reader.get_field("qwen3-tts.codec.language_names")
        self._languages = [str(n).lower() for n in names.contents()] if names is not None else []
        ceiling = reader.get_field("generation.max_new_tokens")
        self._ceiling = int(ceiling.contents()) if ceiling is not None else 8192

    def _on_log(self, level: int, message: str) -> None:
        match = _PERF.search(message)
        if match:
            self._perf[match[1]] = float(match[2]) / 1000.0

    def ensure_loaded(self, size: str | None = None) -> Any:
        size = self._check_size(size)
        if self._tts is None or self._size != size:
            self.load(size)
        return self._tts

    def unload(self) -> None:
        with self.lock:
            if self._tts is not None:
                self._tts.set_log_callback(None)  # back to stderr before the thunk's owner goes
                self._tts.close()
            self._tts, self._size, self._files = None, None, None

    def status(self) -> dict[str, Any]:
        """Engine, quantisation and why, plus what the Models tab shows for any engine."""
        loaded = self._tts is not None
        files = self._files
        runtime = probe()
        return {
            "loaded": loaded,
            "backend": self.name,
            "engine": "ggml",
            "why": self.why,
            "variant": "base" if loaded else None,
            "size": self._size if loaded else None,
            "model": self.models_by_size.get(self._size or "") if loaded else None,
            "device": "cpu",
            "dtype": self.quant,
            "quant": self.quant,
            "threads": self.threads,
            "native": runtime.why,
            "files": {"talker": str(files.talker), "codec": str(files.codec)} if loaded and files else None,
            "source": self._how if loaded else None,
            "sizes": dict(self.models_by_size),
            "load_seconds": round(self._load_seconds, 2) if loaded else None,
            "memory_mb": round((files.talker.stat().st_size + files.codec.stat().st_size) / 2**20, 1)
            if loaded and files else 0.0,
            "decode_loop": "qwentts.cpp" if loaded else None,
        }

    # ---- voice prompts ------------------------------------------------------------------------
    def _model_id(self) -> str:
        files = self._files
        return f"ggml:{files.talker}|{files.codec}" if files else "ggml"

    def voice_prompt(self, samples: Sequence[VoiceSample], size: str | None = None) -> tuple[VoicePrompt, bool, float]:
        """The voice prompt for these samples: from the cache, or extracted and cached.

        Returns:
            (prompt, cache_hit, seconds spent).
        """
        if not samples:
            raise InvalidInput("This profile has no samples yet. Add a recording first.")
        started = time.perf_counter()
        mode = "icl" if all(s.text.strip() for s in samples) else "xvector"
        with self.lock:
            self.ensure_loaded(size)
            key = prompt_key(self._model_id(), self._size, self.quant, mode,
                             [(s.sha256, s.text.strip() if mode == "icl" else "") for s in samples],
                             PREPROCESSING_VERSION)
            prompt = self.prompt_cache.get(key)
            if prompt is not None:
                return prompt, True, time.perf_counter() - started
            prompt = self._build_prompt(samples, mode)
            self.prompt_builds += 1
            self.prompt_cache.put(key, prompt)
            return prompt, False, time.perf_counter() - started

    def _build_prompt(self, samples: Sequence[VoiceSample], mode: str) -> VoicePrompt:
        import torch

        parts = [(load_mono(s.path, MODEL_SAMPLE_RATE), s.text) for s in samples]
        audio, text = combine_references(parts, MODEL_SAMPLE_RATE)
        audio = np.asarray(audio, dtype=np.float32)
        if audio.size < MIN_REFERENCE:
            audio = np.pad(audio, (0, MIN_REFERENCE - audio.size))
        ref = self._tts.extract_voice_ref(audio)
        return VoicePrompt(
            mode=mode,
            ref_spk_embedding=torch.from_numpy(np.array(ref.ref_spk_emb, dtype=np.float32)),
            # stored frames-first (T x 16), as the torch engine's prompts are
            ref_code=torch.from_numpy(np.ascontiguousarray(ref.ref_codes.T, dtype=np.int64)) if mode == "icl" else None,
            ref_text=text if mode == "icl" else None,
            sample_hashes=[s.sha256 for s in samples],
            model=self._model_id(),
        )

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
    def cap(self, text: str, params: GenerationParams) -> int:
        """The chunk's frame cap in the torch engine's terms: at most ``cap - 1`` frames."""
        from .tts import max_frames_for

        ceiling = self._ceiling if not self.max_frames else min(self._ceiling, self.max_frames + 1)
        return max(2, params.max_new_tokens or max_frames_for(text, ceiling))

    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[SpeechEvent]:
        """Make a take as a stream of events: chunk by chunk, the model lock taken per chunk."""
        if not request.chunks:
            raise InvalidInput("Type some text to speak.")
        if not request.voice:
            raise InvalidInput("This profile has no samples yet. Add a recording first.")
        take = _Take(request, time.perf_counter())
        total = len(request.chunks)
        yield Progress("loading model", 0, total)
        with self.lock:
            self.ensure_loaded(request.size)
            take.size = self._size
            take.language = self.language_for_model(request.language)
            yield Progress("building voice", 0, total)
            take.prompt, take.cache_hit, take.prompt_seconds = self.voice_prompt(request.voice, take.size)
            take.loads = self.loads
        for index, text in enumerate(request.chunks):
            _check_cancel(cancel)
            yield Progress("generating", index, total)
            with self.lock:
                self.ensure_loaded(take.size)
                if take.loads != self.loads:  # another request switched sizes in between
                    take.prompt = self.voice_prompt(request.voice, take.size)[0]
                    take.loads = self.loads
                seed = chunk_seed(request.params.seed, index)
                result = yield from self._chunk(take, index, text, seed, cancel)
                if result.hit_cap and not request.stream:
                    again = chunk_seed(request.params.seed, index, 1)
                    result = yield from self._chunk(take, index, text, again, cancel)
            yield result
        yield Progress("saving", total, total)
        yield self._done(take)

    def _chunk(self, take: "_Take", index: int, text: str, seed: int,
               cancel: threading.Event | None) -> Iterator[SpeechEvent]:
        """One chunk through the library's streaming call; returns its :class:`ChunkResult`."""
        params = take.request.params
        cap = self.cap(text, params)
        prompt = take.prompt
        voice: dict[str, Any] = {"ref_spk_emb": prompt.ref_spk_embedding.detach().cpu().numpy().astype(np.float32)}
        if prompt.mode == "icl":
            voice["ref_codes"] = np.ascontiguousarray(prompt.ref_code.detach().cpu().numpy().T, dtype=np.int32)
            voice["ref_text"] = prompt.ref_text
        self._perf = {}
        started = time.perf_counter()
        pieces: list[np.ndarray] = []
        stream = self._tts.stream(
            text=text, lang=take.language, seed=int(seed), max_new_tokens=cap - 1,
            do_sample=params.do_sample, temperature=params.temperature, top_k=params.top_k, top_p=params.top_p,
            repetition_penalty=params.repetition_penalty, cancel_event=cancel, **voice,
        )
        try:
            for audio, _rate in stream:
                pieces.append(audio)
                if take.request.stream:
                    if take.first_audio is None:
                        take.first_audio = time.perf_counter() - take.started
                    yield AudioPiece(index, audio)
        finally:
            stream.close()
        _check_cancel(cancel)
        spent = time.perf_counter() - started
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        frames = -(-audio.size // SAMPLES_PER_FRAME)
        decode = self._perf.get("CodecDecode", 0.0)
        take.decode_s += decode
        take.generate_s += max(0.0, spent - decode)
        take.frames += frames
        self.last_profile = {
            "prefill": self._perf.get("Prefill", 0.0), "talker": self._perf.get("TalkerDecode", 0.0),
            "code_predictor": self._perf.get("CodePredictor", 0.0), "decode": decode,
            "total": round(spent, 4), "frames": frames,
        }
        return ChunkResult(index, text, audio, MODEL_SAMPLE_RATE, seed, frames=frames, hit_cap=frames >= cap - 1,
                           timings={"decode": round(decode, 4), "total": round(spent, 4)})

    def _done(self, take: "_Take") -> SpeechDone:
        timings = {"prompt": round(take.prompt_seconds, 4), "generate": round(take.generate_s, 4),
                   "decode": round(take.decode_s, 4)}
        if take.first_audio is not None:
            timings["first_audio"] = round(take.first_audio, 4)
            self.last_profile["first_audio"] = round(take.first_audio, 4)
        timings["total"] = round(time.perf_counter() - take.started, 4)
        return SpeechDone(model=self.spec(take.size), mode=take.prompt.mode, language=display(take.language),
                          cache_hit=take.cache_hit, sample_rate=MODEL_SAMPLE_RATE, timings=timings)


class _Take:
    """One take's state while it is being made."""

    def __init__(self, request: SpeechRequest, started: float) -> None:
        self.request, self.started = request, started
        self.size: str | None = None
        self.language = AUTO
        self.prompt: VoicePrompt | None = None
        self.cache_hit = False
        self.prompt_seconds = 0.0
        self.loads = -1
        self.generate_s = 0.0
        self.decode_s = 0.0
        self.first_audio: float | None = None
        self.frames = 0
