"""Reduced-precision copies of the talker's and code predictor's linear layers (CPU only).

Why: on a CPU, decoding one frame is a chain of one-row matrix products (28 talker layers once,
5 code-predictor layers 15 times); they are limited by how fast the weights stream from memory,
about 6 GB per frame in fp32 for the 0.6B model. Storing the weights smaller is the only large
win left once the Python overhead is gone:

* ``fp16``: ``torch.ao`` dynamic quantisation to float16 weights - ``fbgemm`` keeps them as half
  floats and multiplies in fp32. Half the bytes, ~11-bit mantissas: on full-size weights it picked
  the same tokens as fp32 (see the README's Speed section).
* ``int8``: dynamic int8 quantisation with one scale per output channel; activations are quantised
  per call. A quarter of the bytes, visibly less precise; on this project's 2-core x86 machine it
  is no faster than ``fp16``.

Within a layer, the projections that read the same input are stored as one matrix: ``q/k/v``
become one ``qkv`` layer and ``gate/up`` one ``gate_up`` layer. Each output is still its own row's
dot product (fp16 rows and int8 per-channel scales do not depend on their neighbours), so the
numbers are the same as three and two separate layers, with fewer calls: about 5-15 % of a frame
on a 2-core CPU, where every call also pays a fixed cost.

The copies are handed to :class:`voicebox.engines.fast_talker.FastTalker` as replacements. The fp32
layers they copy are then released (:func:`release_originals`; 2.2 GB for the 0.6B model), because
nothing else runs them: the prompt builder uses the speaker encoder and the codec, and the prompt
capture stops before the talker's first layer. An engine that must still run the official path on
the same model (the benchmark, the agreement tests) keeps them. The codec
decoder and the speaker encoder stay in fp32 (the codec is sensitive to precision).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any, Iterator

import torch

from .talker_ops import LINEAR_PARTS


log = logging.getLogger(__name__)


KINDS = ("fp16", "int8")


def quantized_available() -> bool:
    """Whether dynamic quantised linear layers can run here (an x86 or ARM quantisation engine)."""
    try:
        engines = torch.backends.quantized.supported_engines
    except Exception:  # pragma: no cover - very old or stripped builds
        return False
    return any(e in engines for e in ("fbgemm", "x86", "qnnpack"))


def _engine() -> str:
    engines = torch.backends.quantized.supported_engines
    for name in ("fbgemm", "qnnpack"):  # fbgemm: x86 with AVX2; qnnpack: ARM
        if name in engines:
            return name
    return torch.backends.quantized.engine


def quantize_linear(module: torch.nn.Linear, kind: str = "int8") -> torch.nn.Module:
    """A dynamic-quantised copy of ``module`` (``int8``: per-channel int8 weights; ``fp16``: half
    weights, fp32 arithmetic); ``module`` is untouched."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
        from torch.ao.quantization import float16_dynamic_qconfig, per_channel_dynamic_qconfig

        module.qconfig = per_channel_dynamic_qconfig if kind == "int8" else float16_dynamic_qconfig
        try:
            return DynamicLinear.from_float(module)
        finally:
            with contextlib.suppress(AttributeError):
                del module.qconfig


def _joined(modules: list[torch.nn.Linear]) -> torch.nn.Linear:
    """One linear layer whose rows are the rows of ``modules`` in order (biases likewise)."""
    first = modules[0]
    joined = torch.nn.Linear(first.in_features, sum(m.out_features for m in modules),
                             bias=first.bias is not None, dtype=first.weight.dtype)
    joined.weight.data = torch.cat([m.weight.data for m in modules]).contiguous()
    if first.bias is not None:
        joined.bias.data = torch.cat([m.bias.data for m in modules]).contiguous()
    return joined


def layer_linears(layer: Any) -> list[tuple[str, torch.nn.Linear]]:
    """The fp32 linear layers the loop runs for one decoder layer, named as its table keys: q/k/v
    and gate/up joined into one matrix each (see the module docstring)."""
    attn, mlp = layer.self_attn, layer.mlp
    return [("qkv", _joined([attn.q_proj, attn.k_proj, attn.v_proj])), ("o_proj", attn.o_proj),
            ("gate_up", _joined([mlp.gate_proj, mlp.up_proj])), ("down_proj", mlp.down_proj)]


def loop_layers(model: Any) -> Iterator[tuple[str, int, Any]]:
    """``(stack, index, layer)`` for every decoder layer the fast loop runs: talker, then predictor."""
    talker = model.talker
    for prefix, layers in (("talker", talker.model.layers), ("predictor", talker.code_predictor.model.layers)):
        for i, layer in enumerate(layers):
            yield prefix, i, layer


def loop_heads(model: Any) -> list[tuple[str, Any, str]]:
    """``(table key, owner, attribute)`` of the output layers the loop runs (a ``ModuleList``'s
    children are attributes ``"0"``, ``"1"``, ...)."""
    talker = model.talker
    heads = talker.code_predictor.lm_head
    return [("codec_head", talker, "codec_head"), *((f"lm_head.{j}", heads, str(j)) for j in range(len(heads)))]


def reduced_linears(model: Any, kind: str = "fp16") -> dict[str, torch.nn.Module]:
    """``kind`` copies of every linear layer the fast loop runs per frame, keyed for ``FastTalker``:
    ``<stack>.<i>.qkv``, ``.o_proj``, ``.gate_up``, ``.down_proj`` for each talker and predictor
    layer, ``codec_head`` and ``lm_head.<j>``.

    ``model`` is ``Qwen3TTSForConditionalGeneration`` on the CPU, in float32.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    torch.backends.quantized.engine = _engine()
    table: dict[str, torch.nn.Module] = {}
    with torch.no_grad():
        for prefix, i, layer in loop_layers(model):
            for name, linear in layer_linears(layer):
                table[f"{prefix}.{i}.{name}"] = quantize_linear(linear, kind)
        for key, owner, name in loop_heads(model):
            table[key] = quantize_linear(getattr(owner, name), kind)
    log.info("%s copies of %d linear layers built (engine %s)", kind, len(table), torch.backends.quantized.engine)
    return table


class ReleasedLinear(torch.nn.Module):
    """Stands where an fp32 linear layer was once a reduced copy replaced it; its weights are freed.

    Calling it is a bug (something ran the official path on a model whose loop layers were
    released), so it fails loudly instead of computing with missing weights.
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(
            "this layer's fp32 weights were released after its reduced-precision copy was made; "
            "load the model with VOICEBOX_CPU_INT8=off to run the official path"
        )


def release_originals(model: Any) -> int:
    """Replace the fp32 linear layers that :func:`reduced_linears` copies with
    :class:`ReleasedLinear`, so their memory is freed; returns the bytes released."""
    places = [(owner, name) for _, owner, name in loop_heads(model)]
    for _, _, layer in loop_layers(model):
        places += [(getattr(layer, part), name) for name, part in LINEAR_PARTS.items()]
    freed = 0
    for owner, name in places:
        module = getattr(owner, name)
        if isinstance(module, torch.nn.Linear):
            freed += sum(p.numel() * p.element_size() for p in module.parameters())
            setattr(owner, name, ReleasedLinear(module))
    return freed


def table_bytes(table: dict[str, torch.nn.Module]) -> int:
    """Approximate memory held by the copies (their weights)."""
    total = 0
    for module in table.values():
        with contextlib.suppress(Exception):
            half = getattr(module._packed_params, "dtype", None) == torch.float16
            total += module.in_features * module.out_features * (2 if half else 1)
    return total
