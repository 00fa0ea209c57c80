"""The per-chunk quality checks (issue #14) on real speech: the real Whisper tiny.en engine of the
session, the real Resemblyzer encoder, jfk.flac and espeak-ng speech. No scorer is mocked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import JFK_WORDS, run_tool
from voicebox import audio
from voicebox.quality import (
    CHECK_NAMES,
    Check,
    ChunkScore,
    QualityGate,
    Thresholds,
    VoiceRef,
    checks,
    level_db,
    signal,
)
from voicebox.quality.text import cer, spoken_length
from voicebox.speech import VoiceSample

RATE = 16_000
FOX = "The quick brown fox jumps over the lazy dog near the river bank."  # conftest's espeak_wav
OTHER = "She sells sea shells by the sea shore every summer morning."
#: jfk.flac's words are split by a pause at 8.0 s (faster-whisper's word timestamps).
JFK_SPLIT_S = 8.0
JFK_FIRST = "And so, my fellow Americans, ask not what your country can do for you,"
JFK_SECOND = "ask what you can do for your country."


@pytest.fixture(scope="module")
def gate(shared_asr, speaker_encoder) -> QualityGate:
    return QualityGate(shared_asr, speaker=speaker_encoder)


@pytest.fixture(scope="module")
def jfk(jfk_path: Path) -> np.ndarray:
    return audio.load_mono(jfk_path, RATE)


@pytest.fixture(scope="module")
def fox(espeak_wav: Path) -> np.ndarray:
    return audio.load_mono(espeak_wav, RATE)


def voice_of(folder: Path, name: str, samples: np.ndarray, text: str) -> VoiceRef:
    path = folder / f"{name}.wav"
    sf.write(path, samples, RATE)
    return VoiceRef.of([VoiceSample(path, audio.sha256_file(path), text)])


@pytest.fixture(scope="module")
def jfk_voice(tmp_path_factory, jfk) -> VoiceRef:
    """The profile: the first 8 s of jfk.flac with its words."""
    return voice_of(tmp_path_factory.mktemp("voice"), "jfk_first", jfk[: int(JFK_SPLIT_S * RATE)], JFK_FIRST)


def noise(seconds: float, rms: float = 0.05, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, rms, int(seconds * RATE))).astype(np.float32)


# ---- words ------------------------------------------------------------------------------------
def test_jfk_against_its_words_has_a_low_error_rate_and_against_other_words_a_high_one(gate, jfk):
    right = gate.score(jfk, RATE, JFK_WORDS, "English")
    wrong = gate.score(jfk, RATE, FOX, "English")

    assert right.check("cer").value <= 0.05 and right.check("cer").passed
    assert "ask not what your country can do for you" in right.heard.lower()
    assert right.passed, right.failed()
    assert wrong.check("cer").value >= 0.6 and not wrong.check("cer").passed
    assert not wrong.passed and wrong.reason() == "the words did not match"
    assert right.score > 0.5 > wrong.score  # a passing take always outranks a failing one


def test_espeak_speech_of_the_right_text_passes_the_words_and_of_a_swapped_text_fails(gate, fox):
    right = gate.score(fox, RATE, FOX, "auto")
    swapped = gate.score(fox, RATE, OTHER, "auto")

    assert right.check("cer").passed and right.passed, right.failed()
    assert not swapped.check("cer").passed
    assert "CER" in swapped.check("cer").detail and swapped.reason() == "the words did not match"


def test_noise_fails(gate, jfk_voice):
    result = gate.score(noise(5.0), RATE, FOX, "English", voice=jfk_voice)

    assert not result.passed
    assert result.heard == "" and result.check("cer").value == 1.0
    assert not result.check("similarity").passed
    assert result.score < 0.5


def test_a_runaway_of_speech_then_20_s_of_noise_fails_on_pace(gate, jfk):
    result = gate.score(np.concatenate([jfk, noise(20.0, rms=0.02)]), RATE, JFK_WORDS, "English")

    assert not result.passed
    assert not result.check("pace").passed and "too slow" in result.check("pace").detail


def test_a_runaway_that_says_the_chunk_5_times_fails_on_words_and_pace(gate, tmp_path):
    text = "Thank you very much."
    run_tool("espeak-ng", "-w", str(tmp_path / "thanks.wav"), text)
    once = audio.load_mono(tmp_path / "thanks.wav", RATE)
    result = gate.score(np.tile(once, 5), RATE, text, "English")

    assert gate.score(once, RATE, text, "English").passed
    assert not result.passed
    # Whisper hears the words at least twice (it may drop some repeats, and does not always drop
    # the same ones): a CER of 1 or more, far past the limit either way
    assert not result.check("cer").passed and result.check("cer").value >= 1.0
    assert not result.check("pace").passed


def test_an_english_only_whisper_cannot_check_other_languages_so_the_words_are_not_checked(gate, fox):
    result = gate.score(fox, RATE, FOX, "German")
    words = result.check("cer")

    assert words.value is None and words.passed and words.detail.startswith("not checked")


# ---- voice ------------------------------------------------------------------------------------
def test_two_halves_of_jfk_are_more_alike_than_jfk_and_espeak_speech(gate, jfk, fox, jfk_voice):
    second = gate.score(jfk[int(JFK_SPLIT_S * RATE):], RATE, JFK_SECOND, "English", voice=jfk_voice)
    espeak = gate.score(fox, RATE, FOX, "English", voice=jfk_voice)
    same, other = second.check("similarity"), espeak.check("similarity")

    assert same.value > other.value + 0.15
    assert same.passed and not other.passed
    assert espeak.reason() == "the voice did not match the profile"
    # espeak-ng speaks about twice as fast as Kennedy: caught against the voice's own pace
    assert not espeak.check("pace_vs_voice").passed and "faster" in espeak.check("pace_vs_voice").detail
    assert second.check("pace_vs_voice").passed


def test_the_profile_embedding_is_cached_per_voice_and_forget_drops_it(gate, speaker_encoder, jfk_voice, tmp_path, fox):
    voice = voice_of(tmp_path, "fox", fox, FOX)
    builds, calls = gate.voices.builds, speaker_encoder.calls

    first = gate.voice_embedding(voice)
    assert gate.voices.builds == builds + 1 and speaker_encoder.calls == calls + 1
    hits = gate.voices.hits
    again = gate.voice_embedding(voice)
    assert gate.voices.hits == hits + 1 and speaker_encoder.calls == calls + 1  # no model call
    assert np.array_equal(first, again) and first.shape == (256,)
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5

    gate.forget({"some-other-sample"})
    assert voice.key in gate.voices
    gate.forget({voice.samples[0].sha256})
    assert voice.key not in gate.voices
    gate.voice_embedding(voice)
    assert gate.voices.builds == builds + 2 and speaker_encoder.calls == calls + 2


def test_a_clip_without_a_profile_is_not_judged_on_voice(gate, fox):
    result = gate.score(fox, RATE, FOX)

    assert [c.name for c in result.checks] == list(CHECK_NAMES)
    for name in ("similarity", "pace_vs_voice", "level"):
        check = result.check(name)
        assert check.value is None and check.passed and check.detail.startswith("not checked")


# ---- signal -----------------------------------------------------------------------------------
def test_signal_checks_catch_a_long_pause_dead_air_clipping_and_a_level_jump(fox):
    t = Thresholds()
    half = len(fox) // 2
    gap = np.zeros(int(3 * RATE), dtype=np.float32)

    assert checks.silence(signal.stats(fox, RATE), t).passed
    paused = checks.silence(signal.stats(np.concatenate([fox[:half], gap, fox[half:]]), RATE), t)
    assert not paused.passed and "inside the speech" in paused.detail and paused.value == pytest.approx(3.0, abs=0.05)
    trailing = checks.silence(signal.stats(np.concatenate([fox, gap]), RATE), t)
    assert not trailing.passed and "after the speech" in trailing.detail

    assert checks.clipping(signal.stats(fox, RATE), t).passed
    assert not checks.clipping(signal.stats(np.clip(fox * 10, -1, 1), RATE), t).passed

    take = level_db(fox, RATE)
    assert checks.level(level_db(fox * 1.4, RATE), take, t).passed  # +3 dB
    louder = checks.level(level_db(fox * 3, RATE), take, t)  # +9.5 dB
    assert not louder.passed and louder.value == pytest.approx(9.54, abs=0.1) and "louder" in louder.detail
    assert not checks.level(level_db(fox * 0.3, RATE), take, t).passed


def test_the_gate_judges_the_level_against_the_take(gate, fox):
    result = gate.score(fox * 0.25, RATE, FOX, "English", take_level_db=level_db(fox, RATE))

    assert not result.check("level").passed and "quieter" in result.reason()


def test_score_file_scores_an_upload_like_a_chunk(gate, espeak_wav, tmp_path):
    from_file = gate.score_file(espeak_wav.read_bytes(), FOX, "English")
    samples, rate = audio.decode(espeak_wav)
    from_samples = gate.score(audio.to_mono(samples), rate, FOX, "English")

    assert from_file.values() == from_samples.values()
    run_tool("sox", str(espeak_wav), "-r", "44100", str(tmp_path / "fox.flac"))
    assert gate.score_file((tmp_path / "fox.flac").read_bytes(), FOX, "English").check("cer").passed


# ---- text -------------------------------------------------------------------------------------
def test_normalisation_ignores_case_punctuation_spacing_and_how_numbers_are_written():
    assert cer("In 1984, it rained!", "in nineteen eighty-four it rained", "en") == 0.0
    assert cer("It costs 1,000 euros.", "It costs one thousand euros", "en") == 0.0
    assert cer("The 2nd of May", "the second of may", "en") == 0.0
    assert cer("Er kam um 12 Uhr.", "er kam um zwölf uhr", "de") == 0.0
    assert cer("我们今天去公园。", "我们今天去公园", "zh") == 0.0
    assert cer("我们今天去公园。", "我们明天去公园", "zh") == pytest.approx(1 / 7)
    assert cer("...", "anything") is None
    assert cer(FOX, "", "en") == 1.0
    # a Han character counts as a syllable: three Latin letters at the same pace
    assert spoken_length("你好", "zh") == 6.0 and spoken_length("Hi, you!", "en") == 5.0


# ---- records ----------------------------------------------------------------------------------
def test_check_and_chunk_score_round_trip_through_plain_dicts(gate, jfk):
    result = gate.score(jfk, RATE, FOX, "English", take_level_db=-20.0)
    data = json.loads(json.dumps(result.to_dict()))

    assert ChunkScore.from_dict(data) == result
    assert all(Check.from_dict(c.to_dict()) == c for c in result.checks)
    assert data["checks"][0] == {
        "name": "cer", "value": result.checks[0].value, "threshold": Thresholds().max_cer,
        "passed": False, "detail": result.checks[0].detail,
    }
    assert result.failed()[0].name == "cer"
    unmeasured = Check("similarity", None, 0.75, True, "not checked: no voice samples to compare with")
    assert Check.from_dict(unmeasured.to_dict()) == unmeasured
