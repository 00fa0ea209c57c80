"""Voice design (voicebox.design): described in words, heard in takes, kept as a profile, cloned.

The VoiceDesign model here is a tiny random checkpoint built with the real ``qwen_tts`` classes
(``tts_model_type: voice_design``) and loaded through the same path as the real one, so the
prompt (the description as an instruction), the batch of takes with their own seeds, the frame
loop and the decoder all run for real; its audio is noise, so the tests check shapes, seeds,
files and the records, not how it sounds.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import soundfile as sf

from tests.support.qwen_checkpoint import build_random_checkpoint
from tests.support.studio import studio_settings
from voicebox.design import DEFAULT_TEXT, DesignEngine
from voicebox.engines.params import GenerationParams
from voicebox.engines.tts import TTSEngine
from voicebox.errors import InvalidInput, ModelUnavailable, NotFound
from voicebox.my_data import delete_everything
from voicebox.records import GenerationRequest
from voicebox.services import Studio
from voicebox.speech import SpeechRequest

FRAMES = 16  # the tiny model never stops by itself: every take is capped at this many (1.3 s, enough for a sample)
DESCRIPTION = "A warm, low female voice in her fifties, calm, with a slight British accent."
CONSENT = "2026-12-01T10:00:00Z"


@pytest.fixture(scope="module")
def design_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_checkpoint(tmp_path_factory.mktemp("qwen") / "design", "tiny", seed=5, variant="voice_design")


@pytest.fixture
def studio(tmp_path: Path, design_checkpoint: Path, shared_tts: Any, shared_asr: Any,
           restores_tts_size: None, tiny_checkpoint: Path, whisper_tiny_path: str) -> Iterator[Studio]:
    settings = studio_settings(tmp_path / "data", tiny_checkpoint, whisper_tiny_path, max_frames=FRAMES,
                               design_model=str(design_checkpoint))
    yield Studio(settings, tts=shared_tts, asr=shared_asr)


def test_takes_differ_by_seed_and_the_cloning_model_makes_room(studio: Studio) -> None:
    studio.tts.load("0.6B")
    design = studio.designer.design(DESCRIPTION, "Hello there, how are you?", "English", takes=2, seed=7)
    assert studio.tts.loaded_size is None  # one big model at a time: cloning made room
    assert studio.designer.engine.loaded_size is None  # and on a CPU the design model goes again
    # so its loop precision is timed once per machine, not at each of those loads
    assert studio.designer.engine.precision.memory == studio.settings.precision_memory
    assert design.description == DESCRIPTION and design.text == "Hello there, how are you?"
    assert [t.index for t in design.takes] == [0, 1] and design.takes[0].seed != design.takes[1].seed
    sounds = []
    for take in design.takes:
        data, rate = sf.read(take.path)
        assert rate == 24000 and len(data) == FRAMES * 1920 and take.duration == pytest.approx(FRAMES * 1920 / 24000)
        assert take.hit_cap  # random weights never say they are done
        sounds.append(data)
    assert not np.allclose(sounds[0], sounds[1])  # two seeds, two voices to choose from
    again = studio.designer.design(DESCRIPTION, "Hello there, how are you?", "English", takes=2, seed=7)
    assert np.array_equal(sf.read(again.takes[1].path)[0], sounds[1])  # a seed remakes its take


def test_a_kept_take_becomes_a_profile_that_clones(studio: Studio) -> None:
    design = studio.designer.design(DESCRIPTION, "", takes=1, owner="ana")
    assert design.text == DEFAULT_TEXT  # no sample text: a sentence with varied sounds
    profile = studio.designer.save(design.id, 1, "Designed narrator", owner="ana", consent=CONSENT)
    assert profile.description == DESCRIPTION and profile.owner == "ana" and profile.consented_at == CONSENT
    (sample,) = profile.samples
    assert sample.reference_text == DEFAULT_TEXT
    take = studio.generate(GenerationRequest(profile.id, "A line in the designed voice.", seed=1), owner="ana")
    assert take.profile_id == profile.id and take.duration > 0  # the Base model clones it from here on
    assert studio.get_profile(profile.id, owner="ana").sample_count == 1


def test_refusals_say_what_to_do_and_keep_nothing(studio: Studio) -> None:
    with pytest.raises(InvalidInput, match="Describe the voice in words first"):
        studio.designer.design("   ")
    with pytest.raises(InvalidInput, match="Ask for 1 to 4 takes"):
        studio.designer.design(DESCRIPTION, takes=9)
    with pytest.raises(InvalidInput, match="keep it under 500"):
        studio.designer.design("x" * 501)
    with pytest.raises(InvalidInput, match="seed must be a whole number"):
        studio.designer.design(DESCRIPTION, seed="lucky")
    design = studio.designer.design(DESCRIPTION, "Hi.", takes=1, owner="ana")
    with pytest.raises(InvalidInput, match="Choose a take between 1 and 1"):
        studio.designer.save(design.id, 3, "Mine", owner="ana")
    # bo cannot see or keep ana's design: her id answers like one that never existed
    refusals = []
    for asked in (design.id, "0" * 32):
        with pytest.raises(NotFound) as refused:
            studio.designer.save(asked, 1, "Stolen", owner="bo")
        refusals.append(str(refused.value).replace(asked, "<id>"))
    assert refusals[0] == refusals[1]
    assert studio.list_profiles(owner="bo")["total"] == 0 and studio.list_profiles(owner="ana")["total"] == 0
    folder = design.takes[0].path.parent
    assert folder.is_dir()
    delete_everything(studio, "ana")  # her waiting takes go with everything else
    assert not folder.exists()
    with pytest.raises(NotFound):
        studio.designer.get(design.id, owner="ana")


def test_each_engine_takes_only_its_own_family(design_checkpoint: Path, tiny_checkpoint: Path) -> None:
    cloning = TTSEngine({"0.6B": str(design_checkpoint)}, device="cpu")
    with pytest.raises(ModelUnavailable, match="voice_design model; voice cloning needs a Base model"):
        cloning.load("0.6B")
    designing = DesignEngine({"1.7B": str(tiny_checkpoint)}, device="cpu")
    with pytest.raises(ModelUnavailable, match="base model; designing a voice needs a VoiceDesign model"):
        designing.load("1.7B")
    # the description reaches the VoiceDesign model as its instruction, not as a voice sample
    words = DesignEngine({"1.7B": str(design_checkpoint)}, device="cpu", max_frames=3)
    request = SpeechRequest(chunks=("Hi.",), voice=(), params=GenerationParams(seed=1), size="1.7B", instruct="")
    with pytest.raises(InvalidInput, match="Describe the voice in words first"):
        list(words.speak(request))
    words.unload()


def test_design_over_rest(studio: Studio) -> None:
    from fastapi.testclient import TestClient

    from voicebox.api import create_api_app

    client = TestClient(create_api_app(studio, studio.settings))
    made = client.post("/design", json={"description": DESCRIPTION, "text": "Good evening, listeners.",
                                        "language": "English", "takes": 2, "seed": 11})
    assert made.status_code == 201, made.text
    design = made.json()
    assert [t["take"] for t in design["takes"]] == [1, 2] and design["description"] == DESCRIPTION
    played = client.get(design["takes"][1]["audio_url"])
    assert played.status_code == 200 and played.headers["content-type"] == "audio/wav"
    assert sf.info(io.BytesIO(played.content)).frames == FRAMES * 1920
    assert client.get(f"/design/{design['id']}/takes/3").json()["detail"] == "Choose a take between 1 and 2."
    refused = client.post("/design", json={"description": "", "takes": 2})
    assert refused.status_code == 422 and "Describe the voice in words first" in refused.json()["detail"]
    kept = client.post(f"/design/{design['id']}/save", json={"take": 2, "name": "Evening voice"})
    assert kept.status_code == 201, kept.text
    assert kept.json()["description"] == DESCRIPTION and kept.json()["sample_count"] == 1
    assert [p["name"] for p in client.get("/profiles").json()["items"]] == ["Evening voice"]
    assert client.get(f"/design/{'0' * 32}").status_code == 404
