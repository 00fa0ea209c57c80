"""Takes as studio jobs on the tiny Qwen3-TTS checkpoint: the model lock is taken per chunk, so a
short take is not stuck behind a long one, and a seed reproduces a take however others interleave.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.studio import studio_settings
from voicebox.jobs import Job, JobChunk, JobDone, JobFailed
from voicebox.records import GenerationRequest, Profile
from voicebox.services import Studio

#: About 20 sentence chunks: the long take runs through many lock hand-overs.
LONG = " ".join(f"Sentence number {n} of the long take keeps the model busy for a while longer." for n in range(60))
TWO_CHUNKS = ("First part of the take, long enough to fill most of a chunk by itself. " * 3
              + "Second part, which has to go into a chunk of its own after that one.")
FRAMES = 6


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path, whisper_tiny_path: str,
           shared_tts: Any, shared_asr: Any) -> Studio:
    settings = studio_settings(tmp_path_factory.mktemp("jobs") / "data", tiny_checkpoint, whisper_tiny_path)
    return Studio(settings, tts=shared_tts, asr=shared_asr)


@pytest.fixture(scope="module")
def voice(studio: Studio, jfk_reference: Path) -> Profile:
    profile = studio.create_profile("Jobs")
    studio.add_sample(profile.id, jfk_reference, "And so, my fellow Americans, ask not.")
    return profile


def request(voice: Profile, text: str, seed: int) -> GenerationRequest:
    return GenerationRequest(voice.id, text, seed=seed, max_new_tokens=FRAMES)


def first_chunk(job: Job) -> None:
    """Wait until the job has finished its first chunk (without closing its event stream)."""
    while True:
        event = job.next_event(timeout=120)
        if isinstance(event, JobChunk):
            return
        assert not isinstance(event, (JobDone, JobFailed)), event


def test_a_short_take_finishes_before_a_long_one_that_started_first(studio: Studio, voice: Profile) -> None:
    long_job = studio.start_generation(request(voice, LONG, 1), stream=True)
    first_chunk(long_job)
    short = studio.start_generation(request(voice, "Just a few words.", 2), stream=False).result(timeout=300)
    assert not long_job.finished, "the long take ended first: the short one waited for all of it"
    long = long_job.result(timeout=600)
    assert short.chunk_count == 1 and long.chunk_count >= 15
    assert short.created_at < long.created_at


def test_a_seed_reproduces_a_take_while_another_take_interleaves(studio: Studio, voice: Profile) -> None:
    alone = studio.generate(request(voice, TWO_CHUNKS, 7))
    assert alone.chunk_count == 2
    other = studio.start_generation(request(voice, LONG, 8), stream=True)
    first_chunk(other)
    again = studio.start_generation(request(voice, TWO_CHUNKS, 7), stream=False).result(timeout=300)
    assert not other.finished  # the two takes really did interleave
    other.result(timeout=600)
    assert [c.seed for c in again.chunks] == [c.seed for c in alone.chunks]
    assert studio.generation_path(again.id).read_bytes() == studio.generation_path(alone.id).read_bytes()


def test_a_cancelled_job_ends_with_cancelled_and_saves_nothing(studio: Studio, voice: Profile) -> None:
    before = studio.list_history()["total"]
    job = studio.start_generation(request(voice, LONG, 3), stream=True)
    first_chunk(job)
    job.cancel()
    events = list(job.events())
    assert isinstance(events[-1], JobFailed) and "cancelled" in str(events[-1].error).lower()
    assert studio.list_history()["total"] == before


def test_a_refused_request_raises_before_any_job_starts(studio: Studio, voice: Profile) -> None:
    from voicebox.errors import InvalidInput

    with pytest.raises(InvalidInput, match="Type some text"):
        studio.start_generation(GenerationRequest(voice.id, "   "))
    with pytest.raises(InvalidInput, match="seed"):
        studio.start_generation(GenerationRequest(voice.id, "Hello.", seed="abc"))
