"""The stateless pieces of voicebox's decode loop (:mod:`.fast_talker`).

What this module owns: everything one decode step needs that keeps no state between requests -

* the static key/value buffer (:class:`_StaticKV`) and one pass of a decoder stack over it
  (:func:`run_stack`), built from ``transformers``' RMSNorm/RoPE/SDPA arithmetic without its
  dispatch (:func:`_rms_norm`, :func:`_rotate_half`, :func:`_repeat_kv`, :func:`_attention`);
* the decoder-layer wrapper that resolves linear layers through a replacement table
  (:class:`_Layer`, :data:`LINEAR_NAMES`, :data:`JOINED_NAMES`);
* the logits processors and the token draw (:class:`SamplingConfig`, :func:`sampling_configs`,
  :func:`process_logits`, :func:`pick_token`; the draw takes an optional per-request
  ``torch.Generator``);
* the per-generation timing record (:class:`FrameStats`).

Why it is separate: these are the pieces that must reproduce the official arithmetic op for op
(and its random draws call for call), and they are easiest to read and check on their own;
:mod:`.fast_talker` keeps what is stateful or tied to the model's layout - capturing the official
prompt, the rotary positions, the code predictor's passes and the loop over frames. The names
other modules use are re-exported from :mod:`.fast_talker`, which stays the import path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

#: The linear layers of one decoder layer and the sub-module holding each (``self_attn``, ``mlp``).
LINEAR_PARTS = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
                "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
LINEAR_NAMES = tuple(LINEAR_PARTS)
#: joined projections a replacement table may hold instead (see :mod:`.quantize`)
JOINED_NAMES = ("qkv", "gate_up")


@dataclass
class SamplingConfig:
    """Logits processing of one ``generate`` call (talker or code predictor)."""

    do_sample: bool
    temperature: float
    top_k: int | None
    top_p: float | None
    repetition_penalty: float = 1.0
    eos_token_id: int | None = None
    min_new_tokens: int = 0
    suppress_mask: torch.Tensor | None = None  # (V,) bool


@dataclass
class FrameStats:
    """Where the time of the last generation went (seconds); filled when ``profile`` is on."""

    prefill: float = 0.0
    talker: float = 0.0
    code_predictor: float = 0.0
    frames: int = 0
    prompt_tokens: int = 0
    #: teacher forcing only: [matches, decisions] for the first codebook and for all 16
    agree_first: list[int] = field(default_factory=lambda: [0, 0])
    agree_all: list[int] = field(default_factory=lambda: [0, 0])
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        out = {
            "prefill": round(self.prefill, 4), "talker": round(self.talker, 4),
            "code_predictor": round(self.code_predictor, 4), "frames": self.frames,
            "prompt_tokens": self.prompt_tokens, **self.extra,
        }
        if self.agree_all[1]:
            out["agree_first"] = round(self.agree_first[0] / max(self.agree_first[1], 1), 4)
            out["agree_all"] = round(self.agree_all[0] / self.agree_all[1], 4)
        return out


class _StaticKV:
    """Preallocated key/value buffers for every layer of one transformer stack.

    Writes go into place; reads are views of the filled prefix. When a generation outgrows the
    buffers they are reallocated at twice the size (rare: the first allocation covers the prompt
    plus :data:`.fast_talker.INITIAL_FRAMES` frames), so a long take does not reserve memory for its worst case.
    """

    def __init__(self, layers: int, batch: int, heads: int, length: int, head_dim: int, like: torch.Tensor) -> None:
        shape = (layers, batch, heads, length, head_dim)
        self.k = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.v = torch.zeros(shape, dtype=like.dtype, device=like.device)

    def reserve(self, end: int) -> None:
        capacity = self.k.shape[3]
        if end <= capacity:
            return
        size = max(end, 2 * capacity)
        for name in ("k", "v"):
            old = getattr(self, name)
            grown = old.new_zeros(*old.shape[:3], size, old.shape[4])
            grown[:, :, :, :capacity] = old
            setattr(self, name, grown)

    def write(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = start + k.shape[2]
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


def _rms_norm(norm: Any, x: torch.Tensor) -> torch.Tensor:
    """``Qwen3TTSRMSNorm.forward`` without its two dtype conversions when they are no-ops (fp32):
    the same arithmetic, ~400 fewer dispatcher calls per frame."""
    if x.dtype != torch.float32:
        return norm(x)
    return norm.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    if groups == 1:
        return x
    b, h, t, d = x.shape
    return x[:, :, None].expand(b, h, groups, t, d).reshape(b, h * groups, t, d)


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, groups: int, scale: float,
               mask: torch.Tensor | None) -> torch.Tensor:
    """``transformers``' SDPA integration, minus its dispatch: same kernel, same arguments."""
    extra: dict[str, Any] = {}
    if groups > 1:
        if mask is None and k.shape[-1] == v.shape[-1] <= 256:
            extra["enable_gqa"] = True
        else:
            k, v = _repeat_kv(k, groups), _repeat_kv(v, groups)
    causal = q.shape[2] > 1 and mask is None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, scale=scale, is_causal=causal, **extra)
    return out.transpose(1, 2).contiguous()


def process_logits(scores: torch.Tensor, history: torch.Tensor | None, cfg: SamplingConfig, generated: int) -> torch.Tensor:
    """The ``transformers`` logits processors that the official calls enable, in their order."""
    if cfg.repetition_penalty != 1.0 and history is not None and history.shape[1] > 0:
        picked = torch.gather(scores, 1, history)
        picked = torch.where(picked < 0, picked * cfg.repetition_penalty, picked / cfg.repetition_penalty)
        scores = scores.scatter(1, history, picked)
    if cfg.eos_token_id is not None and generated < cfg.min_new_tokens:
        scores = scores.clone()
        scores[:, cfg.eos_token_id] = -float("inf")
    if cfg.suppress_mask is not None:
        scores = torch.where(cfg.suppress_mask, -float("inf"), scores)
    if not cfg.do_sample:
        return scores
    if cfg.temperature is not None and cfg.temperature != 1.0:
        scores = scores / cfg.temperature
    if cfg.top_k is not None and cfg.top_k != 0:
        k = min(cfg.top_k, scores.size(-1))
        scores = scores.masked_fill(scores < torch.topk(scores, k)[0][..., -1, None], -float("inf"))
    if cfg.top_p is not None and cfg.top_p < 1.0:
        ordered, order = torch.sort(scores, descending=False)
        cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative <= (1 - cfg.top_p)
        drop[..., -1:] = 0
        scores = scores.masked_fill(drop.scatter(1, order, drop), -float("inf"))
    return scores


def pick_token(scores: torch.Tensor, do_sample: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row: a ``multinomial`` draw from ``softmax(scores)`` when sampling, else argmax.

    ``generator`` is the random source of the draw (it must live on ``scores``' device); ``None``
    uses torch's process-wide generator, which is what the official ``generate`` draws from.
    """
    if do_sample:
        return torch.multinomial(F.softmax(scores, dim=-1), num_samples=1, generator=generator).squeeze(1)
    return torch.argmax(scores, dim=-1)


def sampling_configs(kwargs: dict[str, Any], vocab: int, device: torch.device) -> tuple[SamplingConfig, SamplingConfig]:
    """(talker, code predictor) settings from the keyword arguments the official code hands to
    ``talker.generate`` (``subtalker_*`` are the code predictor's)."""
    suppress = kwargs.get("suppress_tokens") or []
    mask = None
    if suppress:
        mask = torch.isin(torch.arange(vocab, device=device), torch.tensor(suppress, device=device))
    talker = SamplingConfig(
        do_sample=bool(kwargs.get("do_sample", True)),
        temperature=kwargs.get("temperature", 1.0),
        top_k=kwargs.get("top_k"),
        top_p=kwargs.get("top_p"),
        repetition_penalty=float(kwargs.get("repetition_penalty") or 1.0),
        eos_token_id=kwargs.get("eos_token_id"),
        min_new_tokens=max(int(kwargs.get("min_new_tokens") or 0), int(kwargs.get("min_length") or 0)),
        suppress_mask=mask,
    )
    predictor = SamplingConfig(
        do_sample=bool(kwargs.get("subtalker_dosample", True)),
        temperature=kwargs.get("subtalker_temperature", 1.0),
        top_k=kwargs.get("subtalker_top_k"),
        top_p=kwargs.get("subtalker_top_p"),
    )
    return talker, predictor


class _Layer:
    """One decoder layer's pieces, with its linear layers resolved through a table.

    A table may hold joined projections (``qkv``: q, k and v rows in one matrix; ``gate_up``:
    gate and up), which replace the separate ones; ``qkv_sizes``/``gate_up_sizes`` split them.
    """

    __slots__ = ("attn", "ln1", "ln2", "q_norm", "k_norm", "act", "q_proj", "k_proj", "v_proj", "o_proj",
                 "gate_proj", "up_proj", "down_proj", "qkv", "qkv_sizes", "gate_up", "gate_up_sizes")

    def __init__(self, layer: Any, linears: dict[str, Any] | None) -> None:
        linears = linears or {}
        attn, mlp = layer.self_attn, layer.mlp
        self.attn = attn
        self.ln1 = layer.input_layernorm
        self.ln2 = layer.post_attention_layernorm
        self.q_norm = attn.q_norm
        self.k_norm = attn.k_norm
        self.act = mlp.act_fn
        for name, part in LINEAR_PARTS.items():
            setattr(self, name, linears.get(name) or getattr(getattr(layer, part), name))
        self.qkv = linears.get("qkv")
        self.qkv_sizes = [attn.q_proj.out_features, attn.k_proj.out_features, attn.v_proj.out_features]
        self.gate_up = linears.get("gate_up")
        self.gate_up_sizes = [mlp.gate_proj.out_features, mlp.up_proj.out_features]

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.qkv is not None:
            q, k, v = self.qkv(x).split(self.qkv_sizes, dim=-1)
            return q, k, v
        return self.q_proj(x), self.k_proj(x), self.v_proj(x)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up is not None:
            gate, up = self.gate_up(x).split(self.gate_up_sizes, dim=-1)
            return self.down_proj(self.act(gate) * up)
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


def run_stack(layers: list[_Layer], h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: _StaticKV,
              start: int, mask: torch.Tensor | None, attn: Any,
              note: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """One pass of a decoder stack over ``h`` (B, T, D) at positions ``start..start+T``: the
    decoder layers' own arithmetic, keys and values written into ``cache``. ``attn`` is any of the
    stack's attention modules (for its head size, grouping and scale). ``note(layer, h)``, when
    given, sees each layer's output (the quality guard's layer-by-layer comparison)."""
    batch, length = h.shape[0], h.shape[1]
    head_dim = attn.head_dim
    groups = attn.num_key_value_groups
    scale = attn.scaling
    for index, layer in enumerate(layers):
        residual = h
        x = _rms_norm(layer.ln1, h)
        q, k, v = layer.project_qkv(x)
        q = _rms_norm(layer.q_norm, q.view(batch, length, -1, head_dim)).transpose(1, 2)
        k = _rms_norm(layer.k_norm, k.view(batch, length, -1, head_dim)).transpose(1, 2)
        v = v.view(batch, length, -1, head_dim).transpose(1, 2)
        q = (q * cos) + (_rotate_half(q) * sin)
        k = (k * cos) + (_rotate_half(k) * sin)
        keys, values = cache.write(index, start, k, v)
        out = _attention(q, keys, values, groups, scale, mask)
        out = out.reshape(batch, length, -1).contiguous()
        h = residual + layer.o_proj(out)
        residual = h
        x = _rms_norm(layer.ln2, h)
        h = residual + layer.mlp(x)
        if note is not None:
            note(index, h)
    return h
