"""Read a file into the blocks of a project: pure functions, no store, UI or model code.

:func:`parse` turns the bytes (or text) of an uploaded file into an :class:`ImportResult`, a tuple
of :class:`BlockDraft` plus an optional title; :func:`match_voices` then lists the voice names the
file used that match no profile. Formats (:data:`FORMATS`):

* ``text``: a blank line starts a new block; whitespace inside a block collapses to one space.
* ``markdown``: see :mod:`voicebox.projects.markdown_in` (headings start chapters).
* ``srt`` / ``vtt``: see :mod:`voicebox.projects.subtitles_in` (one block per cue, with its times).
* ``csv``: see :mod:`voicebox.projects.csv_in` (a header row naming a ``text`` column).
* ``dialogue``: one ``Name: line`` per line; the name is the block's voice. A line without a name
  continues the block above it (so a long speech may be wrapped over several lines), blank lines
  are ignored, ``Name:`` alone on a line takes the lines below it (screenplay style), and a line
  wholly in brackets, ``(laughs)`` or ``[Scene 2]``, is a stage direction and is skipped. A name
  is what stands before the first ``:`` that is followed by a space or the line end, when it is at
  most 60 characters, starts with a letter and holds no ``!?;,``, quotes or brackets (so ``Mr.
  Smith:`` is a name, ``At 10:30 we left`` and ``https://...`` are text).

Bytes are read as UTF-8 (a BOM is dropped), UTF-16 when it starts with a UTF-16 BOM, and
otherwise as Windows-1252, which never fails. Every problem a person can fix raises
:class:`~voicebox.errors.InvalidInput` with a message that names the line and says what to do.
A block longer than :data:`MAX_BLOCK_CHARS` is split at sentence ends into several blocks (the
chapter stays on the first, the pause and a cue's end on the last); a file with more than
:data:`MAX_BLOCKS` blocks is refused.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from ..engines.text_split import first_part
from ..errors import InvalidInput

__all__ = [
    "FORMATS",
    "MAX_BLOCKS",
    "MAX_BLOCK_CHARS",
    "BlockDraft",
    "ImportResult",
    "guess_format",
    "match_voices",
    "parse",
]

FORMATS = ("text", "markdown", "srt", "vtt", "csv", "dialogue")
#: A longer block is split at sentence ends (the engine chunks each block further).
MAX_BLOCK_CHARS = 5000
#: More blocks than this in one file is refused: split the work into several projects.
MAX_BLOCKS = 5000

NO_TEXT = "The file has no text to speak."
_EXTENSIONS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".srt": "srt",
    ".vtt": "vtt",
    ".csv": "csv",
}
_ALIASES = {"txt": "text", "md": "markdown", "webvtt": "vtt", "script": "dialogue"}


@dataclass(frozen=True)
class BlockDraft:
    """One block of a project as read from a file, before it is stored."""

    text: str
    voice: str = ""  #: a profile name as written in the file ("" = the project's default voice)
    language: str = ""  #: as written ("" = the project's default); the store normalises it
    pause: float | None = None  #: seconds of silence after the block (None = the default)
    chapter: str = ""  #: the title of a chapter that starts at this block
    start: float | None = None  #: cue start time in seconds (subtitles)
    end: float | None = None  #: cue end time in seconds (subtitles)
    line: int = 0  #: 1-based line of the file where the block starts (for messages)


@dataclass(frozen=True)
class ImportResult:
    """The blocks of a file, its title (Markdown's first ``#`` heading) and unknown voice names."""

    blocks: tuple[BlockDraft, ...]
    title: str = ""
    unknown_voices: tuple[str, ...] = ()  #: filled by :func:`match_voices`


# --- shared helpers ----------------------------------------------------------------------------


def line_error(line: int, reason: str) -> InvalidInput:
    """``Line N could not be read: <reason>`` (the reason says what to fix)."""
    return InvalidInput(f"Line {line} could not be read: {reason}")


def squash(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def paragraphs(text: str) -> list[tuple[int, list[str]]]:
    """Runs of non-blank lines as ``(1-based line of the first, [lines])``."""
    out: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        if raw.strip():
            if not current:
                out.append((number, current))
            current.append(raw)
        elif current:
            current = []
    return out


def decode(data: bytes | str) -> str:
    """Text of an uploaded file with ``\\n`` line ends: UTF-8 (BOM dropped), UTF-16 with a BOM, else cp1252."""
    if isinstance(data, str):
        text = data
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes or str, not {type(data).__name__}")
    else:
        raw = bytes(data)
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not raw.startswith(codecs.BOM_UTF8):
            text = raw.decode("utf-16", errors="replace")
        else:
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = raw.decode("cp1252", errors="replace")  # 5 unused bytes become U+FFFD
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        raise InvalidInput(
            "The file is not a text file (it holds binary data): save it as plain text (UTF-8) "
            "and import it again."
        )
    return text


def _parts(text: str) -> Iterator[str]:
    """``text`` in pieces of at most :data:`MAX_BLOCK_CHARS`, cut at sentence ends (else spaces).

    Each cut is :func:`first_part`'s on a window of the rest, so a huge block costs linear time.
    """
    pos, end = 0, len(text.rstrip())
    while (found := _NON_SPACE.search(text, pos, end)) is not None:
        pos = found.start()
        if end - pos <= MAX_BLOCK_CHARS:
            yield text[pos:end]
            return
        # first_part only looks at the first MAX + 1 characters once it knows the text is longer;
        # the "x" says so, and is never part of what it returns.
        part, _ = first_part(text[pos : pos + MAX_BLOCK_CHARS + 1] + "x", MAX_BLOCK_CHARS)
        yield part
        pos += len(part)


def _finish(blocks: Iterable[BlockDraft], title: str = "") -> ImportResult:
    """Drop empty blocks, split long ones (chapter and start on the first, end and pause on the
    last), enforce the caps."""
    out: list[BlockDraft] = []

    def add(block: BlockDraft) -> None:
        out.append(block)
        if len(out) > MAX_BLOCKS:
            raise InvalidInput(
                f"The file has more than {MAX_BLOCKS:,} blocks (the limit was passed at line "
                f"{block.line}): split it into several files and import them as separate projects."
            )

    for block in blocks:
        if len(block.text) <= MAX_BLOCK_CHARS:
            if block.text.strip():
                add(block)
            continue
        parts = _parts(block.text)
        piece = replace(block, text=next(parts), end=None, pause=None)
        for part in parts:
            add(piece)
            piece = replace(piece, text=part, chapter="", start=None)
        add(replace(piece, end=block.end, pause=block.pause))
    if not out:
        raise InvalidInput(NO_TEXT)
    return ImportResult(blocks=tuple(out), title=title)


_NON_SPACE = re.compile(r"\S")


# --- plain text --------------------------------------------------------------------------------


def parse_text(text: str) -> ImportResult:
    """A blank line starts a new block; whitespace inside a block is normalised."""
    return _finish(BlockDraft(text=squash(" ".join(lines)), line=line) for line, lines in paragraphs(text))


# --- dialogue ----------------------------------------------------------------------------------

_SPEAKER = re.compile(r"\s*([^\W\d_][^:!?;,\"“”()\[\]{}<>/\\|]{0,59}?)\s*:(?:\s+|$)(.*)")
_DIRECTION = re.compile(r"\s*(?:\(.*\)|\[.*\])\s*")


def parse_dialogue(text: str) -> ImportResult:
    """``Name: line`` per line; unnamed lines continue the block above; blanks and (directions) skipped."""
    blocks: list[BlockDraft] = []
    voice, start, parts = "", 0, []  # the block being read

    def close() -> None:
        if not start:
            return
        if not parts:
            raise line_error(start, f"{voice!r} has no line to speak; write it after the colon.")
        blocks.append(BlockDraft(text=squash(" ".join(parts)), voice=voice, line=start))

    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip() or _DIRECTION.fullmatch(raw):
            continue
        match = _SPEAKER.fullmatch(raw)
        if match:
            close()
            voice, start = match.group(1), number
            parts = [match.group(2)] if match.group(2).strip() else []
        elif not start:
            raise line_error(
                number, "it has no speaker; start the line with a name and a colon, e.g. 'Anna: Hello.'"
            )
        else:
            parts.append(raw)
    close()
    return _finish(blocks)


# --- dispatch ----------------------------------------------------------------------------------


def _parsers() -> dict[str, Callable[[str], ImportResult]]:
    from .csv_in import parse_csv
    from .markdown_in import parse_markdown
    from .subtitles_in import parse_srt, parse_vtt

    return {
        "text": parse_text,
        "markdown": parse_markdown,
        "srt": parse_srt,
        "vtt": parse_vtt,
        "csv": parse_csv,
        "dialogue": parse_dialogue,
    }


def parse(data: bytes | str, fmt: str) -> ImportResult:
    """Read ``data`` (a file's bytes, or text) in format ``fmt`` (one of :data:`FORMATS`)."""
    name = str(fmt or "").strip().lower()
    name = _ALIASES.get(name, name)
    if name not in FORMATS:
        raise InvalidInput(f"Unknown import format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    text = decode(data)
    if not text.strip():
        raise InvalidInput(NO_TEXT)
    return _parsers()[name](text)


def match_voices(result: ImportResult, profile_names: Iterable[str]) -> ImportResult:
    """``result`` with ``unknown_voices``: the blocks' voice names that match no profile.

    Matching ignores case and surrounding spaces; names are listed once, in order of first
    appearance, as first written. The blocks are left as they are.
    """
    known = {str(name).strip().casefold() for name in profile_names}
    unknown: dict[str, str] = {}
    for block in result.blocks:
        key = block.voice.strip().casefold()
        if key and key not in known and key not in unknown:
            unknown[key] = block.voice.strip()
    return replace(result, unknown_voices=tuple(unknown.values()))


def guess_format(filename: str) -> str | None:
    """The format a file name's extension suggests (``.txt .md .srt .vtt .csv``), else ``None``."""
    return _EXTENSIONS.get(os.path.splitext(str(filename or "").strip())[1].lower())
