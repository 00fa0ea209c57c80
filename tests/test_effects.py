"""Effects (issue #18): each preset on real speech (``jfk.flac``) changes what it should, measured;
the chain record refuses bad values in words; and through the studio, REST, the OpenAI route and
the Gradio API (espeak-ng speech) an effect is applied, changed and removed without the clean
take ever changing, so removing it gives the very same bytes back.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from tests.support.espeak_backend import EspeakBackend
from tests.support.studio import account_headers
from voicebox import audio, take_effects
from voicebox.api import create_api_app
from voicebox.config import Settings
from voicebox.effects import NO_EFFECT, PRESETS, EffectChain, apply, parse
from voicebox.errors import InvalidInput, NotFound
from voicebox.records import Generation, GenerationRequest
from voicebox.services import Studio

RATE = audio.MODEL_SAMPLE_RATE
WORDS = "The quick brown fox jumps over the lazy dog near the river bank."


# ---- the signal path on real speech -------------------------------------------------------------
@pytest.fixture(scope="module")
def jfk(jfk_path: Path) -> np.ndarray:
    return audio.load_mono(jfk_path, RATE)


@pytest.fixture(scope="module")
def processed(jfk: np.ndarray) -> dict[str, np.ndarray]:
    """Every preset applied once (the tests below only measure)."""
    return {name: apply(chain, jfk, RATE) for name, chain in PRESETS.items()}


def band_db(samples: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """Energy below ``low`` and above ``high``, each in dB relative to the energy between them."""
    power = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    inside = power[(freqs >= low) & (freqs <= high)].sum()
    return (10 * math.log10(power[freqs < low].sum() / inside),
            10 * math.log10(power[freqs > high].sum() / inside))


def median_f0(samples: np.ndarray) -> float:
    """Median pitch of the voiced, loud frames (librosa's YIN at 16 kHz)."""
    import librosa

    speech = audio.resample(samples, RATE, 16_000)
    f0 = librosa.yin(speech, fmin=70, fmax=500, sr=16_000, frame_length=1024, hop_length=256)
    rms = librosa.feature.rms(y=speech, frame_length=1024, hop_length=256)[0][: len(f0)]
    loud = rms > 0.3 * np.median(rms[rms > rms.max() * 0.05])
    return float(np.median(f0[: len(rms)][loud]))


def decay_seconds(samples: np.ndarray) -> float:
    """From the last 10 ms frame within 20 dB of the loudest to the last one within 50 dB."""
    frames = samples[: len(samples) // 240 * 240].reshape(-1, 240)
    level = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-20)
    level -= level.max()
    return float(np.flatnonzero(level > -50)[-1] - np.flatnonzero(level > -20)[-1]) * 0.01


def comb_strength(samples: np.ndarray, delay_ms: float) -> float:
    """Normalised autocorrelation at the echo's delay: the metallic ring of a comb filter."""
    lag = int(delay_ms / 1000 * RATE)
    x = samples - samples.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))


def crest_db(samples: np.ndarray) -> float:
    return 20 * math.log10(np.abs(samples).max() / np.sqrt(np.mean(samples ** 2)))


def test_telephone_keeps_only_the_phone_band(jfk: np.ndarray, processed: dict[str, np.ndarray]) -> None:
    """What is left below 300 Hz and above 3.4 kHz lies 35 dB under the band (clean: 15 and 28 dB
    under), 45 dB under it below 200 Hz and above 4.5 kHz."""
    low_before, high_before = band_db(jfk, 300, 3400)
    low_after, high_after = band_db(processed["telephone"], 300, 3400)
    assert low_after < min(-35, low_before - 20), (low_before, low_after)
    assert high_after < min(-35, high_before - 9), (high_before, high_after)
    assert max(band_db(processed["telephone"], 200, 4500)) < -45


@pytest.mark.parametrize("name, low, high", [("radio", 100, 6000), ("megaphone", 300, 5000)])
def test_radio_and_megaphone_narrow_the_band_and_squeeze_the_level(
    jfk: np.ndarray, processed: dict[str, np.ndarray], name: str, low: float, high: float
) -> None:
    before, after = band_db(jfk, low, high), band_db(processed[name], low, high)
    assert after[0] < before[0] - 6 and max(after) < -45, (before, after)
    assert crest_db(processed[name]) < crest_db(jfk) - 1  # compressed (and, for the horn, overdriven)


def test_pitch_up_and_down_move_the_median_f0_by_four_semitones(
    jfk: np.ndarray, processed: dict[str, np.ndarray]
) -> None:
    clean = median_f0(jfk)
    assert 100 < clean < 300
    up, down = median_f0(processed["pitch_up"]) / clean, median_f0(processed["pitch_down"]) / clean
    assert up == pytest.approx(2 ** (4 / 12), rel=0.06), up
    assert down == pytest.approx(2 ** (-4 / 12), rel=0.06), down
    assert len(processed["pitch_up"]) == len(jfk)  # pitch, not speed


def test_cathedral_reverb_lengthens_the_decay(jfk: np.ndarray, processed: dict[str, np.ndarray]) -> None:
    wet = processed["cathedral"]
    assert decay_seconds(wet) > decay_seconds(jfk) + 1.5, (decay_seconds(jfk), decay_seconds(wet))
    assert 1.5 < (len(wet) - len(jfk)) / RATE < 6  # the tail rings out past the speech, then is trimmed


def test_robot_rings_like_a_comb_filter(jfk: np.ndarray, processed: dict[str, np.ndarray]) -> None:
    delay = PRESETS["robot"].echo_ms
    assert comb_strength(processed["robot"], delay) > comb_strength(jfk, delay) + 0.3


def test_speed_changes_the_duration_and_keeps_the_pitch(jfk: np.ndarray) -> None:
    fast = apply(parse({"speed": 1.25}), jfk, RATE)
    assert len(fast) / len(jfk) == pytest.approx(0.8, abs=0.01)
    assert median_f0(fast) == pytest.approx(median_f0(jfk), rel=0.05)


def test_custom_gain_and_eq_do_what_they_say(jfk: np.ndarray) -> None:
    quieter = apply(parse({"gain_db": -6}), jfk, RATE)
    assert np.sqrt(np.mean(quieter ** 2)) / np.sqrt(np.mean(jfk ** 2)) == pytest.approx(10 ** (-6 / 20), rel=0.03)
    bassy = apply(parse({"bass_db": 12, "gain_db": -12}), jfk, RATE)
    assert band_db(bassy, 150, 11000)[0] > band_db(jfk, 150, 11000)[0] + 8
    assert np.abs(apply(parse({"gain_db": 24}), jfk, RATE)).max() <= 10 ** (-1 / 20) + 1e-6  # never clips


def test_a_chain_is_deterministic_and_none_changes_nothing(jfk: np.ndarray) -> None:
    chain, start = parse({"preset": "robot", "reverb_mix": 0.2}), jfk[: 3 * RATE]
    assert np.array_equal(apply(chain, start, RATE), apply(chain, start, RATE))
    assert np.array_equal(apply(NO_EFFECT, jfk, RATE), jfk)


# ---- the record ---------------------------------------------------------------------------------
def test_the_chain_is_a_json_record_with_every_value_explicit() -> None:
    chain = parse('{"preset": "radio", "gain_db": 3}')
    assert chain.preset == "custom" and chain.low_cut_hz == PRESETS["radio"].low_cut_hz and chain.gain_db == 3
    assert EffectChain.from_dict(json.loads(json.dumps(chain.to_dict()))) == chain
    assert parse("Cathedral reverb") == parse("cathedral") == PRESETS["cathedral"]
    assert parse("none").is_none and parse("") is None and parse(None) is None
    assert parse({"preset": "radio", "gain_db": PRESETS["radio"].gain_db}).label() == "Radio"
    assert parse({"pitch_semitones": 3, "speed": 1.2}).label() == "Custom: pitch +3 semitones, speed 1.2×"


@pytest.mark.parametrize("value, said", [
    ({"speed": 3}, "Speed (speed) must be from 0.5 to 2× (got 3)."),
    ({"low_cut_hz": 10}, "Low cut (low_cut_hz) must be 0 (off) or from 20 to 4000 Hz (got 10)."),
    ({"low_cut_hz": 3000, "high_cut_hz": 1000}, "The low cut (3000 Hz) must be below the high cut (1000 Hz)"),
    ({"gain_db": "loud"}, "Gain (gain_db) must be a number, not 'loud'."),
    ({"reverb_mix": True}, "Reverb mix (reverb_mix) must be a number, not True."),
    ({"pitch_semitones": float("nan")}, "Pitch (pitch_semitones) must be a finite number."),
    ({"wobble": 1}, "Unknown effect setting 'wobble'"),
    ("disco", "Unknown effect preset 'disco'; use one of none, radio, telephone"),
    ("{not json", "Effects text starts with '{' but is not valid JSON."),
    ([1, 2], "Effects must be a preset name or an object of settings."),
])
def test_bad_values_are_refused_in_words(value: Any, said: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse(value)
    assert said in refused.value.message


def test_a_stored_chain_that_no_longer_passes_leaves_the_record_readable() -> None:
    record = {"id": "a" * 32, "profile_id": "b" * 32, "profile_name": "V", "text": "Hi.", "file": "x.wav",
              "language": "English", "model": "m", "size": "0.6B", "mode": "icl", "seed": 1, "duration": 1.0}
    assert Generation.from_dict({**record, "effects": {"speed": 9}}).effects is None
    assert Generation.from_dict({**record, "effects": PRESETS["robot"].to_dict()}).effects == PRESETS["robot"]


# ---- through the studio -------------------------------------------------------------------------
class NoWhisper:
    """Samples come with their words and the gate is off: nothing here needs Whisper."""

    def status(self) -> dict[str, Any]:
        return {"loaded": False}


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, espeak_wav: Path) -> Studio:
    settings = Settings(data_dir=tmp_path_factory.mktemp("effects") / "data", quality="off", quotas="off",
                        rate_limit="off")
    made = Studio(settings, tts=EspeakBackend(), asr=NoWhisper())
    for owner in ("", "ana", "bo"):
        profile = made.create_profile("Keeper", language="English", owner=owner, consent="")
        made.add_sample(profile.id, espeak_wav, WORDS, owner=owner)
    return made


def voice(studio: Studio, owner: str = "") -> str:
    return studio.list_profiles(owner=owner)["items"][0].id


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_apply_change_remove_never_touch_the_clean_take(studio: Studio) -> None:
    take = studio.generate(GenerationRequest(voice(studio), "Effects leave the clean take alone."))
    assert take.effects is None
    clean_file, clean_hash = studio.take_file(take), digest(studio.take_file(take))
    assert take_effects.played_file(studio, take) == clean_file

    robot = take_effects.set_effect(studio, take.id, "robot")
    assert robot.effects == PRESETS["robot"] and studio.get_generation(take.id).effects == PRESETS["robot"]
    first = take_effects.played_file(studio, robot)
    assert first != clean_file and first.parent.name == take.id and digest(first) != clean_hash

    slower = take_effects.set_effect(studio, take.id, {"speed": 0.8})
    second = take_effects.played_file(studio, slower)
    assert not first.exists()  # the old processed copy went
    assert sf.info(str(second)).frames == pytest.approx(sf.info(str(clean_file)).frames / 0.8, rel=0.02)

    plain = take_effects.remove_effect(studio, take.id)
    assert plain.effects is None and not second.exists()
    assert take_effects.played_file(studio, plain).read_bytes() == clean_file.read_bytes()
    assert digest(clean_file) == clean_hash and plain.file == take.file


def test_a_sentence_retake_gives_new_processed_audio(studio: Studio) -> None:
    take = studio.generate(GenerationRequest(voice(studio), "One sentence here. And another one there.",
                                             effects=parse("pitch_up")))
    before = take_effects.played_file(studio, take)
    redone = studio.retake_sentence(take.id, 0, seed=5)
    assert redone.effects == PRESETS["pitch_up"] and redone.file != take.file
    after = take_effects.played_file(studio, redone)
    assert after != before and not before.exists()


def test_a_voice_default_applies_unless_the_request_says_otherwise(studio: Studio) -> None:
    profile_id = voice(studio)
    assert take_effects.set_voice_default(studio, profile_id, "telephone").effects == PRESETS["telephone"]
    try:
        assert studio.generate(GenerationRequest(profile_id, "The voice's own effect.")).effects == PRESETS["telephone"]
        assert studio.generate(GenerationRequest(profile_id, "Asked for none.", effects=parse("none"))).effects is None
        asked = studio.generate(GenerationRequest(profile_id, "Asked for radio.", effects=parse("radio")))
        assert asked.effects == PRESETS["radio"]
    finally:
        assert take_effects.set_voice_default(studio, profile_id, "none").effects is None
    assert studio.generate(GenerationRequest(profile_id, "No default any more.")).effects is None


def test_preview_stores_nothing_and_deleting_a_take_takes_its_processed_audio(studio: Studio) -> None:
    take = studio.generate(GenerationRequest(voice(studio), "Preview me first.", effects=parse("cathedral")))
    folder = take_effects.played_file(studio, take).parent
    data = take_effects.preview(studio, take.id, {"preset": "megaphone"})
    assert sf.info(io.BytesIO(data)).samplerate == RATE
    assert studio.get_generation(take.id).effects == PRESETS["cathedral"]
    take_effects.delete_take(studio, take.id)
    assert not folder.exists()


def test_another_owners_take_or_voice_is_a_missing_one(studio: Studio) -> None:
    theirs = studio.generate(GenerationRequest(voice(studio, "ana"), "Ana's take."), owner="ana")
    for call in (lambda: take_effects.set_effect(studio, theirs.id, "robot", owner="bo"),
                 lambda: take_effects.remove_effect(studio, theirs.id, owner="bo"),
                 lambda: take_effects.preview(studio, theirs.id, "bad preset", owner="bo"),
                 lambda: take_effects.set_voice_default(studio, voice(studio, "ana"), "robot", owner="bo")):
        with pytest.raises(NotFound):
            call()
    assert studio.get_generation(theirs.id, owner="ana").effects is None
    ana = take_effects.set_effect(studio, theirs.id, "radio", owner="ana")
    assert take_effects.played_file(studio, ana).is_relative_to(studio.settings.data_dir / "owners")


# ---- over REST, the OpenAI route and the Gradio API -----------------------------------------------
@pytest.fixture(scope="module")
def client(studio: Studio) -> TestClient:
    return TestClient(create_api_app(studio, studio.settings))


def test_rest_generate_set_preview_and_remove(client: TestClient, studio: Studio) -> None:
    made = client.post("/generate", json={"profile_id": voice(studio), "text": "Over the wire.", "effects": "radio"})
    assert made.status_code == 201, made.text
    take = made.json()
    assert take["effects"]["preset"] == "radio"
    clean = studio.take_file(studio.get_generation(take["id"])).read_bytes()
    assert client.get(take["audio_url"]).content != clean

    custom = client.put(f"/history/{take['id']}/effects", json={"effects": {"pitch_semitones": -3, "speed": 1.5}})
    assert custom.status_code == 200 and custom.json()["effects"]["speed"] == 1.5
    shorter = sf.info(io.BytesIO(client.get(take["audio_url"]).content)).frames
    assert shorter == pytest.approx(sf.info(io.BytesIO(clean)).frames / 1.5, rel=0.03)
    assert client.get(f"{take['audio_url']}?format=flac").headers["content-type"] == "audio/flac"

    heard = client.post(f"/history/{take['id']}/effects/preview", json={"effects": "telephone"})
    assert heard.status_code == 200 and heard.headers["content-type"] == "audio/wav"
    bad = client.put(f"/history/{take['id']}/effects", json={"effects": {"low_cut_hz": 5000, "high_cut_hz": 2000}})
    assert bad.status_code == 422 and "Low cut (low_cut_hz) must be 0 (off) or from 20 to 4000 Hz" in bad.json()["detail"]
    assert client.get(f"/history/{take['id']}").json()["effects"]["speed"] == 1.5  # unchanged by the refusal

    removed = client.delete(f"/history/{take['id']}/effects")
    assert removed.status_code == 200 and removed.json()["effects"] is None
    assert client.get(take["audio_url"]).content == clean  # byte for byte
    assert "telephone" in client.get("/effects").json()["presets"]
    for value, said in (({"speed": 9}, "Speed (speed) must be from 0.5 to 2× (got 9)."),
                        ({"speed": "fast"}, "Speed (speed) must be a number, not 'fast'.")):
        refused = client.post("/generate", json={"profile_id": voice(studio), "text": "Hi.", "effects": value})
        assert refused.status_code == 422 and refused.json()["detail"] == said  # the chain's words, not pydantic's


def test_rest_voice_default_and_the_openai_extension(client: TestClient, studio: Studio) -> None:
    profile_id = voice(studio)
    profile = client.put(f"/profiles/{profile_id}/effects", json={"effects": "pitch_down"})
    assert profile.status_code == 200 and profile.json()["effects"]["preset"] == "pitch_down"
    try:
        spoken = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Speak low.", "voice": "Keeper",
                                                       "response_format": "wav"})
        assert spoken.status_code == 200, spoken.text
        take = studio.get_generation(spoken.headers["X-Generation-Id"])
        assert take.effects == PRESETS["pitch_down"]
        assert spoken.content == take_effects.played_file(studio, take).read_bytes()

        asked = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Echo.", "voice": "Keeper",
                                                      "response_format": "wav", "effects": {"preset": "robot"}})
        assert studio.get_generation(asked.headers["X-Generation-Id"]).effects == PRESETS["robot"]
        stream = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hi.", "voice": "Keeper",
                                                       "response_format": "wav", "stream": True})
        assert stream.status_code == 422 and "cannot be streamed" in stream.json()["error"]["message"]
        clean = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hi.", "voice": "Keeper",
                                                      "response_format": "wav", "stream": True, "effects": "none"})
        assert clean.status_code == 200
    finally:
        assert client.delete(f"/profiles/{profile_id}/effects").json()["effects"] is None


def test_rest_another_owners_ids_are_missing_ones(tmp_path: Path, espeak_wav: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", quality="off", quotas="off", rate_limit="off")
    headers = account_headers(settings, ("ana", "bo"))
    studio = Studio(settings, tts=EspeakBackend(), asr=NoWhisper())
    profile = studio.create_profile("Ana", language="English", owner="ana", consent="")
    studio.add_sample(profile.id, espeak_wav, WORDS, owner="ana")
    take = studio.generate(GenerationRequest(profile.id, "Ana's."), owner="ana")
    client = TestClient(create_api_app(studio, settings))
    missing = "0" * 32
    for method, path, body in (("PUT", "/history/{}/effects", {"effects": "x"}), ("DELETE", "/history/{}/effects", None),
                               ("POST", "/history/{}/effects/preview", {"effects": "radio"}),
                               ("PUT", "/profiles/{}/effects", {"effects": "radio"})):
        real = take.id if "history" in path else profile.id
        got = client.request(method, path.format(real), json=body, headers=headers["bo"])
        expected = client.request(method, path.format(missing), json=body, headers=headers["bo"])
        assert got.status_code == expected.status_code == 404
        assert got.text.replace(real, "?") == expected.text.replace(missing, "?")
    assert studio.get_generation(take.id, owner="ana").effects is None


def test_gradio_api_sets_and_removes_a_take_effect(studio: Studio) -> None:
    import gradio as gr

    from voicebox.ui import effects_api
    from voicebox.ui.common import UIContext

    with gr.Blocks() as demo:  # the endpoints alone (the whole app's are listed in test_ui_handlers)
        effects_api.build(UIContext(studio, studio.settings))
    by_name = {fn.api_name: fn.fn for fn in demo.fns.values()}
    take = studio.generate(GenerationRequest(voice(studio), "Through the client."))
    record = by_name["set_take_effect"](take.id, '{"preset": "robot", "gain_db": -6}')
    assert record["effects"]["echo_ms"] == PRESETS["robot"].echo_ms and record["effects"]["gain_db"] == -6
    assert by_name["remove_take_effect"](take.id)["effects"] is None
    assert "cathedral" in by_name["effect_presets"]()["presets"]


def test_my_data_export_and_import_keep_effects(studio: Studio, tmp_path: Path) -> None:
    """A take's chain and a voice's default travel in the ZIP; the clean take is what is exported."""
    from voicebox.my_data import export_library
    from voicebox.my_data_import import import_library

    profile_id = voice(studio, "ana")
    take_effects.set_voice_default(studio, profile_id, "megaphone", owner="ana")
    studio.generate(GenerationRequest(profile_id, "Carried over.", effects=parse("cathedral")), owner="ana")
    archive = export_library(studio, "ana", tmp_path / "ana.zip")
    import_library(studio, "cy", archive)
    voices = studio.list_profiles(owner="cy")["items"]
    assert [p.effects for p in voices] == [PRESETS["megaphone"]]
    carried = [t for t in studio.list_history(owner="cy")["items"] if t.text == "Carried over."]
    assert [t.effects for t in carried] == [PRESETS["cathedral"]]
    assert take_effects.played_file(studio, carried[0]).name.startswith("fx-")
