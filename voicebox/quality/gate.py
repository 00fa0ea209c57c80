"""The quality gate: :class:`QualityGate` scores one chunk of speech (or any clip) against the
text it should say and, when a profile is given, the voice it should have.

Why one object: the gate holds what is expensive to build and worth reusing across a take
(the Whisper engine the studio already has, the speaker encoder, each voice's embedding and
speaking rate), while every call is independent and thread-safe, so the generation use-case can
score each chunk as soon as it is made and the ``POST /score`` route can score an upload the
same way.

What a call costs (README "Quality checks" has the measured figures): one Whisper transcription
of the chunk, one speaker embedding when a voice is given (the voice's own embedding is cached),
and frame-energy arithmetic. Whisper and the encoder hold the engines' shared model lock while
they compute, so scoring never competes with Qwen3-TTS for the CPU or GPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from voicebox import audio as audio_io
from voicebox import languages
from voicebox.errors import InvalidInput

from . import checks, signal
from .scores import ChunkScore, combine
from .speaker import SpeakerEncoder, cosine
from .text import cer, spoken_length
from .thresholds import Thresholds
from .voice import RATE, VoiceCache, VoiceRef


class QualityGate:
    """Scores chunks: words (Whisper), voice (Resemblyzer), pace and signal.

    Args:
        asr: a :class:`voicebox.engines.asr.WhisperEngine` (anything with ``transcribe(samples,
            language=code)`` returning an object with ``.text`` and ``.language``).
        thresholds: the limits; the calibrated defaults when None.
        speaker: the speaker encoder; one sharing the ASR engine's model lock is made (and loads
            on first use) when None.
    """

    def __init__(self, asr: Any, thresholds: Thresholds | None = None, speaker: SpeakerEncoder | None = None) -> None:
        self.asr = asr
        self.thresholds = thresholds or Thresholds()
        self.speaker = speaker if speaker is not None else SpeakerEncoder("auto", getattr(asr, "lock", None))
        self.voices = VoiceCache()

    # ---- the profile's voice ----------------------------------------------------------------
    def voice_embedding(self, voice: VoiceRef) -> np.ndarray | None:
        """The profile's embedding (normalised mean over its samples), cached per ``voice.key``.

        ``None`` when no sample has enough speech to embed.
        """
        return self.voices.embedding(voice, self._build_embedding)

    def _build_embedding(self, voice: VoiceRef) -> np.ndarray | None:
        clips = [(audio_io.load_mono(sample.path, RATE), RATE) for sample in voice.samples]
        return self.speaker.embed_many(clips)

    def forget(self, sample_hashes: Iterable[str]) -> None:
        """Drop the cached embeddings and rates of every voice built from these samples (call it
        when a sample is removed or replaced)."""
        self.voices.forget(sample_hashes)

    # ---- scoring ----------------------------------------------------------------------------
    def score(
        self,
        audio: np.ndarray,
        sample_rate: int,
        text: str,
        language: str | None = None,
        voice: VoiceRef | None = None,
        take_level_db: float | None = None,
    ) -> ChunkScore:
        """Score one chunk.

        Args:
            audio: the chunk's samples (float, mono or ``(frames, channels)``).
            sample_rate: their rate.
            text: what the chunk should say.
            language: the stored language (``"English"``, ``"auto"``) or a code; ``auto``/None lets
                Whisper detect it.
            voice: the profile's voice; None skips the voice and voice-pace checks.
            take_level_db: the median :func:`voicebox.quality.level_db` of the take's other
                chunks; None skips the level check.

        Raises:
            ModelUnavailable: no Whisper model can be loaded.
        """
        samples = audio_io.to_mono(np.asarray(audio, dtype=np.float32))
        samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
        t = self.thresholds
        stats = signal.stats(samples, sample_rate)
        at_16k = audio_io.resample(samples, sample_rate, RATE)

        heard, lang, words_skipped = self._transcribe(at_16k, languages.whisper_code(language))
        error = cer(text, heard, lang) if not words_skipped else None

        letters = spoken_length(text, lang)
        rate = letters / stats.speech if stats.speech > 0 and letters > 0 else None

        similarity = ratio = None
        voice_skipped = pace_skipped = ""
        if voice is not None and voice.samples:
            reference = self.voice_embedding(voice)
            if reference is None:
                voice_skipped = "the voice samples have too little speech"
            else:
                embedding = self.speaker.embed(at_16k, RATE)
                if embedding is None:
                    voice_skipped = "the chunk has too little speech to recognise a voice"
                else:
                    similarity = cosine(embedding, reference)
            own = self.voices.rate(voice, lang)
            if own is None:
                pace_skipped = "the voice samples have no transcripts"
            elif rate is not None:
                ratio = rate / own

        result = (
            checks.words(error, t, words_skipped),
            checks.similarity(similarity, t, voice_skipped),
            checks.pace(rate, t),
            checks.pace_vs_voice(ratio, t, pace_skipped),
            checks.silence(stats, t),
            checks.clipping(stats, t),
            checks.level(signal.level_db(samples, sample_rate), take_level_db, t),
        )
        return combine(result, heard=heard, centres={"pace": t.pace_centre, "pace_vs_voice": 1.0})

    def score_file(
        self, data: bytes, text: str, language: str | None = None, voice: VoiceRef | None = None
    ) -> ChunkScore:
        """Score any clip (an upload to ``POST /score``): decoded with :mod:`voicebox.audio`,
        then :meth:`score` without the level check (there is no take to compare with).

        Raises:
            InvalidInput, UnsupportedMedia: empty or unreadable audio.
        """
        samples, rate = audio_io.decode(data)
        return self.score(audio_io.to_mono(samples), rate, text, language, voice)

    def _transcribe(self, samples: np.ndarray, hint: str | None) -> tuple[str, str | None, str]:
        """What Whisper heard, the language to normalise in, and why the words were not
        checked ("" when they were). No speech found counts as hearing nothing (a failure)."""
        from voicebox.engines.asr import NO_SPEECH_MESSAGE

        try:
            result = self.asr.transcribe(samples, language=hint, use_cache=False, remember=False)
        except InvalidInput as exc:
            if exc.message == NO_SPEECH_MESSAGE or not np.any(samples):
                return "", hint, ""
            return "", hint, exc.message  # e.g. an English-only model and another language
        return str(result.text), hint or getattr(result, "language", None), ""
