"""Convert a Qwen3-TTS checkpoint directory to the two GGUF files qwentts.cpp loads.

``python -m voicebox convert-gguf DIR OUT --quant Q8_0`` reads ``DIR`` (``config.json``,
``generation_config.json``, ``model.safetensors``, the Qwen2 tokenizer files and
``speech_tokenizer/``) and writes, under ``OUT``, the names ``qwentts_cpp_cpu.resolve_gguf_paths``
uses for the published files::

    qwen-talker-{0.6b|1.7b}-{base|customvoice|voicedesign}-{QUANT}.gguf   talker + code predictor
                                                                          + speaker encoder + BPE
    qwen-tokenizer-12hz-{CODEC_QUANT}.gguf                               the 12 Hz codec

It serves the tests (the tiny random checkpoint), the benchmark (full-size random weights) and
people with fine-tuned checkpoints. Tensor names and keys: :mod:`.gguf_layout`; block formats:
:mod:`.gguf_quants`.

**Which tensors are quantised** (every quantisation, the rules llama.cpp's and qwentts.cpp's
quantizers follow): only matrices; vectors (norms, biases, layer scales) stay F32. The RVQ codebooks
and the projections around them stay F32 (nearest-neighbour code search is sensitive to rounding),
so do the snake activations (the DAC loader accepts nothing else) and the speaker encoder (small; it
makes the voice prompt). Convolution kernels, whose rows (the kernel width) fit no block, become F16
in the quantised files - the runtime turns every convolution kernel into F16 anyway. A matrix whose
rows do not split into the requested blocks (256 weights for K-quants) falls back to Q8_0, then F16.
``Q4_K_M`` follows llama.cpp's "medium" mix: Q4_K everywhere, Q6_K for the embeddings and for
``attn_v``/``ffn_down`` in the first ninth, the last seventh and every third layer.

The codec file defaults to F32: it is small next to the talker, and the published GGUFs call the
codec the part that must stay exact.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .gguf_layout import (
    ARCH_CODEC, ARCH_TALKER, CODEC_RULES, TALKER_RULES, bpe_vocabulary, codebook_key, codec_metadata,
    fuse_codebook, rename, runtime_problems, talker_metadata,
)

log = logging.getLogger(__name__)

#: What ``--quant`` accepts, as qwentts.cpp names its files.
QUANTS = ("F32", "BF16", "Q8_0", "Q4_K_M")
CODEC_FILE = "qwen-tokenizer-12hz-{quant}.gguf"
TALKER_FILE = "qwen-talker-{size}-{variant}-{quant}.gguf"
_VARIANT_NAMES = {"base": "base", "custom_voice": "customvoice", "voice_design": "voicedesign"}
_KEEP_F32 = re.compile(r"(tok_enc\.vq_|tok_dec\.vq_|\.snake\.|\.act[12]\.|^spk_enc\.)")
_EMBEDDINGS = re.compile(r"\.(codec_embd|text_embd)(\.\d+)?\.weight$")
_BUMPED = re.compile(r"\.blk\.(\d+)\.(attn_v|ffn_down)\.weight$")


@dataclass(frozen=True)
class GGUFPair:
    """The two files of one converted checkpoint."""

    talker: Path
    codec: Path


def normalize_quant(quant: str) -> str:
    """``q8``/``q8_0``/``Q8_0`` -> ``Q8_0`` (the same aliases as ``qwentts_cpp_cpu``)."""
    aliases = {"F32": "F32", "FP32": "F32", "BF16": "BF16", "Q8": "Q8_0", "Q8_0": "Q8_0", "Q4": "Q4_K_M",
               "Q4_K_M": "Q4_K_M"}
    try:
        return aliases[quant.strip().upper()]
    except KeyError:
        raise ValueError(f"unknown GGUF quantisation {quant!r}; use one of {', '.join(QUANTS)}") from None


def model_size_tag(config: dict[str, Any]) -> str:
    """``0.6b`` or ``1.7b`` from ``tts_model_size`` (``0b6``/``1b7``), as in the published names."""
    raw = str(config.get("tts_model_size", "0b6")).lower()
    match = re.fullmatch(r"(\d+)b(\d+)", raw)
    return f"{match[1]}.{match[2]}b" if match else raw.replace("_", ".")


def output_paths(checkpoint: Path | str, out_dir: Path | str, quant: str, codec_quant: str = "F32") -> GGUFPair:
    """Where :func:`convert_checkpoint` writes ``checkpoint``'s two files."""
    config = json.loads((Path(checkpoint) / "config.json").read_text(encoding="utf-8"))
    variant = {"customvoice": "custom_voice", "voicedesign": "voice_design"}.get(
        str(config.get("tts_model_type", "base")).lower().replace("_", ""), "base")
    talker = TALKER_FILE.format(size=model_size_tag(config), variant=_VARIANT_NAMES[variant],
                                quant=normalize_quant(quant))
    return GGUFPair(Path(out_dir) / talker, Path(out_dir) / CODEC_FILE.format(quant=normalize_quant(codec_quant)))


# ---- which type each tensor gets --------------------------------------------------------------------
def tensor_type(name: str, shape: tuple[int, ...], quant: str, layers: int) -> Any:
    """The GGML type of tensor ``name`` (PyTorch ``shape``) in a ``quant`` file of ``layers`` layers."""
    from gguf import GGMLQuantizationType as QT

    from .gguf_quants import fits

    if quant == "F32" or len(shape) < 2 or _KEEP_F32.search(name):
        return QT.F32
    if len(shape) > 2:  # convolution kernels: rows are kernel widths
        return QT.F16 if quant != "BF16" else QT.BF16
    wanted = {"BF16": QT.BF16, "Q8_0": QT.Q8_0, "Q4_K_M": QT.Q4_K}[quant]
    if quant == "Q4_K_M":
        bumped = _BUMPED.search(name)
        if _EMBEDDINGS.search(name) or (bumped and _bump_layer(int(bumped[1]), layers)):
            wanted = QT.Q6_K
    for qtype in (wanted, QT.Q8_0, QT.F16):
        if fits(qtype, shape[-1]):
            return qtype
    return QT.F16


def _bump_layer(layer: int, layers: int) -> bool:
    return layer < layers // 9 or layer >= layers - layers // 7 or layer % 3 == 0


# ---- reading ------------------------------------------------------------------------------------------
def _tensors(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Every tensor of a safetensors file as float32 (or its own dtype for integers), one at a time."""
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        for name in sorted(handle.keys()):
            tensor = handle.get_tensor(name)
            yield name, (tensor.float() if tensor.is_floating_point() else tensor).numpy()


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


# ---- writing ------------------------------------------------------------------------------------------
class _Writer:
    """A GGUF file being written: metadata by Python type, tensors quantised on the way in."""

    def __init__(self, path: Path, arch: str, quant: str, layers: int) -> None:
        import gguf

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.quant, self.layers = path, quant, layers
        self.partial = path.with_name(path.name + ".partial")
        self.writer = gguf.GGUFWriter(str(self.partial), arch, use_temp_file=True)
        self.counts: dict[str, int] = {}

    def metadata(self, values: dict[str, Any]) -> None:
        from gguf import GGUFValueType

        w = self.writer
        for key, value in values.items():
            if isinstance(value, bool):
                w.add_bool(key, value)
            elif isinstance(value, int):
                w.add_uint32(key, value)
            elif isinstance(value, float):
                w.add_float32(key, value)
            elif isinstance(value, str):
                w.add_string(key, value)
            elif not value:
                continue  # an empty table (no speakers): the loader reads its absence as empty
            elif all(isinstance(v, str) for v in value):
                w.add_array(key, list(value))
            else:
                w.add_key_value(key, [int(v) for v in value], GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT32)

    def tensor(self, name: str, array: np.ndarray) -> None:
        from gguf import GGMLQuantizationType as QT

        from .gguf_quants import quantize

        array = np.ascontiguousarray(array, dtype=np.float32)
        qtype = tensor_type(name, array.shape, self.quant, self.layers)
        data = quantize(array, qtype)
        if qtype in (QT.F32, QT.F16):
            self.writer.add_tensor(name, data)
        else:
            self.writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qtype)
        self.counts[qtype.name] = self.counts.get(qtype.name, 0) + 1

    def close(self) -> Path:
        w = self.writer
        w.add_uint32("general.quantization_version", 2)
        w.add_string("general.file_type", self.quant)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        self.partial.replace(self.path)
        log.info("wrote %s (%s)", self.path, ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items())))
        return self.path


def convert_talker(checkpoint: Path, out: Path, quant: str) -> Path:
    """``model.safetensors`` + configs + tokenizer -> the talker GGUF at ``out``."""
    config = _read_json(checkpoint / "config.json")
    talker = config["talker_config"]
    writer = _Writer(out, ARCH_TALKER, quant, int(talker["num_hidden_layers"]))
    writer.metadata(talker_metadata(config, _read_json(checkpoint / "generation_config.json")))
    writer.metadata(bpe_vocabulary(checkpoint))
    predictor_layers = int(talker["code_predictor_config"]["num_hidden_layers"])
    for name, array in _tensors(checkpoint / "model.safetensors"):
        target = rename(name, TALKER_RULES)
        if target is None:
            continue
        writer.layers = predictor_layers if target.startswith("code_pred.") else int(talker["num_hidden_layers"])
        writer.tensor(target, array)
    return writer.close()


def convert_codec(codec_dir: Path, out: Path, quant: str = "F32") -> Path:
    """``speech_tokenizer/`` -> the codec GGUF at ``out`` (codebooks fused, unused ones dropped)."""
    config = _read_json(codec_dir / "config.json")
    valid = int(config.get("encoder_valid_num_quantizers", 16))
    semantic = int(config["encoder_config"].get("num_semantic_quantizers", 1))
    writer = _Writer(out, ARCH_CODEC, quant, int(config["decoder_config"]["num_hidden_layers"]))
    tensors: list[tuple[str, np.ndarray]] = []
    codebooks: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    for name, array in _tensors(codec_dir / "model.safetensors"):
        key = codebook_key(name)
        if key is None:
            target = rename(name, CODEC_RULES)
            if target is not None:
                tensors.append((target, array))
            continue
        prefix, layer, field = key
        if prefix == "tok_enc.vq_acoustic" and layer >= valid - semantic:
            continue  # the encoder has 31 acoustic codebooks; the codes use the first 15
        codebooks.setdefault((prefix, layer), {})["sum" if "sum" in field else field] = array
    for (prefix, layer), parts in sorted(codebooks.items()):
        tensors.append((f"{prefix}.{layer}.codebook", fuse_codebook(parts["sum"], parts["cluster_usage"])))
    writer.metadata(codec_metadata(config, {name: array.shape for name, array in tensors}))
    for name, array in tensors:
        writer.tensor(name, array)
    return writer.close()


def convert_checkpoint(checkpoint: Path | str, out_dir: Path | str, quant: str = "Q8_0",
                       codec_quant: str = "F32", overwrite: bool = False, check: bool = True) -> GGUFPair:
    """Write ``checkpoint``'s talker and codec GGUFs under ``out_dir``; existing files are kept
    unless ``overwrite``. Returns their paths.

    Raises:
        FileNotFoundError: ``checkpoint`` is not a complete checkpoint directory.
        ValueError: (with ``check``) qwentts.cpp could not run it (see
            :func:`.gguf_layout.runtime_problems`); the message lists every reason.
    """
    checkpoint = Path(checkpoint)
    for required in ("config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json",
                     "speech_tokenizer/config.json", "speech_tokenizer/model.safetensors"):
        if not (checkpoint / required).is_file():
            raise FileNotFoundError(f"{checkpoint} is not a Qwen3-TTS checkpoint directory: {required} is missing")
    if check:
        problems = runtime_problems(_read_json(checkpoint / "config.json"),
                                    _read_json(checkpoint / "speech_tokenizer" / "config.json"))
        if problems:
            raise ValueError(f"qwentts.cpp cannot run {checkpoint}: " + "; ".join(problems))
    quant, codec_quant = normalize_quant(quant), normalize_quant(codec_quant)
    paths = output_paths(checkpoint, out_dir, quant, codec_quant)
    started = time.perf_counter()
    if overwrite or not paths.talker.is_file():
        convert_talker(checkpoint, paths.talker, quant)
    if overwrite or not paths.codec.is_file():
        convert_codec(checkpoint / "speech_tokenizer", paths.codec, codec_quant)
    log.info("converted %s to %s in %.1fs", checkpoint, quant, time.perf_counter() - started)
    return paths


def main(argv: list[str]) -> int:
    """``python -m voicebox convert-gguf DIR OUT [--quant Q] [--codec-quant Q] [--overwrite]``."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m voicebox convert-gguf",
        description="Convert a Qwen3-TTS checkpoint directory (safetensors) to the talker and codec GGUF "
        "files of the GGML engine (qwentts.cpp). Point VOICEBOX_TTS_MODEL at OUT to use them.",
    )
    parser.add_argument("checkpoint", metavar="DIR", help="Qwen3-TTS checkpoint directory (config.json, ...)")
    parser.add_argument("out", metavar="OUT", help="folder for the .gguf files")
    parser.add_argument("--quant", default="Q8_0", help=f"talker weights: {', '.join(QUANTS)} (default Q8_0)")
    parser.add_argument("--codec-quant", default="F32", help="codec weights (default F32)")
    parser.add_argument("--overwrite", action="store_true", help="replace files that already exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = convert_checkpoint(args.checkpoint, args.out, args.quant, args.codec_quant, args.overwrite)
    except (OSError, ValueError, KeyError) as exc:
        print(f"voicebox convert-gguf: {exc}", file=sys.stderr)
        return 2
    print(paths.talker)
    print(paths.codec)
    return 0
