"""Pick the compute device and dtype once, the same way for every engine."""

from __future__ import annotations

import importlib.util


def resolve_device(setting: str = "auto") -> str:
    """Map ``VOICEBOX_DEVICE`` (auto|cpu|cuda|mps) to a concrete device.

    ``auto`` prefers CUDA, then Apple MPS, then the CPU. An explicit choice that is not
    available falls back to the CPU rather than failing at the first generation.
    """
    import torch

    if setting == "cpu":
        return "cpu"
    if setting in ("auto", "cuda") and torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if setting in ("auto", "mps") and mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def default_dtype_name(device: str) -> str:
    """bf16 on CUDA (fast and safe there); fp32 elsewhere (bf16 is ~10x slower on CPUs)."""
    return "bfloat16" if device == "cuda" else "float32"


def attention_implementation() -> str:
    """``flash_attention_2`` when the package is installed, else PyTorch's ``sdpa``."""
    return "flash_attention_2" if importlib.util.find_spec("flash_attn") is not None else "sdpa"
