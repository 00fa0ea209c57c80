"""Effects on stored takes: preview, apply, change, remove; the audio a take plays; voice defaults.

**Non-destructive by construction.** A take's ``file`` is always its clean audio and is never
written here. Its effect is a chain (:class:`~voicebox.effects.EffectChain`) kept in the record;
the processed audio is derived from the clean file and cached next to it as
``generations/<id>/fx-<key>.wav``, where the key hashes the chain, the clean file's name (a
sentence re-take writes a new one) and the signal path's version. So changing the effect only
changes the record, removing it gives back the clean take byte for byte, and a stale cache file
can never be served: its name would not match. Deleting a take removes its folder, cache included.

**Who plays what.** :func:`played_file` is the one answer to "which audio does this take play":
the History and Generate tabs, downloads, ``GET /audio/{id}``, the OpenAI route, the Gradio API
and batch ZIPs all ask it, so a take with an effect sounds the same everywhere.

**Ownership.** Every function takes ``owner`` (or a record already read with one) and reads
through the studio's owner rules: another owner's id is the same ``NotFound`` as a missing one.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import audio
from .atomic import atomic_write_bytes, remove_quietly, remove_quietly_dir
from .effects import EffectChain, apply, parse
from .errors import InvalidInput
from .owners import relative as owned_path
from .records import Generation, Profile

if TYPE_CHECKING:
    from .services import Studio

log = logging.getLogger(__name__)

#: A preview is the start of the take: enough to judge the sound, quick on a long take.
PREVIEW_SECONDS = 30.0
RATE = audio.MODEL_SAMPLE_RATE


def chain_of(value: Any) -> EffectChain:
    """The chain a person asked to apply; saying nothing is refused (``"none"`` removes)."""
    chain = parse(value)
    if chain is None:
        raise InvalidInput("Choose an effect preset or settings to apply (\"none\" removes the effect).")
    return chain


def clean_samples(studio: Studio, record: Generation) -> np.ndarray:
    """The clean take as mono floats at the model's rate (how every take is stored)."""
    return audio.load_mono(studio.take_file(record), RATE)


def cache_name(record: Generation, chain: EffectChain) -> str:
    """Where the take's processed audio is kept, relative to the data directory (in its owner's
    folder); the name changes with the chain and with the clean file it is made from."""
    import hashlib

    clean = hashlib.sha256(record.file.encode("utf-8")).hexdigest()[:8]
    return owned_path(record.owner, f"generations/{record.id}/fx-{chain.key()}-{clean}.wav")


def played_file(studio: Studio, record: Generation) -> Path:
    """The audio a take plays: its clean file, or (with an effect) the processed copy, made now
    if it is not cached yet. Older processed copies of the take are removed."""
    clean = studio.take_file(record)
    if record.effects is None:
        return clean
    path = studio.store.resolve_file(cache_name(record, record.effects), record.owner)
    if not path.is_file():
        processed = apply(record.effects, clean_samples(studio, record), RATE)
        atomic_write_bytes(path, audio.wav_bytes(processed, RATE))
        for old in path.parent.glob("fx-*.wav"):
            if old != path:
                remove_quietly(old)
    return path


def played_path(studio: Studio, generation_id: str, *, owner: str = "") -> Path:
    """:func:`played_file` of one of ``owner``'s takes by id."""
    return played_file(studio, studio.get_generation(generation_id, owner=owner))


def played_audio(studio: Studio, record: Generation, fmt: str = "wav") -> tuple[bytes, str]:
    """The played audio in ``fmt`` (wav as stored), as ``Studio.generation_audio`` gives the clean."""
    path = played_file(studio, record)
    if fmt.lower() == "wav":
        return path.read_bytes(), "audio/wav"
    return audio.encode(audio.load_mono(path, RATE), RATE, fmt)


def preview(studio: Studio, generation_id: str, value: Any, *, owner: str = "") -> bytes:
    """WAV bytes of the start of one of ``owner``'s takes through the chain ``value``; nothing is
    stored. The take is looked up before the chain is read, so another owner's id is refused as a
    missing one whatever the chain says."""
    record = studio.get_generation(generation_id, owner=owner)
    chain = chain_of(value)
    start = clean_samples(studio, record)[: int(PREVIEW_SECONDS * RATE)]
    return audio.wav_bytes(apply(chain, start, RATE), RATE)


def set_effect(studio: Studio, generation_id: str, value: Any, *, owner: str = "") -> Generation:
    """Apply, change or (with ``"none"``) remove the effect of one of ``owner``'s takes; the
    processed audio is made at once, so a bad chain or a failure shows here, not at the next play."""
    with studio.sentences.lock:  # one edit of a saved take at a time (sentence re-takes too)
        record = studio.get_generation(generation_id, owner=owner)
        chain = chain_of(value)
        updated = replace(record, effects=None if chain.is_none else chain)
        if updated.effects is not None:
            played_file(studio, updated)
        saved = Generation.from_dict(studio.store.update_generation(updated.to_dict(), record.owner))
    if saved.effects is None:
        forget_processed(studio, saved)
    return saved


def remove_effect(studio: Studio, generation_id: str, *, owner: str = "") -> Generation:
    """The take plays its clean audio again (the very file it was saved with)."""
    return set_effect(studio, generation_id, "none", owner=owner)


def forget_processed(studio: Studio, record: Generation) -> None:
    """Remove the take's cached processed audio (it is made again if an effect comes back)."""
    _remove_processed(studio, record.id, record.owner)


def _remove_processed(studio: Studio, generation_id: str, owner: str) -> Path:
    folder = studio.store.resolve_file(owned_path(owner, f"generations/{generation_id}"), owner)
    for old in folder.glob("fx-*.wav") if folder.is_dir() else ():
        remove_quietly(old)
    return folder


def set_voice_default(studio: Studio, profile_id: str, value: Any, *, owner: str = "") -> Profile:
    """Set (or with ``"none"`` clear) the chain new takes of one of ``owner``'s voices get unless
    their request says otherwise; takes already made keep theirs."""
    studio.get_profile(profile_id, owner=owner)  # another owner's id: NotFound before the chain is read
    chain = chain_of(value)
    stored = {} if chain.is_none else chain.to_dict()
    return studio.update_profile(profile_id, owner=owner, effects=stored)


def delete_take(studio: Studio, generation_id: str, *, owner: str = "") -> None:
    """Delete one of ``owner``'s takes as ``Studio.delete_generation`` does, with its processed
    audio: the studio removes the take's folder only once it is empty."""
    studio.delete_generation(generation_id, owner=owner)  # NotFound for anyone else's id
    remove_quietly_dir(_remove_processed(studio, generation_id, owner))
