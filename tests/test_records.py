"""Typed records, languages, per-chunk seeds and the take assembler (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from voicebox import languages
from voicebox.assembly import TakeAssembler, incomplete_message
from voicebox.engines.params import SEED_MAX, chunk_seed
from voicebox.errors import InvalidInput
from voicebox.records import Chunk, Generation, GenerationRequest, Profile, Sample
from voicebox.speech import AudioPiece, ChunkResult, ModelSpec, SpeechDone

RATE = 24_000


def generation(**changes) -> dict:
    data = dict(id="a" * 32, profile_id="b" * 32, profile_name="Ann", text="Hi.", file="generations/x.wav",
                language="English", model="m", size="0.6B", mode="icl", seed=1, duration=1.0)
    data.update(changes)
    return data


def test_generation_round_trips_with_its_chunks() -> None:
    chunk = Chunk(index=0, text="Hi.", seed=1, offset=0.0, duration=1.0, frames=12)
    record = Generation.from_dict(generation(chunks=[chunk.to_dict()], created_at="2026-01-01"))
    assert record.chunks == (chunk,) and record.chunk_count == 1
    assert Generation.from_dict(record.to_dict()) == record


def test_old_generation_records_that_counted_chunks_still_load() -> None:
    record = Generation.from_dict(generation(chunks=3, retired_field="x"))
    assert record.chunks == () and record.text == "Hi."


def test_profiles_and_samples_convert_at_the_store_edge() -> None:
    sample = {"id": "s" * 32, "profile_id": "p" * 32, "file": "samples/x.wav", "reference_text": "Hi.",
              "duration": 2.0, "sample_rate": RATE, "sha256": "0" * 64, "warnings": ["quiet"]}
    profile = Profile.from_dict({"id": "p" * 32, "name": "Ann", "samples": [sample]})
    assert profile.samples == (Sample.from_dict(sample),) and profile.samples[0].warnings == ("quiet",)
    assert Profile.from_dict(profile.to_dict()) == profile


def test_a_request_is_frozen() -> None:
    request = GenerationRequest("p" * 32, "Hello.", seed=3)
    with pytest.raises(AttributeError):
        request.seed = 4  # type: ignore[misc]
    assert request.with_changes(seed=4).seed == 4 and request.options()["seed"] == 3


@pytest.mark.parametrize(
    "typed, stored", [("english", "English"), (" ENGLISH ", "English"), ("en", "English"), ("Auto", "auto"),
                      ("", "auto"), (None, "auto")],
)
def test_one_language_normaliser(typed, stored) -> None:
    assert languages.choose(typed, ["Auto", "English", "German"]) == stored


def test_unknown_languages_are_refused_with_the_choices() -> None:
    with pytest.raises(InvalidInput, match="Klingon.*Auto, English"):
        languages.choose("Klingon", ["Auto", "English"])
    assert languages.whisper_code("German") == "de" and languages.whisper_code("pt_BR") == "pt"
    assert languages.whisper_code("Klingon") is None  # a profile's language never blocks transcription
    with pytest.raises(InvalidInput, match="Unknown language"):
        languages.whisper_code("xx", known=["en", "de"])


def test_chunk_seeds_keep_the_take_seed_first_and_never_collide() -> None:
    assert chunk_seed(42, 0) == 42
    seeds = {chunk_seed(42, i, attempt) for i in range(50) for attempt in range(2)}
    assert len(seeds) == 100 and all(0 <= s < SEED_MAX for s in seeds)
    assert chunk_seed(42, 3) == chunk_seed(42, 3) != chunk_seed(43, 3)


def result(index: int, seconds: float, hit_cap: bool = False) -> ChunkResult:
    audio = np.full(int(seconds * RATE), 0.1 * (index + 1), np.float32)
    return ChunkResult(index, f"Chunk {index}.", audio, RATE, seed=index, hit_cap=hit_cap)


def test_assembler_places_each_chunk_after_the_crossfade() -> None:
    whole = TakeAssembler()
    for index, seconds in enumerate((1.0, 0.5, 0.25)):
        whole.add(result(index, seconds, hit_cap=index == 1))
    whole.add(SpeechDone(ModelSpec("base", "0.6B", "m"), "icl", "English", False, RATE))
    whole.finish()
    chunks = whole.chunks()
    assert [c.offset for c in chunks] == [0.0, 0.98, 1.46]  # each starts inside the 20 ms crossfade
    assert len(whole.audio()) == int((1.75 - 0.04) * RATE)
    assert [c.status for c in chunks] == ["ok", "incomplete", "ok"] and whole.failed() == [1]
    assert "chunk 2 of 3" in incomplete_message(whole.failed(), 3)


def test_streamed_pieces_give_the_same_take_and_places() -> None:
    whole, streamed = TakeAssembler(), TakeAssembler()
    out = []
    for index, seconds in enumerate((1.0, 0.5)):
        chunk = result(index, seconds)
        whole.add(chunk)
        half = len(chunk.audio) // 2
        out.append(streamed.add(AudioPiece(index, chunk.audio[:half])))
        out.append(streamed.add(AudioPiece(index, chunk.audio[half:])))
        out.append(streamed.add(chunk))  # its audio was streamed already: not added twice
    out.append(streamed.finish())
    whole.finish()
    assert np.array_equal(np.concatenate(out), whole.audio())
    assert streamed.chunks() == whole.chunks()
