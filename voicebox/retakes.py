"""The quality gate of a take: check every sentence, make failing ones again, keep every take.

After the backend has made a take, each sentence chunk is scored by
:class:`voicebox.quality.QualityGate` (what Whisper heard against the text, the speaker's
similarity to the profile, pace, silences, clipping, level against the rest of the take). Under
``retake`` a chunk that fails is made again alone with its re-take seed
(:func:`~voicebox.engines.params.chunk_seed` with ``attempt`` 1, 2, ...) until one passes or
``max_takes`` takes exist; the best take (:func:`best_take`) goes into the audio, and every take is
kept with its seed and scores so a person can choose another one later.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Generator

import numpy as np

from .engines.params import chunk_seed
from .errors import Cancelled
from .jobs import JobProgress
from .speech import ChunkResult, SpeechBackend, SpeechRequest

if TYPE_CHECKING:
    from .quality import ChunkScore, QualityGate, VoiceRef

QUALITY_MODES = ("off", "check", "retake")


@dataclass
class SentenceTakes:
    """Every take of one sentence chunk, in the order they were made, and the one in use."""

    index: int
    takes: list[tuple[ChunkResult, "ChunkScore | None"]] = field(default_factory=list)
    used: int = 0

    @property
    def result(self) -> ChunkResult:
        return self.takes[self.used][0]

    @property
    def score(self) -> "ChunkScore | None":
        return self.takes[self.used][1]

    @property
    def passed(self) -> bool | None:
        score = self.score
        return None if score is None else score.passed


def best_take(takes: list[tuple[ChunkResult, "ChunkScore | None"]]) -> int:
    """The take to use: a take that passed every check beats one that did not, one that finished
    beats one that hit the length cap, then the higher combined score, then the earlier take."""

    def rank(item: tuple[int, tuple[ChunkResult, "ChunkScore | None"]]) -> tuple:
        position, (result, score) = item
        return (bool(score and score.passed), not result.hit_cap, score.score if score else 0.0, -position)

    return max(enumerate(takes), key=rank)[0]


def matched(audio: np.ndarray, rate: int, target_db: float | None) -> np.ndarray:
    """``audio`` at the level ``target_db`` (a re-take joins the others without a jump), never clipped."""
    from .quality import level_db

    current = level_db(audio, rate)
    if target_db is None or current is None:
        return audio
    gain = 10 ** ((target_db - current) / 20)
    peak = float(np.max(np.abs(audio))) or 1.0
    return (audio * min(gain, 0.99 / peak)).astype(np.float32)


class Retaker:
    """Runs the gate over a take's chunks with one backend and one gate."""

    def __init__(self, backend: SpeechBackend, gate: "QualityGate") -> None:
        self.backend = backend
        self.gate = gate

    def run(self, speech: SpeechRequest, results: list[ChunkResult], mode: str, max_takes: int,
            voice: "VoiceRef | None", cancel: threading.Event | None = None,
            ) -> Generator[JobProgress, None, list[SentenceTakes]]:
        """Yields progress; returns every sentence's takes (the first take of each is ``results``)."""
        total = len(results)
        from .quality import level_db

        levels = [lvl for lvl in (level_db(r.audio, r.sample_rate) for r in results) if lvl is not None]
        take_level = float(np.median(levels)) if levels else None
        sentences = []
        for result in results:
            if cancel is not None and cancel.is_set():
                raise Cancelled("Generation cancelled.")
            sentence = SentenceTakes(result.index)
            yield JobProgress("checking", result.index, total)
            score = self.gate.score(result.audio, result.sample_rate, result.text, speech.language, voice, take_level)
            sentence.takes.append((result, score))
            while mode == "retake" and not score.passed and len(sentence.takes) < max_takes:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("Generation cancelled.")
                attempt = len(sentence.takes)
                yield JobProgress("retaking", result.index, total,
                                  f"take {attempt + 1} — {score.reason() or 'it did not pass the checks'}")
                again = self._remake(speech, result, attempt, cancel)
                if take_level is not None:
                    again = replace(again, audio=matched(again.audio, again.sample_rate, take_level))
                score = self.gate.score(again.audio, again.sample_rate, again.text, speech.language, voice, take_level)
                sentence.takes.append((again, score))
            sentence.used = best_take(sentence.takes)
            sentences.append(sentence)
        return sentences

    def _remake(self, speech: SpeechRequest, result: ChunkResult, attempt: int,
                cancel: threading.Event | None) -> ChunkResult:
        """The chunk alone, seeded with its re-take seed; the result keeps the chunk's index."""
        # attempt 1 of a chunk is the engine's own runaway retry: the gate's takes come after it
        seed = chunk_seed(speech.params.seed, result.index, attempt + 1)
        alone = replace(speech, chunks=(result.text,), params=replace(speech.params, seed=seed), stream=False)
        for event in self.backend.speak(alone, cancel):
            if isinstance(event, ChunkResult):
                return replace(event, index=result.index, seed=seed)
        raise RuntimeError("the backend made no audio for the re-take")  # pragma: no cover
