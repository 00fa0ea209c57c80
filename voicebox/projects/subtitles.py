"""SRT and WebVTT subtitles for an exported project, with the real timings of the rendered audio.

Why cues come from the :class:`~voicebox.projects.export.Timeline` and never from estimates: the
timeline records, in samples, where each block landed in the exported file (after its
pauses), so a cue starts and ends exactly where the block's audio does. Per-sentence cues use the
sentence times measured inside each block's own audio, offset by the block's start.

Readability follows the usual broadcast rules (BBC, Netflix): at most two lines of at most 42
characters per cue, the two lines balanced. Text that cannot fit in two lines (a long block, or a
long sentence) is split into consecutive cues at word boundaries, and the block's time is shared
among them by character count: the first cue still starts at the block's start and the last
still ends at its end, only the inner joins are estimates. Ask for ``level="sentence"`` when
blocks carry sentence timings and the inner joins should be measured too, or ``level="word"``
for cues timed word by word by Whisper on the rendered audio (:mod:`.word_timings`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .export import RenderedBlock, Timeline

FORMATS = ("srt", "vtt")
LEVELS = ("block", "sentence", "word")
MAX_LINE = 42
MAX_LINES = 2

Cue = tuple[float, float, str]  # start, end (seconds in the exported audio), text (may hold "\n")


def subtitles(blocks: Sequence[RenderedBlock], timeline: Timeline, fmt: str, level: str = "block") -> str:
    """Subtitles for ``blocks`` as placed by ``timeline``: ``fmt`` "srt" or "vtt", ``level``
    "block" (one cue per block), "sentence" (one per sentence; a block without sentence
    timings falls back to one cue) or "word" (cues timed word by word: the blocks must be
    :class:`~.word_timings.TimedBlock` s). Cue text is wrapped to two lines of at most 42 characters.

    Raises:
        InvalidInput: unknown format or level, a block missing from the timeline, or a block
            without word timings at level "word".
    """
    fmt = (fmt or "").lower()
    if fmt not in FORMATS:
        raise InvalidInput(f"Unknown subtitle format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if level not in LEVELS:
        raise InvalidInput(f"Unknown subtitle level {level!r}; use one of {', '.join(LEVELS)}.")
    if level == "word":
        from .word_timings import word_subtitles  # it imports this module

        return word_subtitles(blocks, timeline, fmt)
    return render(cues(blocks, timeline, level), fmt)


def cues(blocks: Sequence[RenderedBlock], timeline: Timeline, level: str = "block") -> list[Cue]:
    """The cues in time order, text already wrapped (see the module docstring)."""
    placed = {index: (start, end) for index, start, end in timeline.blocks}
    out: list[Cue] = []
    for block in blocks:
        if block.index not in placed:
            raise InvalidInput(f"Block {block.index + 1} is not in the exported audio; export it again.")
        start, end = placed[block.index]
        if level == "sentence" and block.sentences:
            for text, s_start, s_end in block.sentences:
                s0 = min(end, start + max(0.0, float(s_start)))
                s1 = min(end, start + max(0.0, float(s_end)))
                out.extend(fit(text, s0, s1))
        else:
            out.extend(fit(block.text, start, end))
    out.sort(key=lambda cue: (cue[0], cue[1]))
    return out


def render(cue_list: Sequence[Cue], fmt: str) -> str:
    """Serialise cues: SRT (numbered, ``HH:MM:SS,mmm``) or WebVTT (``WEBVTT`` header, ``.mmm``)."""
    if fmt == "vtt":
        cue_list = [(start, end, escape_vtt(text)) for start, end, text in cue_list]
    return serialise(cue_list, fmt)


def serialise(cue_list: Sequence[Cue], fmt: str) -> str:
    """Serialise cues whose text is already in the format's syntax (escaped, and for word-level
    WebVTT carrying timestamp tags, which :func:`render` would escape)."""
    parts: list[str] = ["WEBVTT\n"] if fmt == "vtt" else []
    sep = "." if fmt == "vtt" else ","
    for number, (start, end, text) in enumerate(cue_list, start=1):
        timing = f"{timestamp(start, sep)} --> {timestamp(end, sep)}"
        parts.append(f"{number}\n{timing}\n{text}\n" if fmt == "srt" else f"{timing}\n{text}\n")
    return "\n".join(parts)


def escape_vtt(text: str) -> str:
    """WebVTT cue text is markup: a literal & < > must be escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def timestamp(seconds: float, sep: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT) or ``HH:MM:SS.mmm`` (VTT), rounded to the millisecond."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def wrap(text: str, width: int = MAX_LINE, max_lines: int = MAX_LINES) -> list[str]:
    """``text`` as groups of at most ``max_lines`` balanced lines of at most ``width`` characters.

    One group when it fits; otherwise several, each to become its own cue. A single word longer
    than ``width`` stays whole (it is never cut mid-word).
    """
    words = " ".join(text.split())
    if not words:
        return []
    lines = textwrap.wrap(words, width, break_long_words=False, break_on_hyphens=False)
    groups = [" ".join(lines[i : i + max_lines]) for i in range(0, len(lines), max_lines)]
    return ["\n".join(_balanced(group, width, max_lines)) for group in groups]


def _balanced(text: str, width: int, max_lines: int) -> list[str]:
    """A text that fits one line stays on one line; a longer one takes the narrowest wrap that still
    fits in ``max_lines`` lines: two lines of similar length read better than a full first line and
    a one-word second one."""
    best = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
    if len(best) <= 1:
        return best
    for narrower in range(width - 1, max(1, len(text) // max_lines) - 1, -1):
        lines = textwrap.wrap(text, narrower, break_long_words=False, break_on_hyphens=False)
        if len(lines) > max_lines:
            break
        best = lines
    return best


def fit(text: str, start: float, end: float) -> list[Cue]:
    """One cue for ``text`` over ``[start, end]``, or consecutive cues sharing that span by
    character count when the text needs more than two lines. Empty text or span: no cue."""
    groups = wrap(text)
    if not groups or end <= start:
        return []
    weights = [len(group) for group in groups]
    total = float(sum(weights))
    out: list[Cue] = []
    edge = start
    for i, (group, weight) in enumerate(zip(groups, weights)):
        after = end if i == len(groups) - 1 else edge + (end - start) * weight / total
        out.append((edge, after, group))
        edge = after
    return out
