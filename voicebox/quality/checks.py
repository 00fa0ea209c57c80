"""Judging: one function per check that turns a measurement into a :class:`Check` with a
sentence a person can read.

Why separate from measuring: the numbers come from Whisper, Resemblyzer and the signal, each
slow or fast in its own way (:mod:`voicebox.quality.gate` runs them); how a number is judged and
explained is the same wherever it came from, and the calibration bench uses these very functions,
so the README's table and the gate cannot disagree.

Every detail starts with plain words and ends with the numbers in brackets; the plain words are
what :meth:`ChunkScore.reason` and the progress line show ("the words did not match").
A value of ``None`` means not measured: the check passes and says why it was skipped.
"""

from __future__ import annotations

from .scores import Check
from .signal import SignalStats
from .thresholds import Thresholds


def _skipped(name: str, threshold: float, why: str) -> Check:
    return Check(name, None, threshold, True, f"not checked: {why}")


def words(cer: float | None, t: Thresholds, skipped: str = "") -> Check:
    """The words: character error rate between the asked and the heard text."""
    limit = t.max_cer
    if cer is None:
        return _skipped("cer", limit, skipped or "the text has nothing to say")
    cer = round(cer, 4)
    if cer <= limit:
        return Check("cer", cer, limit, True, f"the words matched (CER {cer:.2f} ≤ {limit:.2f})")
    return Check("cer", cer, limit, False, f"the words did not match (CER {cer:.2f} > {limit:.2f})")


def similarity(value: float | None, t: Thresholds, skipped: str = "") -> Check:
    """The voice: cosine similarity to the profile's embedding."""
    limit = t.min_similarity
    if value is None:
        return _skipped("similarity", limit, skipped or "no voice samples to compare with")
    value = round(value, 4)
    if value >= limit:
        return Check("similarity", value, limit, True, f"the voice matched (similarity {value:.2f} ≥ {limit:.2f})")
    return Check(
        "similarity", value, limit, False,
        f"the voice did not match the profile (similarity {value:.2f} < {limit:.2f})",
    )


def pace(chars_per_s: float | None, t: Thresholds) -> Check:
    """The pace against the text: letters per second of speech, within a range."""
    if chars_per_s is None:
        return _skipped("pace", t.max_chars_per_s, "no speech or no text")
    value = round(chars_per_s, 3)
    if value > t.max_chars_per_s:
        return Check(
            "pace", value, t.max_chars_per_s, False,
            f"the speech was too fast for its text, words may be missing "
            f"({value:.1f} letters/s > {t.max_chars_per_s:g})",
        )
    if value < t.min_chars_per_s:
        return Check(
            "pace", value, t.min_chars_per_s, False,
            f"the speech was too slow for its text, it may run on "
            f"({value:.1f} letters/s < {t.min_chars_per_s:g})",
        )
    limit = t.max_chars_per_s if value >= t.pace_centre else t.min_chars_per_s
    return Check(
        "pace", value, limit, True,
        f"the pace fitted the text ({value:.1f} letters/s in {t.min_chars_per_s:g}-{t.max_chars_per_s:g})",
    )


def pace_vs_voice(ratio: float | None, t: Thresholds, skipped: str = "") -> Check:
    """The pace against the voice's own: chunk rate / voice rate, within a factor either way."""
    top = t.max_pace_vs_voice
    if ratio is None:
        return _skipped("pace_vs_voice", top, skipped or "the voice's own pace is not known")
    value = round(ratio, 3)
    if value > top:
        return Check(
            "pace_vs_voice", value, top, False,
            f"faster than the voice speaks ({value:.2f}× its pace > {top:g}×)",
        )
    if value < 1 / top:
        return Check(
            "pace_vs_voice", value, round(1 / top, 4), False,
            f"slower than the voice speaks ({value:.2f}× its pace < {1 / top:.2f}×)",
        )
    limit = top if value >= 1 else round(1 / top, 4)
    return Check("pace_vs_voice", value, limit, True, f"the voice's own pace ({value:.2f}× its pace)")


def silence(stats: SignalStats, t: Thresholds) -> Check:
    """The longest silence: a pause inside the speech, or dead air before or after it."""
    limit = t.max_silence_s
    if stats.speech <= 0:
        return Check("silence", round(stats.duration, 3), limit, False, "there was no sound (silence)")
    value = round(stats.longest_silence, 3)
    where = (
        "inside the speech" if stats.longest_gap >= max(stats.lead, stats.tail)
        else "before the speech" if stats.lead >= stats.tail else "after the speech"
    )
    if value > limit:
        return Check("silence", value, limit, False, f"a long silence {where} ({value:.1f} s > {limit:g} s)")
    return Check("silence", value, limit, True, f"no long silence (longest {value:.1f} s ≤ {limit:g} s)")


def clipping(stats: SignalStats, t: Thresholds) -> Check:
    """The share of samples at full scale."""
    limit = t.max_clipping
    value = round(stats.clipped, 6)
    if value > limit:
        return Check("clipping", value, limit, False, f"the sound was clipped ({value:.2%} of samples > {limit:.2%})")
    return Check("clipping", value, limit, True, f"no clipping ({value:.2%} of samples ≤ {limit:.2%})")


def level(level_db: float | None, take_level_db: float | None, t: Thresholds) -> Check:
    """The loudness against the rest of the take (signed: positive is louder)."""
    limit = t.max_level_diff_db
    if take_level_db is None:
        return _skipped("level", limit, "no other chunks to compare with")
    if level_db is None:
        return _skipped("level", limit, "no sound to measure")
    value = round(level_db - take_level_db, 2)
    if value > limit:
        return Check("level", value, limit, False, f"louder than the rest of the take ({value:+.1f} dB > {limit:g})")
    if value < -limit:
        return Check("level", value, limit, False, f"quieter than the rest of the take ({value:+.1f} dB < -{limit:g})")
    return Check("level", value, limit, True, f"as loud as the rest of the take ({value:+.1f} dB, within ±{limit:g})")
