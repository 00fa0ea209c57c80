"""Word-level subtitles: cues timed by the words Whisper hears in the rendered audio.

Why Whisper and not the text: a take's chunk records say where each *sentence* lies, but nothing
in the speech model says when each word is spoken, and an estimate by character count drifts
within a sentence. So each block's take is transcribed once more with faster-whisper's word
timestamps (:meth:`~voicebox.engines.asr.WhisperEngine.words`), and the words are placed in the
exported file by the block's start in the :class:`~voicebox.projects.export.Timeline`, clamped
inside the block's span (a word can never spill into a pause or the next block).

The cue text is the block's own words, not what Whisper heard: the block's text is what the
person wrote (punctuation, names, casing) and Whisper mishears, so :func:`.word_align.align`
matches the block's words to the heard words and gives each block word a heard word's time
(interpolating over words Whisper missed). A block in which Whisper hears nothing keeps its one
block cue.

Cues follow the same readability rules as :mod:`.subtitles` (two lines of at most 42 characters,
balanced) and also end at a sentence end and at a pause longer than :data:`GAP_S`, so a cue never
straddles a silence. Each cue starts at its first word's start and ends at its last word's end.
In WebVTT every word after the first carries a timestamp tag (``<00:00:01.234>word``), the time
it is spoken, so players that support karaoke-style cues highlight word by word; the first word's
time is the cue's start. SRT has no such tags: plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from ..engines.transcripts import Word
from ..errors import InvalidInput, ModelUnavailable
from ..languages import is_auto, whisper_code
from .export import RenderedBlock, Timeline
from .subtitles import MAX_LINE, MAX_LINES, escape_vtt, fit, serialise, timestamp
from .word_align import align

#: A silence longer than this between two words ends the cue (seconds).
GAP_S = 0.5
_SENTENCE_END = (".", "!", "?", "…", "。", "！", "？")
_CLOSERS = "\"'”’»)]"
_MIN_CUE_S = 0.01


class WordTimer(Protocol):
    """What times the words: :class:`~voicebox.engines.asr.WhisperEngine` (``studio.asr``)."""

    def words(self, audio: object, language: str | None = None) -> list[Word]: ...


@dataclass(frozen=True)
class TimedBlock(RenderedBlock):
    """A rendered block with the words Whisper heard in it, times inside the block's own audio.
    ``words`` are Whisper's, kept as heard: they time the block's own words when the subtitles
    are written (:func:`word_subtitles`). Empty: Whisper heard none, and the block keeps its
    block cue."""

    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class WordCue:
    """A cue of words placed in the exported audio: ``lines`` holds the words of each line."""

    lines: tuple[tuple[Word, ...], ...]

    @property
    def start(self) -> float:
        return self.lines[0][0].start

    @property
    def end(self) -> float:
        return max(self.lines[-1][-1].end, self.start + _MIN_CUE_S)

    def plain(self) -> str:
        """The cue text without times (SRT)."""
        return "\n".join(" ".join(w.text for w in line) for line in self.lines)

    def marked(self) -> str:
        """WebVTT cue text: each word after the first prefixed by its timestamp tag. A tag must
        be later than the cue start and the previous tag and earlier than the cue end (WebVTT),
        so a word whose millisecond time breaks that order is left untagged (it lights up with
        the word before it)."""
        start, end = round(self.start * 1000), round(self.end * 1000)
        last = start
        out = []
        for line in self.lines:
            parts = []
            for word in line:
                at = round(word.start * 1000)
                text = escape_vtt(word.text)
                if last < at < end:
                    text = f"<{timestamp(at / 1000, '.')}>{text}"
                    last = at
                parts.append(text)
            out.append(" ".join(parts))
        return "\n".join(out)


def time_words(asr: WordTimer, blocks: Sequence[RenderedBlock], languages: Sequence[str | None],
               step: Callable[[str], None] | None = None) -> list[TimedBlock]:
    """Each block with the words Whisper hears in its audio; ``languages`` holds each block's
    language (a name or code; auto or empty: detect). ``step`` hears "timing the words" once.

    Raises:
        ModelUnavailable: Whisper cannot be loaded; the message says to choose block or sentence
            level subtitles instead.
        InvalidInput: a block in a language the Whisper model in use cannot hear.
    """
    if step is not None:
        step("timing the words")
    timed = []
    for block, language in zip(blocks, languages, strict=True):
        hint = None if is_auto(language) else whisper_code(language)
        try:
            words = asr.words(block.audio, hint)
        except ModelUnavailable as exc:
            raise ModelUnavailable(
                f"Word-level subtitles need Whisper, which cannot be loaded: {exc.message} "
                "Choose block or sentence level subtitles to export without it."
            ) from None
        except InvalidInput as exc:
            raise InvalidInput(f"Block {block.index + 1}: {exc.message}") from None
        timed.append(TimedBlock(block.index, block.text, block.audio, block.pause, block.chapter,
                                block.sentences, tuple(words)))
    return timed


def word_subtitles(blocks: Sequence[RenderedBlock], timeline: Timeline, fmt: str) -> str:
    """Word-level SRT or WebVTT for ``blocks`` (:class:`TimedBlock` each) as placed by ``timeline``:
    each block's own words, timed by the words Whisper heard (:func:`.word_align.align`).

    Raises:
        InvalidInput: a block whose words were never timed, or one missing from the timeline.
    """
    spans = {index: (start, end) for index, start, end in timeline.blocks}
    entries: list[tuple[float, float, str]] = []
    for block in blocks:
        if not isinstance(block, TimedBlock):
            raise InvalidInput(
                f"Block {block.index + 1} has no word timings; word-level subtitles need a Whisper "
                "pass over the rendered audio first (export at level 'word')."
            )
        if block.index not in spans:
            raise InvalidInput(f"Block {block.index + 1} is not in the exported audio; export it again.")
        start, end = spans[block.index]
        shown = align(block.text, place(block.words, start, end), start, end).words
        if not shown:  # Whisper heard nothing: the block's own text over its span
            for s, e, text in fit(block.text, start, end):
                entries.append((s, e, escape_vtt(text) if fmt == "vtt" else text))
            continue
        for cue in group(shown):
            entries.append((cue.start, cue.end, cue.marked() if fmt == "vtt" else cue.plain()))
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return serialise(entries, fmt)


def place(words: Sequence[Word], start: float, end: float) -> list[Word]:
    """``words`` (times inside a block's audio) moved to the exported file, the block starting
    at ``start`` and ending at ``end``: clamped inside that span, and never earlier than the word
    before ends (Whisper's words do not overlap, but rounding can touch), so cues never overlap."""
    placed = []
    floor = start
    for word in words:
        w0 = min(end, max(floor, start + word.start))
        w1 = min(end, max(w0, start + word.end))
        placed.append(replace(word, start=round(w0, 3), end=round(w1, 3)))
        floor = w1
    return placed


def group(words: Sequence[Word], width: int = MAX_LINE, gap: float = GAP_S) -> list[WordCue]:
    """Consecutive ``words`` as readable cues: a cue ends after a sentence's last word, before a
    silence longer than ``gap``, and before the word that would not fit in two lines of ``width``
    characters. A single word longer than ``width`` is a cue of its own, never cut."""
    cues: list[WordCue] = []
    current: list[Word] = []
    for word in words:
        if current and (
            _ends_sentence(current[-1].text)
            or word.start - current[-1].end > gap
            or split_lines([*current, word], width) is None
        ):
            cues.append(WordCue(split_lines(current, width) or (tuple(current),)))
            current = []
        current.append(word)
    if current:
        cues.append(WordCue(split_lines(current, width) or (tuple(current),)))
    return cues


def split_lines(words: Sequence[Word], width: int = MAX_LINE) -> tuple[tuple[Word, ...], ...] | None:
    """``words`` on one line when they fit in ``width`` characters, else on the two lines of most
    similar length that both fit (balanced, as :func:`.subtitles.wrap` balances block text);
    None when they do not fit in :data:`~.subtitles.MAX_LINES` lines. One word always fits."""
    if not words:
        return None
    if len(words) == 1 or _width(words) <= width:
        return (tuple(words),)
    if MAX_LINES < 2:
        return None
    best: tuple[int, int] | None = None  # (longer line, split index)
    for k in range(1, len(words)):
        longer = max(_width(words[:k]), _width(words[k:]))
        if longer <= width and (best is None or longer < best[0]):
            best = (longer, k)
    if best is None:
        return None
    return tuple(words[: best[1]]), tuple(words[best[1]:])


def _width(words: Sequence[Word]) -> int:
    return sum(len(w.text) for w in words) + len(words) - 1


def _ends_sentence(text: str) -> bool:
    return text.rstrip(_CLOSERS).endswith(_SENTENCE_END)
