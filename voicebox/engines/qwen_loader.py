"""Finding and loading a Qwen3-TTS checkpoint, and the CUDA graphs captured over it.

Kept apart from the engine because every way this fails is a message a person must act on:
a mistyped path, a model that is not downloaded while offline, too little memory, a folder that
is not a complete checkpoint. Each becomes a :class:`~voicebox.errors.ModelUnavailable` naming
the model, the reason and the fix, within seconds (no long hub retries).
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

from ..errors import ModelUnavailable
from .cuda_graphs import GraphedTalker
from .cuda_graphs import wanted as graphs_wanted
from .device import attention_implementation
from .hub import resolve_snapshot

log = logging.getLogger(__name__)

#: The environment variable that sets each size's checkpoint (named in messages).
SIZE_VARIABLES = {"0.6B": "VOICEBOX_TTS_MODEL", "1.7B": "VOICEBOX_TTS_MODEL_LARGE"}


def resolve_checkpoint(source: str, size: str) -> str:
    """A local directory for ``size``'s checkpoint ``source``, downloading it if needed and possible."""
    return resolve_snapshot(
        source, SIZE_VARIABLES[size], "TTS model",
        path_fix="Point it at a downloaded Qwen3-TTS checkpoint folder, or at a Hugging Face model id "
        "such as Qwen/Qwen3-TTS-12Hz-0.6B-Base.",
    )


def load_model(path: str, device: str, dtype_name: str, size: str) -> Any:
    """``Qwen3TTSModel.from_pretrained`` with voicebox's device, dtype and attention choices."""
    import torch

    with contextlib.redirect_stdout(io.StringIO()):  # qwen_tts prints a flash-attn banner
        from qwen_tts import Qwen3TTSModel
    device_map = "cuda:0" if device == "cuda" else device
    try:
        return Qwen3TTSModel.from_pretrained(
            path, device_map=device_map, dtype=getattr(torch, dtype_name), attn_implementation=attention_implementation()
        )
    except (MemoryError, torch.cuda.OutOfMemoryError) as exc:
        raise ModelUnavailable(
            f"Not enough memory to load the {size} TTS model on {device} ({exc}). "
            "Use the 0.6B size, unload Whisper, or set VOICEBOX_DEVICE=cpu."
        ) from None
    except Exception as exc:
        raise ModelUnavailable(
            f"The TTS model at {path} could not be loaded ({type(exc).__name__}: {exc}). "
            f"Check that {SIZE_VARIABLES[size]} points to a complete Qwen3-TTS Base checkpoint."
        ) from None


def capture_graphs(inner: Any, setting: str, device: str, dtype_name: str | None) -> tuple[GraphedTalker | None, str]:
    """On CUDA, faster-qwen3-tts's graphs over the loaded model, or ``None`` and why not."""
    ok, why = graphs_wanted(setting, device)
    if not ok:
        return None, why
    import torch

    try:
        graphs = GraphedTalker(inner, getattr(torch, dtype_name or "bfloat16"))
        graphs.capture()
        return graphs, why
    except Exception as exc:  # a driver, version or memory problem: the loop still works
        why = f"capturing CUDA graphs failed ({type(exc).__name__}: {exc})"
        log.warning("%s; using voicebox's decode loop", why)
        return None, why
