"""From a backend's events to one take: join the chunks, place each one, judge the whole.

A :class:`~voicebox.speech.SpeechBackend` yields audio per sentence chunk; :class:`TakeAssembler`
joins them with the short crossfade that hides the seams (playable pieces while streaming, the
whole take at the end) and records where each chunk lies in the joined audio, with its seed and
whether it finished. The service layer saves that; the engine's own ``synthesize``/``stream``
conveniences (benchmarks, the CLI, engine tests) use the same assembler, so both agree exactly.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from .audio import MODEL_SAMPLE_RATE, CrossfadeJoiner
from .engines.params import GenerationParams
from .engines.text_split import chunk_text
from .errors import InvalidInput
from .records import Chunk
from .speech import AudioPiece, ChunkResult, Progress, SpeechDone, SpeechEvent, SpeechRequest, VoiceSample

if TYPE_CHECKING:
    from .speech import SpeechBackend

#: Between sentence chunks, as :func:`voicebox.audio.crossfade_concat`.
CROSSFADE_SECONDS = 0.02
#: Longest sentence chunk given to a backend.
CHUNK_MAX_CHARS = 250

ProgressFn = Callable[[str, int, int], None]


def speech_request(text: str, voice: Sequence[VoiceSample], params: GenerationParams | None,
                   language: str | None = None, size: str | None = None, stream: bool = False,
                   speaker: str = "", instruct: str = "") -> SpeechRequest:
    """A backend request for ``text``: cut into sentence chunks, with a concrete seed."""
    chunks = chunk_text(text, CHUNK_MAX_CHARS) if isinstance(text, str) else []
    if not chunks:
        raise InvalidInput("Type some text to speak.")
    return SpeechRequest(
        chunks=tuple(chunks), voice=tuple(voice), params=(params or GenerationParams()).with_seed(),
        language=language or "auto", size=size, stream=stream, speaker=speaker, instruct=instruct,
    )


def incomplete_message(failed: Sequence[int], total: int) -> str:
    """What to tell a person when chunks hit the length cap (empty when none did)."""
    if not failed:
        return ""
    which = ", ".join(str(i + 1) for i in failed)
    return (
        f"The model did not finish speaking chunk {which} of {total} (it hit the length limit); "
        "that part may be cut off or noisy. Try another seed, or shorter sentences."
    )


class TakeAssembler:
    """Consumes a backend's events (:meth:`add`) and builds the take."""

    def __init__(self, sample_rate: int = MODEL_SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self._joiner = CrossfadeJoiner(sample_rate, CROSSFADE_SECONDS)
        self._current = -1
        self._starts: dict[int, int] = {}
        self.results: dict[int, ChunkResult] = {}
        self.done: SpeechDone | None = None

    def _push(self, index: int, audio: np.ndarray) -> np.ndarray:
        if index not in self._starts:
            self._starts[index] = self._joiner.next_start(len(audio), crossfade=index != self._current)
        ready = self._joiner.push(audio, crossfade=index != self._current)
        if len(audio):
            self._current = index
        return ready

    def add(self, event: SpeechEvent) -> np.ndarray:
        """Take one event; returns audio that is final now (empty when there is none)."""
        empty = np.zeros(0, dtype=np.float32)
        if isinstance(event, AudioPiece):
            return self._push(event.index, event.audio)
        if isinstance(event, ChunkResult):
            self.results[event.index] = event
            if event.index not in self._starts:  # no pieces were streamed for it
                return self._push(event.index, event.audio)
        elif isinstance(event, SpeechDone):
            self.done = event
        return empty

    def finish(self) -> np.ndarray:
        """The held-back tail: the last audio of the take."""
        return self._joiner.finish()

    def audio(self) -> np.ndarray:
        return self._joiner.whole()

    def chunks(self) -> list[Chunk]:
        """Each chunk's record: its text, seed, place and length in the joined audio, status."""
        rate = self.sample_rate
        out = []
        for index in sorted(self.results):
            result = self.results[index]
            out.append(Chunk(
                index=index, text=result.text, seed=result.seed,
                offset=round(self._starts.get(index, 0) / rate, 3), duration=result.duration,
                status="incomplete" if result.hit_cap else "ok", frames=result.frames,
            ))
        return out

    def failed(self) -> list[int]:
        return [i for i in sorted(self.results) if self.results[i].hit_cap]


@dataclass
class SynthesisResult:
    """A whole take from a backend, with everything worth recording about how it was made."""

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
    chunk_records: list[Chunk] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return round(len(self.audio) / self.sample_rate, 3)

    def metadata(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("audio", "chunk_records")}
        data["duration"] = self.duration
        return data


@dataclass
class StreamChunk:
    """One piece of a streamed take: audio to play now; the last piece carries ``result``."""

    audio: np.ndarray
    result: SynthesisResult | None = None


def result_of(assembler: TakeAssembler, request: SpeechRequest) -> SynthesisResult:
    """The finished take of an assembler that has seen a backend's last event."""
    done = assembler.done
    failed = assembler.failed()
    return SynthesisResult(
        audio=assembler.audio(), sample_rate=assembler.sample_rate, model=done.model.source,
        size=done.model.size, mode=done.mode, seed=int(request.params.seed), language=done.language,
        timings=dict(done.timings), cache_hit=done.cache_hit, chunks=len(request.chunks),
        status="incomplete" if failed else "ok", message=incomplete_message(failed, len(request.chunks)),
        params=request.params.to_dict(), chunk_records=assembler.chunks(),
    )


def stream_events(backend: "SpeechBackend", request: SpeechRequest, progress: ProgressFn | None,
                  cancel: threading.Event | None) -> Iterator[tuple[np.ndarray, SynthesisResult | None]]:
    """Drive ``backend.speak``: ``(audio ready now, None)`` pairs, then ``(tail, result)``."""
    assembler = TakeAssembler()
    for event in backend.speak(request, cancel):
        if isinstance(event, Progress):
            if progress is not None:
                progress(event.stage, event.done, event.total)
            continue
        ready = assembler.add(event)
        if len(ready):
            yield ready, None
    yield assembler.finish(), result_of(assembler, request)


def synthesize_take(backend: "SpeechBackend", text: str, samples: Sequence[VoiceSample], language: str | None,
                    size: str | None, params: GenerationParams | None, progress: ProgressFn | None,
                    cancel: threading.Event | None) -> SynthesisResult:
    """A whole take from any backend (no streaming)."""
    request = speech_request(text, samples, params, language, size)
    for _, result in stream_events(backend, request, progress, cancel):
        if result is not None:
            return result
    raise RuntimeError("the backend ended without finishing the take")  # pragma: no cover


def stream_take(backend: "SpeechBackend", text: str, samples: Sequence[VoiceSample], language: str | None,
                size: str | None, params: GenerationParams | None, progress: ProgressFn | None,
                cancel: threading.Event | None) -> Iterator[StreamChunk]:
    """A streamed take from any backend; concatenating every piece's audio gives the result's."""
    request = speech_request(text, samples, params, language, size, stream=True)
    for audio, result in stream_events(backend, request, progress, cancel):
        if len(audio):
            yield StreamChunk(audio)
        if result is not None:
            yield StreamChunk(np.zeros(0, dtype=np.float32), result)

