"""``RemoteBackend``: the speech seam served by vLLM-Omni servers (``VOICEBOX_BACKEND=remote``).

Why: one GPU in voicebox's own process makes one take at a time. vLLM-Omni batches every request
in flight on a server (continuous batching) and runs on as many GPUs and replicas as one has, so
voicebox stays the studio (library, history, projects, quality gate, users) and sends the model
work there. This backend behaves like the local engines, so everything above the seam is unchanged:

* **chunks** of a request go out concurrently, at most ``concurrency`` at once (so a project
  render's or a batch's chunks reach the server together and are batched there), and come back
  in order; :meth:`RemoteBackend.rows_per_batch` tells the studio it may hand over that many;
* **seeds**: each chunk is seeded with :func:`~voicebox.engines.params.chunk_seed`, like the local
  engines; the sampling options travel as vLLM-Omni names them (:mod:`.protocol`);
* **the runaway cap**: each chunk's ``max_new_tokens`` is the local engines' cap; a chunk that
  reaches it is flagged ``hit_cap`` with the audio made so far, and a take that is not streamed
  makes it once more with its re-take seed, as the GGML engine does;
* **streaming**: the server's SSE deltas become :class:`~voicebox.speech.AudioPiece` events;
  **cancel** closes the HTTP stream (the server stops that request) and raises ``Cancelled``;
* **voices**: registered once per server (:mod:`.voices`), or sent inline;
* **failures**: a server that fails is taken out and the chunk is tried on another
  (:mod:`.router`); what reaches the user is a :class:`~voicebox.errors.ModelUnavailable` or
  :class:`~voicebox.errors.InvalidInput` that says what to do - never a trace, a key or a path.

The model lock is not taken for remote work (it guards local models such as Whisper, which keep
sharing it through :attr:`RemoteBackend.lock`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpx

from ..engines.model_lock import FairLock
from ..engines.params import GenerationParams
from ..errors import Cancelled, InvalidInput, ModelUnavailable
from ..languages import QWEN_LANGUAGES, display, is_auto
from ..speech import AudioPiece, ModelSpec, Progress, SpeechDone, SpeechEvent, SpeechRequest, VoiceSample
from .chunks import ChunkMaker
from .protocol import SAMPLE_RATE
from .router import UP, Router, model_size
from .take import ChunkJob, Take
from .voices import MAX_REFERENCES, VoiceRegistry

#: The official Qwen3-TTS checkpoints' languages (the server validates against its own list).
LANGUAGES = QWEN_LANGUAGES


class RemoteBackend:
    """Qwen3-TTS Base on vLLM-Omni servers.

    Args:
        urls: the servers' base URLs (``VOICEBOX_REMOTE_URLS``).
        api_key: sent as ``Authorization: Bearer`` (``VOICEBOX_REMOTE_API_KEY``); never shown.
        timeout: seconds a request may stay silent (``VOICEBOX_REMOTE_TIMEOUT``).
        concurrency: chunks of one request in flight at once (``VOICEBOX_REMOTE_CONCURRENCY``).
        max_frames: hard cap on frames per chunk (0: derived from the text).
        models: the configured model per size, shown until the servers say what they serve.
        lock: the process-wide model lock, kept for the local models that share it.
    """

    name = "qwen3-tts-remote"

    def __init__(self, urls: Sequence[str], api_key: str | None = None, timeout: float = 120.0,
                 concurrency: int = 4, max_frames: int = 0, models: dict[str, str] | None = None,
                 lock: Any = None, why: str = "", backoff: float = 2.0) -> None:
        self.timeout = float(timeout)
        self.concurrency = max(1, int(concurrency))
        self.max_frames = int(max_frames)
        self.models_by_size = dict(models or {})
        self.lock = lock or FairLock()
        count = len(urls)
        self.why = why or f"VOICEBOX_BACKEND=remote: {count} vLLM-Omni server{'s' if count != 1 else ''}"
        self._key = api_key or None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
            limits=httpx.Limits(max_connections=max(16, 2 * self.concurrency * count)),
        )
        self.router = Router(list(urls), self.client, headers, health_timeout=min(5.0, self.timeout),
                             backoff=backoff, secret=self._key)
        self.voices = VoiceRegistry(self.router)
        self.chunks = ChunkMaker(self.client, self.router, self.voices, self.timeout, self.max_frames, self._key)
        self._loaded: str | None = None
        self._load_seconds = 0.0
        self.takes = 0

    # ---- what it offers ---------------------------------------------------------------------
    def model_specs(self) -> list[ModelSpec]:
        """What the servers serve (by the size in their model ids), else what is configured."""
        served: dict[str, str] = {}
        for server in self.router.servers:
            if server.model:
                served.setdefault(server.size or "remote", server.model)
        specs = served or self.models_by_size or {"0.6B": "remote"}
        return [ModelSpec("base", size, source) for size, source in sorted(specs.items(), key=_size_order)]

    def languages(self) -> list[str]:
        return ["Auto", *sorted(LANGUAGES)]

    def language_for_server(self, language: str | None) -> str:
        if is_auto(language):
            return "Auto"
        name = display(language)
        if name not in LANGUAGES:
            raise InvalidInput(f"Language {language!r} is not supported by this model; use one of "
                               f"{', '.join(self.languages())}.")
        return name

    def rows_per_batch(self) -> int:
        """Chunks worth handing over together: as many as go to the servers at once."""
        return self.concurrency

    # ---- load / status ----------------------------------------------------------------------
    @property
    def loaded_size(self) -> str | None:
        return self._loaded

    def load(self, size: str | None = None) -> dict[str, Any]:
        """"Loading" is making sure the servers answer (and reading which model each serves).

        Raises:
            ModelUnavailable: no server answers.
            InvalidInput: no server serves ``size``.
        """
        started = time.perf_counter()
        if not self.router.check_all():
            raise ModelUnavailable(self.router._none_message(None))
        sizes = {s.size for s in self.router.up()}
        if size is not None and None not in sizes and size not in sizes:
            raise InvalidInput(f"Model size {size!r} is not available; use one of "
                               f"{', '.join(sorted(str(s) for s in sizes))}.")
        self._loaded = size or next((s.size for s in self.router.up() if s.size), None) or self._fallback_size()
        self._load_seconds = time.perf_counter() - started
        return self.status()

    def _fallback_size(self) -> str:
        return next(iter(self.models_by_size), "0.6B")

    def unload(self) -> None:
        """Nothing to free here; the servers keep their models."""
        self._loaded = None

    def status(self) -> dict[str, Any]:
        """The Models tab's and ``/health``'s view: every server and its state (never the key)."""
        servers = self.router.snapshot()
        up = [s for s in servers if s["state"] == UP]
        loaded = self._loaded is not None and bool(up)
        model = next((s["model"] for s in up if s["model"] and model_size(s["model"]) in (None, self._loaded)), None)
        return {
            "loaded": loaded,
            "backend": self.name,
            "engine": "remote",
            "why": self.why,
            "variant": "base" if loaded else None,
            "size": self._loaded if loaded else None,
            "model": model or (self.models_by_size.get(self._loaded or "") if loaded else None),
            "device": f"remote: {len(up)} of {len(servers)} server{'s' if len(servers) != 1 else ''} up",
            "dtype": None,
            "sizes": {spec.size: spec.source for spec in self.model_specs()},
            "load_seconds": round(self._load_seconds, 2) if loaded else None,
            "memory_mb": 0.0,
            "decode_loop": "vllm-omni" if loaded else None,
            "concurrency": self.concurrency,
            "timeout_s": self.timeout,
            "servers": servers,
        }

    # ---- voices -------------------------------------------------------------------------------
    def prepare_voice(self, voice: Sequence[VoiceSample], size: str | None = None) -> bool:
        """Build the reference and register it on every server that is up; True when nothing new
        had to be built or uploaded."""
        if not voice:
            raise InvalidInput("This profile has no samples yet. Add a recording first.")
        ref, hit = self.voices.reference(voice)
        if not self.router.up():
            self.router.check_all()
        return self.voices.prepare(ref, self.router.up()) and hit

    def forget_voices(self, sample_hashes: Iterable[str]) -> int:
        return self.voices.forget(sample_hashes)

    def clear_voices(self) -> dict[str, Any]:
        self.voices.clear()
        return self.voice_cache_stats()

    def voice_cache_stats(self) -> dict[str, Any]:
        return {**self.voices.stats(), "memory_capacity": MAX_REFERENCES}

    # ---- takes --------------------------------------------------------------------------------
    def cap(self, text: str, params: GenerationParams) -> int:
        """The chunk's frame cap (see :meth:`.chunks.ChunkMaker.cap`)."""
        return self.chunks.cap(text, params)

    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[SpeechEvent]:
        """Make a take: every chunk sent (``concurrency`` at a time), results yielded in order."""
        if not request.chunks:
            raise InvalidInput("Type some text to speak.")
        if not request.voice:
            raise InvalidInput("This profile has no samples yet. Add a recording first.")
        if request.params.seed is None:
            request = _with_seed(request)
        total = len(request.chunks)
        yield Progress("loading model", 0, total)
        if self._loaded is None or (request.size and request.size != self._loaded):
            self.load(request.size)
        take = Take(request, size=request.size or self._loaded, language=self.language_for_server(request.language))
        yield Progress("building voice", 0, total)
        take.ref, take.cache_hit = self.voices.reference(request.voice)
        take.prompt_seconds = time.perf_counter() - take.started
        jobs = [ChunkJob(i, text) for i, text in enumerate(request.chunks)]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, total), thread_name_prefix="voicebox-remote")
        try:
            for job in jobs:
                pool.submit(self.chunks.run, take, job)
            for job in jobs:
                yield Progress("generating", job.index, total)
                yield from self._collect(take, job, cancel)
        finally:
            take.stop.set()
            take.close_streams()
            pool.shutdown(wait=False, cancel_futures=True)
        self.takes += 1
        yield Progress("saving", total, total)
        yield self._done(take)

    def _collect(self, take: Take, job: ChunkJob, cancel: threading.Event | None) -> Iterator[SpeechEvent]:
        """Wait for ``job``'s events (its pieces when streaming, then its result), watching cancel."""
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled("Generation cancelled.")
            try:
                kind, value = job.events.get(timeout=0.05)
            except queue.Empty:
                continue
            if kind == "piece":
                if take.first_audio is None:
                    take.first_audio = time.perf_counter() - take.started
                yield AudioPiece(job.index, value)
            elif kind == "error":
                raise value
            else:
                yield value
                return

    def _done(self, take: Take) -> SpeechDone:
        timings = {"prompt": round(take.prompt_seconds, 4), "generate": round(take.generate_s, 4), "decode": 0.0}
        if take.first_audio is not None:
            timings["first_audio"] = round(take.first_audio, 4)
        timings["total"] = round(time.perf_counter() - take.started, 4)
        size = take.size or self._fallback_size()
        source = next((s.model for s in self.router.servers if s.model and s.size in (None, size)), None)
        return SpeechDone(model=ModelSpec("base", size, source or self.models_by_size.get(size, "remote")),
                          mode=take.ref.mode if take.ref else "icl", language=display(take.language),
                          cache_hit=take.cache_hit, sample_rate=SAMPLE_RATE, timings=timings)


def _with_seed(request: SpeechRequest) -> SpeechRequest:
    return replace(request, params=request.params.with_seed())


def _size_order(item: tuple[str, str]) -> tuple[float, str]:
    size = item[0]
    try:
        return float(size.rstrip("Bb")), size
    except ValueError:
        return float("inf"), size


__all__ = ["LANGUAGES", "RemoteBackend"]
