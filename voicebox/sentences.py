"""Sentence-level takes of a saved generation: make one sentence again, or choose another take.

Every take of every sentence is kept as its own file (``generations/<id>/<sentence>-<take>.wav``),
so changing one sentence never touches the others: the joined audio is rebuilt from the takes in
use with the same crossfade, a new take is brought to the level of the rest of the take, and the
samples away from the changed sentence's joins stay byte-identical. Nothing is deleted: the
previous version comes back by choosing its take again.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from . import audio
from .assembly import TakeAssembler
from .atomic import atomic_write_bytes, remove_quietly
from .engines.params import check_text, make_params
from .errors import InvalidInput, NotFound
from .generation import chunk_status, take_record, take_status, voice_ref
from .ids import new_id
from .owners import relative as owned_path
from .records import Chunk, Generation
from .retakes import matched
from .speakers import PREFIX as SPEAKER
from .speakers import backend_for, is_speaker
from .speech import ChunkResult, SpeechRequest

if TYPE_CHECKING:
    from .services import Studio


class SentenceEditor:
    """Re-takes and take choices on a :class:`~voicebox.services.Studio`'s saved generations."""

    def __init__(self, studio: "Studio") -> None:
        self.studio = studio
        #: One edit of a saved take at a time (deleting a take waits for it too).
        self.lock = threading.RLock()

    def _chunk(self, record: Generation, index: Any) -> Chunk:
        position = _position(index, len(record.chunks))
        if position is None:
            raise NotFound(f"Sentence {index!r} does not exist in this take; it has {len(record.chunks)}.")
        chunk = record.chunks[position]
        if not chunk.takes:
            raise InvalidInput("This take was made before sentences were kept separately; generate it again.")
        return chunk

    def retake(self, generation_id: str, index: Any, text: str | None = None, seed: Any = None, *,
               owner: str = "", **sampling: Any) -> Generation:
        """A new take of one sentence of one of ``owner``'s takes (new seed unless given,
        optionally edited text or other sampling settings), checked like the first when the take
        was checked; it is used at once."""
        record = self.studio.get_generation(generation_id, owner=owner)
        chunk = self._chunk(record, index)
        words = check_text(text) if text not in (None, "") else chunk.text
        base = {k: record.params.get(k) for k in ("temperature", "top_k", "top_p", "repetition_penalty")}
        base.update({k: v for k, v in sampling.items() if v not in (None, "")})
        params = make_params(None, seed=seed, max_new_tokens=record.params.get("max_new_tokens"), **base).with_seed()
        if is_speaker(record.profile_id):  # a built-in voice: the same speaker and style again
            voice, size, speaker = (), self.studio.speakers.size, record.profile_id[len(SPEAKER):]
        else:
            voice, speaker = tuple(self.studio.references(record.profile_id, owner=owner)), ""
            size = record.size if record.size in self.studio.model_sizes() else None
        request = SpeechRequest(chunks=(words,), voice=voice, params=params, language=record.language.lower(),
                                size=size, speaker=speaker, instruct=record.instruct)
        made = next(e for e in backend_for(self.studio, request).speak(request) if isinstance(e, ChunkResult))
        result = replace(made, index=chunk.index, seed=int(params.seed))
        others = [self._load(t.file, owner) for c in record.chunks if c.index != chunk.index for t in c.takes[c.used_take:c.used_take + 1]]
        from .quality import level_db

        levels = [lvl for lvl in (level_db(a, audio.MODEL_SAMPLE_RATE) for a in others) if lvl is not None]
        level = float(np.median(levels)) if levels else None
        result = replace(result, audio=matched(result.audio, result.sample_rate, level))
        score = None
        if record.quality != "off":
            try:
                score = self.studio.quality_gate().score(result.audio, result.sample_rate, words, record.language,
                                                         voice_ref(voice), level)
            except Exception:  # a checking model is missing or failed: the take is kept, unchecked
                score = None
        with self.lock:
            record = self.studio.get_generation(generation_id, owner=owner)  # the latest, in case of a race
            chunk = record.chunks[chunk.index]
            number = len(chunk.takes)
            file = owned_path(owner, f"generations/{record.id}/{chunk.index}-{number}.wav")
            path = self.studio.settings.data_dir / file
            atomic_write_bytes(path, audio.wav_bytes(result.audio, result.sample_rate))
            try:
                return self._use(record, replace(chunk, takes=(*chunk.takes, take_record(result, score, file))), number)
            except BaseException:
                remove_quietly(path)  # the record never pointed at it
                raise

    def choose(self, generation_id: str, index: Any, take: Any, *, owner: str = "") -> Generation:
        """Use take ``take`` of sentence ``index`` (any take made before: nothing is ever lost)."""
        with self.lock:
            record = self.studio.get_generation(generation_id, owner=owner)
            chunk = self._chunk(record, index)
            number = _position(take, len(chunk.takes))
            if number is None:
                raise InvalidInput(f"Sentence {chunk.index + 1} has takes 0 to {len(chunk.takes) - 1}; choose one of them.")
            return self._use(record, chunk, number)

    def _use(self, record: Generation, chunk: Chunk, number: int) -> Generation:
        """Put take ``number`` of ``chunk`` in use, rebuild the joined audio and save the record."""
        chosen = list(record.chunks)
        chosen[chunk.index] = replace(chunk, used_take=number)
        assembler = TakeAssembler()
        for item in chosen:
            used = item.takes[item.used_take]
            assembler.add(ChunkResult(item.index, used.text, self._load(used.file, record.owner), audio.MODEL_SAMPLE_RATE,
                                      used.seed, used.frames, used.hit_cap))
        assembler.finish()
        placed = {c.index: c for c in assembler.chunks()}
        rebuilt = []
        for item in chosen:
            used = item.takes[item.used_take]
            rebuilt.append(replace(item, text=used.text, seed=used.seed, frames=used.frames,
                                   offset=placed[item.index].offset, duration=placed[item.index].duration,
                                   status=chunk_status(used.passed, used.hit_cap)))
        joined = assembler.audio()
        # The rebuilt take goes to a new file, and the record moves to it: a failure on the way
        # leaves the record and the audio it points at as they were.
        file = owned_path(record.owner, f"generations/{record.id}/joined-{new_id()[:12]}.wav")
        path = self.studio.settings.data_dir / file
        atomic_write_bytes(path, audio.wav_bytes(joined, audio.MODEL_SAMPLE_RATE))
        status, message = take_status(rebuilt)
        text = " ".join(c.text for c in rebuilt)
        updated = replace(record, chunks=tuple(rebuilt), duration=round(len(joined) / audio.MODEL_SAMPLE_RATE, 3),
                          status=status, message=message, file=file, text=text)
        try:
            saved = Generation.from_dict(self.studio.store.update_generation(updated.to_dict(), record.owner))
        except BaseException:
            remove_quietly(path)
            raise
        remove_quietly(self.studio.store.resolve_file(record.file, record.owner))
        return saved

    def _load(self, relative: str, owner: str) -> np.ndarray:
        """A stored take of ``owner``'s as floats that write back to exactly the same 16-bit
        samples (:func:`voicebox.audio.from_pcm16`), so a rebuild keeps the other sentences
        byte-identical."""
        import soundfile as sf

        path = self.studio.store.resolve_file(relative, owner)
        if not path.is_file():
            raise NotFound("The audio of a sentence take is missing from the data directory.")
        pcm, _ = sf.read(str(path), dtype="int16", always_2d=False)
        return audio.from_pcm16(pcm)


def _position(value: Any, count: int) -> int | None:
    """``value`` as an index into ``count`` items, or None when it is not one."""
    try:
        position = int(value)
    except (TypeError, ValueError):
        return None
    return position if 0 <= position < count else None
