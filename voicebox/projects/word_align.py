"""The block's own words, timed by the words Whisper heard: what word-level subtitles show.

Why: the block's text is what the person wrote (punctuation, names, casing), and it is what the
voice was asked to say; Whisper (``tiny.en`` especially) mishears, drops and adds words. So the
subtitles read the block's words, and Whisper only says *when* each is spoken.

How: both word lists are normalised for matching (NFKC, case folded, everything but letters and
digits dropped, so ``"Americans,"`` matches ``"americans"``; digits against number words is out of
scope) and aligned with :class:`difflib.SequenceMatcher`:

* a block word Whisper heard as written takes that word's time;
* a run of block words Whisper heard as other words takes those words' span: word for word when
  the counts match (a misheard word keeps its time), otherwise shared by character count;
* a run of block words Whisper did not hear at all shares the gap between the timed words on
  either side (the block's start or end at the edges) by character count. When that gap is too
  short to show them (Whisper often stretches a neighbour over a swallowed word), the run and its
  neighbours share the neighbours' span instead, so no word is squeezed to nothing;
* words Whisper heard that the block does not have are dropped: they are not in the text.

When fewer than :data:`MIN_MATCH` of the block's words are heard as written, Whisper heard
something else (another language, a garbled take), and its times say nothing about where the
block's words are: the block's words are then spread by character count over the span in which
Whisper heard speech (its first word's start to its last word's end). Times are monotonic and
inside the block's span.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from ..engines.transcripts import Word

#: Below this share of the block's words heard as written, Whisper's words are not trusted to
#: place them; the block's words are spread over the heard span instead.
MIN_MATCH = 0.3
#: A run of unheard words gets at least this long per word, else it borrows from its neighbours.
MIN_WORD_S = 0.08

_Span = tuple[float, float]


@dataclass(frozen=True)
class Alignment:
    """The block's words with times (in the same timeline as the heard words given).

    ``words`` keep the block's spelling and punctuation; a word's ``probability`` is Whisper's
    confidence in the word it heard as written there, 0.0 for a word whose time is estimated
    (misheard, unheard, or spread). ``matched`` counts the block's words heard as written;
    ``spread`` says too few were (below :data:`MIN_MATCH`) and the words were spread by character
    count over the heard span."""

    words: tuple[Word, ...]
    matched: int
    spread: bool = False


def normalise(word: str) -> str:
    """``word`` as compared: NFKC, case folded, letters and digits only ("Don't," → "dont")."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", word).casefold() if ch.isalnum())


def align(text: str, heard: Sequence[Word], start: float, end: float) -> Alignment:
    """The words of ``text`` (split on whitespace, punctuation kept) timed by ``heard``, the words
    Whisper heard in order, all inside ``start``..``end`` (the block's span). No words heard, or
    no text: no words (the caller shows its block cue)."""
    said = text.split()
    if not said or not heard:
        return Alignment((), 0)
    # A token with nothing to compare ("—") gets a key that matches nothing.
    mine: list[object] = [normalise(w) or ("said", i) for i, w in enumerate(said)]
    theirs: list[object] = [normalise(w.text) or ("heard", j) for j, w in enumerate(heard)]
    times: list[_Span | None] = [None] * len(said)
    probability = [0.0] * len(said)
    matched = 0
    matcher = SequenceMatcher(None, mine, theirs, autojunk=False)  # autojunk would drop "the"
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                times[i] = (heard[j].start, heard[j].end)
                probability[i] = heard[j].probability
            matched += i2 - i1
        elif tag == "replace" and i2 - i1 == j2 - j1:  # misheard word for word
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                times[i] = (heard[j].start, heard[j].end)
        elif tag == "replace":
            times[i1:i2] = _share(said[i1:i2], heard[j1].start, heard[j2 - 1].end)
    countable = sum(1 for key in mine if isinstance(key, str))
    if matched == 0 or matched < MIN_MATCH * countable:
        spans = _share(said, heard[0].start, heard[-1].end)
        return Alignment(_settle(said, spans, [0.0] * len(said), start, end), matched, spread=True)
    _fill(said, times, start, end)
    return Alignment(_settle(said, times, probability, start, end), matched)


def _fill(said: list[str], times: list[_Span | None], start: float, end: float) -> None:
    """Time each run of unheard words (None in ``times``) in place, between its neighbours."""
    i = 0
    while i < len(said):
        if times[i] is not None:
            i += 1
            continue
        k = i
        while k < len(said) and times[k] is None:
            k += 1
        left = times[i - 1] if i > 0 else None
        right = times[k] if k < len(said) else None
        lo = left[1] if left else start
        hi = right[0] if right else end
        if hi - lo >= MIN_WORD_S * (k - i):
            times[i:k] = _share(said[i:k], lo, hi)
        else:  # no room between the neighbours: the run and its neighbours share their span
            first = i - 1 if left else i
            last = k + 1 if right else k
            lo = left[0] if left else start
            hi = right[1] if right else end
            times[first:last] = _share(said[first:last], lo, max(lo, hi))
        i = k


def _share(words: Sequence[str], lo: float, hi: float) -> list[_Span | None]:
    """``lo``..``hi`` cut into one span per word, in proportion to the words' lengths."""
    weights = [max(1, len(w)) for w in words]
    total, done, out = sum(weights), 0, []
    for weight in weights:
        s = lo + (hi - lo) * done / total
        done += weight
        out.append((s, lo + (hi - lo) * done / total))
    return out


def _settle(
    said: list[str], times: Sequence[_Span | None], probability: list[float], start: float, end: float
) -> tuple[Word, ...]:
    """The block's words as :class:`Word` s, rounded to the millisecond, clamped inside the
    block's span and never starting before the word before ends (cues must not overlap)."""
    out = []
    floor = start
    for text, span, p in zip(said, times, probability, strict=True):
        assert span is not None  # every word was timed above
        w0 = min(end, max(floor, round(span[0], 3)))  # rounded first: the clamp has the last word
        w1 = min(end, max(w0, round(span[1], 3)))
        out.append(Word(text, w0, w1, p))
        floor = w1
    return tuple(out)
