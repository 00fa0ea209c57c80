"""SRT and WebVTT import: one block per cue, with the cue's start and end in seconds.

SRT: cues are separated by blank lines; each is an optional number, a time line
``hh:mm:ss,mmm --> hh:mm:ss,mmm`` (a ``.`` before the milliseconds is accepted too) and one or
more text lines. WebVTT: the file starts with ``WEBVTT``; the header, ``NOTE``, ``STYLE`` and
``REGION`` blocks are skipped; a cue may have an identifier line and settings after its end time;
times are ``[hh:]mm:ss.mmm``; the first ``<v Name>`` span of a cue gives the block's voice.
In both, the text lines of a cue are joined with a space, tags (``<i>``, ``<font ...>``,
``<c.x>``, timestamps) and ``{\\an8}``-style codes are stripped and HTML entities decoded; a cue
with no text left is skipped.
"""

from __future__ import annotations

import html
import re

from .importers import BlockDraft, ImportResult, _finish, line_error, paragraphs, squash

__all__ = ["parse_srt", "parse_vtt"]

_SRT_TIME = re.compile(r"(\d{1,3}):([0-5]\d):([0-5]\d)[,.](\d{3})")
_VTT_TIME = re.compile(r"(?:(\d{1,3}):)?([0-5]\d):([0-5]\d)\.(\d{3})")
_VOICE_SPAN = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]+?)\s*>")
_TAG = re.compile(r"</?[A-Za-z0-9:.][^>]*>|\{\\[^}]*\}")
_VTT_SKIPPED = re.compile(r"(NOTE|STYLE|REGION)(\s|$)")


def _seconds(value: str, pattern: re.Pattern[str], form: str, line: int) -> float:
    match = pattern.fullmatch(value)
    if not match:
        raise line_error(line, f"the cue time {value!r} is not {form} (write e.g. {_EXAMPLE[form]}).")
    hours, minutes, seconds, millis = (int(group or 0) for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


_EXAMPLE = {"hh:mm:ss,mmm": "00:01:02,500", "hh:mm:ss.mmm": "00:01:02.500"}


def _times(timing: str, pattern: re.Pattern[str], form: str, line: int) -> tuple[float, float]:
    left, _, right = timing.partition("-->")
    fields = right.split()
    start = _seconds(left.strip(), pattern, form, line)
    end = _seconds(fields[0] if fields else "", pattern, form, line)
    if end < start:
        raise line_error(
            line, f"the cue ends ({fields[0]}) before it starts ({left.strip()}); swap the times."
        )
    return start, end


def _cue_text(lines: list[str]) -> str:
    return squash(html.unescape(_TAG.sub("", " ".join(lines))))


def parse_srt(text: str) -> ImportResult:
    """One block per SRT cue, with its times."""
    blocks: list[BlockDraft] = []
    for first, lines in paragraphs(text):
        index = 1 if lines[0].strip().isdigit() and len(lines) > 1 else 0
        timing = lines[index]
        if "-->" not in timing:
            raise line_error(
                first + index,
                f"expected a cue time line like '00:00:01,000 --> 00:00:04,000', found {timing.strip()!r}. "
                "Each cue is a number, a time line and its text, with a blank line between cues.",
            )
        start, end = _times(timing, _SRT_TIME, "hh:mm:ss,mmm", first + index)
        blocks.append(BlockDraft(text=_cue_text(lines[index + 1 :]), start=start, end=end, line=first))
    return _finish(blocks)


def parse_vtt(text: str) -> ImportResult:
    """One block per WebVTT cue, with its times and the voice of its first ``<v Name>`` span."""
    chunks = paragraphs(text)
    if not chunks or chunks[0][0] != 1 or not re.match(r"WEBVTT(\s|$)", chunks[0][1][0].strip()):
        raise line_error(1, "a WebVTT file starts with the line 'WEBVTT'; add it, or import the file as SRT.")
    blocks: list[BlockDraft] = []
    for first, lines in chunks[1:]:
        if _VTT_SKIPPED.match(lines[0].strip()):
            continue
        index = 0 if "-->" in lines[0] else 1
        if index >= len(lines) or "-->" not in lines[index]:
            raise line_error(
                first + min(index, len(lines) - 1),
                "expected a cue time line like '00:00:01.000 --> 00:00:04.000' (after an optional cue "
                "name), with a blank line between cues.",
            )
        start, end = _times(lines[index], _VTT_TIME, "hh:mm:ss.mmm", first + index)
        body = " ".join(lines[index + 1 :])
        voice = _VOICE_SPAN.search(body)
        blocks.append(
            BlockDraft(
                text=_cue_text([body]),
                voice=squash(voice.group(1)) if voice else "",
                start=start,
                end=end,
                line=first,
            )
        )
    return _finish(blocks)
