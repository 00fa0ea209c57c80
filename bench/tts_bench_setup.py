"""What every part of the TTS speed benchmark (tts_speed.py) shares: paths, the text, the voice.

Kept apart so that the timing, quality, memory and GGML modules (and bench/loop_guard.py) build
the same checkpoint, reference and engine without importing the whole benchmark. Importing it
puts the repository on ``sys.path`` and sets the quiet, offline environment before transformers
is loaded.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

warnings.filterwarnings("ignore")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

CHECKPOINTS = REPO_ROOT / "bench" / "checkpoints"
RESULTS = REPO_ROOT / "bench" / "results"
REFERENCE = REPO_ROOT.parent / "shared" / "data" / "jfk.flac"
REFERENCE_TEXT = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
TEXT = "Voice cloning on a small computer should feel quick, and this sentence is here to measure it."
FRAME_SECONDS = 0.08


def log(message: str) -> None:
    print(message, flush=True)


def checkpoint(size: str) -> Path:
    from tests.support.qwen_checkpoint import build_random_checkpoint

    started = time.perf_counter()
    path = build_random_checkpoint(CHECKPOINTS / size, size, seed=0, reuse=True)
    log(f"checkpoint {size}: {path} ({time.perf_counter() - started:.0f}s)")
    return path


def reference_sample(tmp: Path, seconds: float) -> Any:
    from voicebox import audio
    from voicebox.engines.tts import ReferenceSample

    samples, rate = audio.decode(REFERENCE)
    prepared = audio.prepare_reference(samples, rate)
    wav = prepared.samples[: int(seconds * prepared.sample_rate)] if seconds else prepared.samples
    text = REFERENCE_TEXT
    if len(wav) < len(prepared.samples):  # a trimmed reference keeps about the words it still holds
        words = text.split()
        text = " ".join(words[: max(1, round(len(words) * len(wav) / len(prepared.samples)))])
    path = tmp / "reference.wav"
    path.write_bytes(audio.wav_bytes(wav, prepared.sample_rate))
    return ReferenceSample(path, audio.sha256_file(path), text), len(wav) / prepared.sample_rate


def make_engine(path: Path, size: str, device: str, quantize: str = "auto", fast: bool = True,
                keep_fp32: bool = True) -> Any:
    """An engine on ``path``. ``keep_fp32``: the timing runs need the fp32 layers (the official
    path runs on the same model, and the precisions are switched); the memory probe measures the
    product's default, which releases them once the reduced copies exist."""
    from voicebox.engines.prompt_cache import PromptCache
    from voicebox.engines.tts import TTSEngine

    return TTSEngine({size: str(path)}, device=device, prompt_cache=PromptCache(None), quantize=quantize, fast=fast,
                     keep_fp32=keep_fp32)


def official_item(prompt: Any) -> Any:
    from qwen_tts.inference.qwen3_tts_model import VoiceClonePromptItem

    return VoiceClonePromptItem(
        ref_code=prompt.ref_code, ref_spk_embedding=prompt.ref_spk_embedding,
        x_vector_only_mode=prompt.mode != "icl", icl_mode=prompt.mode == "icl", ref_text=prompt.ref_text,
    )


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
