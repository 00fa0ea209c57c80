"""The one place that turns a language a person typed into what each part of voicebox needs.

People write ``english``, ``English``, ``EN`` or ``auto``; the store keeps a title-case name (or
``auto``), Qwen3-TTS wants a lower-case name (or ``auto``), Whisper wants an ISO code (or
``None`` for detection). Before this module, five places did their own version of that mapping
and disagreed at the edges (``" Auto "``, ISO codes); now every caller goes through here.
"""

from __future__ import annotations

from typing import Iterable

from .errors import InvalidInput

AUTO = "auto"
#: Languages of the released Qwen3-TTS checkpoints, as shown: what an engine offers before it can
#: ask a loaded model, and what a vLLM-Omni server serving them accepts.
QWEN_LANGUAGES = ("Chinese", "English", "Japanese", "Korean", "German", "French", "Russian", "Portuguese",
                  "Spanish", "Italian")
#: Whisper's code for each language a Qwen3-TTS Base checkpoint speaks.
WHISPER_CODES = {
    "english": "en", "chinese": "zh", "japanese": "ja", "korean": "ko", "german": "de",
    "french": "fr", "russian": "ru", "portuguese": "pt", "spanish": "es", "italian": "it",
}
_NAMES_BY_CODE = {code: name for name, code in WHISPER_CODES.items()}


def is_auto(language: object) -> bool:
    """True for ``None``, blank or any spelling of ``auto``: let the model decide."""
    return language is None or str(language).strip().lower() in ("", AUTO)


def key(language: object) -> str:
    """A comparison key: lower case, trimmed; an ISO code becomes its language name."""
    if is_auto(language):
        return AUTO
    value = str(language).strip().lower()
    return _NAMES_BY_CODE.get(value, value)


def display(language: object) -> str:
    """How a language is shown and stored: ``Auto`` or the title-case name."""
    value = key(language)
    return "Auto" if value == AUTO else value.title()


def choose(language: object, offered: Iterable[str]) -> str:
    """The stored form of ``language`` (``auto`` or one of ``offered``'s names).

    Raises:
        InvalidInput: a language the speech model does not speak, listing the ones it does.
    """
    names = {key(name): display(name) for name in offered}
    wanted = key(language)
    if wanted == AUTO:
        return AUTO
    if wanted not in names:
        raise InvalidInput(
            f"Language {str(language).strip()!r} is not supported; use one of {', '.join(names.values())}."
        )
    return names[wanted]


def whisper_code(language: object, known: Iterable[str] | None = None) -> str | None:
    """Whisper's code for a language name (``English``) or code (``en``, ``EN``, ``en-US``,
    ``pt_BR``); ``None`` means detect.

    Without ``known`` (the codes a Whisper model reads), an unknown name also means detect: a
    profile's language must never stop its samples from being transcribed. With ``known``, an
    unknown code is refused with what to type instead.
    """
    if language is not None and not isinstance(language, str):
        raise InvalidInput("The language must be a code such as 'en' or 'de', or empty to detect it.")
    if is_auto(language):
        return None
    value = str(language).strip().lower().replace("_", "-")
    value = WHISPER_CODES.get(value, value)
    codes = set(known) if known is not None else None
    if codes is None:
        return value.split("-", 1)[0] if len(value.split("-", 1)[0]) in (2, 3) else None
    if value not in codes:
        value = value.split("-", 1)[0]
    if value not in codes:
        raise InvalidInput(
            f"Unknown language {language!r}. Use a code such as 'en', 'de', 'fr' or 'zh', "
            "or leave it empty to detect the language."
        )
    return value
