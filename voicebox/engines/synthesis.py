"""One take on the local Qwen3-TTS engine, as a stream of :mod:`voicebox.speech` events.

Why the work is staged rather than one ``generate_voice_clone`` call:

* the talker (codes) and the codec decoder (audio) are timed separately, and the runaway guard
  needs the codes (a chunk that hits its cap never emitted end-of-speech);
* the model lock is taken per batch of sentence chunks, not per take: between batches another
  request (a short take, a transcription) gets its turn, first come first served
  (:class:`~voicebox.engines.model_lock.FairLock`). Each batch seeds its own randomness from the
  take's seed (:func:`~voicebox.engines.params.chunk_seed`), so interleaving never changes a take;
* streaming (fast path) plays the first chunk as its frames are made, then makes the rest in
  batches: on a CPU the loop is bound by reading weights, so four rows cost little more per frame
  than one. Without streaming, every batch is whole and a chunk that ran away is made once more
  with its re-take seed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from ..audio import MODEL_SAMPLE_RATE
from ..errors import Cancelled, InvalidInput
from ..languages import display
from ..speech import AudioPiece, ChunkResult, Progress, SpeechDone, SpeechEvent, SpeechRequest
from .params import chunk_seed
from .prompt_cache import VoicePrompt

if TYPE_CHECKING:
    from .tts import TTSEngine


class StageTimes:
    """Adds up the decode loop's per-stage seconds over the batches of one take."""

    def __init__(self) -> None:
        self.stages = {"prefill": 0.0, "talker": 0.0, "code_predictor": 0.0}

    def add(self, source: Any) -> None:
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
class Take:
    """One take's state while it is being made."""

    request: SpeechRequest
    started: float
    size: str | None = None
    language: str = "auto"
    prompt: VoicePrompt | None = None
    prompt_loads: int = -1  # the engine's load count when ``prompt`` was fetched
    cache_hit: bool = False
    prompt_seconds: float = 0.0
    generate_s: float = 0.0
    decode_s: float = 0.0
    first_audio: float | None = None
    frames: int = 0
    stages: StageTimes = field(default_factory=StageTimes)

    @property
    def chunks(self) -> tuple[str, ...]:
        return self.request.chunks


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("Generation cancelled.")


class TakeRunner:
    """Runs takes on a :class:`~voicebox.engines.tts.TTSEngine` (its model, lock and decoders)."""

    def __init__(self, engine: "TTSEngine") -> None:
        self.engine = engine

    def run(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Iterator[SpeechEvent]:
        engine = self.engine
        if not request.chunks:
            raise InvalidInput("Type some text to speak.")
        take = Take(request, time.perf_counter())
        total = len(request.chunks)
        yield Progress("loading model", 0, total)
        with engine.lock:  # one hand-over for the model and the voice: fewer waits behind others
            engine.ensure_loaded(request.size)
            take.size = engine.loaded_size
            take.language = engine.language_for_model(request.language)
            yield Progress("building voice", 0, total)
            self._ready(take)
        for group in self.groups(total, request.stream):
            check_cancel(cancel)
            yield Progress("generating", group[0], total)
            with engine.lock:
                self._ready(take)
                seed = chunk_seed(request.params.seed, group[0])
                if request.stream and engine._fast is not None:
                    yield from self._stream_rows(take, group, seed, cancel)
                else:
                    yield from self._whole_rows(take, group, seed)
        yield Progress("saving", total, total)
        yield self._done(take)

    def groups(self, count: int, stream: bool) -> list[list[int]]:
        """Which chunks are made together, in order. Streaming on the fast path: the first chunk
        alone (its audio waits for one prompt's prefill only), the rest in batches; otherwise
        batches from the start. The CUDA graphs and the official path take one row at a time."""
        rows = self.engine.rows_per_batch()
        if stream:
            if self.engine._fast is None or rows < 2 or count < 3:
                return [[i] for i in range(count)]
            rest = list(range(1, count))
            return [[0]] + [rest[i : i + rows] for i in range(0, len(rest), rows)]
        return [list(range(i, min(i + rows, count))) for i in range(0, count, rows)]

    def _ready(self, take: Take) -> None:
        """Under the lock: this take's model is the loaded one (another request may have switched
        sizes between batches) and its voice prompt belongs to that load."""
        engine = self.engine
        engine.ensure_loaded(take.size)
        if take.prompt is None or take.prompt_loads != engine.loads:
            words = getattr(engine.builder, "request_prompt", None)  # a voice made of words, not samples
            if words is not None:
                prompt, hit, seconds = words(take.request, engine.models_by_size[engine.loaded_size]), False, 0.0
            else:
                prompt, hit, seconds = engine.voice_prompt(take.request.voice, take.size)
            if take.prompt is None:
                take.cache_hit, take.prompt_seconds = hit, seconds
            take.prompt, take.prompt_loads = prompt, engine.loads

    # ---- whole chunks (no streaming, or the official path) -----------------------------------
    def _whole_rows(self, take: Take, group: list[int], seed: int) -> Iterator[SpeechEvent]:
        engine = self.engine
        texts = [take.chunks[i] for i in group]
        codes, runaway = engine._generate_codes(take, texts, seed)
        for index, chunk_codes, ran_away in zip(group, codes, runaway):
            chunk_codes, hit_cap, made_with = self._settle(take, index, chunk_codes, ran_away, seed)
            started = time.perf_counter()
            if engine._fast is not None:
                audio = engine.decoder.stream_for(take.prompt).push(chunk_codes).float().cpu().numpy()
            else:
                audio = engine.decoder.decode(chunk_codes, take.prompt)
            spent = time.perf_counter() - started
            take.decode_s += spent
            take.frames += int(chunk_codes.shape[0])
            if take.request.stream:
                self._first_audio(take)
                yield AudioPiece(index, audio)
            yield ChunkResult(index, take.chunks[index], audio, MODEL_SAMPLE_RATE, made_with,
                              frames=int(chunk_codes.shape[0]), hit_cap=hit_cap, timings={"decode": round(spent, 4)})

    def _settle(self, take: Take, index: int, codes: Any, ran_away: bool, seed: int) -> tuple[Any, bool, int]:
        """A chunk that ran away is made once more with its re-take seed; returns the final codes,
        whether they still hit the cap, and the seed that made them (recorded with the chunk)."""
        if not ran_away:
            return codes, False, seed
        again_seed = chunk_seed(take.request.params.seed, index, 1)
        retry, again = self.engine._generate_codes(take, [take.chunks[index]], again_seed)
        return retry[0], again[0], again_seed

    # ---- streaming rows (fast path) ----------------------------------------------------------
    def _stream_rows(self, take: Take, indices: list[int], seed: int,
                     cancel: threading.Event | None) -> Iterator[SpeechEvent]:
        """One or more chunks generated together. The first row plays as its frames are made
        (the first piece after ``stream_first_frames`` frames, then doubling up to
        ``stream_frames``); the other rows are decoded as they go and held back until every row
        before them has finished. A chunk that hits its cap cannot be re-made here (its audio is
        already out): its result says so."""
        import torch

        engine = self.engine
        texts = [take.chunks[i] for i in indices]
        inputs, caps = engine._talker_inputs(texts, take.prompt, take.language, take.request.params)
        rows = len(indices)
        codecs = [engine.decoder.stream_for(take.prompt) for _ in indices]
        pending: list[list[Any]] = [[] for _ in indices]  # frames not decoded yet
        held: list[list[np.ndarray]] = [[] for _ in indices]  # audio of rows still waiting their turn
        made: list[list[np.ndarray]] = [[] for _ in indices]  # every row's audio, for its result
        produced = [0] * rows
        finished = [False] * rows
        live = 0  # the row whose audio is going out now
        due = engine.stream_first_frames
        eos = inputs.kwargs.get("eos_token_id")
        clock = time.perf_counter

        def decode(row: int) -> np.ndarray:
            started = clock()
            audio = codecs[row].push(torch.stack(pending[row])).float().cpu().numpy()
            take.decode_s += clock() - started
            pending[row] = []
            made[row].append(audio)
            return audio

        def out(row: int, audio: np.ndarray) -> AudioPiece:
            self._first_audio(take)
            return AudioPiece(indices[row], audio)

        frames, source = engine.frame_source.frames(inputs, max(caps), engine.generator(seed))
        t0 = clock()
        try:
            for frame in frames:
                take.generate_s += clock() - t0
                for row in range(rows):
                    if finished[row]:
                        continue
                    if eos is not None and int(frame[row, 0]) == eos:
                        finished[row] = True
                        continue
                    pending[row].append(frame[row])
                    produced[row] += 1
                    finished[row] = produced[row] >= caps[row] - 1
                check_cancel(cancel)
                if pending[live] and (len(pending[live]) >= due or finished[live]):
                    yield out(live, decode(live))
                    due = min(2 * due, engine.stream_frames)
                for row in range(live + 1, rows):
                    if pending[row] and (len(pending[row]) >= engine.stream_frames or finished[row]):
                        held[row].append(decode(row))
                while finished[live] and not pending[live] and live + 1 < rows:
                    live += 1
                    for audio in held[live]:
                        yield out(live, audio)
                    held[live] = []
                if all(finished):
                    break
                t0 = clock()
        finally:
            frames.close()
        take.stages.add(source)
        for row in range(live, rows):
            for audio in held[row]:
                yield out(row, audio)
            if pending[row]:
                yield out(row, decode(row))
        take.frames += sum(produced)
        for row, index in enumerate(indices):
            audio = np.concatenate(made[row]) if made[row] else np.zeros(0, np.float32)
            yield ChunkResult(index, take.chunks[index], audio, MODEL_SAMPLE_RATE, seed,
                              frames=produced[row], hit_cap=produced[row] >= caps[row] - 1)

    def _first_audio(self, take: Take) -> None:
        if take.first_audio is None:
            take.first_audio = time.perf_counter() - take.started

    def _done(self, take: Take) -> SpeechDone:
        """What is worth recording about the take; also sets the engine's ``last_profile``."""
        total = time.perf_counter() - take.started
        timings = {
            "prompt": round(take.prompt_seconds, 4),
            "generate": round(take.generate_s, 4),
            "decode": round(take.decode_s, 4),
        }
        if take.first_audio is not None:
            timings["first_audio"] = round(take.first_audio, 4)
        timings["total"] = round(total, 4)
        self.engine.last_profile = take.stages.finish(take.decode_s, total, frames=take.frames,
                                                      first_audio=take.first_audio)
        return SpeechDone(
            model=self.engine.spec(take.size),
            mode=take.prompt.mode,
            language=display(take.language),
            cache_hit=take.cache_hit,
            sample_rate=MODEL_SAMPLE_RATE,
            timings=timings,
        )
