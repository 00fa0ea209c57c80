"""Built-in voices (voicebox.speakers): a CustomVoice model's named speakers with style control.

The CustomVoice model is a tiny random checkpoint built with the real ``qwen_tts`` classes, with
two named speakers (vivian, ryan), loaded through the real path. Its audio is noise, so the tests
check where the words go: the instruction reaches the CustomVoice model (same seed, another
instruction, other audio), never a cloning model; and every way in (service, REST, the OpenAI
route) finds the voices.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from tests.support.qwen_checkpoint import build_random_checkpoint
from tests.support.studio import studio_settings
from voicebox.api import create_api_app
from voicebox.errors import InvalidInput, NotFound
from voicebox.records import GenerationRequest
from voicebox.services import Studio
from voicebox.speakers import CLONES_TAKE_NO_STYLE

FRAMES = 6


@pytest.fixture(scope="module")
def speaker_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_checkpoint(tmp_path_factory.mktemp("qwen") / "custom", "tiny", seed=8,
                                   variant="custom_voice", model_size="1b7")


@pytest.fixture
def studio(tmp_path: Path, speaker_checkpoint: Path, shared_tts: Any, shared_asr: Any, restores_tts_size: None,
           tiny_checkpoint: Path, whisper_tiny_path: str) -> Iterator[Studio]:
    settings = studio_settings(tmp_path / "data", tiny_checkpoint, whisper_tiny_path, max_frames=FRAMES,
                               speaker_model=str(speaker_checkpoint))
    yield Studio(settings, tts=shared_tts, asr=shared_asr)


def audio_of(studio: Studio, take: Any) -> np.ndarray:
    return sf.read(studio.generation_path(take.id))[0]


def test_named_speakers_speak_and_follow_the_instruction(studio: Studio, espeak_wav: Path) -> None:
    assert studio.speakers.names() == ["ryan", "vivian"]  # read from the checkpoint, before loading it
    assert studio.speakers.takes_style
    assert studio.speakers.engine.precision.memory == studio.settings.precision_memory  # timed once per machine
    studio.tts.load("0.6B")
    take = studio.generate(GenerationRequest("speaker:vivian", "Hello there.", seed=3, instruct="whispering"))
    assert studio.tts.loaded_size is None  # one big model at a time
    assert take.profile_id == "speaker:vivian" and take.profile_name == "Vivian" and take.instruct == "whispering"
    assert take.backend == "qwen3-tts-custom-voice" and take.duration == pytest.approx(FRAMES * 1920 / 24000)
    plain = studio.generate(GenerationRequest("speaker:vivian", "Hello there.", seed=3))
    again = studio.generate(GenerationRequest("speaker:vivian", "Hello there.", seed=3, instruct="whispering"))
    assert np.array_equal(audio_of(studio, take), audio_of(studio, again))  # a seed remakes a take
    assert not np.allclose(audio_of(studio, take), audio_of(studio, plain))  # the instruction reached the model
    ryan = studio.generate(GenerationRequest("speaker:ryan", "Hello there.", seed=3))
    assert not np.allclose(audio_of(studio, ryan), audio_of(studio, plain))  # another speaker, another voice
    remade = studio.retake_sentence(take.id, 0, seed=5)  # a sentence re-made keeps speaker and style
    assert remade.profile_id == "speaker:vivian" and remade.chunks[0].takes[-1].seed == 5


def test_an_instruction_never_reaches_a_cloned_voice(studio: Studio, espeak_wav: Path) -> None:
    mine = studio.create_profile("Mine", language="English")
    studio.add_sample(mine.id, espeak_wav, "The quick brown fox jumps over the lazy dog near the river bank.")
    with pytest.raises(InvalidInput) as refused:
        studio.generate(GenerationRequest(mine.id, "Hello there.", instruct="whispering"))
    assert refused.value.message == CLONES_TAKE_NO_STYLE
    assert studio.list_history()["total"] == 0  # refused before any model work: nothing saved
    with pytest.raises(NotFound, match="Profile speaker:nobody does not exist"):
        studio.generate(GenerationRequest("speaker:nobody", "Hello there."))


def test_the_small_model_refuses_an_instruction_it_would_drop(tmp_path: Path, shared_tts: Any, shared_asr: Any,
                                                               restores_tts_size: None, tiny_checkpoint: Path,
                                                               whisper_tiny_path: str) -> None:
    small = build_random_checkpoint(tmp_path / "small", "tiny", seed=9, variant="custom_voice")  # says 0b6
    settings = studio_settings(tmp_path / "data", tiny_checkpoint, whisper_tiny_path, max_frames=FRAMES,
                               speaker_model=str(small))
    studio = Studio(settings, tts=shared_tts, asr=shared_asr)
    assert not studio.speakers.takes_style
    with pytest.raises(InvalidInput, match="0.6B named-speaker model does not take style instructions"):
        studio.generate(GenerationRequest("speaker:ryan", "Hello there.", instruct="whispering"))
    assert studio.generate(GenerationRequest("speaker:ryan", "Hello there.")).profile_name == "Ryan"


def test_rest_and_the_openai_route_find_the_built_in_voices(studio: Studio) -> None:
    client = TestClient(create_api_app(studio, studio.settings))
    listed = client.get("/speakers").json()
    assert listed["items"] == [{"id": "speaker:ryan", "name": "Ryan"}, {"id": "speaker:vivian", "name": "Vivian"}]
    assert listed["takes_style"] is True
    made = client.post("/generate", json={"profile_id": "speaker:ryan", "text": "Good evening.",
                                          "instruct": "slow and calm", "seed": 2})
    assert made.status_code == 201, made.text
    assert made.json()["instruct"] == "slow and calm" and made.json()["profile_name"] == "Ryan"
    spoken = client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "Vivian", "input": "Hello.",
                                                   "instructions": "excited", "response_format": "wav"})
    assert spoken.status_code == 200, spoken.text
    assert sf.info(io.BytesIO(spoken.content)).frames == FRAMES * 1920
    assert client.get("/history?search=Hello").json()["items"][0]["instruct"] == "excited"
    unknown = client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "Nobody", "input": "Hello."})
    assert unknown.status_code == 404 and "Nobody" in unknown.json()["error"]["message"]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, speaker_checkpoint: Path, shared_tts: Any, shared_asr: Any,
        tiny_checkpoint: Path, whisper_tiny_path: str, espeak_wav: Path) -> Iterator[tuple[str, Studio]]:
    from tests.support.studio import serve_app

    settings = studio_settings(tmp_path_factory.mktemp("speakers-ui") / "data", tiny_checkpoint, whisper_tiny_path,
                               max_frames=FRAMES, speaker_model=str(speaker_checkpoint), quotas="off",
                               rate_limit="off")
    studio = Studio(settings, tts=shared_tts, asr=shared_asr)
    mine = studio.create_profile("My voice", language="English")
    studio.add_sample(mine.id, espeak_wav, "The quick brown fox jumps over the lazy dog near the river bank.")
    for url in serve_app(settings, studio):
        yield url, studio


@pytest.mark.browser
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_a_built_in_voice_in_the_generate_tab(app: tuple[str, Studio], viewport: str) -> None:
    from tests.support.browser import chromium, error_badges, expect, field, new_page, open_tab, screenshot

    url, studio = app
    check = expect()
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        open_tab(page, "Generate")
        style = page.locator("#gen-style")
        check(style).to_be_hidden()  # the picked voice is the person's own, cloned one
        page.locator("#gen-profile input").click()
        check(page.get_by_role("option", name="Ryan · built-in voice")).to_be_visible()
        page.get_by_role("option", name="Vivian · built-in voice").click()
        check(style).to_be_visible()
        field(page, "gen-style").fill("whispering")
        field(page, "gen-text").fill(f"A quiet line on a {viewport}.")
        page.locator("#gen-button").click()
        check(page.locator("#gen-status")).to_contain_text("Saved to History")
        screenshot(page, f"speaker-generate-{viewport}")
        page.locator("#gen-profile input").click()
        page.get_by_role("option", name="My voice").click()
        check(style).to_be_hidden()  # a cloned voice: the style is put away, not sent
        check(error_badges(page)).to_have_count(0)
        open_tab(page, "Models")  # the built-in voices' model is listed, and in memory after the take
        variants = page.locator("#models-variants")
        check(variants).to_contain_text("Built-in voices")
        check(variants).to_contain_text("Loaded")
        screenshot(page, f"models-variants-{viewport}")
    take = studio.list_history(search=viewport)["items"][0]
    assert take.profile_name == "Vivian" and take.instruct == "whispering"
