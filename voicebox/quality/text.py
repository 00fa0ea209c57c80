"""Text for the words and pace checks: a language-aware normalisation, the character error rate,
and how much there is to say.

Why normalise: Whisper writes what it hears its own way (capitals, punctuation, "1984" or
"nineteen eighty-four", "don't" or "do not"), and none of that is a mistake of the voice. Both
the asked text and the heard text go through the same steps before they are compared:

* Unicode NFKC, lower case;
* numbers spelled out as the model would read them (``num2words``, for the languages it knows
  among the ones Qwen3-TTS speaks, except Chinese, Japanese and Korean, where Whisper writes
  digits as often as numerals and the digits are kept); a four-digit number that can be a year
  may be read either way, so the error rate is the smallest over both readings;
* ``%`` and ``&`` as words; every other punctuation mark and symbol dropped;
* spaces dropped: the rate is over characters, so "ice cream" / "icecream" is not an error.

Chinese, Japanese and Korean have no spaces and are compared character by character anyway.

Why the character error rate and not the word error rate: it is defined for every language
Qwen3-TTS speaks (no word segmentation for Chinese or Japanese) and it is gentler on near-misses
("colour"/"color") while a swallowed word, gibberish or a runaway still costs a lot. Above 1.0
means Whisper heard more than was asked (a runaway): it is not clipped.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import lru_cache

#: Languages whose numbers are spelled out before comparing (Whisper codes).
SPELLED_NUMBERS = {"en", "de", "fr", "es", "it", "pt", "ru"}
#: Written in characters without spaces: digits are left as they are.
CHARACTER_LANGUAGES = {"zh", "ja", "ko"}
#: At most this many readings of the asked text are tried (2 per year-like number).
MAX_READINGS = 4

_SYMBOL_WORDS = {
    "en": {"%": " percent ", "&": " and "},
    "de": {"%": " prozent ", "&": " und "},
    "fr": {"%": " pour cent ", "&": " et "},
    "es": {"%": " por ciento ", "&": " y "},
    "it": {"%": " per cento ", "&": " e "},
    "pt": {"%": " por cento ", "&": " e "},
    "ru": {"%": " процентов ", "&": " и "},
}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*(?:st|nd|rd|th)?")
_YEAR = re.compile(r"^(1[1-9]|20)\d\d$")


def _is_dropped(char: str) -> bool:
    """Punctuation, symbols and whitespace: nothing a voice says."""
    return char.isspace() or unicodedata.category(char)[0] in "PSZC"


def _spell(token: str, lang: str, year: bool) -> str:
    """One number token in words; the token unchanged when num2words cannot read it."""
    from num2words import num2words

    ordinal = token[-2:] in ("st", "nd", "rd", "th") and lang == "en"
    digits = token[:-2] if ordinal else token
    decimal_mark = "." if lang == "en" else ","
    try:
        if ordinal:
            return num2words(int(digits.replace(",", "")), lang=lang, to="ordinal")
        if year:
            return num2words(int(digits), lang=lang, to="year")
        thousands = "," if decimal_mark == "." else "."
        plain = digits.replace(thousands, "") if re.search(rf"\{thousands}\d{{3}}\b", digits) else digits
        if decimal_mark in plain:
            whole, _, frac = plain.partition(decimal_mark)
            if whole.isdigit() and frac.isdigit():
                return num2words(float(f"{whole}.{frac}"), lang=lang)
            return token
        return num2words(int(plain), lang=lang) if plain.isdigit() else token
    except (NotImplementedError, ValueError, OverflowError, TypeError, KeyError):
        return token


def readings(text: str, lang: str | None) -> list[str]:
    """The text with its numbers in words: one reading, or a few when a number looks like a year
    ("1984": "nineteen eighty-four" or "one thousand nine hundred and eighty-four")."""
    lang = (lang or "en").lower()
    text = unicodedata.normalize("NFKC", text)
    if lang not in SPELLED_NUMBERS:
        return [text]
    for symbol, words in _SYMBOL_WORDS.get(lang, {}).items():
        text = text.replace(symbol, words)
    tokens = list(_NUMBER.finditer(text))
    years = [i for i, m in enumerate(tokens) if _YEAR.match(m.group())]
    choices = list(itertools.product((True, False), repeat=len(years)))[:MAX_READINGS] if years else [()]
    out = []
    for choice in choices:
        as_year = dict(zip(years, choice))
        parts, last = [], 0
        for i, match in enumerate(tokens):
            parts += [text[last:match.start()], " ", _spell(match.group(), lang, as_year.get(i, False)), " "]
            last = match.end()
        parts.append(text[last:])
        out.append("".join(parts))
    return out


def normalise(text: str, lang: str | None = None) -> str:
    """The characters that are compared: lower case, no punctuation, symbols or spaces.

    Numbers are left as written here; :func:`readings` spells them out first.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(char for char in text if not _is_dropped(char))


@lru_cache(maxsize=512)
def _normalised_readings(text: str, lang: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(normalise(r, lang) for r in readings(text, lang)))


def cer(asked: str, heard: str, lang: str | None = None) -> float | None:
    """Character error rate of what was heard against what was asked, after normalisation.

    The edit distance (insertions, deletions, substitutions) over the length of the asked text;
    the smallest over the readings of both texts' numbers. ``None`` when the asked text has
    nothing to say (only punctuation).
    """
    import jiwer

    refs = [r for r in _normalised_readings(asked, lang) if r]
    if not refs:
        return None
    hyps = _normalised_readings(heard, lang)
    best = None
    for ref in refs:
        for hyp in hyps:
            if not hyp:
                rate = 1.0
            else:
                rate = float(jiwer.cer(ref, hyp))
            best = rate if best is None else min(best, rate)
    return best


# ---- how much there is to say ------------------------------------------------------------------
def _weight(char: str) -> float:
    """Letters a character is worth when speaking: a Han character or a Hangul syllable is one
    syllable (about three Latin letters at the same pace), a kana one mora (about two)."""
    code = ord(char)
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xAC00 <= code <= 0xD7AF:
        return 3.0
    if 0x3040 <= code <= 0x30FF:
        return 2.0
    return 1.0


def spoken_length(text: str, lang: str | None = None) -> float:
    """How much there is to say, in Latin-letter equivalents (numbers spelled out, no spaces or
    punctuation): the unit of the pace checks, comparable across scripts."""
    said = normalise(readings(text, lang)[-1], lang)
    return float(sum(_weight(char) for char in said))
