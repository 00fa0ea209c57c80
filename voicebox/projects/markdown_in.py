"""Markdown import: headings start chapters, paragraphs and list items are blocks.

* ``#`` to ``######`` headings (and ``===``/``---`` underlined ones) are not spoken: each starts a
  chapter whose title is the heading text, carried by the next block (of two headings with no
  text between them, the later one counts). The first ``#`` heading is also the project title.
* A paragraph (lines up to a blank line) is one block; each list item (``-``, ``*``, ``+``,
  ``1.``, ``1)``; a ``[ ]``/``[x]`` task box dropped) is one block, with its wrapped lines.
* Quote markers (``>``) are dropped and the quoted text kept. Fenced code blocks, YAML front
  matter, HTML comments, horizontal rules, table separator rows and link reference
  definitions are skipped (there is nothing in them to narrate).
* Inside text, emphasis, strikethrough, inline code markers and HTML tags are removed, a link
  keeps its text, an image is dropped, backslash escapes and entities are decoded.
"""

from __future__ import annotations

import html
import re

from .importers import BlockDraft, ImportResult, _finish, squash

__all__ = ["parse_markdown", "plain"]

_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))??(?:[ \t]+#+)?[ \t]*")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_RULE = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_ITEM = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?(.*)")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_QUOTE = re.compile(r"[ \t]{0,3}(?:>[ \t]?)+")
_REFERENCE = re.compile(r" {0,3}\[[^\]]+\]:[ \t]*\S+.*")
_TABLE_RULE = re.compile(r"[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*(?::?-+:?)?[ \t]*")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)

_INLINE = (
    (re.compile(r"!\[[^\]]*\]\([^)]*\)|!\[[^\]]*\]\[[^\]]*\]"), ""),  # images
    (re.compile(r"\[([^\]]*)\]\([^)]*\)|\[([^\]]*)\]\[[^\]]*\]"), r"\1\2"),  # links
    (re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"(`+)[ ]?(.+?)[ ]?\1"), r"\2"),  # inline code
    (re.compile(r"</?[A-Za-z][^>]*>"), ""),  # HTML tags
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),  # strikethrough
    (re.compile(r"\*(?=\S)(.+?)(?<=\S)\*"), r"\1"),  # emphasis
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # emphasis, not snake_case
)
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_PRIVATE = 0xE000  # escaped characters wait in the private use area while markup is stripped


def plain(text: str) -> str:
    """Markdown inline markup to plain, whitespace-normalised text."""
    text = _ESCAPE.sub(lambda m: chr(_PRIVATE + ord(m.group(1))), text)
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    text = "".join(chr(ord(c) - _PRIVATE) if _PRIVATE < ord(c) < _PRIVATE + 128 else c for c in text)
    return squash(html.unescape(text))


def parse_markdown(text: str) -> ImportResult:
    """Blocks, chapters and title of a Markdown document (see the module docstring)."""
    text = _COMMENT.sub(lambda m: "\n" * m.group().count("\n"), text)
    lines = text.split("\n")
    blocks: list[BlockDraft] = []
    title = ""
    chapter = ""  # a heading waiting for its first block
    current: list[str] = []  # lines of the paragraph or list item being read
    current_line, is_item = 0, False
    fence = ""

    def close() -> None:
        nonlocal chapter, current
        if current:
            body = plain(" ".join(current))
            if body:
                blocks.append(BlockDraft(text=body, chapter=chapter, line=current_line))
                chapter = ""
        current = []

    def heading(level: int, raw: str) -> None:
        nonlocal title, chapter
        name = plain(raw)
        if name:
            chapter = name
            if level == 1 and not title:
                title = name

    start = 0
    if lines and lines[0].strip() == "---":  # YAML front matter
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is not None:
            start = end + 1
    for number in range(start + 1, len(lines) + 1):
        raw = lines[number - 1]
        if fence:
            if raw.strip().startswith(fence):
                fence = ""
            continue
        quote = _QUOTE.match(raw)
        line = raw[quote.end() :] if quote else raw
        if not line.strip():
            close()
            continue
        if (match := _FENCE.match(line)) is not None:
            close()
            fence = match.group(1)[0] * 3
            continue
        if current and not is_item and len(current) == 1 and (setext := _SETEXT.fullmatch(line)):
            heading(1 if setext.group(1)[0] == "=" else 2, current[0])
            current = []
            continue
        if _RULE.fullmatch(line) or _TABLE_RULE.fullmatch(line) or _REFERENCE.fullmatch(line):
            close()
            continue
        if (match := _HEADING.fullmatch(line)) is not None:
            close()
            heading(len(match.group(1)), match.group(2) or "")
            continue
        if (match := _ITEM.fullmatch(line)) is not None:
            close()
            current, current_line, is_item = [match.group(1)], number, True
            continue
        if not current:
            current_line, is_item = number, False
        current.append(line)
    close()
    return _finish(blocks, title=title)
