"""The service layer end to end: real store, real audio pipeline, tiny Qwen3-TTS, real tiny.en."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.support.studio import studio_settings
from voicebox.errors import Cancelled, Conflict, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMedia
from voicebox.engines.params import chunk_seed
from voicebox.jobs import JobAudio, JobDone, JobProgress
from voicebox.records import GenerationRequest, Profile
from voicebox.languages import whisper_code as whisper_language
from voicebox.services import Studio

FRAMES = 8


@pytest.fixture(scope="module")
def studio(
    tiny_checkpoint: Path,
    whisper_tiny_path: str,
    tmp_path_factory: pytest.TempPathFactory,
    shared_tts: Any,
    shared_asr: Any,
) -> Studio:
    data = tmp_path_factory.mktemp("studio") / "data"
    return Studio(studio_settings(data, tiny_checkpoint, whisper_tiny_path, FRAMES), tts=shared_tts, asr=shared_asr)


@pytest.fixture(scope="module")
def voice(studio: Studio, jfk_path: Path) -> dict:
    profile = studio.create_profile("JFK", "public-domain speech", "English")
    studio.add_sample(profile.id, jfk_path)  # no transcript: Whisper fills it in
    return studio.get_profile(profile.id)


def test_sample_is_cleaned_stored_and_transcribed(studio: Studio, voice: Profile) -> None:
    sample = voice.samples[0]
    assert "ask not what your country can do for you" in sample.reference_text.lower()
    path = studio.sample_path(sample.id)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    assert path.is_relative_to(studio.settings.samples_dir)
    assert 9 < sample.duration < 12.5


def test_duplicate_sample_is_refused(studio: Studio, voice: Profile, jfk_path: Path) -> None:
    with pytest.raises(Conflict, match="already"):
        studio.add_sample(voice.id, jfk_path.read_bytes(), "text")


def test_bad_uploads_leave_no_trace(studio: Studio, voice: Profile, tmp_path: Path) -> None:
    before = sorted(p.name for p in (studio.settings.samples_dir / voice.id).iterdir())
    with pytest.raises(UnsupportedMedia):
        studio.add_sample(voice.id, b"definitely not audio" * 100)
    with pytest.raises(InvalidInput, match="silent"):
        silent = tmp_path / "silence.wav"
        sf.write(silent, np.zeros(24000 * 2, dtype=np.float32), 24000)
        studio.add_sample(voice.id, silent)
    assert sorted(p.name for p in (studio.settings.samples_dir / voice.id).iterdir()) == before
    assert len(studio.list_samples(voice.id)) == 1


def test_oversized_upload_refused_before_decoding(studio: Studio, tmp_path: Path) -> None:
    small = Studio(
        studio.settings.with_overrides(data_dir=tmp_path / "data", max_upload_mb=0.001), tts=studio.tts, asr=studio.asr
    )
    profile = small.create_profile("Small limit")
    with pytest.raises(PayloadTooLarge):
        small.add_sample(profile.id, b"\x00" * 5000)
    assert small.list_samples(profile.id) == []


def test_generate_saves_audio_and_history(studio: Studio, voice: Profile) -> None:
    record = studio.generate(GenerationRequest(voice.id, "Hello from the service layer.", seed=11))
    assert record.profile_name == "JFK" and record.seed == 11 and record.mode == "icl"
    assert record.language == "English"  # the profile's language is the default
    assert set(record.timings) >= {"prompt", "generate", "decode", "total"}
    audio = studio.generation_path(record.id)
    assert sf.info(str(audio)).frames == FRAMES * 1920
    assert record.duration == pytest.approx(FRAMES * 1920 / 24000)
    # the tiny model never stops by itself: the chunk hit its cap, was made once more with its
    # re-take seed, and records the seed that made the audio it holds
    assert [(c.index, c.text, c.seed, c.offset) for c in record.chunks] == [
        (0, "Hello from the service layer.", chunk_seed(11, 0, 1), 0.0)
    ]
    assert studio.get_generation(record.id).text == "Hello from the service layer."
    assert studio.get_generation(record.id) == record  # the chunks are stored with the take
    again = studio.generate(GenerationRequest(voice.id, "Second take.", seed=12))
    assert again.cache_hit is True
    data, mime = studio.generation_audio(again.id, "mp3")
    assert mime == "audio/mpeg" and len(data) > 100


def test_a_streamed_job_saves_the_whole_take(studio: Studio, voice: Profile) -> None:
    job = studio.start_generation(GenerationRequest(voice.id, "Streaming works. It really does.", seed=3))
    events = list(job.events())
    assert isinstance(events[-1], JobDone) and not any(isinstance(e, JobDone) for e in events[:-1])
    record = events[-1].generation
    streamed = np.concatenate([e.samples for e in events if isinstance(e, JobAudio)])
    assert len(streamed) == sf.info(str(studio.generation_path(record.id))).frames


def test_progress_and_cancel(studio: Studio, voice: Profile) -> None:
    job = studio.start_generation(GenerationRequest(voice.id, "Progress please."), stream=False)
    stages = [e.stage for e in job.events() if isinstance(e, JobProgress)]
    assert stages[0] == "loading model" and "building voice" in stages and stages[-1] == "saving"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        studio.generate(GenerationRequest(voice.id, "Never mind."), cancel=cancel)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(text=""), InvalidInput, "Type some text"),
        (dict(text="x" * 5001), InvalidInput, "5,000"),
        (dict(text="hi", model_size="3B"), InvalidInput, "not available"),
        (dict(text="hi", temperature=9), InvalidInput, "temperature"),
        (dict(text="hi", preset="Loud"), InvalidInput, "preset"),
        (dict(text="hi", language="Klingon"), InvalidInput, "not supported"),
    ],
)
def test_generate_refuses_bad_input(studio: Studio, voice: Profile, kwargs: dict, error: type, words: str) -> None:
    count = studio.history_stats()["count"]
    with pytest.raises(error, match=words):
        studio.generate(GenerationRequest(voice.id, **kwargs))
    assert studio.history_stats()["count"] == count


def test_profile_without_samples_and_unknown_profile(studio: Studio) -> None:
    empty = studio.create_profile("Empty voice")
    with pytest.raises(InvalidInput, match="no samples"):
        studio.generate(GenerationRequest(empty.id, "hi"))
    with pytest.raises(NotFound):
        studio.generate(GenerationRequest("0" * 32, "hi"))
    with pytest.raises(NotFound):
        studio.generate(GenerationRequest("../../etc/passwd", "hi"))


def test_editing_a_transcript_rebuilds_the_prompt(studio: Studio, voice: Profile) -> None:
    studio.generate(GenerationRequest(voice.id, "warm the cache", seed=1))
    builds = studio.tts.prompt_builds
    sample = studio.list_samples(voice.id)[0]
    studio.update_sample_text(sample.id, sample.reference_text + " Thank you.")
    record = studio.generate(GenerationRequest(voice.id, "after the edit", seed=1))
    assert record.cache_hit is False and studio.tts.prompt_builds == builds + 1


def test_history_search_filter_stats_delete(studio: Studio, voice: Profile) -> None:
    record = studio.generate(GenerationRequest(voice.id, "A unique zebra sentence.", seed=2))
    found = studio.list_history(search="ZEBRA")
    assert found["total"] == 1 and found["items"][0].id == record.id
    assert studio.list_history(profile_id=voice.id, limit=1)["total"] >= 1
    stats = studio.history_stats()
    assert stats["count"] >= 1 and stats["per_profile"][0]["profile_name"] == "JFK"
    path = studio.generation_path(record.id)
    studio.delete_generation(record.id)
    assert not path.exists()
    with pytest.raises(NotFound):
        studio.get_generation(record.id)


def test_transcribe_any_clip(studio: Studio, jfk_path: Path) -> None:
    result = studio.transcribe(jfk_path.read_bytes())
    assert "fellow americans" in result["text"].lower() and result["language"] == "en"
    assert result["segments"] and result["duration"] == pytest.approx(11.0, abs=0.2)


def test_models_status_load_unload(studio: Studio) -> None:
    status = studio.load_model("tts", "0.6B")
    assert status["tts"]["loaded"] and status["tts"]["size"] == "0.6B"
    assert "hits" in status["prompt_cache"]
    assert studio.unload_model("tts")["tts"]["loaded"] is False
    assert studio.unload_model("whisper")["whisper"]["loaded"] is False
    with pytest.raises(InvalidInput):
        studio.load_model("gpt")
    assert studio.health()["status"] == "ok"


def test_deleting_a_profile_keeps_history_names_and_drops_prompts(studio: Studio, jfk_path: Path) -> None:
    p = studio.create_profile("Short lived")
    studio.add_sample(p.id, jfk_path, "And so, my fellow Americans.")
    entries = studio.tts.prompt_cache.stats()["disk_entries"]  # the engine's cache is the session's
    record = studio.generate(GenerationRequest(p.id, "Remember me.", seed=5))
    assert studio.tts.prompt_cache.stats()["disk_entries"] == entries + 1  # this voice's prompt, on disk
    studio.delete_profile(p.id)
    assert studio.get_generation(record.id).profile_name == "Short lived"
    assert not (studio.settings.samples_dir / p.id).exists()
    assert all(p.id not in str(x) for x in studio.settings.samples_dir.iterdir())


def test_whisper_language_mapping() -> None:
    assert whisper_language("English") == "en" and whisper_language("auto") is None
    assert whisper_language("de") == "de" and whisper_language(None) is None
