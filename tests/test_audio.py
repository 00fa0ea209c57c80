"""Audio pipeline on real recordings, espeak-ng speech and deliberately bad inputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from tests.conftest import run_tool
from voicebox import audio
from voicebox.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia


def loudness(samples: np.ndarray, rate: int = 24000) -> float:
    return pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64))


def prepared(path: Path) -> audio.PreparedAudio:
    samples, rate = audio.decode(path)
    return audio.prepare_reference(samples, rate, max_seconds=30)


def test_stereo_44k_flac_becomes_clean_24k_mono(jfk_path: Path) -> None:
    samples, rate = audio.decode(jfk_path)
    assert (rate, samples.shape[1]) == (44100, 2)
    assert samples.shape[0] / rate == pytest.approx(11.0, abs=0.05)
    ref = audio.prepare_reference(samples, rate)
    assert ref.samples.ndim == 1 and ref.sample_rate == 24000 and ref.samples.dtype == np.float32
    assert 9.0 < ref.speech_seconds <= 11.0
    assert loudness(ref.samples) == pytest.approx(audio.TARGET_LUFS, abs=0.6)
    assert np.abs(ref.samples).max() <= audio.PEAK_CEILING + 1e-6
    tail = ref.samples[-int(audio.TRAILING_SILENCE_S * 24000):]
    assert np.all(tail == 0.0)  # the anti-echo tail
    assert abs(float(ref.samples[: -len(tail)].mean())) < 1e-3  # DC removed
    assert ref.warnings == []


def test_mp3_decodes(mp3_path: Path) -> None:
    mono = audio.load_mono(mp3_path)
    assert len(mono) / 24000 == pytest.approx(60, abs=1.5)


def test_stereo_16k_wav_downmixes(stereo_wav_path: Path) -> None:
    samples, rate = audio.decode(stereo_wav_path)
    assert (rate, samples.shape[1]) == (16000, 2)
    mono = audio.load_mono(stereo_wav_path)
    assert len(mono) == pytest.approx(5.0 * 24000, abs=10)
    assert np.allclose(audio.to_mono(samples), samples.mean(axis=1))


def test_espeak_speech_is_trimmed(espeak_wav: Path, tmp_path: Path) -> None:
    padded = tmp_path / "padded.wav"
    run_tool("sox", str(espeak_wav), str(padded), "pad", "2", "3")  # 2 s before, 3 s after
    plain, padded_ref = prepared(espeak_wav), prepared(padded)
    assert padded_ref.speech_seconds == pytest.approx(plain.speech_seconds, abs=0.15)
    assert padded_ref.duration < plain.speech_seconds + audio.TRAILING_SILENCE_S + 0.3


@pytest.fixture(scope="module")
def browser_formats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("formats")
    src = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "jfk.flac"
    for name, codec in [("a.webm", "libopus"), ("a.m4a", "aac"), ("a.ogg", "libopus")]:
        run_tool("ffmpeg", "-loglevel", "error", "-i", str(src), "-c:a", codec, str(root / name))
    return root


@pytest.mark.parametrize("name", ["a.webm", "a.m4a", "a.ogg"])
def test_browser_and_compressed_formats(browser_formats: Path, name: str) -> None:
    ref = prepared(browser_formats / name)
    assert 9.0 < ref.speech_seconds <= 11.2


# ---- bad and unusual inputs: each with its exact outcome ---------------------------------------
@pytest.fixture(scope="module")
def odd_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("odd")
    src = str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "jfk.flac")
    run_tool("sox", "-n", "-r", "24000", str(root / "silence.wav"), "trim", "0", "3")
    run_tool("sox", src, str(root / "short.wav"), "trim", "2", "0.3")
    run_tool("sox", src, src, src, src, str(root / "long45.wav"), "trim", "0", "45")
    run_tool("sox", src, "-r", "8000", str(root / "rate8k.wav"))
    run_tool("sox", src, "-r", "96000", str(root / "rate96k.wav"))
    run_tool("sox", src, "-b", "32", "-e", "floating-point", str(root / "float32.wav"))
    run_tool("sox", src, str(root / "loud.wav"), "gain", "20")  # heavy clipping
    data = (root / "rate8k.wav").read_bytes()
    (root / "truncated.wav").write_bytes(data[: len(data) // 2])
    (root / "zero.wav").write_bytes(b"")
    (root / "text.wav").write_text("this is not audio at all\n" * 20)
    (root / "noise.bin").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return root


@pytest.mark.parametrize(
    "name, error, words",
    [
        ("silence.wav", InvalidInput, "silent"),
        ("short.wav", InvalidInput, "at least 1 s"),
        ("long45.wav", InvalidInput, "limit is 30 s"),
        ("zero.wav", InvalidInput, "empty"),
        ("text.wav", UnsupportedMedia, "Could not read this file as audio"),
        ("noise.bin", UnsupportedMedia, "Could not read this file as audio"),
    ],
)
def test_refusals_say_what_to_do(odd_files: Path, name: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words) as info:
        prepared(odd_files / name)
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize("name, native", [("rate8k.wav", 8000), ("rate96k.wav", 96000), ("float32.wav", 44100)])
def test_unusual_rates_and_float_are_accepted(odd_files: Path, name: str, native: int) -> None:
    samples, rate = audio.decode(odd_files / name)
    assert rate == native
    ref = audio.prepare_reference(samples, rate)
    assert ref.sample_rate == 24000 and 9.0 < ref.speech_seconds <= 11.2


def test_truncated_wav_keeps_what_is_there(odd_files: Path) -> None:
    ref = prepared(odd_files / "truncated.wav")
    assert 4.0 < ref.speech_seconds < 6.0


def test_heavy_clipping_is_a_warning_not_a_refusal(odd_files: Path) -> None:
    ref = prepared(odd_files / "loud.wav")
    assert any("clipped" in w for w in ref.warnings)
    assert np.abs(ref.samples).max() <= audio.PEAK_CEILING + 1e-6


def test_oversized_upload_refused_before_decoding() -> None:
    audio.check_upload_size(50 * 1024 * 1024, 50 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge, match="limit is 50 MB"):
        audio.check_upload_size(50 * 1024 * 1024 + 1, 50 * 1024 * 1024)


def test_combine_is_ordered_capped_and_joins_text() -> None:
    rate = 24000
    parts = [(np.full(rate * 8, i + 1, dtype=np.float32) * 0.1, f"text {i}") for i in range(4)]
    parts[2] = (parts[2][0], "  ")
    combined, text = audio.combine_references(parts, max_seconds=20.0, gap_seconds=0.5)
    assert len(combined) == int(rate * (8 + 0.5 + 8))  # the third would pass 20 s
    assert combined[0] == pytest.approx(0.1) and combined[-1] == pytest.approx(0.2)
    assert text == "text 0 text 1"
    with pytest.raises(InvalidInput):
        audio.combine_references([])


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg", "opus"])
def test_encode_round_trips(fmt: str) -> None:
    t = np.arange(24000 * 2) / 24000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    data, mime = audio.encode(tone, 24000, fmt)
    assert mime.startswith("audio/")
    back, rate = audio.decode(data)
    assert back.shape[0] / rate == pytest.approx(2.0, abs=0.1)


def test_encode_pcm_and_unknown_format() -> None:
    data, mime = audio.encode(np.array([0.0, 1.0, -1.0, 2.0], dtype=np.float32), 24000, "pcm")
    assert mime == "audio/pcm" and np.frombuffer(data, "<i2").tolist() == [0, 32767, -32767, 32767]
    with pytest.raises(InvalidInput):
        audio.encode(np.zeros(10, dtype=np.float32), 24000, "aiff")


def test_wav_bytes_are_pcm16_24k() -> None:
    info = sf.info(io.BytesIO(audio.wav_bytes(np.zeros(2400, dtype=np.float32))))
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")


def test_crossfade_concat_length_and_continuity() -> None:
    a, b = np.ones(1000, dtype=np.float32), np.ones(1000, dtype=np.float32)
    joined = audio.crossfade_concat([a, b], rate=24000, fade_s=0.01)
    assert len(joined) == 2000 - 240
    assert np.all(np.abs(np.diff(joined)) < 0.05)


def test_streaming_joiner_equals_batch_crossfade() -> None:
    rng = np.random.default_rng(0)
    pieces = [rng.standard_normal(n).astype(np.float32) for n in (5000, 300, 7000, 10)]
    joiner = audio.CrossfadeJoiner(24000)
    streamed = [joiner.push(p) for p in pieces] + [joiner.finish()]
    assert np.allclose(np.concatenate(streamed), audio.crossfade_concat(pieces, 24000))
    assert np.array_equal(joiner.whole(), np.concatenate(streamed))
