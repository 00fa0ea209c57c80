"""Speaker embeddings for the voice check: :class:`SpeakerEncoder`, a thin wrapper of Resemblyzer.

Why Resemblyzer: its real weights (a 3-layer LSTM GE2E speaker encoder, 17 MB) ship inside its
wheel on PyPI, so it installs and runs with no model hub; it is small enough for the CPU (see
README "Quality checks" for its speed) and its 256-value embeddings separate speakers well
enough to catch a voice that wandered away (the calibration has the numbers).

Audio goes in at any rate, is resampled to Resemblyzer's 16 kHz with voicebox's own resampler
(:func:`voicebox.audio.resample`), then Resemblyzer's ``preprocess_wav`` normalises its volume and
cuts long silences (WebRTC VAD), as its encoder was trained. Embeddings are L2-normalised, so the
similarity of two is their dot product (cosine similarity).

The model loads lazily, once, on the first embedding; calls are serialised by ``lock`` (pass the
engines' shared model lock so the encoder never competes with Whisper or Qwen3-TTS for the CPU).
"""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from voicebox import audio as audio_io

logger = logging.getLogger(__name__)

#: Resemblyzer's sample rate.
SAMPLE_RATE = 16_000
#: Less speech than this (after silences are cut) gives no usable embedding.
MIN_SPEECH_S = 0.5


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (1 same direction, 0 unrelated)."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


class SpeakerEncoder:
    """Turns speech into a 256-value speaker embedding with Resemblyzer's pretrained encoder.

    Attributes:
        calls: embeddings computed (the voice cache's tests count them).
    """

    def __init__(self, device: str = "cpu", lock: AbstractContextManager[Any] | None = None) -> None:
        """Configure; nothing loads here.

        Args:
            device: ``cpu``, ``cuda`` or ``auto`` (CUDA when torch sees a GPU). The encoder is
                small: the CPU costs a few percent of real time (README "Quality checks").
            lock: serialises model calls (a reentrant lock such as the engines' shared
                :class:`voicebox.engines.model_lock.FairLock`); a private one when None.
        """
        self.device = device
        self.lock = lock if lock is not None else threading.RLock()
        self._model: Any = None
        self.calls = 0

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the encoder now (it otherwise loads on the first embedding)."""
        if self._model is not None:
            return
        with self.lock:
            if self._model is not None:
                return
            from resemblyzer import VoiceEncoder

            device = self.device
            if device == "auto":
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            self._model = VoiceEncoder(device, verbose=False)
            logger.info("Speaker encoder (Resemblyzer) loaded on %s", device)

    def prepare(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """Mono float32 at 16 kHz, volume-normalised, long silences cut (Resemblyzer's input)."""
        from resemblyzer import preprocess_wav

        mono = audio_io.to_mono(np.asarray(samples, dtype=np.float32))
        wav = np.clip(audio_io.resample(mono, rate, SAMPLE_RATE), -1.0, 1.0)  # its VAD takes int16
        return preprocess_wav(wav.astype(np.float32))

    def embed(self, samples: np.ndarray, rate: int) -> np.ndarray | None:
        """The L2-normalised embedding of one clip; ``None`` when it has under
        :data:`MIN_SPEECH_S` of speech once silences are cut."""
        wav = self.prepare(samples, rate)
        if len(wav) < MIN_SPEECH_S * SAMPLE_RATE:
            return None
        self.load()
        with self.lock:
            embedding = self._model.embed_utterance(wav)
            self.calls += 1
        return np.asarray(embedding, dtype=np.float32)

    def embed_many(self, clips: list[tuple[np.ndarray, int]]) -> np.ndarray | None:
        """One voice from several clips: the normalised mean of their embeddings (as Resemblyzer's
        ``embed_speaker`` does); ``None`` when no clip has enough speech."""
        found = [e for e in (self.embed(samples, rate) for samples, rate in clips) if e is not None]
        if not found:
            return None
        mean = np.mean(found, axis=0)
        return (mean / np.linalg.norm(mean)).astype(np.float32)
