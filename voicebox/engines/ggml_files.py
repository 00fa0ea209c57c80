"""Where the GGML engine's GGUF files come from, for a model setting and a quantisation.

A size's setting (``VOICEBOX_TTS_MODEL``, ``VOICEBOX_TTS_MODEL_LARGE``) names the model the same way
for both engines; for the GGML engine it resolves, in this order, to:

1. a local directory that already holds GGUFs: ``qwen-talker-*-{QUANT}.gguf`` and a
   ``qwen-tokenizer-12hz-*.gguf`` codec (F32 preferred);
2. a local Qwen3-TTS checkpoint directory (safetensors): converted once with
   :mod:`.gguf_convert` into ``<cache>/gguf/<name>-<hash>/`` (redone when the checkpoint changes) -
   a fine-tuned model runs on the GGML engine with no extra step;
3. a Hugging Face id of a released model (``Qwen/Qwen3-TTS-12Hz-0.6B-Base``, ...): the matching
   files of ``Serveurperso/Qwen3-TTS-GGUF`` (the repository ``qwentts_cpp_cpu.resolve_gguf_paths``
   names), through :func:`voicebox.engines.hub.resolve_snapshot`, so an offline machine fails in
   seconds with a message instead of retrying.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelUnavailable
from .gguf_convert import CODEC_FILE, GGUFPair, convert_checkpoint, normalize_quant
from .hub import hub_offline, looks_like_path, resolve_snapshot

log = logging.getLogger(__name__)

GGUF_REPO = "Serveurperso/Qwen3-TTS-GGUF"
#: Released checkpoints and the stem of their talker GGUF in :data:`GGUF_REPO`.
HUB_TALKERS = {
    "Qwen/Qwen3-TTS-12Hz-0.6B-Base": "qwen-talker-0.6b-base",
    "Qwen/Qwen3-TTS-12Hz-1.7B-Base": "qwen-talker-1.7b-base",
}


@dataclass(frozen=True)
class ResolvedModel:
    """A size's two GGUF files and how they were found (for the Models tab)."""

    files: GGUFPair
    how: str


def in_directory(directory: Path, quant: str) -> GGUFPair | None:
    """GGUFs of ``quant`` already in ``directory`` (the codec in F32 when there is one)."""
    talkers = sorted(directory.glob(f"qwen-talker-*-{quant}.gguf"))
    codecs = [directory / CODEC_FILE.format(quant=q) for q in ("F32", quant)]
    codecs += sorted(directory.glob(CODEC_FILE.format(quant="*")))
    codec = next((c for c in codecs if c.is_file()), None)
    return GGUFPair(talkers[0], codec) if talkers and codec is not None else None


def gguf_problems(files: GGUFPair) -> list[str]:
    """Why qwentts.cpp cannot run these GGUF files (empty: it can), from their metadata and
    tensor names; the library aborts the process on such files instead of failing cleanly."""
    from gguf import GGUFReader

    from .gguf_layout import ARCH_CODEC, ARCH_TALKER, FIXED_SIZES

    talker, codec = GGUFReader(files.talker), GGUFReader(files.codec)

    def value(reader: GGUFReader, key: str) -> object:
        field = reader.get_field(key)
        return None if field is None else field.contents()

    problems = []
    if value(talker, "general.architecture") != ARCH_TALKER or value(codec, "general.architecture") != ARCH_CODEC:
        problems.append(f"{files.talker.name} / {files.codec.name} are not a qwen3-tts talker and codec")
    if value(talker, f"{ARCH_TALKER}.model_type") != "base":
        problems.append(f"{files.talker.name} is not a Base (voice-cloning) model")
    names = {tensor.name for tensor in talker.tensors}
    if "spk_enc.conv0.weight" not in names or "spk_enc.blk.1.res2net.6.weight" not in names:
        problems.append("the speaker encoder is missing or its Res2Net scale is not 8")
    for what, path, wanted in FIXED_SIZES:
        if path[0] == "decoder_config" and path[1] in ("decoder_dim", "latent_dim", "codebook_dim", "num_quantizers"):
            found = value(codec, f"{ARCH_CODEC}.decoder.{path[1]}")
            if found is not None and found != wanted:
                problems.append(f"{what} is {found}, the library needs {wanted}")
    return problems


def is_checkpoint(directory: Path) -> bool:
    return (directory / "config.json").is_file() and (directory / "model.safetensors").is_file()


def checkpoint_problems(directory: Path) -> list[str]:
    """:func:`.gguf_layout.runtime_problems` of a checkpoint directory's configs."""
    import json

    from .gguf_layout import runtime_problems

    def read(name: str) -> dict:
        path = directory / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    return runtime_problems(read("config.json"), read("speech_tokenizer/config.json"))


def conversion_dir(checkpoint: Path, cache_dir: Path) -> Path:
    """Where a local checkpoint's GGUFs go: named after the folder, keyed by its weights' identity
    (path, sizes and modification times), so an edited checkpoint is converted again."""
    parts = [str(checkpoint.resolve())]
    for name in ("model.safetensors", "speech_tokenizer/model.safetensors", "config.json"):
        path = checkpoint / name
        if path.is_file():
            stat = path.stat()
            parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return cache_dir / "gguf" / f"{checkpoint.name}-{digest}"


def resolve(source: str, quant: str, cache_dir: Path, variable: str = "VOICEBOX_TTS_MODEL") -> ResolvedModel:
    """The GGUF files for model setting ``source`` at ``quant``; converts or downloads if needed.

    Raises:
        ModelUnavailable: a path that is no usable directory, a Hub id with no published GGUF,
            or (``NotDownloaded``) files that cannot be downloaded now.
    """
    quant = normalize_quant(quant)
    directory = Path(source).expanduser()
    if directory.is_dir():
        found = in_directory(directory, quant)
        if found is not None:
            return ResolvedModel(found, f"GGUF files in {directory}")
        if is_checkpoint(directory):
            target = conversion_dir(directory, cache_dir)
            found = in_directory(target, quant) if target.is_dir() else None
            if found is not None:
                return ResolvedModel(found, f"converted from {directory} (cached)")
            log.info("converting %s to GGUF %s in %s", directory, quant, target)
            return ResolvedModel(convert_checkpoint(directory, target, quant), f"converted from {directory}")
        raise ModelUnavailable(
            f"{variable}={source!r} holds neither GGUF files ({quant}) nor a Qwen3-TTS checkpoint."
        )
    if looks_like_path(source):
        raise ModelUnavailable(f"{variable}={source!r} is not a directory.")
    stem = HUB_TALKERS.get(source)
    if stem is None:
        raise ModelUnavailable(
            f"No GGUF files are published for {source!r}; point {variable} at a local checkpoint "
            "(voicebox converts it) or use VOICEBOX_BACKEND=torch."
        )
    names = [f"{stem}-{quant}.gguf", CODEC_FILE.format(quant=quant)]
    folder = Path(resolve_snapshot(
        GGUF_REPO, variable, f"GGUF model ({source}, {quant})", allow_patterns=names,
        fix=f"run once with internet access, or set {variable} to a local checkpoint or GGUF folder",
    ))
    files = GGUFPair(folder / names[0], folder / names[1])
    if not (files.talker.is_file() and files.codec.is_file()):
        raise ModelUnavailable(f"{GGUF_REPO} has no {names[0]} / {names[1]}.")
    return ResolvedModel(files, f"{GGUF_REPO} ({quant})")


def obtainable(source: str, quant: str, cache_dir: Path) -> tuple[bool, str]:
    """Whether :func:`resolve` can work without trying it (no download, no conversion): local
    GGUFs or a checkpoint to convert, or a released model that is cached or downloadable."""
    quant = normalize_quant(quant)
    directory = Path(source).expanduser()
    if directory.is_dir():
        if in_directory(directory, quant) is not None:
            return True, f"GGUF files ({quant}) in {directory}"
        if is_checkpoint(directory):
            problems = checkpoint_problems(directory)
            if problems:
                return False, f"the GGML engine cannot run {directory}: {'; '.join(problems)}"
            return True, f"{directory} converts to GGUF {quant}"
        return False, f"{directory} holds no GGUF files and no Qwen3-TTS checkpoint"
    stem = HUB_TALKERS.get(source)
    if stem is None:
        return False, f"no GGUF files are published for {source}"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = all(isinstance(try_to_load_from_cache(GGUF_REPO, name), str)
                     for name in (f"{stem}-{quant}.gguf", CODEC_FILE.format(quant=quant)))
    except Exception:  # noqa: BLE001 - an unreadable cache is just "not cached"
        cached = False
    if cached:
        return True, f"{GGUF_REPO} {quant} is in the Hugging Face cache"
    if hub_offline():
        return False, f"{GGUF_REPO} {quant} is not downloaded and HF_HUB_OFFLINE is set"
    return True, f"{GGUF_REPO} {quant} can be downloaded"
