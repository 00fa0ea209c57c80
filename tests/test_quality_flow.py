"""The quality gate inside generation: every sentence checked, failing ones made again, every
take kept, the take's status never "ok" for output that failed a check.

Intelligible speech comes from the espeak-ng backend (a sentence spoken right passes; one whose
words were swapped fails); the tiny random Qwen3-TTS checkpoint speaks noise, so every sentence
fails and ``retake`` makes exactly ``max_takes`` takes. Nothing here mocks a scorer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.espeak_backend import EspeakBackend
from tests.support.studio import studio_settings
from voicebox.api import create_api_app
from voicebox.config import Settings
from voicebox.jobs import JobProgress
from voicebox.quality import QualityGate
from voicebox.records import Generation, GenerationRequest, Profile
from voicebox.services import Studio

GOOD = "The keeper lit the lamp before the storm arrived."
SWAPPED = "Seven purple elephants danced quietly on the frozen lake."


class SwappingBackend(EspeakBackend):
    """Speaks ``SWAPPED`` whatever it is asked: a take whose words are wrong."""

    name = "espeak-ng-swapped"

    def _say(self, text: str, voice: str, pitch: int) -> Any:
        return super()._say(SWAPPED if text.startswith("The keeper") else text, voice, pitch)


@pytest.fixture(scope="module")
def gate(shared_asr: Any, speaker_encoder: Any) -> QualityGate:
    return QualityGate(shared_asr, speaker=speaker_encoder)


def espeak_studio(root: Path, backend: EspeakBackend, shared_asr: Any, gate: QualityGate) -> Studio:
    settings = Settings(data_dir=root / "data", host="127.0.0.1", quality="check")
    return Studio(settings, tts=backend, asr=shared_asr, quality_gate=gate)


def voiced(studio: Studio, espeak_wav: Path) -> Profile:
    profile = studio.create_profile("Keeper", language="English")
    studio.add_sample(profile.id, espeak_wav, "The quick brown fox jumps over the lazy dog near the river bank.")
    return profile


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, shared_asr: Any, gate: QualityGate, espeak_wav: Path) -> Iterator[tuple[Studio, Profile]]:
    studio = espeak_studio(tmp_path_factory.mktemp("gate-good"), EspeakBackend(), shared_asr, gate)
    yield studio, voiced(studio, espeak_wav)


@pytest.fixture(scope="module")
def swapped(tmp_path_factory: pytest.TempPathFactory, shared_asr: Any, gate: QualityGate, espeak_wav: Path) -> Iterator[tuple[Studio, Profile]]:
    studio = espeak_studio(tmp_path_factory.mktemp("gate-bad"), SwappingBackend(), shared_asr, gate)
    yield studio, voiced(studio, espeak_wav)


def test_a_sentence_spoken_right_passes(good: tuple[Studio, Profile]) -> None:
    studio, voice = good
    take = studio.generate(GenerationRequest(voice.id, GOOD, seed=1, quality="retake"))
    assert take.status == "ok" and take.quality == "retake"
    chunk = take.chunks[0]
    assert chunk.status == "ok" and len(chunk.takes) == 1 and chunk.takes[0].passed is True
    checks = {c["name"]: c for c in chunk.takes[0].scores["checks"]}
    assert checks["cer"]["value"] < checks["cer"]["threshold"] and checks["cer"]["passed"]
    assert checks["similarity"]["value"] is not None


def test_a_sentence_with_the_wrong_words_is_flagged_not_ok(swapped: tuple[Studio, Profile]) -> None:
    studio, voice = swapped
    take = studio.generate(GenerationRequest(voice.id, GOOD + " Ships passed safely.", seed=2))
    assert take.quality == "check" and take.status == "needs_review"
    assert "Sentence 1 of 1" in take.message and "words did not match" in take.message
    failing = take.chunks[0].takes[0]
    assert failing.passed is False and len(take.chunks[0].takes) == 1  # check: flagged, not re-made
    assert SWAPPED.split()[1].lower() in failing.scores["heard"].lower()


def test_retake_makes_the_sentence_again_and_keeps_every_take(swapped: tuple[Studio, Profile]) -> None:
    studio, voice = swapped
    job = studio.start_generation(GenerationRequest(voice.id, GOOD, seed=3, quality="retake", max_takes=2), stream=False)
    progress = [e for e in job.events() if isinstance(e, JobProgress)]
    take = job.result()
    assert [t.seed for t in take.chunks[0].takes][0] == 3 and len(take.chunks[0].takes) == 2
    assert len({t.seed for t in take.chunks[0].takes}) == 2  # each take its own seed
    assert any(p.stage == "retaking" and "take 2" in p.detail and "words" in p.detail for p in progress)
    assert take.status == "needs_review"
    for t in take.chunks[0].takes:
        assert studio.store.resolve_file(t.file).is_file()


def test_noise_from_the_tiny_model_fails_every_take(
    tmp_path: Path, tiny_checkpoint: Path, whisper_tiny_path: str, shared_tts: Any, shared_asr: Any,
    gate: QualityGate, jfk_reference: Path,
) -> None:
    settings = studio_settings(tmp_path / "data", tiny_checkpoint, whisper_tiny_path, quality="retake", max_takes=3)
    studio = Studio(settings, tts=shared_tts, asr=shared_asr, quality_gate=gate)
    profile = studio.create_profile("Noise", language="English")
    studio.add_sample(profile.id, jfk_reference, "And so, my fellow Americans, ask not.")
    take = studio.generate(GenerationRequest(profile.id, "Hello there, this is noise.", seed=4))
    assert take.status == "needs_review" and all(len(c.takes) == 3 for c in take.chunks)
    assert all(t.passed is False for c in take.chunks for t in c.takes)
    files = [studio.store.resolve_file(t.file) for c in take.chunks for t in c.takes]
    assert all(f.is_file() for f in files)
    studio.delete_generation(take.id)  # every take's audio goes with the record
    assert not any(f.exists() for f in files) and not (settings.data_dir / "generations" / take.id).exists()


def test_rest_takes_quality_options_and_shows_the_scores(good: tuple[Studio, Profile]) -> None:
    studio, voice = good
    with TestClient(create_api_app(studio, studio.settings)) as client:
        response = client.post("/generate", json={"profile_id": voice.id, "text": GOOD, "quality": "check"})
        assert response.status_code == 201, response.text
        chunk = response.json()["chunks"][0]
        assert chunk["used_take"] == 0 and chunk["takes"][0]["passed"] is True
        scores = chunk["takes"][0]["scores"]
        assert set(scores) >= {"cer", "similarity", "pace"} and scores["cer"] < 0.35
        assert {c["name"] for c in chunk["takes"][0]["checks"]} == set(scores)
        assert "file" not in chunk["takes"][0]  # no server paths
        refused = client.post("/generate", json={"profile_id": voice.id, "text": GOOD, "quality": "strict"})
        assert refused.status_code == 422 and "quality" in refused.text
        too_many = client.post("/generate", json={"profile_id": voice.id, "text": GOOD, "max_takes": 50})
        assert too_many.status_code == 422 and "max_takes" in too_many.text


def test_history_details_show_each_sentence_with_its_badge(swapped: tuple[Studio, Profile]) -> None:
    from voicebox.ui.takes import details_html

    studio, voice = swapped
    take: Generation = studio.generate(GenerationRequest(voice.id, GOOD, seed=5))
    html = details_html(take)
    assert "vb-badge-failed" in html and "Did not pass" in html and "the words did not match" in html
    assert "1 to review" in html


TWO = (
    "The lighthouse keeper climbed the narrow stairs every evening, trimmed the wick, polished the "
    "great lens and lit the lamp just before the sun went down behind the hills. "
    "Because of his patient work, the fishing boats and the cargo ships passed safely through the "
    "rocky channel all winter long, even on the darkest and stormiest nights."
)


def test_one_sentence_is_made_again_and_the_rest_stays_byte_identical(good: tuple[Studio, Profile]) -> None:
    import soundfile as sf

    studio, voice = good
    first = studio.generate(GenerationRequest(voice.id, TWO, seed=6, quality="check"))
    assert first.chunk_count == 2
    before, rate = sf.read(str(studio.generation_path(first.id)), dtype="int16")
    second_starts = int(round(first.chunks[1].offset * rate))

    again = studio.retake_sentence(first.id, 1, seed=99)
    assert [len(c.takes) for c in again.chunks] == [1, 2] and again.chunks[1].used_take == 1
    assert again.chunks[1].seed == 99 and again.chunks[1].takes[1].passed is not None  # checked like the first
    after, _ = sf.read(str(studio.generation_path(first.id)), dtype="int16")
    assert (before[: second_starts] == after[: second_starts]).all()  # sentence 1 untouched, to the join
    assert not (before.shape == after.shape and (before == after).all())  # sentence 2 really changed

    restored = studio.choose_take(first.id, 1, 0)  # the previous version comes back exactly
    assert restored.chunks[1].used_take == 0 and restored.chunks[1].seed == first.chunks[1].seed
    back, _ = sf.read(str(studio.generation_path(first.id)), dtype="int16")
    assert back.shape == before.shape and (back == before).all()
    assert len(restored.chunks[1].takes) == 2  # nothing was deleted


def test_edited_words_of_one_sentence(good: tuple[Studio, Profile]) -> None:
    studio, voice = good
    take = studio.generate(GenerationRequest(voice.id, TWO, seed=8, quality="check"))
    edited = studio.retake_sentence(take.id, 0, text="The keeper lit the lamp at dusk.")
    assert edited.chunks[0].text == "The keeper lit the lamp at dusk." and edited.chunks[0].takes[1].passed is True
    untouched, before = edited.chunks[1], take.chunks[1]
    assert (untouched.takes, untouched.used_take, untouched.text, untouched.seed) == (
        before.takes, before.used_take, before.text, before.seed
    )


def test_sentence_routes_and_score_through_rest(good: tuple[Studio, Profile], espeak_wav: Path) -> None:
    studio, voice = good
    take = studio.generate(GenerationRequest(voice.id, TWO, seed=9, quality="check"))
    with TestClient(create_api_app(studio, studio.settings)) as client:
        original = client.get(f"/audio/{take.id}").content
        made = client.post(f"/history/{take.id}/chunks/0/retake", json={"seed": 5})
        assert made.status_code == 200, made.text
        assert made.json()["chunks"][0]["used_take"] == 1 and len(made.json()["chunks"][0]["takes"]) == 2
        chosen = client.put(f"/history/{take.id}/chunks/0", json={"take": 0})
        assert chosen.status_code == 200 and chosen.json()["chunks"][0]["used_take"] == 0
        assert client.get(f"/audio/{take.id}").content == original
        assert client.put(f"/history/{take.id}/chunks/0", json={"take": 7}).status_code == 422
        missing = client.post(f"/history/{take.id}/chunks/5/retake", json={})
        assert missing.status_code == 404 and "Sentence 5" in missing.json()["detail"]
        assert client.post(f"/history/{'0' * 32}/chunks/0/retake", json={}).status_code == 404

        words = "The quick brown fox jumps over the lazy dog near the river bank."
        with espeak_wav.open("rb") as handle:
            scored = client.post("/score", files={"file": ("s.wav", handle, "audio/wav")},
                                 data={"text": words, "profile_id": voice.id})
        assert scored.status_code == 200, scored.text
        body = scored.json()
        checks = {c["name"]: c for c in body["checks"]}
        assert checks["cer"]["passed"] and checks["similarity"]["value"] is not None and "fox" in body["heard"].lower()
        assert body["cer"] == checks["cer"]["value"] and body["similarity"] == checks["similarity"]["value"]
        with espeak_wav.open("rb") as handle:
            wrong = client.post("/score", files={"file": ("s.wav", handle, "audio/wav")},
                                data={"text": SWAPPED}).json()
        assert wrong["passed"] is False and {c["name"]: c for c in wrong["checks"]}["similarity"]["value"] is None
        with espeak_wav.open("rb") as handle:
            empty = client.post("/score", files={"file": ("s.wav", handle, "audio/wav")}, data={"text": " "})
        assert empty.status_code == 422 and "words" in empty.json()["detail"]


def test_checking_a_sentence_leaves_no_transcript_behind(good: tuple[Studio, Profile], shared_asr: Any) -> None:
    """Every sentence is new audio: the gate hears it once and keeps nothing in Whisper's cache."""
    studio, voice = good
    folder = shared_asr.cache_dir / "transcripts" if shared_asr.cache_dir else None
    before = sorted(folder.glob("*")) if folder and folder.exists() else []
    calls = shared_asr.model_calls
    studio.generate(GenerationRequest(voice.id, "A sentence heard once and forgotten.", seed=12, quality="check"))
    assert shared_asr.model_calls == calls + 1
    after = sorted(folder.glob("*")) if folder and folder.exists() else []
    assert after == before


def test_a_take_is_kept_unchecked_when_whisper_is_missing(tmp_path: Path, espeak_wav: Path, speaker_encoder: Any) -> None:
    """The gate needs Whisper; without it the take is still made and saved, saying it was not checked."""
    from voicebox.engines.asr import WhisperEngine

    missing = WhisperEngine(model=str(tmp_path / "no-such-whisper"), device="cpu", cache_dir=tmp_path / "cache", fallback=False)
    settings = Settings(data_dir=tmp_path / "data", quality="retake")
    studio = Studio(settings, tts=EspeakBackend(), asr=missing, quality_gate=QualityGate(missing, speaker=speaker_encoder))
    profile = studio.create_profile("No whisper", language="English")
    studio.add_sample(profile.id, espeak_wav, "The quick brown fox jumps over the lazy dog near the river bank.")
    take = studio.generate(GenerationRequest(profile.id, GOOD, seed=1))
    assert take.quality == "off" and take.status == "ok" and "not checked" in take.message
    assert take.chunks[0].takes[0].passed is None and studio.generation_path(take.id).is_file()


class BrokenGate(QualityGate):
    """A gate whose checking model breaks in an unplanned way (not a missing model)."""

    def score(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the speaker encoder crashed")


def test_a_broken_gate_never_costs_the_take(good: tuple[Studio, Profile], shared_asr: Any, speaker_encoder: Any) -> None:
    studio, voice = good
    broken = Studio(studio.settings, tts=studio.tts, asr=shared_asr,
                    quality_gate=BrokenGate(shared_asr, speaker=speaker_encoder))
    take = broken.generate(GenerationRequest(voice.id, GOOD, seed=13, quality="retake"))
    assert take.quality == "off" and "not checked" in take.message and broken.generation_path(take.id).is_file()
    again = broken.retake_sentence(take.id, 0, seed=14)  # a sentence re-take survives it too
    assert len(again.chunks[0].takes) == 2 and again.chunks[0].takes[1].passed is None
