"""The quality guard's view of the GGML engine (issue #17): its arithmetic reproduced in the torch
loop (voicebox/engines/ggml_numerics.py) and judged like every precision, layer by layer.

Runs on the "tiny-ggml" random checkpoint, whose talker rows are 256 wide so that Q4_K/Q6_K blocks
fit (the tiny predictor falls back to Q8_0, as the converter's policy says), and on talker GGUF
files the project's converter writes from it; the library itself is not needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as QT
from gguf import quants

from tests.support.qwen_checkpoint import build_random_checkpoint
from voicebox.engines.gguf_convert import convert_talker
from voicebox.engines.ggml_numerics import TalkerGGUF, ggml_linears, ggml_weights, round_activations
from voicebox.engines.loop_guard import LAYER_THRESHOLD, THRESHOLDS, judge, judge_ggml
from voicebox.engines.params import make_params
from voicebox.engines.prompt_cache import PromptCache
from voicebox.engines.tts import TTSEngine

ROOT = Path(__file__).resolve().parents[1]
TEXT = "A somewhat longer sentence for the guard."


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return build_random_checkpoint(ROOT / "tests" / "artifacts" / "checkpoints" / "tiny-ggml", "tiny-ggml",
                                   seed=0, reuse=True)


@pytest.fixture(scope="module")
def talker_files(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("talker-gguf")
    return {quant: convert_talker(checkpoint, out / f"qwen-talker-0.6b-base-{quant}.gguf", quant)
            for quant in ("Q8_0", "Q4_K_M")}


@pytest.fixture(scope="module")
def engine(checkpoint: Path) -> TTSEngine:
    engine = TTSEngine({"0.6B": str(checkpoint)}, device="cpu", prompt_cache=PromptCache(None), keep_fp32=True)
    engine.load("0.6B")
    return engine


@pytest.fixture(scope="module")
def generate_kwargs(engine: TTSEngine, espeak_wav: Path) -> dict[str, Any]:
    from voicebox import audio
    from voicebox.engines.tts import ReferenceSample

    prompt, _, _ = engine.voice_prompt([ReferenceSample(espeak_wav, audio.sha256_file(espeak_wav), "")])
    params = make_params(seed=0, max_new_tokens=9, do_sample=False)
    return engine._generate_kwargs([TEXT], prompt, "english", params, 9)


def test_activations_are_rounded_as_ggml_rounds_a_q8_0_row() -> None:
    """For a Q8_0 weight GGML quantises the input row to Q8_0; gguf's own quantiser gives the same
    numbers, so the emulation is not a guess."""
    row = torch.randn(1, 256, generator=torch.Generator().manual_seed(3)) * 3
    ours = round_activations(row, "Q8_0").numpy()
    theirs = quants.dequantize(quants.quantize(row.numpy(), QT.Q8_0), QT.Q8_0)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    assert not np.allclose(ours, row.numpy(), atol=1e-4)  # it did round
    k_row = round_activations(row, "Q4_K")  # Q8_K: 256-wide blocks, the largest value exact
    assert float((k_row - row).abs().max()) <= float(row.abs().max()) / 127 / 2 + 1e-6
    assert torch.equal(round_activations(row, "F32"), row)


def test_the_file_s_weights_replace_the_loop_s_and_come_back(engine: TTSEngine, talker_files: dict[str, Path]) -> None:
    inner = engine._model.model
    gguf = TalkerGGUF(talker_files["Q4_K_M"])
    table = ggml_linears(inner, gguf)
    talker_layers = len(inner.talker.model.layers)
    assert len([k for k in table if k.startswith("talker.")]) == 7 * talker_layers
    q = table["talker.0.q_proj"]
    assert q.weight_type == "Q4_K" and table["predictor.0.q_proj"].weight_type == "Q8_0"
    original = inner.talker.model.layers[0].self_attn.q_proj.weight.detach()
    assert q.weight.shape == original.shape and not torch.equal(q.weight, original)
    assert float((q.weight - original).abs().max()) < 0.1 * float(original.abs().max())
    embedding = inner.talker.model.codec_embedding.weight
    before = embedding.detach().clone()
    with ggml_weights(inner, gguf) as swapped:
        assert swapped >= 2 and not torch.equal(embedding, before)
    assert torch.equal(embedding, before)


def test_the_guard_judges_ggml_as_it_judges_precisions(engine: TTSEngine, talker_files: dict[str, Path],
                                                       generate_kwargs: dict[str, Any]) -> None:
    q8 = judge_ggml(engine, talker_files["Q8_0"], generate_kwargs, frames=8)
    q4 = judge_ggml(engine, talker_files["Q4_K_M"], generate_kwargs, frames=8)
    layers = len(engine._model.model.talker.model.layers)
    for result in (q8, q4):
        assert set(result.cosine_min) == set(THRESHOLDS) and result.frames == 8
        assert list(result.layers) == [f"layer.{i}" for i in range(layers)]
        assert result.worst_layer in result.layers
        report = result.as_dict()
        assert report["layer_threshold"] == LAYER_THRESHOLD and set(report["layer_gap_max"]) == set(result.layers)
    assert q8.precision == "GGML Q8_0" and q4.precision == "GGML Q4_K_M"
    for kind in THRESHOLDS:  # 8-bit blocks stay closer to fp32 than 4-bit ones
        assert q8.cosine_mean[kind] > q4.cosine_mean[kind], (kind, q8.as_dict(), q4.as_dict())
    assert 0.9 < q4.cosine_min["talker_hidden"] < 1.0


def test_layer_by_layer_figures_for_the_loop_s_precisions(engine: TTSEngine, generate_kwargs: dict[str, Any]) -> None:
    from voicebox.engines.fast_talker import capture_talker_inputs

    inputs = capture_talker_inputs(engine._model.model, **generate_kwargs)
    same = judge(engine, "fp32", inputs, frames=6)
    assert same.passed and all(value > 0.999999 for value in same.layers.values())
    int8 = judge(engine, "int8", inputs, frames=6)
    assert len(int8.layers) == len(same.layers) and min(int8.layers.values()) < 0.999999
    engine.use_precision("fp32")
