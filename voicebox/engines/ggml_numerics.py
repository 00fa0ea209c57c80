"""The GGML engine's arithmetic, reproduced in voicebox's torch loop, so one guard judges both.

Why: qwentts.cpp hands Python audio only, never a hidden state or a logit, so the quality guard
(:mod:`.loop_guard`) cannot look inside it. What makes its numbers differ from fp32 is known and
small in kind, and can be reproduced on the torch side exactly where it matters:

* **Weights as the engine reads them.** Every tensor is taken from the very GGUF file the engine
  loads and dequantised with ``gguf``'s reference dequantiser (``Q8_0``; ``Q4_K`` and ``Q6_K`` for
  ``Q4_K_M``; ``F16``), then put where the checkpoint's tensor was: the loop's linear layers,
  the output heads, the codec and text embeddings, the text projection.
* **Activations rounded for the dot products.** GGML's CPU kernels do not multiply a quantised
  weight by float activations: for a ``Q8_0`` weight the input row is first quantised to ``Q8_0``
  (blocks of 32, one fp16 scale each), for the K-quants to ``Q8_K`` (blocks of 256, an fp32
  scale), for an ``F16`` weight to fp16. :class:`GGMLLinear` does the same rounding.

Not reproduced: the order of additions inside GGML's SIMD dot products and any fp16 rounding of
its attention cache. Both are rounding of fp32-sized or fp16-sized steps, far below the weight and
activation quantisation above (bench/results/loop_guard_cpu.json shows fp16 weights alone stay
within 1e-11 of fp32), so the guard's verdict is the quantisation's.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .gguf_layout import TALKER_RULES, rename
from .quantize import loop_heads, loop_layers
from .talker_ops import LINEAR_PARTS

#: (block size, fp16 scale) of the activation rounding GGML's CPU dot product uses per weight type.
_ACTIVATION = {"Q8_0": (32, True), "Q4_K": (256, False), "Q5_K": (256, False), "Q6_K": (256, False)}


def round_activations(x: torch.Tensor, weight_type: str) -> torch.Tensor:
    """``x`` as GGML's CPU kernels see it before a dot product with a ``weight_type`` weight:
    symmetric 8-bit blocks (``Q8_0`` / ``Q8_K``), fp16, or unchanged for F32."""
    if weight_type in ("F16", "BF16"):
        half = torch.float16 if weight_type == "F16" else torch.bfloat16
        return x.to(half).to(x.dtype)
    if weight_type not in _ACTIVATION:
        return x
    block, fp16_scale = _ACTIVATION[weight_type]
    shape = x.shape
    blocks = x.reshape(-1, shape[-1] // block, block).float()
    scale = blocks.abs().amax(-1, keepdim=True) / 127.0
    inverse = torch.where(scale == 0, torch.zeros_like(scale), 1.0 / scale)
    scaled = blocks * inverse  # codes from the fp32 scale, rounded half away from zero (roundf)
    codes = torch.clamp(torch.sign(scaled) * torch.floor(scaled.abs() + 0.5), -128, 127)
    if fp16_scale:  # Q8_0 stores its scale in fp16, and the dot product reads that
        scale = scale.to(torch.float16).float()
    return (codes * scale).reshape(shape).to(x.dtype)


class GGMLLinear(torch.nn.Module):
    """A linear layer with a GGUF weight (dequantised) and GGML's activation rounding."""

    def __init__(self, weight: torch.Tensor, weight_type: str, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight, requires_grad=False)
        self.bias = None if bias is None else torch.nn.Parameter(bias, requires_grad=False)
        self.weight_type = weight_type
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(round_activations(x, self.weight_type), self.weight, self.bias)


class TalkerGGUF:
    """The tensors of a talker GGUF file, found by the checkpoint's own names."""

    def __init__(self, path: Path | str) -> None:
        from gguf import GGUFReader

        self.path = Path(path)
        self._tensors = {tensor.name: tensor for tensor in GGUFReader(str(path)).tensors}

    def find(self, checkpoint_name: str) -> Any | None:
        """The GGUF tensor stored for checkpoint tensor ``checkpoint_name`` (``None``: not stored)."""
        try:
            name = rename(checkpoint_name, TALKER_RULES)
        except KeyError:
            return None
        return None if name is None else self._tensors.get(name)

    def weight(self, checkpoint_name: str, like: torch.Tensor) -> tuple[torch.Tensor, str] | None:
        """(the dequantised weight shaped ``like``, its GGML type name), or ``None``."""
        from gguf import quants

        tensor = self.find(checkpoint_name)
        if tensor is None:
            return None
        kind = tensor.tensor_type.name
        values = np.asarray(quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        return torch.from_numpy(values.reshape(tuple(like.shape)).copy()), kind


def ggml_linears(model: Any, gguf: TalkerGGUF) -> dict[str, torch.nn.Module]:
    """The loop's linear layers as the GGML engine computes them, keyed like
    :func:`.quantize.reduced_linears` (separate projections, no joined ones): ``model`` is the
    float32 ``Qwen3TTSForConditionalGeneration`` whose checkpoint ``gguf`` was converted from."""
    names = {id(module): name for name, module in model.named_modules()}

    def converted(linear: torch.nn.Linear) -> GGMLLinear:
        found = gguf.weight(f"{names[id(linear)]}.weight", linear.weight)
        if found is None:
            raise ValueError(f"{gguf.path.name} has no tensor for {names[id(linear)]}")
        return GGMLLinear(*found, bias=linear.bias)

    table: dict[str, torch.nn.Module] = {}
    for stack, i, layer in loop_layers(model):
        for name, part in LINEAR_PARTS.items():
            table[f"{stack}.{i}.{name}"] = converted(getattr(getattr(layer, part), name))
    for key, owner, attribute in loop_heads(model):
        table[key] = converted(getattr(owner, attribute))
    return table


@contextlib.contextmanager
def ggml_weights(model: Any, gguf: TalkerGGUF) -> Iterator[int]:
    """Within the block, every other talker tensor the GGUF file stores below F32 (embeddings,
    text projection) holds the value the GGML engine reads; restored on exit. Yields how many
    tensors were swapped."""
    saved: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
    try:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if not name.startswith("talker.") or ".layers." in name or "lm_head" in name or "codec_head" in name:
                    continue
                found = gguf.weight(name, parameter)
                if found is None or found[1] == "F32":
                    continue
                saved.append((parameter, parameter.detach().clone()))
                parameter.copy_(found[0].to(parameter.dtype))
        yield len(saved)
    finally:
        with torch.no_grad():
            for parameter, value in saved:
                parameter.copy_(value)
