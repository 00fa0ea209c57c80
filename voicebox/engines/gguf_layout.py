"""The GGUF layout qwentts.cpp reads: tensor names and metadata keys, from a checkpoint's own.

Read from the loaders of ``ServeurpersoCom/qwentts.cpp`` (``src/*-weights.h``, ``src/seanet-encoder.h``,
``src/quantizer-*.h``, ``src/dac-decoder-v2.h``, ``src/convnext-block.h``, ``src/pipeline-tts.cpp``,
``src/bpe.h``) and checked against the strings of the ``libqwen.so`` that
``realtimetts-qwen-native-cpu`` 0.4.2 bundles (qwentts.cpp 4d80a09, C ABI 5). Two files:

**Talker GGUF** (``general.architecture = "qwen3-tts"``): the talker LM (``talker.*``), the code
predictor (``code_pred.*``), the ECAPA speaker encoder of Base checkpoints (``spk_enc.*``) and the
Qwen2 BPE tokenizer (``tokenizer.ggml.tokens`` / ``merges``; the loader finds special tokens by the
ids under ``qwen3-tts.text.*``). Layer tensors follow llama.cpp's names (``blk.N.attn_q``,
``ffn_down``, ...). Hyper-parameters live under ``qwen3-tts.talker.*`` / ``qwen3-tts.code_pred.*``
(``embedding_length``, ``block_count``, ``attention.head_count(_kv)``, ``attention.key_length``,
``rope.freq_base``, ...); codec control ids under ``qwen3-tts.codec.*`` (``pad_id``, ``bos_id``,
``eos_id``, ``think*_id``, ``language_names``/``language_ids``); default sampling under
``generation.*``. ``qwen3-tts.model_type`` must be ``base`` for cloning (``qt_extract_voice_ref``
refuses others). The talker's M-RoPE collapses to 1-D RoPE in TTS (all three position axes are
equal), so ``rope.mrope_*`` are informative only.

**Codec GGUF** (``"qwen3-tts-tokenizer"``): the Mimi-style encoder (``tok_enc.*``: SEANet convs by
their PyTorch ``ModuleList`` index, transformer, stride-2 downsample, split RVQ) and the decoder
(``tok_dec.*``: RVQ, pre-conv, transformer, two ConvNeXt upsamplers, the DAC chain). RVQ codebooks are
stored ready for lookup: ``embedding_sum / max(cluster_usage, 1e-5)``; the encoder keeps only the
``encoder_valid_num_quantizers`` codebooks the decoder reads (1 semantic + 15 acoustic).

Tensors are written in PyTorch's row-major shape; GGML reverses it, so a ``Linear`` [out, in] is
``ne = (in, out)`` and a ``Conv1d`` [out, in, k] is ``ne = (k, in, out)``, which is what the loaders
index.

**Sizes the C++ fixes at compile time** (so a checkpoint must have them, whatever its config says):
the speaker encoder's Res2Net scale is 8 (``spk_load_res2net`` loads branches 0..6); the DAC decoder's
channels are 1536 -> 768 -> 384 -> 192 -> 96 with strides 8/5/4/3 (``dac_decoder_load``), so
``decoder_dim`` must be 1536; the streaming codec state is allocated for a 512-wide quantizer output
and a 1024-wide ``latent_dim`` (``pipeline_codec_stream_ensure``); the encoder has 4 SEANet stages,
1 residual layer each, 1 semantic + 15 acoustic codebooks; the upsampler has 2 ConvNeXt blocks of
kernel 7; the decoder transformer's sliding window plus 8 must fit a 128-slot ring; snake
``alpha``/``beta`` must be F32. Everything else (layer counts, widths, heads, vocabularies) is read
from the metadata or the tensor shapes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

ARCH_TALKER = "qwen3-tts"
ARCH_CODEC = "qwen3-tts-tokenizer"
RVQ_EPSILON = 1e-5

#: HF suffix -> llama.cpp suffix for one Qwen3 decoder layer (talker and code predictor).
_LM_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
#: The codec's transformers (Mimi encoder and decoder pre-transformer) add layer scales and biases.
_CODEC_LAYER = {
    "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "mlp.fc1": "ffn_up", "mlp.fc2": "ffn_down",
}

Rule = tuple[str, Any]  # (full-match regex, replacement template or function of the match)

TALKER_RULES: list[Rule] = [
    (r"talker\.model\.layers\.(\d+)\.(.+)", lambda m: f"talker.blk.{m[1]}.{_LM_LAYER[m[2]]}"),
    (r"talker\.code_predictor\.model\.layers\.(\d+)\.(.+)", lambda m: f"code_pred.blk.{m[1]}.{_LM_LAYER[m[2]]}"),
    (r"talker\.model\.codec_embedding\.weight", "talker.codec_embd.weight"),
    (r"talker\.model\.text_embedding\.weight", "talker.text_embd.weight"),
    (r"talker\.model\.norm\.weight", "talker.output_norm.weight"),
    (r"talker\.codec_head\.weight", "talker.codec_head.weight"),
    (r"talker\.text_projection\.linear_fc(\d)\.(weight|bias)", r"talker.text_proj.fc\1.\2"),
    (r"talker\.code_predictor\.model\.norm\.weight", "code_pred.output_norm.weight"),
    (r"talker\.code_predictor\.small_to_mtp_projection\.(weight|bias)", r"code_pred.mtp_proj.\1"),
    (r"talker\.code_predictor\.model\.codec_embedding\.(\d+)\.weight", r"code_pred.codec_embd.\1.weight"),
    (r"talker\.code_predictor\.lm_head\.(\d+)\.weight", r"code_pred.lm_head.\1.weight"),
    (r"speaker_encoder\.blocks\.0\.conv\.(weight|bias)", r"spk_enc.conv0.\1"),
    (r"speaker_encoder\.blocks\.(\d+)\.res2net_block\.blocks\.(\d+)\.conv\.(weight|bias)",
     r"spk_enc.blk.\1.res2net.\2.\3"),
    (r"speaker_encoder\.blocks\.(\d+)\.se_block\.(conv\d)\.(weight|bias)", r"spk_enc.blk.\1.se.\2.\3"),
    (r"speaker_encoder\.blocks\.(\d+)\.(tdnn\d)\.conv\.(weight|bias)", r"spk_enc.blk.\1.\2.\3"),
    (r"speaker_encoder\.mfa\.conv\.(weight|bias)", r"spk_enc.mfa.\1"),
    (r"speaker_encoder\.asp\.tdnn\.conv\.(weight|bias)", r"spk_enc.asp.tdnn.\1"),
    (r"speaker_encoder\.asp\.conv\.(weight|bias)", r"spk_enc.asp.conv.\1"),
    (r"speaker_encoder\.fc\.(weight|bias)", r"spk_enc.fc.\1"),
]


def _codec_layer(prefix: str) -> Callable[[re.Match[str]], str]:
    def rename(m: re.Match[str]) -> str:
        rest = m[2]
        if rest in ("self_attn_layer_scale.scale", "mlp_layer_scale.scale"):
            return f"{prefix}.{m[1]}.{'attn' if rest.startswith('self') else 'ffn'}_scale"
        module, _, leaf = rest.rpartition(".")
        return f"{prefix}.{m[1]}.{_CODEC_LAYER[module]}.{leaf}"

    return rename


def _dac_block(m: re.Match[str]) -> str:
    block, sub, rest = m[1], int(m[2]), m[3]
    if sub == 0:
        return f"tok_dec.dec.{block}.snake.{rest}"
    if sub == 1:
        return f"tok_dec.dec.{block}.conv_t.{rest.removeprefix('conv.')}"
    return f"tok_dec.dec.{block}.res.{sub - 2}.{rest.replace('.conv.', '.')}"


CODEC_RULES: list[Rule] = [
    (r"encoder\.encoder\.layers\.(\d+)\.conv\.(weight|bias)", r"tok_enc.conv.\1.\2"),
    (r"encoder\.encoder\.layers\.(\d+)\.block\.(\d+)\.conv\.(weight|bias)", r"tok_enc.res.\1.blk.\2.\3"),
    (r"encoder\.encoder_transformer\.layers\.(\d+)\.(.+)", _codec_layer("tok_enc.blk")),
    (r"encoder\.downsample\.conv\.weight", "tok_enc.downsample.weight"),
    (r"encoder\.quantizer\.(semantic|acoustic)_residual_vector_quantizer\.(input_proj|output_proj)\.weight",
     r"tok_enc.vq_\1.\2.weight"),
    (r"decoder\.quantizer\.r(vq_first|vq_rest)\.output_proj\.weight", r"tok_dec.\1.output_proj.weight"),
    (r"decoder\.quantizer\.rvq_(first|rest)\.input_proj\.weight", None),  # same as the encoder's; unused
    (r"decoder\.pre_conv\.conv\.(weight|bias)", r"tok_dec.pre_conv.\1"),
    (r"decoder\.pre_transformer\.(input_proj|output_proj)\.(weight|bias)", r"tok_dec.pre_tfm.\1.\2"),
    (r"decoder\.pre_transformer\.norm\.weight", "tok_dec.pre_tfm.norm.weight"),
    (r"decoder\.pre_transformer\.layers\.(\d+)\.(.+)", _codec_layer("tok_dec.pre_tfm.blk")),
    (r"decoder\.upsample\.(\d+)\.0\.conv\.(weight|bias)", r"tok_dec.upsample.\1.conv.\2"),
    (r"decoder\.upsample\.(\d+)\.1\.dwconv\.conv\.(weight|bias)", r"tok_dec.upsample.\1.dwconv.\2"),
    (r"decoder\.upsample\.(\d+)\.1\.(norm|pwconv1|pwconv2)\.(weight|bias)", r"tok_dec.upsample.\1.\2.\3"),
    (r"decoder\.upsample\.(\d+)\.1\.gamma", r"tok_dec.upsample.\1.gamma"),
    (r"decoder\.decoder\.0\.conv\.(weight|bias)", r"tok_dec.dec.0.conv.\1"),
    (r"decoder\.decoder\.([1-4])\.block\.(\d)\.(.+)", _dac_block),
    (r"decoder\.decoder\.5\.(alpha|beta)", r"tok_dec.dec.5.snake.\1"),
    (r"decoder\.decoder\.6\.conv\.(weight|bias)", r"tok_dec.dec.6.conv.\1"),
]

#: RVQ codebook buffers, fused into one lookup table per layer: (origin, side, layer, field).
_CODEBOOK = re.compile(
    r"(?:encoder\.quantizer\.(semantic|acoustic)_residual_vector_quantizer\.layers\.(\d+)\.codebook"
    r"|decoder\.quantizer\.rvq_(first|rest)\.vq\.layers\.(\d+)\._codebook)\.(\w+)"
)


def rename(name: str, rules: list[Rule]) -> str | None:
    """The GGUF name of checkpoint tensor ``name`` (``None``: not stored); KeyError if unknown."""
    for pattern, target in rules:
        match = re.fullmatch(pattern, name)
        if match is None:
            continue
        if target is None:
            return None
        return target(match) if callable(target) else match.expand(target)
    raise KeyError(f"no GGUF name for checkpoint tensor {name!r}")


def codebook_key(name: str) -> tuple[str, int, str] | None:
    """``(gguf prefix, layer, field)`` for an RVQ codebook buffer, else ``None``."""
    match = _CODEBOOK.fullmatch(name)
    if match is None:
        return None
    if match[1]:
        return f"tok_enc.vq_{match[1]}", int(match[2]), match[5]
    return f"tok_dec.vq_{match[3]}", int(match[4]), match[5]


def fuse_codebook(embedding_sum: np.ndarray, cluster_usage: np.ndarray) -> np.ndarray:
    """The lookup table the codec uses (``EuclideanCodebook``'s ``embed``)."""
    usage = np.maximum(cluster_usage.astype(np.float32), RVQ_EPSILON)
    return embedding_sum.astype(np.float32) / usage[:, None]


# ---- metadata ------------------------------------------------------------------------------------
def _lm_keys(prefix: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{prefix}.embedding_length": cfg["hidden_size"],
        f"{prefix}.feed_forward_length": cfg["intermediate_size"],
        f"{prefix}.block_count": cfg["num_hidden_layers"],
        f"{prefix}.attention.head_count": cfg["num_attention_heads"],
        f"{prefix}.attention.head_count_kv": cfg["num_key_value_heads"],
        f"{prefix}.attention.key_length": cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"],
        f"{prefix}.vocab_size": cfg["vocab_size"],
        f"{prefix}.context_length": cfg.get("max_position_embeddings", 32768),
        f"{prefix}.rope.freq_base": float(cfg.get("rope_theta", 1e6)),
        f"{prefix}.attention.layer_norm_rms_epsilon": float(cfg.get("rms_norm_eps", 1e-6)),
    }


def talker_metadata(config: dict[str, Any], generation: dict[str, Any]) -> dict[str, Any]:
    """Every key the talker GGUF carries, from ``config.json`` and ``generation_config.json``."""
    talker = config["talker_config"]
    meta: dict[str, Any] = {
        "general.name": f"Qwen3-TTS-12Hz-{config.get('tts_model_size', '')}-{config.get('tts_model_type', '')}",
        f"{ARCH_TALKER}.tokenizer_type": config.get("tokenizer_type", "qwen3_tts_tokenizer_12hz"),
        f"{ARCH_TALKER}.model_size": str(config.get("tts_model_size", "")),
        f"{ARCH_TALKER}.model_type": config.get("tts_model_type", "base"),
        f"{ARCH_TALKER}.num_code_groups": talker["num_code_groups"],
        **_lm_keys(f"{ARCH_TALKER}.talker", talker),
        **_lm_keys(f"{ARCH_TALKER}.code_pred", talker["code_predictor_config"]),
        f"{ARCH_TALKER}.talker.text_vocab_size": talker["text_vocab_size"],
        f"{ARCH_TALKER}.talker.text_hidden_size": talker["text_hidden_size"],
        f"{ARCH_TALKER}.talker.position_id_per_seconds": talker.get("position_id_per_seconds", 13),
    }
    scaling = talker.get("rope_scaling") or {}
    if "mrope_section" in scaling:
        meta[f"{ARCH_TALKER}.talker.rope.mrope_section"] = [int(v) for v in scaling["mrope_section"]]
        meta[f"{ARCH_TALKER}.talker.rope.mrope_interleaved"] = bool(scaling.get("interleaved", False))
    speaker = config.get("speaker_encoder_config")
    if speaker:
        meta[f"{ARCH_TALKER}.spk_enc.embedding_length"] = speaker["enc_dim"]
        meta[f"{ARCH_TALKER}.spk_enc.sample_rate"] = speaker.get("sample_rate", 24000)
    for key, field in (("pad_id", "codec_pad_id"), ("bos_id", "codec_bos_id"), ("eos_id", "codec_eos_token_id"),
                       ("think_id", "codec_think_id"), ("nothink_id", "codec_nothink_id"),
                       ("think_bos_id", "codec_think_bos_id"), ("think_eos_id", "codec_think_eos_id")):
        meta[f"{ARCH_TALKER}.codec.{key}"] = talker[field]
    languages = talker.get("codec_language_id") or {}
    meta[f"{ARCH_TALKER}.codec.language_names"] = list(languages)
    meta[f"{ARCH_TALKER}.codec.language_ids"] = [int(v) for v in languages.values()]
    speakers = talker.get("spk_id") or {}
    if speakers:
        dialects = talker.get("spk_is_dialect") or {}
        meta[f"{ARCH_TALKER}.codec.speaker_names"] = list(speakers)
        meta[f"{ARCH_TALKER}.codec.speaker_ids"] = [int(v) for v in speakers.values()]
        meta[f"{ARCH_TALKER}.codec.speaker_dialects"] = [
            d if isinstance(d := dialects.get(name), str) else "" for name in speakers
        ]
    for key, field in (("im_start_id", "im_start_token_id"), ("im_end_id", "im_end_token_id"),
                       ("tts_pad_id", "tts_pad_token_id"), ("tts_bos_id", "tts_bos_token_id"),
                       ("tts_eos_id", "tts_eos_token_id")):
        meta[f"{ARCH_TALKER}.text.{key}"] = config[field]
    kinds = {"do_sample": bool, "top_k": int, "top_p": float, "temperature": float, "repetition_penalty": float,
             "subtalker_dosample": bool, "subtalker_top_k": int, "subtalker_top_p": float,
             "subtalker_temperature": float, "max_new_tokens": int}
    for field, kind in kinds.items():
        if field in generation:
            meta[f"generation.{field.replace('dosample', 'do_sample')}"] = kind(generation[field])
    return meta


def bpe_vocabulary(checkpoint: Path) -> dict[str, Any]:
    """The Qwen2 byte-level BPE as GGUF tokenizer keys (ids with no token get a placeholder)."""
    vocab = json.loads((checkpoint / "vocab.json").read_text(encoding="utf-8"))
    added = json.loads((checkpoint / "tokenizer_config.json").read_text(encoding="utf-8")).get(
        "added_tokens_decoder", {})
    size = 1 + max([*vocab.values(), *(int(i) for i in added)])
    tokens = [f"<|unused-{i}|>" for i in range(size)]
    kinds = [5] * size  # 1 normal, 4 user-defined (special), 5 unused
    for token, index in vocab.items():
        tokens[index], kinds[index] = token, 1
    for index, info in added.items():
        tokens[int(index)], kinds[int(index)] = info["content"], 4
    lines = (checkpoint / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [line for line in lines if line and not line.startswith("#")]
    eos = vocab.get("<|endoftext|>", next((int(i) for i, t in added.items() if t["content"] == "<|endoftext|>"), 0))
    return {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": kinds,
            "tokenizer.ggml.merges": merges, "tokenizer.ggml.eos_token_id": int(eos)}


def codec_metadata(config: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Every key the codec GGUF carries; quantizer widths come from the tensors themselves."""
    dec, enc = config["decoder_config"], config["encoder_config"]
    p = ARCH_CODEC
    meta: dict[str, Any] = {"general.name": "Qwen3-TTS-Tokenizer-12Hz"}
    for key in ("input_sample_rate", "output_sample_rate", "decode_upsample_rate", "encode_downsample_rate",
                "encoder_valid_num_quantizers"):
        meta[f"{p}.{key}"] = config[key]
    for key in ("latent_dim", "codebook_dim", "codebook_size", "decoder_dim", "hidden_size", "intermediate_size",
                "head_dim", "num_attention_heads", "num_key_value_heads", "num_hidden_layers", "num_quantizers",
                "num_semantic_quantizers", "sliding_window"):
        meta[f"{p}.decoder.{key}"] = int(dec[key])
    for key in ("rms_norm_eps", "rope_theta", "layer_scale_initial_scale"):
        meta[f"{p}.decoder.{key}"] = float(dec[key])
    meta[f"{p}.decoder.upsample_rates"] = [int(v) for v in dec["upsample_rates"]]
    meta[f"{p}.decoder.upsampling_ratios"] = [int(v) for v in dec["upsampling_ratios"]]
    # decoder RVQ: codebook vectors of dim D, projected by output_proj (Conv1d [hidden, D, 1]) to hidden
    hidden, internal, _ = shapes["tok_dec.vq_first.output_proj.weight"]
    meta[f"{p}.decoder.vector_quantization_hidden_dim"] = int(hidden)
    meta[f"{p}.decoder.codebook_dim_internal"] = int(internal)
    for key in ("num_filters", "kernel_size", "last_kernel_size", "residual_kernel_size", "num_residual_layers",
                "dilation_growth_rate", "compress", "hidden_size", "intermediate_size", "head_dim",
                "num_attention_heads", "num_key_value_heads", "num_hidden_layers", "codebook_dim", "codebook_size",
                "num_quantizers", "num_semantic_quantizers"):
        meta[f"{p}.encoder.{key}"] = int(enc[key])
    for key in ("norm_eps", "rope_theta", "layer_scale_initial_scale"):
        meta[f"{p}.encoder.{key}"] = float(enc[key])
    meta[f"{p}.encoder.upsampling_ratios"] = [int(v) for v in enc["upsampling_ratios"]]
    meta[f"{p}.encoder.vector_quantization_hidden_dim"] = int(shapes["tok_enc.vq_semantic.input_proj.weight"][0])
    return meta


# ---- what the native library can run ------------------------------------------------------------
#: (what, where in the configs, the value qwentts.cpp 4d80a09 is compiled for).
FIXED_SIZES = (
    ("speaker encoder Res2Net scale", ("speaker_encoder_config", "enc_res2net_scale"), 8),
    ("codec decoder_dim", ("decoder_config", "decoder_dim"), 1536),
    ("codec latent_dim", ("decoder_config", "latent_dim"), 1024),
    ("codec decoder codebook_dim", ("decoder_config", "codebook_dim"), 512),
    ("codec decoder num_quantizers", ("decoder_config", "num_quantizers"), 16),
    ("codec upsampling_ratios", ("decoder_config", "upsampling_ratios"), [2, 2]),
    ("codec upsample_rates", ("decoder_config", "upsample_rates"), [8, 5, 4, 3]),
    ("codec encoder stages", ("encoder_config", "upsampling_ratios", "len"), 4),
    ("codec encoder num_residual_layers", ("encoder_config", "num_residual_layers"), 1),
    ("codec encoder_valid_num_quantizers", ("encoder_valid_num_quantizers",), 16),
)


def runtime_problems(config: dict[str, Any], codec_config: dict[str, Any]) -> list[str]:
    """Why qwentts.cpp cannot run this checkpoint (empty: it can). The library sizes these at compile
    time and aborts the whole process (``GGML_ASSERT``) on other values, so they are checked first."""
    merged = {"speaker_encoder_config": config.get("speaker_encoder_config") or {}, **codec_config}
    problems = []
    for what, path, wanted in FIXED_SIZES:
        value: Any = merged
        for step in path:
            value = len(value) if step == "len" and isinstance(value, list) else (
                value.get(step) if isinstance(value, dict) else None)
        if value is not None and value != wanted:
            problems.append(f"{what} is {value}, the library needs {wanted}")
    window = (codec_config.get("decoder_config") or {}).get("sliding_window")
    if window is not None and int(window) + 8 > 128:
        problems.append(f"codec sliding_window {window} exceeds the streaming ring (at most 120)")
    if (config.get("talker_config") or {}).get("num_code_groups", 16) != 16:
        problems.append("the talker must have 16 code groups")
    return problems
