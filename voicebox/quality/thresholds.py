"""The limits each check is judged against: :class:`Thresholds`, with calibrated defaults.

Why these numbers: every default comes from ``bench/quality_calibration.py`` (results in
``bench/results/quality_calibration.json``), which runs every check on real speech (the recordings
in ``../shared/data``), espeak-ng speech of the right and of the wrong text, other voices, noise
and runaways, and each limit sits between what good speech measured and what bad speech measured,
with a margin on the side of good speech: a gate that flags good takes makes users distrust it
(and, with re-takes, costs generation time), while the gross failures it exists for are far
beyond these limits. README "Quality checks" has the table and the reasoning per check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    """Limits for the per-chunk checks.

    Attributes:
        max_cer: highest character error rate between the asked and the heard words.
        min_similarity: lowest cosine similarity between the chunk's speaker embedding and the
            profile's.
        min_chars_per_s, max_chars_per_s: the pace range, in letters (Latin-letter equivalents,
            see :func:`voicebox.quality.text.spoken_length`) per second of speech.
        max_pace_vs_voice: the chunk's pace may differ from the voice's own (measured on its
            samples) by at most this factor, faster or slower.
        max_silence_s: longest silence, inside the speech or at either end.
        max_clipping: highest share of samples at full scale.
        max_level_diff_db: how far the chunk's loudness may be from the rest of the take's.
    """

    max_cer: float = 0.35
    min_similarity: float = 0.75
    min_chars_per_s: float = 5.0
    max_chars_per_s: float = 25.0
    max_pace_vs_voice: float = 1.8
    max_silence_s: float = 2.0
    max_clipping: float = 0.001
    max_level_diff_db: float = 6.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        """Thresholds from a dict; unknown keys are ignored, missing ones keep their default."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: float(value) for key, value in data.items() if key in names})

    @property
    def pace_centre(self) -> float:
        """The middle of the pace range (geometric mean): the ideal for the combined score."""
        return (self.min_chars_per_s * self.max_chars_per_s) ** 0.5
