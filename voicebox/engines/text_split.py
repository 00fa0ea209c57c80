"""Split long text into sentence-aligned chunks that a TTS model voices well.

Why chunk at all: Qwen3-TTS (like most autoregressive TTS models) degrades on long inputs. Past a
few hundred characters it starts to rush, mumble, repeat or skip words, and it may never emit its
end-of-speech token, so generation runs on until the token limit and produces minutes of noise.
Short, sentence-aligned chunks keep every request in the range the model was trained on, and they
also let the caller batch several chunks in one forward pass and stream audio to the user chunk by
chunk instead of waiting for the whole text.

Two functions, both pure Python and deterministic:

* :func:`split_sentences` cuts text into sentences: after ``. ! ? …`` and the CJK ``。！？``
  (with any closing quotes or brackets that follow them) and at line breaks, while keeping
  abbreviations (``Mr.``, ``e.g.``, ``U.S.``), initials (``J. R. R. Tolkien``), numbers
  (``3.14``, ``v1.2.3``, ``$4.50``), URLs, e-mail addresses and in-sentence ellipses intact.
* :func:`chunk_text` greedily packs consecutive sentences into chunks of at most ``max_chars``,
  splitting an over-long sentence at clause punctuation, then at spaces, then by a hard cut.

Neither ever drops or reorders a non-whitespace character: with all whitespace removed, the
concatenated output equals the input. Whitespace is normalised (runs collapse to one space, pieces
are stripped) and empty pieces are dropped.
"""

from __future__ import annotations

import re

__all__ = ["DEFAULT_MAX_CHARS", "MIN_MAX_CHARS", "chunk_text", "first_part", "split_sentences"]

#: Default chunk size: comfortably inside what Qwen3-TTS voices without drifting.
DEFAULT_MAX_CHARS = 300
#: Smallest ``max_chars`` accepted; anything shorter would cut ordinary words apart.
MIN_MAX_CHARS = 20

# --- character classes -------------------------------------------------------------------------

#: Terminators that end a sentence even with no space after them (Chinese/Japanese style).
_CJK_TERMINATORS = "。｡！？"
#: Full-width full stop: a terminator, except between digits (full-width decimals, "３．１４").
_FULLWIDTH_STOP = "．"
#: Latin terminators: they end a sentence only before whitespace or a CJK character.
_LATIN_TERMINATORS = ".!?…‼⁇⁈⁉"
_EXCLAMATIONS = "!?‼⁇⁈⁉"
#: Closing quotes and brackets that stay attached to the terminator before them.
_CLOSERS = "\"'”’»›)]}」』）】〕〉》〗〙〛｣＂＇］｝"
#: Opening quotes and brackets, skipped when looking at the word after a terminator.
_OPENERS = "\"'“‘„«‹([{¿¡「『（【〔〈《〖〘〚｢＂＇［｛"
#: Clause punctuation that may split an over-long sentence wherever it stands.
_CLAUSE_ANYWHERE = "、，；：—﹐﹑﹔﹕"
#: Clause punctuation that splits only when followed by a space (so "1,000" and "10:30" survive).
_CLAUSE_BEFORE_SPACE = ",;:–"

_TERMINATOR_RUN = re.compile(
    "[" + re.escape(_LATIN_TERMINATORS + _CJK_TERMINATORS + _FULLWIDTH_STOP) + "]+"
    "[" + re.escape(_CLOSERS) + "]*"
)

_CJK_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Hangul compatibility Jamo, Katakana extensions
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # Half-width and full-width forms
    (0x20000, 0x3134F),  # CJK Extensions B-G
)

# --- abbreviations (lower case, without the final period) --------------------------------------

#: Never end a sentence: titles before names, "e.g.", "vs.", months, street words...
_ABBREV_ALWAYS = frozenset(
    """
    mr mrs ms mx messrs mmes mme mlle dr drs prof profs rev revd hon fr st ste mt ft
    gen gov sen rep pres col capt cpt cmdr cdr lt maj sgt cpl pvt adm supt insp det atty
    e.g i.e vs v cf viz approx appt apt dept est univ assn
    vol vols ch chap pp para eq eqs ref refs figs tel ext ave blvd rd
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri
    """.split()
)
#: Often end a sentence too: they end it only when the next word is capitalised (or CJK).
_ABBREV_SOFT = frozenset(
    """
    etc al inc ltd co corp llc plc bros jr sr ed eds esq a.m p.m a.d b.c ph.d
    min mins hr hrs sec secs max
    """.split()
)
#: Real words too ("said no.", "a fig."): abbreviations only before a number ("No. 5", "p. 12").
_ABBREV_NUMERIC = frozenset("no nos nr art fig p c ca".split())
#: Letters joined by periods ("U.S", "U.S.A", "e.g", "a.m"): abbreviations unless in the soft list.
_DOTTED_LETTERS = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")


def _is_cjk(char: str) -> bool:
    """True for CJK ideographs, kana, Hangul and CJK/full-width punctuation."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


# --- sentences ---------------------------------------------------------------------------------


def _next_word_start(line: str, pos: int) -> str:
    """The first character at or after ``pos`` that is neither a space nor an opening quote."""
    while pos < len(line) and (line[pos].isspace() or line[pos] in _OPENERS):
        pos += 1
    return line[pos] if pos < len(line) else ""


def _period_is_internal(line: str, start: int, seg_start: int, nxt: str) -> bool:
    """Whether the ``.`` at ``line[start]`` belongs to an abbreviation, initial or list number.

    ``seg_start`` is where the current sentence began; ``nxt`` is the first character of the next
    word ("" if none).
    """
    tok_start = start  # the token ends at the period; it starts after a space or a CJK character
    while tok_start > seg_start:
        prev = line[tok_start - 1]
        if prev.isspace() or _is_cjk(prev):
            break
        tok_start -= 1
    token = line[tok_start:start].lstrip(_OPENERS)
    if not token:
        return False
    low = token.lower()
    if low in _ABBREV_SOFT:
        return not (nxt.isupper() or (nxt != "" and _is_cjk(nxt)))
    if low in _ABBREV_ALWAYS or _DOTTED_LETTERS.fullmatch(low):
        return True
    if low in _ABBREV_NUMERIC:
        return nxt.isdigit() or nxt == "#"
    if len(token) == 1 and token.isalpha() and token.isupper() and token != "I":
        return True  # an initial: "J. R. R. Tolkien" (but "So did I. Then..." ends a sentence)
    if token.isdigit() and len(token) <= 3 and not line[seg_start:tok_start].strip():
        return True  # list numbering at the start of a sentence: "1. Preheat the oven."
    return False


def _is_boundary(line: str, match: re.Match[str], seg_start: int) -> bool:
    """Whether a run of terminators (plus closers) ends a sentence; the run is not at line end."""
    start, end = match.start(), match.end()
    closers_len = len(match.group()) - len(match.group().rstrip(_CLOSERS))
    run = match.group()[: len(match.group()) - closers_len]
    after = line[end]

    if any(c in _CJK_TERMINATORS for c in run):
        return True
    if _FULLWIDTH_STOP in run:
        prev = line[start - 1] if start else ""
        return not (set(run) == {_FULLWIDTH_STOP} and prev.isdigit() and after.isdigit())

    # Latin terminators: only before whitespace or directly before CJK text ("OK.好的").
    if after.isspace():
        nxt, direct = _next_word_start(line, end), False
    elif _is_cjk(after):
        nxt, direct = after, True
    else:
        return False  # "3.14", "v1.2.3", "example.com", "a@b.org", "wait…what"

    if "…" in run or ".." in run:  # ellipsis: a pause inside the sentence unless a new one starts
        return not direct and not nxt.islower()
    if closers_len and nxt.islower():
        return False  # dialogue tag: '"Stop!" she said.'
    if any(c in _EXCLAMATIONS for c in run):
        return not nxt.islower()  # '"Really?" you ask.' / 'What? no way'
    return not _period_is_internal(line, start, seg_start, nxt)


def _cut(text: str, positions: list[int]) -> list[tuple[str, str]]:
    """Cut ``text`` at ``positions`` into stripped, non-empty pieces.

    Each piece comes with the separator that stood before it: ``" "`` if whitespace separated it
    from the previous piece, ``""`` if the two touched (CJK text, hard cuts).
    """
    pieces: list[tuple[str, str]] = []
    bounds = [0, *positions, len(text)]
    for a, b in zip(bounds, bounds[1:]):
        raw = text[a:b]
        piece = raw.strip()
        if piece:
            sep = " " if raw[:1].isspace() or (a > 0 and text[a - 1].isspace()) else ""
            pieces.append((sep, piece))
    return pieces


def _sentences(text: str) -> list[tuple[str, str]]:
    """Sentences of ``text`` as ``(separator_before, sentence)`` pairs; see :func:`_cut`."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    out: list[tuple[str, str]] = []
    for raw_line in text.splitlines():
        line = " ".join(raw_line.split())
        if not line:
            continue
        cuts: list[int] = []
        seg_start = 0
        for match in _TERMINATOR_RUN.finditer(line):
            if match.end() < len(line) and _is_boundary(line, match, seg_start):
                cuts.append(match.end())
                seg_start = match.end()
        pieces = _cut(line, cuts)
        out.append((" ", pieces[0][1]))  # a line break separates lines
        out.extend(pieces[1:])
    return out


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, whitespace-normalised, with empty pieces dropped.

    A sentence ends after ``.``, ``!``, ``?`` or ``…`` followed by whitespace (or directly by CJK
    text), after the CJK ``。！？`` anywhere, and at every line break; closing quotes and brackets
    stay with the sentence they close. It does not end at:

    * abbreviations (``Mr.``, ``Dr.``, ``e.g.``, ``vs.``, ``U.S.``, ``Jan.``; case-insensitive).
      Ones that often close a sentence (``etc.``, ``Inc.``, ``a.m.``, ``p.m.``, ``Jr.``) end it
      only when the next word is capitalised; ``No.``/``p.``/``fig.`` only hold before a number;
    * single capital initials (``J. R. R. Tolkien``; ``I.`` is treated as the pronoun);
    * a number at the start of a sentence (``1. Preheat the oven``);
    * periods inside tokens: decimals, versions, money, URLs, e-mail and domain names;
    * an ellipsis, ``?`` or ``!`` followed by a lowercase word (``Wait… what?``,
      ``"Hi!" she said``).

    Runs of whitespace collapse to one space. No non-whitespace character is lost or reordered.
    """
    return [sentence for _, sentence in _sentences(text)]


# --- chunks ------------------------------------------------------------------------------------


def _clause_positions(sentence: str) -> list[int]:
    """Where an over-long sentence may be cut at clause punctuation (after any closing quotes)."""
    positions: list[int] = []
    for i, char in enumerate(sentence):
        anywhere = char in _CLAUSE_ANYWHERE
        if not anywhere and char not in _CLAUSE_BEFORE_SPACE:
            continue
        j = i + 1
        while j < len(sentence) and sentence[j] in _CLOSERS:
            j += 1
        if j < len(sentence) and (anywhere or sentence[j].isspace()):
            positions.append(j)
    return positions


def _fit(sentence: str, max_chars: int) -> list[tuple[str, str]]:
    """Cut one sentence into ``(separator, piece)`` pairs, each piece at most ``max_chars`` long.

    A sentence that fits is returned whole. Otherwise it is cut at clause punctuation, a clause
    still too long at spaces, and a word still too long (CJK, a long URL) every ``max_chars``.
    """
    if len(sentence) <= max_chars:
        return [("", sentence)]
    out: list[tuple[str, str]] = []
    for clause_sep, clause in _cut(sentence, _clause_positions(sentence)):
        if len(clause) <= max_chars:
            out.append((clause_sep, clause))
            continue
        for index, word in enumerate(clause.split()):
            word_sep = clause_sep if index == 0 else " "
            for offset in range(0, len(word), max_chars):
                out.append((word_sep if offset == 0 else "", word[offset : offset + max_chars]))
    return out


def chunk_text(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """Pack the sentences of ``text`` into as few chunks of at most ``max_chars`` as greedy allows.

    Consecutive sentences (see :func:`split_sentences`) are joined, with a space where the text
    had whitespace or a line break and with nothing between touching CJK sentences, while the
    chunk stays within ``max_chars``. A sentence longer than ``max_chars`` is split at clause
    punctuation (``, ; : — – 、 ， ； ：``), then at word boundaries, and, as a last resort for
    text without spaces, hard-cut every ``max_chars`` characters.

    Returns ``[]`` for blank text (the caller reports that as a user error) and a single chunk for
    text that fits. Every chunk is stripped, non-empty and at most ``max_chars`` long.

    Raises:
        TypeError: ``text`` is not a ``str`` or ``max_chars`` is not an ``int``.
        ValueError: ``max_chars`` is below :data:`MIN_MAX_CHARS` (20).
    """
    if not isinstance(max_chars, int) or isinstance(max_chars, bool):
        raise TypeError(f"max_chars must be an int, not {type(max_chars).__name__}")
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}, got {max_chars}")

    chunks: list[str] = []
    current = ""
    for sentence_sep, sentence in _sentences(text):
        for index, (sep, piece) in enumerate(_fit(sentence, max_chars)):
            if index == 0:
                sep = sentence_sep
            if current and len(current) + len(sep) + len(piece) <= max_chars:
                current += sep + piece
            else:
                if current:
                    chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


#: Where a part may end, best first: a paragraph, a sentence, a line, a word.
_PART_ENDS = (
    re.compile(r"\n[ \t]*\n"),
    re.compile(r"[.!?…。！？][\"'”’)\]]*(?=\s)"),
    re.compile(r"\n"),
    re.compile(r"\s"),
)


def first_part(text: str, max_chars: int) -> tuple[str, str]:
    """Cut a text that is too long for one take into ``(first part, the rest)``.

    Unlike :func:`chunk_text`, this keeps the person's text as typed (line breaks and spacing):
    both parts go back into text boxes to be read and edited. The first part ends at the last
    paragraph break before ``max_chars``, else the last sentence end, line break or space; a cut
    is only taken in the second half, so a part is never tiny. Nothing is dropped: ``first +
    rest`` equals the stripped text apart from the whitespace at the cut.
    """
    text = text.strip()
    if len(text) <= max_chars:
        return text, ""
    window = text[: max_chars + 1]  # a break right after the limit still ends a part that fits
    cut = max_chars
    for pattern in _PART_ENDS:
        ends = [m.end() if pattern is _PART_ENDS[1] else m.start() for m in pattern.finditer(window)]
        ends = [end for end in ends if max_chars // 2 <= end <= max_chars]
        if ends:
            cut = ends[-1]
            break
    return text[:cut].rstrip(), text[cut:].lstrip()
