"""Build randomly initialised but structurally real Qwen3-TTS *Base* (voice-clone) checkpoints.

Why this exists: the real checkpoints are gigabytes on the Hugging Face Hub and the test machines are
offline. The engine must be exercised through exactly the production loading path
(``qwen_tts.Qwen3TTSModel.from_pretrained(dir, ...)``), so instead of mocking ``qwen_tts`` we write a
directory with the same files, config layout and tensor names as ``Qwen/Qwen3-TTS-12Hz-*-Base``,
filled with seeded random weights from the real ``qwen_tts`` model classes:

* ``tiny``  - ~10 MB, builds in ~4 s, generates 20 frames in under a second on 2 idle CPU cores.
* ``0.6B``/``1.7B`` - the real architecture sizes (talker, code predictor, speaker encoder and 12 Hz
  codec), for speed and memory benchmarks where the values do not matter. They share the tiny byte-level
  text tokenizer; only the text-embedding *size* is real (151936 rows).

Constraints that were found the hard way (see GUIDE.md section 2) are encoded here:
the talker/code-predictor configs are written in the transformers 4.x layout (``rope_theta`` +
``rope_scaling`` with ``mrope_section`` and ``interleaved``) because qwen_tts reads
``config.rope_scaling["mrope_section"]``; the codec vocabulary is ``codebook_size + 1024`` with every
control/language id in the last 1024 ids; the speaker-encoder block is written by hand (its
``save_pretrained`` form does not load back); weights are saved with safetensors directly because
``save_pretrained`` chokes on qwen_tts' list-form ``_tied_weights_keys``; and the Mimi encoder / codec
decoder codebooks, which are zeros after construction (zeros decode to silence and encode to code 0),
are randomised.

Generation facts for these checkpoints: the end-of-speech logit is pinned at zero (see
``_silence_end_of_speech``) so generations run to the cap: ``max_new_tokens=N`` gives ``N - 1`` frames of
1920 samples at 24 kHz (x-vector mode exactly; ICL mode can return one sample more, because qwen_tts
cuts the decoded reference off with a float ratio).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import save_file

SAMPLE_RATE = 24_000
SAMPLES_PER_FRAME = 1920  # 12.5 frames per second at 24 kHz
NUM_CODE_GROUPS = 16
DEFAULT_MAX_NEW_TOKENS = 8192  # the value in the real generation_config.json
DECODER_INIT_GAIN = 0.5
DECODER_TARGET_RMS = 0.1
MANIFEST_NAME = "random_checkpoint.json"
BUILDER_VERSION = 1

# Codec control ids, as offsets from codebook_size (real checkpoints: codebook_size 2048, pad 2148, ...).
CODEC_CONTROL_OFFSETS = {
    "codec_pad_id": 100,
    "codec_bos_id": 101,
    "codec_eos_token_id": 102,
    "codec_think_id": 106,
    "codec_nothink_id": 107,
    "codec_think_bos_id": 108,
    "codec_think_eos_id": 109,
}
# Languages of the real Base checkpoints, same offsets (english 2050 = 2048 + 2, ...).
LANGUAGE_OFFSETS = {
    "english": 2,
    "german": 5,
    "spanish": 6,
    "chinese": 7,
    "japanese": 10,
    "french": 13,
    "korean": 16,
    "russian": 21,
    "italian": 22,
    "portuguese": 23,
}

# The named speakers of a tiny CustomVoice checkpoint (real ones: vivian, ryan, ... at 3000+ ids):
# codec ids in the reserved last 1024, clear of the control and language ids above.
SPEAKER_OFFSETS = {"vivian": 200, "ryan": 201}
#: The Qwen3-TTS families a random checkpoint can be (``tts_model_type``).
VARIANTS = ("base", "custom_voice", "voice_design")

# Qwen3 special tokens in their real order (the real vocabulary puts them at 151643..151675).
QWEN3_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
    "<|audio_start|>", "<|audio_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>",
    "<tts_text_bos_single>", "<|audio_pad|>",
]
# Tokens that must not be special (the real tokenizer marks the tool/think tags non-special).
NON_SPECIAL_TOKENS = {"<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"}
# qwen_tts slices "<|im_start|>assistant\n" as exactly 3 tokens: role words must be single tokens.
WHOLE_WORDS = ["assistant", "user", "system"]


@dataclass(frozen=True)
class TransformerSize:
    """Sizes of one decoder-only transformer stack."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int


@dataclass(frozen=True)
class Preset:
    """Every size that distinguishes one checkpoint preset from another."""

    model_size: str  # config.tts_model_size, a string as in the real configs
    talker: TransformerSize
    predictor: TransformerSize
    text_hidden: int
    text_vocab: int | None  # None: just above the tokenizer's ids
    mrope_section: list[int]
    speaker_channels: list[int]
    speaker_attention: int
    speaker_res2net_scale: int
    speaker_se: int
    codebook_size: int
    mimi: dict[str, Any]
    decoder: dict[str, Any]
    weights_dtype: torch.dtype = torch.float32


_REAL_PREDICTOR = TransformerSize(hidden=1024, layers=5, heads=16, kv_heads=8, head_dim=128, intermediate=3072)
_REAL_MIMI = dict(
    hidden_size=512, num_filters=64, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
    head_dim=64, intermediate_size=2048, num_quantizers=32, codebook_dim=256,
    vector_quantization_hidden_dimension=256, upsample_groups=512,
)
_REAL_DECODER = dict(
    hidden_size=512, latent_dim=1024, codebook_dim=512, decoder_dim=1536, num_hidden_layers=8,
    num_attention_heads=16, num_key_value_heads=16, head_dim=64, intermediate_size=1024,
)
_REAL_SPEAKER = dict(speaker_channels=[512, 512, 512, 512, 1536], speaker_attention=128,
                     speaker_res2net_scale=8, speaker_se=128)

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        model_size="0b6",
        talker=TransformerSize(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, intermediate=128),
        # Narrower than the talker, as in 1.7B, so the small_to_mtp_projection path is exercised.
        predictor=TransformerSize(hidden=32, layers=1, heads=2, kv_heads=1, head_dim=16, intermediate=64),
        text_hidden=32,
        text_vocab=None,
        mrope_section=[4, 2, 2],
        speaker_channels=[16, 16, 16, 16, 48],
        speaker_attention=16,
        speaker_res2net_scale=4,
        speaker_se=8,
        codebook_size=1024,  # smaller than the real 2048, big enough that EOS stays a rare token
        mimi=dict(
            hidden_size=32, num_filters=4, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
            head_dim=16, intermediate_size=64, num_quantizers=16, codebook_dim=16,
            vector_quantization_hidden_dimension=16, upsample_groups=32,
        ),
        decoder=dict(
            hidden_size=32, latent_dim=32, codebook_dim=16, decoder_dim=32, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=2, head_dim=16, intermediate_size=64,
        ),
    ),
    # "tiny" with the sizes qwentts.cpp (the GGML engine) fixes at compile time: Res2Net scale 8 in the
    # speaker encoder, and the real codec decoder widths (decoder_dim 1536, latent_dim 1024, RVQ output
    # 512; see voicebox/engines/gguf_layout.py). ~320 MB, almost all of it the codec decoder. The talker
    # is 256 wide so that Q4_K / Q6_K blocks (256 weights) fit its rows; the predictor's 128 do not
    # (the converter falls back to Q8_0 there).
    "tiny-ggml": Preset(
        model_size="0b6",
        talker=TransformerSize(hidden=256, layers=2, heads=4, kv_heads=2, head_dim=64, intermediate=512),
        predictor=TransformerSize(hidden=128, layers=1, heads=2, kv_heads=1, head_dim=64, intermediate=256),
        text_hidden=256,
        text_vocab=None,
        mrope_section=[16, 8, 8],
        speaker_channels=[16, 16, 16, 16, 48],
        speaker_attention=16,
        speaker_res2net_scale=8,
        speaker_se=8,
        codebook_size=1024,
        mimi=dict(
            hidden_size=32, num_filters=4, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
            head_dim=16, intermediate_size=64, num_quantizers=16, codebook_dim=16,
            vector_quantization_hidden_dimension=16, upsample_groups=32,
        ),
        decoder=dict(
            hidden_size=32, latent_dim=1024, codebook_dim=512, decoder_dim=1536, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=2, head_dim=16, intermediate_size=64,
        ),
    ),
    "0.6B": Preset(
        model_size="0b6",
        talker=TransformerSize(hidden=1024, layers=28, heads=16, kv_heads=8, head_dim=128, intermediate=3072),
        predictor=_REAL_PREDICTOR,
        text_hidden=2048,
        text_vocab=151936,
        mrope_section=[24, 20, 20],
        codebook_size=2048,
        mimi=_REAL_MIMI,
        decoder=_REAL_DECODER,
        weights_dtype=torch.bfloat16,  # as the real model.safetensors
        **_REAL_SPEAKER,
    ),
    "1.7B": Preset(
        model_size="1b7",
        talker=TransformerSize(hidden=2048, layers=28, heads=16, kv_heads=8, head_dim=128, intermediate=6144),
        predictor=_REAL_PREDICTOR,
        text_hidden=2048,
        text_vocab=151936,
        mrope_section=[24, 20, 20],
        codebook_size=2048,
        mimi=_REAL_MIMI,
        decoder=_REAL_DECODER,
        weights_dtype=torch.bfloat16,
        **_REAL_SPEAKER,
    ),
}


# --------------------------------------------------------------------------- public API


def build_random_checkpoint(
    out_dir: Path | str, preset: str = "tiny", seed: int = 0, *, reuse: bool = False, variant: str = "base",
    model_size: str | None = None,
) -> Path:
    """Write a loadable random Qwen3-TTS checkpoint directory (Base unless ``variant`` says
    ``custom_voice``, with :data:`SPEAKER_OFFSETS`' named speakers, or ``voice_design``; those two
    have no speaker encoder, as the real ones).

    Args:
        out_dir: Directory to create (its previous checkpoint files are overwritten).
        preset: ``"tiny"``, ``"0.6B"`` or ``"1.7B"``.
        seed: Seed of every random weight; the same seed gives bit-identical files.
        reuse: Return at once if ``out_dir`` already holds a complete build of this preset and seed.
        variant: the model family (``tts_model_type``), one of :data:`VARIANTS`.
        model_size: the ``tts_model_size`` the config says (``"0b6"``/``"1b7"``; default the
            preset's): ``qwen_tts`` drops a CustomVoice instruction when it says ``0b6``.

    Returns:
        ``out_dir`` as a Path, loadable with ``qwen_tts.Qwen3TTSModel.from_pretrained(str(out_dir))``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    out = Path(out_dir)
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    manifest = {"preset": preset, "seed": seed, "builder_version": BUILDER_VERSION}
    if variant != "base":
        manifest["variant"] = variant
    if reuse and _read_manifest(out) == manifest:
        return out
    spec = PRESETS[preset] if model_size is None else replace(PRESETS[preset], model_size=model_size)
    if model_size is not None:
        manifest["model_size"] = model_size
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    special_ids = write_text_tokenizer(out)
    config = model_config(spec, special_ids, variant)
    codec_config = speech_tokenizer_config(spec)
    with _seeded(seed):
        _write_main_weights(out, config, spec.weights_dtype)
    with _seeded(seed + 1):
        _write_codec_weights(out / "speech_tokenizer", codec_config)
    _write_json(out / "config.json", config)
    _write_json(out / "generation_config.json", generation_config())
    _write_json(out / "speech_tokenizer" / "config.json", codec_config)
    _write_json(out / "speech_tokenizer" / "preprocessor_config.json", preprocessor_config())
    _write_json(out / MANIFEST_NAME, manifest)
    return out


def weights_digest(checkpoint_dir: Path | str) -> str:
    """SHA-256 over both safetensors files of a checkpoint (to compare builds)."""
    digest = hashlib.sha256()
    for rel in ("model.safetensors", "speech_tokenizer/model.safetensors"):
        with open(Path(checkpoint_dir) / rel, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def supported_languages() -> list[str]:
    """Languages every preset accepts besides ``"auto"`` (lower-case, as qwen_tts reports them)."""
    return sorted(LANGUAGE_OFFSETS)


# --------------------------------------------------------------------------- text tokenizer


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins for bytes used by byte-level BPE, in GPT-2/Qwen order."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # moved here in transformers 5

    return list(bytes_to_unicode().values())


def tokenizer_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE vocabulary: every byte plus merges that make the role words single tokens."""
    vocab = {symbol: index for index, symbol in enumerate(_byte_alphabet())}
    merges: list[tuple[str, str]] = []
    for word in WHOLE_WORDS:
        current = word[0]
        for char in word[1:]:
            merges.append((current, char))
            current += char
            vocab.setdefault(current, len(vocab))
    return vocab, merges


def write_text_tokenizer(out: Path) -> dict[str, int]:
    """Write vocab.json, merges.txt and tokenizer_config.json (the real repos' layout).

    Returns:
        The id of every Qwen3 special token.
    """
    vocab, merges = tokenizer_vocab()
    special_ids = {token: len(vocab) + i for i, token in enumerate(QWEN3_SPECIAL_TOKENS)}
    (out / "tokenizer.json").unlink(missing_ok=True)  # would take precedence over the files below
    _write_json(out / "vocab.json", vocab, indent=None)
    lines = ["#version: 0.2"] + [f"{left} {right}" for left, right in merges]
    (out / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _write_json(out / "tokenizer_config.json", _tokenizer_config(special_ids))
    return special_ids


def _tokenizer_config(special_ids: dict[str, int]) -> dict[str, Any]:
    added = {
        str(index): {
            "content": token, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": token not in NON_SPECIAL_TOKENS,
        }
        for token, index in special_ids.items()
    }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [t for t in QWEN3_SPECIAL_TOKENS[1:] if t not in NON_SPECIAL_TOKENS],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


# --------------------------------------------------------------------------- configs


def _codec_ids(codebook_size: int) -> dict[str, Any]:
    ids: dict[str, Any] = {name: codebook_size + off for name, off in CODEC_CONTROL_OFFSETS.items()}
    ids["codec_language_id"] = {lang: codebook_size + off for lang, off in LANGUAGE_OFFSETS.items()}
    return ids


def _transformer_fields(size: TransformerSize) -> dict[str, Any]:
    return {
        "hidden_size": size.hidden,
        "num_hidden_layers": size.layers,
        "num_attention_heads": size.heads,
        "num_key_value_heads": size.kv_heads,
        "head_dim": size.head_dim,
        "intermediate_size": size.intermediate,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-06,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "rope_theta": 1000000,
        "use_cache": True,
        "use_sliding_window": False,
        "sliding_window": None,
        "tie_word_embeddings": False,
    }


def talker_config(spec: Preset, text_vocab: int) -> dict[str, Any]:
    """The talker block in the real (transformers 4.x) layout."""
    if sum(spec.mrope_section) * 2 != spec.talker.head_dim:
        raise ValueError("mrope_section must sum to head_dim / 2")
    predictor = _transformer_fields(spec.predictor) | {
        "model_type": "qwen3_tts_talker_code_predictor",
        "vocab_size": spec.codebook_size,
        "num_code_groups": NUM_CODE_GROUPS,
        "max_position_embeddings": 65536,
        "max_window_layers": spec.predictor.layers,
        "layer_types": ["full_attention"] * spec.predictor.layers,
        "rope_scaling": None,
    }
    return _transformer_fields(spec.talker) | _codec_ids(spec.codebook_size) | {
        "model_type": "qwen3_tts_talker",
        "vocab_size": spec.codebook_size + 1024,
        "text_hidden_size": spec.text_hidden,
        "text_vocab_size": text_vocab,
        "num_code_groups": NUM_CODE_GROUPS,
        "max_position_embeddings": 32768,
        "position_id_per_seconds": 13,
        "rope_scaling": {
            "interleaved": True, "mrope_section": list(spec.mrope_section),
            "rope_type": "default", "type": "default",
        },
        "spk_id": {},
        "spk_is_dialect": {},
        "code_predictor_config": predictor,
    }


def _text_vocab_size(spec: Preset, special_ids: dict[str, int]) -> int:
    if spec.text_vocab is not None:
        return spec.text_vocab
    return int(math.ceil((max(special_ids.values()) + 1) / 64) * 64)


def model_config(spec: Preset, special_ids: dict[str, int], variant: str = "base") -> dict[str, Any]:
    """The top-level config.json of a checkpoint of ``variant`` (Base by default)."""
    talker = talker_config(spec, _text_vocab_size(spec, special_ids))
    if variant == "custom_voice":
        talker["spk_id"] = {name: spec.codebook_size + off for name, off in SPEAKER_OFFSETS.items()}
        talker["spk_is_dialect"] = {name: False for name in SPEAKER_OFFSETS}
    return {
        "architectures": ["Qwen3TTSForConditionalGeneration"],
        "model_type": "qwen3_tts",
        "tokenizer_type": "qwen3_tts_tokenizer_12hz",
        "tts_model_size": spec.model_size,
        "tts_model_type": variant,
        "im_start_token_id": special_ids["<|im_start|>"],
        "im_end_token_id": special_ids["<|im_end|>"],
        "tts_pad_token_id": special_ids["<tts_pad>"],
        "tts_bos_token_id": special_ids["<tts_text_bos>"],
        "tts_eos_token_id": special_ids["<tts_text_eod>"],
        "assistant_token_id": tokenizer_vocab()[0]["assistant"],
        "speaker_encoder_config": {  # written by hand: save_pretrained's form does not load back
            "mel_dim": 128,  # extract_speaker_embedding always computes 128 mel bins
            "enc_dim": spec.talker.hidden,  # the x-vector is fed to the talker as one input embedding
            "enc_channels": list(spec.speaker_channels),
            "enc_kernel_sizes": [5, 3, 3, 3, 1],
            "enc_dilations": [1, 2, 3, 4, 1],
            "enc_attention_channels": spec.speaker_attention,
            "enc_res2net_scale": spec.speaker_res2net_scale,
            "enc_se_channels": spec.speaker_se,
            "sample_rate": SAMPLE_RATE,
        },
        "talker_config": talker,
        "torch_dtype": "bfloat16" if spec.weights_dtype == torch.bfloat16 else "float32",
    }


def speech_tokenizer_config(spec: Preset) -> dict[str, Any]:
    """speech_tokenizer/config.json: a Mimi encoder and the 12 Hz codec decoder."""
    encoder = {
        "model_type": "mimi", "sampling_rate": SAMPLE_RATE, "audio_channels": 1, "frame_rate": 12.5,
        "upsampling_ratios": [8, 6, 5, 4],  # 960 samples, then a stride-2 downsample: 1920 per frame
        "kernel_size": 7, "last_kernel_size": 3, "residual_kernel_size": 3, "num_residual_layers": 1,
        "dilation_growth_rate": 2, "compress": 2, "use_causal_conv": True, "pad_mode": "constant",
        "trim_right_ratio": 1.0, "use_conv_shortcut": False, "num_semantic_quantizers": 1,
        "codebook_size": spec.codebook_size, "hidden_act": "gelu", "norm_eps": 1e-05,
        "layer_scale_initial_scale": 0.01, "rope_theta": 10000.0, "max_position_embeddings": 8000,
        "sliding_window": 250, "use_cache": False, "use_streaming": False, "attention_bias": False,
        "attention_dropout": 0.0, "initializer_range": 0.02,
    } | spec.mimi
    decoder = {
        "codebook_size": spec.codebook_size, "num_quantizers": NUM_CODE_GROUPS, "num_semantic_quantizers": 1,
        "upsample_rates": [8, 5, 4, 3], "upsampling_ratios": [2, 2],  # 480 x 4 = 1920 per frame
        "hidden_act": "silu", "attention_bias": False, "attention_dropout": 0.0,
        "layer_scale_initial_scale": 0.01, "max_position_embeddings": 8000, "rms_norm_eps": 1e-05,
        "rope_theta": 10000, "sliding_window": 72,
    } | spec.decoder
    _check_codec(encoder, decoder)
    return {
        "architectures": ["Qwen3TTSTokenizerV2Model"],
        "model_type": "qwen3_tts_tokenizer_12hz",
        "encoder_valid_num_quantizers": NUM_CODE_GROUPS,
        "input_sample_rate": SAMPLE_RATE,
        "output_sample_rate": SAMPLE_RATE,
        "decode_upsample_rate": SAMPLES_PER_FRAME,
        "encode_downsample_rate": SAMPLES_PER_FRAME,
        "encoder_config": encoder,
        "decoder_config": decoder,
    }


def _check_codec(encoder: dict[str, Any], decoder: dict[str, Any]) -> None:
    size = encoder["codebook_size"]
    if size & (size - 1):
        raise ValueError("the Mimi codebook size must be a power of two")
    if math.prod(encoder["upsampling_ratios"]) * 2 != SAMPLES_PER_FRAME:
        raise ValueError("the Mimi strides must give 1920 samples per frame")
    if math.prod(decoder["upsample_rates"] + decoder["upsampling_ratios"]) != SAMPLES_PER_FRAME:
        raise ValueError("the decoder must upsample each frame to 1920 samples")


def generation_config() -> dict[str, Any]:
    """generation_config.json with the real defaults (callers pass max_new_tokens)."""
    return {
        "do_sample": True, "repetition_penalty": 1.05, "temperature": 0.9, "top_p": 1.0, "top_k": 50,
        "subtalker_dosample": True, "subtalker_temperature": 0.9, "subtalker_top_p": 1.0,
        "subtalker_top_k": 50, "max_new_tokens": DEFAULT_MAX_NEW_TOKENS,
    }


def preprocessor_config() -> dict[str, Any]:
    """speech_tokenizer/preprocessor_config.json (the Encodec feature extractor Mimi uses)."""
    return {
        "chunk_length_s": None, "feature_extractor_type": "EncodecFeatureExtractor", "feature_size": 1,
        "overlap": None, "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True,
        "sampling_rate": SAMPLE_RATE,
    }


# --------------------------------------------------------------------------- weights


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator (module constructors use it) without leaking the change."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Create parameters directly in ``dtype`` (halves the peak memory of the bf16 presets)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _write_main_weights(out: Path, config: dict[str, Any], dtype: torch.dtype) -> None:
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

    with _default_dtype(dtype):
        model = Qwen3TTSForConditionalGeneration(Qwen3TTSConfig(**json.loads(json.dumps(config))))
    _silence_end_of_speech(model)
    _save_state(model, out / "model.safetensors", dtype)


@torch.no_grad()
def _silence_end_of_speech(model: torch.nn.Module) -> None:
    """Zero the talker's end-of-speech logit so that generations run to ``max_new_tokens``.

    Every other codec logit is ~N(0, sigma) over >= 1024 codes, so a constant 0 is never the argmax and
    never inside the default top-k of 50: greedy and default sampling both always hit the cap, which
    keeps audio lengths exact in tests and benchmarks. (Only sampling with top_k disabled can still stop,
    with probability ~1/codebook_size per frame.)
    """
    eos = model.config.talker_config.codec_eos_token_id
    model.talker.codec_head.weight[eos].zero_()


def _write_codec_weights(out: Path, config: dict[str, Any]) -> None:
    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model

    out.mkdir(parents=True, exist_ok=True)
    model = Qwen3TTSTokenizerV2Model(Qwen3TTSTokenizerV2Config(**json.loads(json.dumps(config))))
    _randomise_codebooks(model)
    _make_decoder_audible(model.decoder)
    _save_state(model, out / "model.safetensors", torch.float32)  # the real codec is stored in fp32


@torch.no_grad()
def _randomise_codebooks(model: torch.nn.Module) -> None:
    """Give every codebook distinct random centroids (they are constructed as zeros)."""
    for name, tensor in sorted(model.state_dict(keep_vars=True).items()):
        if name.endswith(("embed_sum", "embedding_sum")):
            tensor.copy_(torch.randn(tensor.shape))


def _fan_in(module: torch.nn.Module) -> float | None:
    if isinstance(module, torch.nn.ConvTranspose1d):
        return module.in_channels * module.kernel_size[0] / module.stride[0]
    if isinstance(module, torch.nn.Conv1d):
        return module.in_channels // module.groups * module.kernel_size[0]
    if isinstance(module, torch.nn.Linear):
        return float(module.in_features)
    return None


@torch.no_grad()
def _make_decoder_audible(decoder: torch.nn.Module) -> None:
    """Re-initialise the codec decoder so random codes decode to audible, unclipped noise.

    With the default std-0.02 init the ~40 stacked layers shrink the signal to ~1e-8; with unit-variance
    init the SnakeBeta residual stack saturates at the +-1 clamp. A moderate gain followed by scaling
    the last convolution to a fixed loudness on one calibration decode gives RMS ~0.1 at every preset.
    """
    for module in decoder.modules():
        fan_in = _fan_in(module)
        if fan_in is not None:
            module.weight.normal_(0.0, DECODER_INIT_GAIN / math.sqrt(fan_in))
            if module.bias is not None:
                module.bias.zero_()
    codebook_size = decoder.config.codebook_size
    codes = torch.randint(0, codebook_size, (1, NUM_CODE_GROUPS, 25))
    rms = float(decoder(codes).pow(2).mean().sqrt())
    # Rounded so that float noise between machines (thread counts) cannot change the saved bits.
    scale = float(f"{DECODER_TARGET_RMS / max(rms, 1e-12):.2g}")
    decoder.decoder[-1].conv.weight.mul_(scale)


def _save_state(model: torch.nn.Module, path: Path, dtype: torch.dtype) -> None:
    state = {
        name: tensor.detach().to(dtype if tensor.is_floating_point() else tensor.dtype).contiguous()
        for name, tensor in model.state_dict().items()
    }
    save_file(state, str(path), metadata={"format": "pt"})


# --------------------------------------------------------------------------- files


def _write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def _read_manifest(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

