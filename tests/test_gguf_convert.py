"""The GGUF converter without the native library: block formats, the type policy, names, metadata,
and the sizes qwentts.cpp cannot run (the library itself is exercised in test_ggml_backend.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader
from safetensors import safe_open

from voicebox.engines.gguf_convert import convert_checkpoint, normalize_quant, output_paths, tensor_type
from voicebox.engines.gguf_layout import CODEC_RULES, TALKER_RULES, codebook_key, rename, runtime_problems
from voicebox.engines.gguf_quants import BLOCK, dequantize, quantize

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("qtype, worst", [(QT.Q8_0, 0.01), (QT.Q6_K, 0.03), (QT.Q4_K, 0.15), (QT.BF16, 0.003)])
def test_blocks_read_back_with_ggufs_own_dequantiser(qtype: QT, worst: float) -> None:
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((8, 512)).astype(np.float32) * np.linspace(0.01, 3, 8)[:, None]
    weights[2] = 0.0  # an all-zero row must not divide by zero
    weights[5, :7] = [40, -40, 0.5, -0.5, 0, 1e-6, -3]  # outliers inside a block
    data = quantize(weights, qtype)
    per_block, nbytes = BLOCK[qtype]
    assert data.dtype == np.uint8 and data.shape == (8, 512 // per_block * nbytes)
    back = dequantize(data, qtype).reshape(weights.shape)
    assert np.all(back[2] == 0)
    scale = np.abs(weights).mean(axis=1, keepdims=True) + 1e-12
    relative = np.abs(back - weights).mean(axis=1, keepdims=True) / scale
    assert relative[np.arange(8) != 2].max() < worst


def test_rows_that_fit_no_block_are_refused() -> None:
    with pytest.raises(ValueError, match="Q4_K"):
        quantize(np.ones((2, 64), np.float32), QT.Q4_K)


@pytest.mark.parametrize("name, shape, quant, layers, expected", [
    ("talker.blk.3.attn_q.weight", (256, 256), "Q4_K_M", 28, QT.Q4_K),
    ("talker.blk.3.attn_v.weight", (256, 256), "Q4_K_M", 28, QT.Q6_K),  # every third layer
    ("talker.blk.4.attn_v.weight", (256, 256), "Q4_K_M", 28, QT.Q4_K),
    ("talker.blk.27.ffn_down.weight", (256, 512), "Q4_K_M", 28, QT.Q6_K),  # the last seventh
    ("talker.text_embd.weight", (300, 256), "Q4_K_M", 28, QT.Q6_K),
    ("talker.blk.4.attn_q.weight", (128, 128), "Q4_K_M", 28, QT.Q8_0),  # 128 fits no K-quant block
    ("talker.blk.4.attn_q.weight", (128, 48), "Q8_0", 28, QT.F16),  # nor a Q8_0 block
    ("talker.blk.4.attn_q.weight", (128, 128), "Q8_0", 28, QT.Q8_0),
    ("talker.output_norm.weight", (256,), "Q8_0", 28, QT.F32),
    ("tok_dec.vq_first.0.codebook", (2048, 256), "Q8_0", 8, QT.F32),
    ("spk_enc.fc.weight", (2048, 3072, 1), "Q8_0", 28, QT.F32),
    ("tok_dec.dec.1.res.0.conv1.weight", (768, 768, 7), "Q8_0", 8, QT.F16),
    ("tok_dec.dec.1.res.0.conv1.weight", (768, 768, 7), "BF16", 8, QT.BF16),
    ("talker.blk.4.attn_q.weight", (256, 256), "F32", 28, QT.F32),
])
def test_type_policy(name: str, shape: tuple[int, ...], quant: str, layers: int, expected: QT) -> None:
    assert tensor_type(name, shape, quant, layers) == expected


def test_quant_names_and_file_names(tiny_checkpoint: Path, tmp_path: Path) -> None:
    assert normalize_quant("q8") == "Q8_0" and normalize_quant(" q4_k_m ") == "Q4_K_M"
    with pytest.raises(ValueError, match="Q8_0, Q4_K_M"):
        normalize_quant("Q3")
    paths = output_paths(tiny_checkpoint, tmp_path, "q4")
    assert paths.talker.name == "qwen-talker-0.6b-base-Q4_K_M.gguf"  # the names resolve_gguf_paths uses
    assert paths.codec.name == "qwen-tokenizer-12hz-F32.gguf"


def test_every_checkpoint_tensor_has_a_gguf_name(tiny_checkpoint: Path) -> None:
    for path, rules in ((tiny_checkpoint / "model.safetensors", TALKER_RULES),
                        (tiny_checkpoint / "speech_tokenizer" / "model.safetensors", CODEC_RULES)):
        with safe_open(str(path), "np") as handle:
            for name in handle.keys():
                if codebook_key(name) is None:
                    rename(name, rules)  # raises KeyError for a tensor the layout does not know
    assert rename("talker.model.layers.3.self_attn.o_proj.weight", TALKER_RULES) == "talker.blk.3.attn_output.weight"
    assert rename("decoder.decoder.2.block.3.conv1.conv.weight", CODEC_RULES) == "tok_dec.dec.2.res.1.conv1.weight"
    assert rename("decoder.decoder.4.block.1.conv.bias", CODEC_RULES) == "tok_dec.dec.4.conv_t.bias"
    assert rename("encoder.encoder_transformer.layers.0.mlp_layer_scale.scale", CODEC_RULES) == "tok_enc.blk.0.ffn_scale"


def test_sizes_the_library_cannot_run_are_named(tiny_checkpoint: Path, tmp_path: Path) -> None:
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    codec = json.loads((tiny_checkpoint / "speech_tokenizer" / "config.json").read_text())
    problems = runtime_problems(config, codec)
    assert problems == [
        "speaker encoder Res2Net scale is 4, the library needs 8",
        "codec decoder_dim is 32, the library needs 1536",
        "codec latent_dim is 32, the library needs 1024",
        "codec decoder codebook_dim is 16, the library needs 512",
    ]
    with pytest.raises(ValueError, match="Res2Net scale is 4"):
        convert_checkpoint(tiny_checkpoint, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    cli = subprocess.run([sys.executable, "-m", "voicebox", "convert-gguf", str(tiny_checkpoint), str(tmp_path / "x")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and "decoder_dim is 32" in cli.stderr and "Traceback" not in cli.stderr


def test_metadata_tensors_and_codebooks(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """The files themselves (converted without the size check): the keys the loaders read, the
    tokenizer, quantised matrices close to the source, codebooks fused, unused ones dropped."""
    paths = convert_checkpoint(tiny_checkpoint, tmp_path, "Q8_0", check=False)
    talker, codec = GGUFReader(paths.talker), GGUFReader(paths.codec)
    config = json.loads((tiny_checkpoint / "config.json").read_text())

    def value(reader: GGUFReader, key: str) -> object:
        return reader.get_field(key).contents()

    assert value(talker, "general.architecture") == "qwen3-tts" and value(codec, "general.architecture") == "qwen3-tts-tokenizer"
    assert value(talker, "qwen3-tts.model_type") == "base"
    assert value(talker, "qwen3-tts.talker.embedding_length") == config["talker_config"]["hidden_size"]
    assert value(talker, "qwen3-tts.talker.rope.mrope_section") == config["talker_config"]["rope_scaling"]["mrope_section"]
    assert value(talker, "qwen3-tts.codec.eos_id") == config["talker_config"]["codec_eos_token_id"]
    assert value(talker, "qwen3-tts.text.tts_pad_id") == config["tts_pad_token_id"]
    languages = dict(zip(value(talker, "qwen3-tts.codec.language_names"), value(talker, "qwen3-tts.codec.language_ids")))
    assert languages == config["talker_config"]["codec_language_id"]
    tokens = value(talker, "tokenizer.ggml.tokens")
    assert tokens[config["im_start_token_id"]] == "<|im_start|>" and "assistant" in tokens
    assert value(codec, "qwen3-tts-tokenizer.decoder.codebook_dim_internal") == 8  # from the tensors

    tensors = {t.name: t for t in talker.tensors}
    head = tensors["talker.codec_head.weight"]
    assert head.tensor_type == QT.Q8_0
    with safe_open(str(tiny_checkpoint / "model.safetensors"), "np") as handle:
        source = handle.get_tensor("talker.codec_head.weight").astype(np.float32)
    back = dequantize(np.asarray(head.data), QT.Q8_0).reshape(source.shape)
    assert np.abs(back - source).max() <= np.abs(source).max() / 127 + 1e-6
    assert tensors["talker.output_norm.weight"].tensor_type == QT.F32

    books = {t.name: t for t in codec.tensors if t.name.endswith(".codebook")}
    assert len([n for n in books if n.startswith("tok_enc.vq_acoustic")]) == 15  # 31 in the checkpoint
    with safe_open(str(tiny_checkpoint / "speech_tokenizer" / "model.safetensors"), "np") as handle:
        prefix = "decoder.quantizer.rvq_first.vq.layers.0._codebook."
        expected = handle.get_tensor(prefix + "embedding_sum") / np.maximum(
            handle.get_tensor(prefix + "cluster_usage"), 1e-5)[:, None]
    assert np.allclose(np.asarray(books["tok_dec.vq_first.0.codebook"].data), expected)
