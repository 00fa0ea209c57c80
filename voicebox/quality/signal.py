"""Measurements of the signal itself: where the speech is, silences, clipping and loudness.

Why these and nothing fancier: the failures users meet in generated speech are gross ones (a
sentence that stops for three seconds, a chunk clipped to a square wave, one sentence much louder
or quieter than its neighbours, dead air after the last word). Frame energies at 10 ms find all of
them without a model, in well under a millisecond per second of audio.

Silence is judged relative to the clip's loudest 10 ms frame (:data:`SILENCE_BELOW_PEAK_DB`), so
a quiet but clean recording is not all "silence", and a noisy one (hiss in the pauses) simply
shows shorter silences: the check can only miss a pause there, never invent one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

#: A 10 ms frame quieter than the loudest frame by this much is silent.
SILENCE_BELOW_PEAK_DB = 40.0
#: A sample at or above this magnitude (of full scale 1.0) counts as clipped.
CLIP_LEVEL = 0.999
#: BS.1770 loudness needs this much audio; shorter clips fall back to the RMS of voiced frames.
MIN_LOUDNESS_S = 0.4
_FRAME_S = 0.01


@dataclass(frozen=True)
class SignalStats:
    """What the signal checks look at, in seconds and shares.

    Attributes:
        duration: the whole clip.
        speech: from the first to the last voiced frame (0 when nothing is voiced).
        longest_gap: the longest silence between two voiced frames.
        lead, tail: silence before the first and after the last voiced frame.
        clipped: share of samples at or above :data:`CLIP_LEVEL`.
    """

    duration: float
    speech: float
    longest_gap: float
    lead: float
    tail: float
    clipped: float

    @property
    def longest_silence(self) -> float:
        """The longest silence anywhere: a pause inside the speech or dead air at either end."""
        return max(self.longest_gap, self.lead, self.tail)


def frame_rms(samples: np.ndarray, rate: int) -> np.ndarray:
    """RMS of consecutive 10 ms frames (the last partial frame is dropped)."""
    hop = max(1, int(rate * _FRAME_S))
    count = len(samples) // hop
    if count == 0:
        return np.zeros(0)
    frames = samples[: count * hop].astype(np.float64).reshape(count, hop)
    return np.sqrt(np.mean(frames**2, axis=1))


def voiced_frames(samples: np.ndarray, rate: int) -> np.ndarray:
    """A boolean per 10 ms frame: louder than :data:`SILENCE_BELOW_PEAK_DB` under the peak."""
    rms = frame_rms(samples, rate)
    if rms.size == 0 or rms.max() <= 1e-6:
        return np.zeros(rms.size, dtype=bool)
    return rms >= rms.max() * 10 ** (-SILENCE_BELOW_PEAK_DB / 20)


def _longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in ``mask``."""
    if not mask.any():
        return 0
    padded = np.concatenate(([0], mask.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[0::2]).max())


def stats(samples: np.ndarray, rate: int) -> SignalStats:
    """Duration, speech span, silences and clipping of a mono clip."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    duration = len(samples) / rate if rate else 0.0
    clipped = float(np.mean(np.abs(samples) >= CLIP_LEVEL)) if samples.size else 0.0
    voiced = voiced_frames(samples, rate)
    if not voiced.any():
        return SignalStats(duration, 0.0, 0.0, duration, 0.0, clipped)
    first, last = int(np.argmax(voiced)), int(len(voiced) - 1 - np.argmax(voiced[::-1]))
    gap = _longest_run(~voiced[first : last + 1])
    return SignalStats(
        duration=duration,
        speech=(last + 1 - first) * _FRAME_S,
        longest_gap=gap * _FRAME_S,
        lead=first * _FRAME_S,
        tail=max(0.0, duration - (last + 1) * _FRAME_S),
        clipped=clipped,
    )


def level_db(samples: np.ndarray, rate: int) -> float | None:
    """How loud a clip sounds: BS.1770 integrated loudness (LUFS, gated, so pauses do not pull it
    down); for clips under :data:`MIN_LOUDNESS_S`, the RMS of the voiced frames in dBFS.

    This is what ``take_level_db`` is built from: the median of the other chunks' levels.
    ``None`` for silence.
    """
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    if samples.size == 0 or not np.any(samples):
        return None
    if len(samples) >= MIN_LOUDNESS_S * rate:
        import pyloudnorm

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loudness = pyloudnorm.Meter(rate).integrated_loudness(samples)
        if np.isfinite(loudness):
            return float(loudness)
    rms = frame_rms(samples, rate)
    voiced = rms[voiced_frames(samples, rate)]
    if voiced.size == 0:
        return None
    return float(20 * np.log10(max(np.sqrt(np.mean(voiced**2)), 1e-10)))
