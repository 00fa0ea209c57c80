"""The tiny random Qwen3-TTS checkpoint loads and runs through the real ``qwen_tts`` production path.

These tests pin the facts other tests and the engine rely on: the voice-clone prompt shapes, the exact
audio length for ``max_new_tokens``, seeded reproducibility, and that random weights still make sound.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.qwen_checkpoint import (
    NUM_CODE_GROUPS,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    build_random_checkpoint,
    supported_languages,
    weights_digest,
)

qwen_tts = pytest.importorskip("qwen_tts")

MAX_NEW_TOKENS = 13
DETERMINISTIC = {"do_sample": False, "subtalker_dosample": False}


def _reference_audio(seconds: float = 2.0) -> np.ndarray:
    """A quiet chirp plus a little noise: mono float32 at 24 kHz, made without any other module."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chirp = 0.3 * np.sin(2 * np.pi * (150 + 400 * t) * t)
    noise = 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return (chirp + noise).astype(np.float32)


def _icl_length(ref_frames: int, new_frames: int) -> int:
    """The ICL output length as qwen_tts computes it: decode ref + new codes, cut the ref by a float ratio."""
    total = ref_frames + new_frames
    return total * SAMPLES_PER_FRAME - int(ref_frames / total * total * SAMPLES_PER_FRAME)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_checkpoint(tmp_path_factory.mktemp("qwen_tiny"), "tiny", seed=0)


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> "qwen_tts.Qwen3TTSModel":
    return qwen_tts.Qwen3TTSModel.from_pretrained(str(checkpoint), device_map="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def icl_prompt(model: "qwen_tts.Qwen3TTSModel") -> list:
    return model.create_voice_clone_prompt(ref_audio=(_reference_audio(), SAMPLE_RATE), ref_text="hello there")


@pytest.fixture(scope="module")
def xvec_prompt(model: "qwen_tts.Qwen3TTSModel") -> list:
    return model.create_voice_clone_prompt(
        ref_audio=(_reference_audio(), SAMPLE_RATE), ref_text=None, x_vector_only_mode=True
    )


def test_directory_has_the_real_checkpoint_layout(checkpoint: Path) -> None:
    for rel in [
        "config.json", "generation_config.json", "model.safetensors", "vocab.json", "merges.txt",
        "tokenizer_config.json", "speech_tokenizer/config.json",
        "speech_tokenizer/preprocessor_config.json", "speech_tokenizer/model.safetensors",
    ]:
        assert (checkpoint / rel).is_file(), rel
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["tts_model_type"] == "base" and config["tts_model_size"] == "0b6"
    assert "mrope_section" in config["talker_config"]["rope_scaling"]
    generation = json.loads((checkpoint / "generation_config.json").read_text())
    assert generation["max_new_tokens"] == 8192
    size = sum(p.stat().st_size for p in checkpoint.rglob("*") if p.is_file())
    assert size < 15 * 2**20


def test_loads_with_production_path(model: "qwen_tts.Qwen3TTSModel") -> None:
    assert model.model.tts_model_type == "base"
    assert model.model.speech_tokenizer.get_output_sample_rate() == SAMPLE_RATE
    assert model.model.speech_tokenizer.get_decode_upsample_rate() == SAMPLES_PER_FRAME
    assert model.get_supported_languages() == sorted(["auto", *supported_languages()])


def test_loads_with_sdpa_attention(checkpoint: Path) -> None:
    loaded = qwen_tts.Qwen3TTSModel.from_pretrained(
        str(checkpoint), device_map="cpu", dtype=torch.float32, attn_implementation="sdpa"
    )
    assert loaded.model.talker.config._attn_implementation == "sdpa"


def test_icl_prompt_has_codes_and_speaker_embedding(model: "qwen_tts.Qwen3TTSModel", icl_prompt: list) -> None:
    (item,) = icl_prompt
    assert item.icl_mode and not item.x_vector_only_mode and item.ref_text == "hello there"
    assert item.ref_code.dtype == torch.long
    assert item.ref_code.shape == (25, NUM_CODE_GROUPS)  # 2 s at 12.5 frames/s
    assert item.ref_code.unique().numel() > 10  # codebooks are random, not zeros (all zeros -> code 0)
    hidden = model.model.config.talker_config.hidden_size
    assert item.ref_spk_embedding.shape == (hidden,)
    assert torch.isfinite(item.ref_spk_embedding).all() and item.ref_spk_embedding.abs().sum() > 0


def test_x_vector_only_prompt_has_no_codes(xvec_prompt: list, icl_prompt: list) -> None:
    (item,) = xvec_prompt
    assert item.x_vector_only_mode and not item.icl_mode and item.ref_code is None
    assert torch.equal(item.ref_spk_embedding, icl_prompt[0].ref_spk_embedding)


def test_icl_generation_length_and_sound(model: "qwen_tts.Qwen3TTSModel", icl_prompt: list) -> None:
    wavs, sr = model.generate_voice_clone(
        "Hi 你好 😀 – done.", language=None, voice_clone_prompt=icl_prompt,
        max_new_tokens=MAX_NEW_TOKENS, **DETERMINISTIC,
    )
    assert sr == SAMPLE_RATE and len(wavs) == 1
    (wav,) = wavs
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert len(wav) == _icl_length(25, MAX_NEW_TOKENS - 1) == (MAX_NEW_TOKENS - 1) * SAMPLES_PER_FRAME
    assert 0.01 < float(np.sqrt(np.mean(wav**2))) < 0.5 and np.abs(wav).max() <= 1.0


def test_icl_length_can_be_one_sample_long() -> None:
    # qwen_tts cuts the reference with int(ref/total * samples): float error sometimes keeps one extra sample.
    assert _icl_length(25, 72) == 72 * SAMPLES_PER_FRAME + 1
    assert _icl_length(25, 12) == 12 * SAMPLES_PER_FRAME


def test_x_vector_generation_is_exact_and_batches(model: "qwen_tts.Qwen3TTSModel", xvec_prompt: list) -> None:
    wavs, sr = model.generate_voice_clone(
        ["one", "a longer second sentence"], language="English", voice_clone_prompt=xvec_prompt,
        max_new_tokens=MAX_NEW_TOKENS, **DETERMINISTIC,
    )
    assert sr == SAMPLE_RATE
    assert [len(w) for w in wavs] == [(MAX_NEW_TOKENS - 1) * SAMPLES_PER_FRAME] * 2
    assert all(np.abs(w).max() > 0.01 for w in wavs)


def test_greedy_needs_subtalker_greedy_too(model: "qwen_tts.Qwen3TTSModel", xvec_prompt: list) -> None:
    def run(seed: int, **gen: bool) -> np.ndarray:
        torch.manual_seed(seed)
        return model.generate_voice_clone("same", voice_clone_prompt=xvec_prompt, max_new_tokens=6, **gen)[0][0]

    assert np.array_equal(run(1, **DETERMINISTIC), run(2, **DETERMINISTIC))
    # do_sample=False alone leaves the 15 sub-codebooks sampled (subtalker_dosample defaults to True).
    assert not np.array_equal(run(1, do_sample=False), run(2, do_sample=False))


def test_sampled_generation_runs_to_the_cap(model: "qwen_tts.Qwen3TTSModel", xvec_prompt: list) -> None:
    wavs, _ = model.generate_voice_clone(
        ["x", "y", "z"], voice_clone_prompt=xvec_prompt, max_new_tokens=MAX_NEW_TOKENS
    )
    assert [len(w) for w in wavs] == [(MAX_NEW_TOKENS - 1) * SAMPLES_PER_FRAME] * 3


def test_tokenizer_keeps_role_tokens_and_round_trips_unicode(model: "qwen_tts.Qwen3TTSModel") -> None:
    tokenizer = model.processor.tokenizer
    text = "Grüße, 你好世界 😀🎉 ‏مرحبا"
    ids = tokenizer(f"<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids[:3]) == ["<|im_start|>", "assistant", "Ċ"]
    assert tokenizer.convert_ids_to_tokens(ids[-5:]) == ["<|im_end|>", "Ċ", "<|im_start|>", "assistant", "Ċ"]
    assert tokenizer.decode(ids[3:-5]) == text
    assert max(ids) < model.model.config.talker_config.text_vocab_size


def test_same_seed_same_weights_other_seed_differs(checkpoint: Path, tmp_path: Path) -> None:
    again = build_random_checkpoint(tmp_path / "again", "tiny", seed=0)
    other = build_random_checkpoint(tmp_path / "other", "tiny", seed=1)
    assert weights_digest(again) == weights_digest(checkpoint)
    assert weights_digest(other) != weights_digest(checkpoint)


def test_reuse_skips_an_identical_build(checkpoint: Path) -> None:
    before = (checkpoint / "model.safetensors").stat().st_mtime_ns
    assert build_random_checkpoint(checkpoint, "tiny", seed=0, reuse=True) == checkpoint
    assert (checkpoint / "model.safetensors").stat().st_mtime_ns == before


def test_unknown_preset_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        build_random_checkpoint(tmp_path, "7B")
