"""Settings from the environment: defaults, parsing, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebox.config import DEFAULTS, ConfigError, Settings


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.data_dir == Path("./data") and s.host == "127.0.0.1" and s.port == 7860
    assert s.tts_model == "Qwen/Qwen3-TTS-12Hz-0.6B-Base"
    assert s.tts_model_large == "Qwen/Qwen3-TTS-12Hz-1.7B-Base"
    assert (s.device, s.auth, s.max_upload_mb, s.max_sample_seconds) == ("auto", None, 50.0, 30.0)
    assert s.db_path == Path("./data/voicebox.json") and s.cache_dir == Path("./data/cache")
    assert s.max_upload_bytes == 50 * 1024 * 1024
    assert (s.backend, s.gguf_quant) == ("auto", "Q8_0")
    assert Settings.from_env({"VOICEBOX_BACKEND": "GGML", "VOICEBOX_GGUF_QUANT": "q4_k_m"}).gguf_quant == "Q4_K_M"


def test_values_are_read_and_blank_means_default(tmp_path: Path) -> None:
    s = Settings.from_env(
        {"VOICEBOX_DATA_DIR": str(tmp_path), "VOICEBOX_PORT": "8000", "VOICEBOX_DEVICE": "CPU",
         "VOICEBOX_AUTH": "me:p:w", "VOICEBOX_TTS_MODEL": str(tmp_path), "VOICEBOX_HOST": "  "}
    )
    assert s.data_dir == tmp_path and s.port == 8000 and s.device == "cpu"
    assert s.auth == ("me", "p:w") and s.tts_model == str(tmp_path) and s.host == "127.0.0.1"
    assert "p:w" not in repr(s)  # secrets stay out of logs


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("VOICEBOX_PORT", "http", "VOICEBOX_PORT"),
        ("VOICEBOX_PORT", "70000", "1 to 65535"),
        ("VOICEBOX_DEVICE", "tpu", "auto, cpu, cuda, mps"),
        ("VOICEBOX_AUTH", "nopassword", "user:password"),
        ("VOICEBOX_AUTH", ":x", "user:password"),
        ("VOICEBOX_MAX_UPLOAD_MB", "-5", "positive"),
        ("VOICEBOX_MAX_SAMPLE_SECONDS", "lots", "VOICEBOX_MAX_SAMPLE_SECONDS"),
        ("VOICEBOX_CPU_INT8", "maybe", "auto, on, off"),
        ("VOICEBOX_CUDA_GRAPHS", "yes", "auto, off"),
        ("VOICEBOX_BACKEND", "cuda", "auto, torch, ggml"),
        ("VOICEBOX_GGUF_QUANT", "Q3_K", "Q8_0, Q4_K_M, BF16, F32"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    message = str(info.value)
    assert name in message and words in message and "\n" not in message


def test_every_variable_has_a_default() -> None:
    assert all(k.startswith("VOICEBOX_") for k in DEFAULTS)
    Settings.from_env(dict(DEFAULTS))
