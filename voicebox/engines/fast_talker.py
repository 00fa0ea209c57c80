"""A hand-written decode loop for Qwen3-TTS's talker and code predictor.

Why this exists: the official ``Qwen3TTSForConditionalGeneration.generate`` runs one Hugging Face
``generate`` for the talker (one step per 80 ms frame) whose every step runs *another* ``generate``
for the code predictor (15 sequential one-token passes). Each of those 16 ``generate`` steps per
frame pays for the generic machinery: argument validation, logits-processor lists, causal-mask
construction, a growing ``DynamicCache``, and collecting every layer's hidden states
(``output_hidden_states=True``). For the 0.6B model on a 2-core CPU that is 10-15 % of a frame (the
rest is streaming the weights from memory, which :mod:`.quantize` addresses); on a GPU, where the
arithmetic is fast, the fixed cost per step is most of it.

This loop calls the same modules (the same weights, the same ``nn.Linear``/RMSNorm objects) with
preallocated key/value buffers, and does the logits processing itself. It reproduces the official
arithmetic op for op, so under greedy decoding it yields *the same codec tokens* (and, because it
draws random numbers in the same order with the same calls, the same tokens under sampling too):

* prompt: built by the official code itself (:func:`capture_talker_inputs` intercepts the
  arguments ``generate`` hands to ``talker.generate``), so both paths start from identical
  embeddings, attention mask, trailing text and pad embedding;
* attention: ``scaled_dot_product_attention`` exactly as ``transformers``' SDPA integration calls
  it (``enable_gqa`` without a mask, ``repeat_kv`` plus a boolean mask for a left-padded batch);
* talker logits: repetition penalty over the first-codebook tokens generated so far, end-of-speech
  blocked for the first ``min_new_tokens`` steps, ``suppress_tokens`` (the control ids), then
  temperature, top-k, top-p, softmax and ``multinomial`` - the ``transformers`` processor order;
* code predictor: temperature/top-k/top-p sampling or argmax, per pass, as its ``generate`` does.

The loop is device-agnostic (CPU, CUDA, MPS): nothing in it is CPU-specific, the buffers are
static (the shape a CUDA graph needs), and it synchronises once per frame (the end-of-speech
check). Linear layers are looked up through a table, so reduced-precision copies of the talker
and code-predictor layers (:mod:`voicebox.engines.quantize`) can be swapped in without touching
the original model, which the official path keeps using.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: joined projections a replacement table may hold instead (see :mod:`.quantize`)
JOINED_NAMES = ("qkv", "gate_up")
#: frames the talker's key/value buffers hold before they first grow
INITIAL_FRAMES = 256


class _Captured(Exception):
    """Raised inside the official ``generate`` once the talker's inputs are known."""


@dataclass
class TalkerInputs:
    """Everything the official code hands to ``talker.generate`` (one row per text)."""

    inputs_embeds: torch.Tensor  # (B, T, D), left-padded
    attention_mask: torch.Tensor  # (B, T), 0 on the left padding
    trailing_text_hidden: torch.Tensor  # (B, N, D): text still to be read, one per frame
    tts_pad_embed: torch.Tensor  # (1, 1, D): added once the trailing text is used up
    kwargs: dict[str, Any]  # sampling settings, eos id, suppress_tokens, max/min_new_tokens


def capture_talker_inputs(model: Any, **generate_kwargs: Any) -> TalkerInputs:
    """Run the official ``model.generate`` up to its ``talker.generate`` call and return its inputs.

    ``model`` is ``Qwen3TTSForConditionalGeneration`` (``Qwen3TTSModel.model``). The prompt
    (role tokens, language and speaker tags, the in-context reference, the text still to read) is
    therefore built by exactly the code the official path runs.
    """
    talker = model.talker
    box: dict[str, Any] = {}

    def intercept(**kwargs: Any) -> None:
        box.update(kwargs)
        raise _Captured

    talker.generate = intercept  # an instance attribute shadows the method, for this call only
    try:
        model.generate(**generate_kwargs)
    except _Captured:
        pass
    finally:
        with contextlib.suppress(AttributeError):
            del talker.generate
    if not box:
        raise RuntimeError("qwen_tts generate() returned without calling talker.generate()")
    return TalkerInputs(
        inputs_embeds=box.pop("inputs_embeds"),
        attention_mask=box.pop("attention_mask"),
        trailing_text_hidden=box.pop("trailing_text_hidden"),
        tts_pad_embed=box.pop("tts_pad_embed"),
        kwargs=box,
    )


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
    plus :data:`INITIAL_FRAMES` frames), so a long take does not reserve memory for its worst case.
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


def pick_token(scores: torch.Tensor, do_sample: bool) -> torch.Tensor:
    if do_sample:
        return torch.multinomial(F.softmax(scores, dim=-1), num_samples=1).squeeze(1)
    return torch.argmax(scores, dim=-1)


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
        owners = {"q_proj": attn, "k_proj": attn, "v_proj": attn, "o_proj": attn,
                  "gate_proj": mlp, "up_proj": mlp, "down_proj": mlp}
        for name in LINEAR_NAMES:
            setattr(self, name, linears.get(name) or getattr(owners[name], name))
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


class FastTalker:
    """Talker + code predictor decode loop over an already loaded ``Qwen3TTSForConditionalGeneration``.

    Args:
        model: ``Qwen3TTSModel.model`` (the weights are shared, never copied).
        linears: optional replacement linear layers, e.g. int8 copies; keys are
            ``"talker.<i>.<name>"``, ``"predictor.<i>.<name>"`` (a projection's name, or a joined
            ``qkv``/``gate_up``), ``"codec_head"`` and ``"lm_head.<j>"``. Missing keys use the
            model's own layers.
        profile: time the talker and the code predictor separately (adds a device sync per
            stage on CUDA; free on CPU).
    """

    def __init__(self, model: Any, linears: dict[str, Any] | None = None, profile: bool = True) -> None:
        self.model = model
        talker = model.talker
        self.talker = talker
        self.config = talker.config
        self.cp = talker.code_predictor
        self.cp_config = self.cp.config
        if not supported(model):
            raise ValueError("this Qwen3-TTS configuration is not supported by the fast decode loop")
        linears = linears or {}
        self.linears = linears
        self.t_layers = [
            _Layer(layer, {n: linears.get(f"talker.{i}.{n}") for n in (*LINEAR_NAMES, *JOINED_NAMES)})
            for i, layer in enumerate(talker.model.layers)
        ]
        self.c_layers = [
            _Layer(layer, {n: linears.get(f"predictor.{i}.{n}") for n in (*LINEAR_NAMES, *JOINED_NAMES)})
            for i, layer in enumerate(self.cp.model.layers[: self.cp_config.num_hidden_layers])
        ]
        self.codec_head = linears.get("codec_head") or talker.codec_head
        self.lm_heads = [linears.get(f"lm_head.{j}") or head for j, head in enumerate(self.cp.lm_head)]
        self.t_attn = talker.model.layers[0].self_attn
        self.c_attn = self.cp.model.layers[0].self_attn
        rope = self.config.rope_scaling or {}
        self.mrope_section = list(rope.get("mrope_section", []))
        self.mrope_interleaved = bool(rope.get("interleaved", False))
        self.groups = self.config.code_predictor_config.num_code_groups
        self.profile = profile
        self.stats = FrameStats()
        self._cp_rope: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    # ---- positions ------------------------------------------------------------------------------
    def _talker_rope(self, h: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for the talker's multimodal RoPE, already merged across sections (shape B,1,T,hd)."""
        cos, sin = self.talker.model.rotary_emb(h, positions)
        return self._merge_sections(cos), self._merge_sections(sin)

    def _merge_sections(self, x: torch.Tensor) -> torch.Tensor:
        section = self.mrope_section
        if self.mrope_interleaved:
            dim = x.shape[-1]
            half = x[..., : dim // 2]
            modality = len(section)
            merged = half[0].clone()
            for i, n in enumerate(section[1:], 1):
                merged[..., i : n * modality : modality] = half[i, ..., i : n * modality : modality]
            return torch.cat([merged] * 2, dim=-1).unsqueeze(1)
        doubled = section * 2
        return torch.cat([m[i % 3] for i, m in enumerate(x.split(doubled, dim=-1))], dim=-1).unsqueeze(1)

    def _predictor_rope(self, start: int, length: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (start, length)
        cached = self._cp_rope.get(key)
        if cached is None or cached[0].dtype != like.dtype or cached[0].device != like.device:
            positions = torch.arange(start, start + length, device=like.device).unsqueeze(0)
            cos, sin = self.cp.model.rotary_emb(like, positions)
            cached = (cos.unsqueeze(1), sin.unsqueeze(1))
            self._cp_rope[key] = cached
        return cached

    # ---- transformer stacks ----------------------------------------------------------------------
    @staticmethod
    def _stack(layers: list[_Layer], h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: _StaticKV,
               start: int, mask: torch.Tensor | None, attn: Any) -> torch.Tensor:
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
        return h

    def _sync(self, device: torch.device) -> None:
        if self.profile and device.type == "cuda":
            torch.cuda.synchronize(device)

    # ---- code predictor ----------------------------------------------------------------------------
    def _teach(self, token: torch.Tensor, forced: torch.Tensor | None, first: bool) -> torch.Tensor:
        """Teacher forcing (agreement measurements): count whether ``token`` matches, then use ``forced``."""
        if forced is None:
            return token
        same = int((token == forced).sum())
        for bucket in ((self.stats.agree_first, self.stats.agree_all) if first else (self.stats.agree_all,)):
            bucket[0] += same
            bucket[1] += int(token.numel())
        return forced

    def _predict_codes(self, past_hidden: torch.Tensor, token: torch.Tensor, cfg: SamplingConfig,
                       cache: _StaticKV, forced: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The 15 residual codebooks of one frame; returns (codes (B,15), summed frame embedding (B,1,D))."""
        cp = self.cp
        first = self.talker.model.codec_embedding(token.unsqueeze(1))  # (B,1,D)
        h = cp.small_to_mtp_projection(torch.cat((past_hidden, first), dim=1))
        cos, sin = self._predictor_rope(0, 2, h)
        h = self._stack(self.c_layers, h, cos, sin, cache, 0, None, self.c_attn)
        logits = self.lm_heads[0](_rms_norm(cp.model.norm, h))
        code = pick_token(process_logits(logits[:, -1].to(dtype=torch.float32), None, cfg, 0), cfg.do_sample)
        code = self._teach(code, None if forced is None else forced[:, 0], False)
        codes = [code]
        embeds = [first]
        for step in range(1, self.groups - 1):
            e = cp.model.codec_embedding[step - 1](code.unsqueeze(1))
            embeds.append(e)
            h = cp.small_to_mtp_projection(e)
            cos, sin = self._predictor_rope(step + 1, 1, h)
            h = self._stack(self.c_layers, h, cos, sin, cache, step + 1, None, self.c_attn)
            logits = self.lm_heads[step](_rms_norm(cp.model.norm, h))
            code = pick_token(process_logits(logits[:, -1].to(dtype=torch.float32), None, cfg, step), cfg.do_sample)
            code = self._teach(code, None if forced is None else forced[:, step], False)
            codes.append(code)
        embeds.append(cp.model.codec_embedding[self.groups - 2](code.unsqueeze(1)))
        return torch.stack(codes, dim=1), torch.cat(embeds, dim=1).sum(1, keepdim=True)

    # ---- the loop ------------------------------------------------------------------------------------
    def _configs(self, kwargs: dict[str, Any], vocab: int, device: torch.device) -> tuple[SamplingConfig, SamplingConfig]:
        suppress = kwargs.get("suppress_tokens") or []
        mask = None
        if suppress:
            mask = torch.isin(torch.arange(vocab, device=device), torch.tensor(suppress, device=device))
        eos = kwargs.get("eos_token_id")
        talker = SamplingConfig(
            do_sample=bool(kwargs.get("do_sample", True)),
            temperature=kwargs.get("temperature", 1.0),
            top_k=kwargs.get("top_k"),
            top_p=kwargs.get("top_p"),
            repetition_penalty=float(kwargs.get("repetition_penalty") or 1.0),
            eos_token_id=eos,
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

    @torch.inference_mode()
    def frames(self, inputs: TalkerInputs, max_new_tokens: int | None = None,
               teacher: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """Yield one (B, 16) tensor of codes per 80 ms frame as soon as it exists.

        Rows that emitted end-of-speech keep being computed (as in ``generate``) and yield the
        end-of-speech id in column 0 from then on; :meth:`generate` trims them. The generator
        returns when every row has ended or ``max_new_tokens - 1`` frames exist (the official
        path's count: its last sampled token never becomes a frame).

        ``teacher`` (B, F, 16): instead of its own choices, continue with these codes and count in
        ``stats`` how often its choice agreed (measures a reduced-precision path per decision,
        without one early difference changing everything after it).
        """
        kwargs = inputs.kwargs
        embeds = inputs.inputs_embeds
        device = embeds.device
        batch, length, _ = embeds.shape
        max_new = int(max_new_tokens or kwargs.get("max_new_tokens") or 4096)
        if teacher is not None:
            teacher = teacher.to(device)
            max_new = min(max_new, int(teacher.shape[1]) + 1)
        t_cfg, c_cfg = self._configs(kwargs, self.config.vocab_size, device)
        eos = t_cfg.eos_token_id
        stats = self.stats = FrameStats(prompt_tokens=int(length))
        clock = time.perf_counter

        mask2d = inputs.attention_mask.to(device)
        padded = bool((mask2d == 0).any())
        t_cache = _StaticKV(len(self.t_layers), batch, self.config.num_key_value_heads,
                            length + min(max_new, INITIAL_FRAMES), self.t_attn.head_dim, embeds)
        c_cache = _StaticKV(len(self.c_layers), batch, self.cp_config.num_key_value_heads, self.groups,
                            self.c_attn.head_dim, embeds)

        # prefill: positions as get_rope_index computes them (left padding does not advance them)
        started = clock()
        positions = mask2d.float().cumsum(-1) - 1
        positions = positions.masked_fill(mask2d == 0, 1)
        positions = positions.unsqueeze(0).expand(3, -1, -1)
        deltas = positions.max(0)[0].max(-1, keepdim=True)[0] + 1 - mask2d.sum(-1, keepdim=True)
        deltas = deltas - (1 - mask2d).sum(-1).unsqueeze(1)
        key_valid = torch.ones(batch, length + max_new, dtype=torch.bool, device=device) if padded else None
        if key_valid is not None:
            key_valid[:, :length] = mask2d.bool()
        mask = None
        if padded:
            causal = torch.arange(length, device=device)[:, None] >= torch.arange(length, device=device)[None, :]
            mask = (causal[None, None] & key_valid[:, None, None, :length]).expand(batch, 1, length, length)
        cos, sin = self._talker_rope(embeds, positions)
        h = self._stack(self.t_layers, embeds, cos, sin, t_cache, 0, mask, self.t_attn)
        h = _rms_norm(self.talker.model.norm, h)
        logits = self.codec_head(h)
        past_hidden = h[:, -1:, :]
        token = pick_token(process_logits(logits[:, -1].to(dtype=torch.float32), None, t_cfg, 0), t_cfg.do_sample)
        token = self._teach(token, None if teacher is None else teacher[:, 0, 0], True)
        history = token[:, None]
        unfinished = torch.ones(batch, dtype=torch.long, device=device)
        if eos is not None:
            unfinished = unfinished & (token != eos).long()
        self._sync(device)
        stats.prefill = clock() - started

        trailing = inputs.trailing_text_hidden
        pad_embed = inputs.tts_pad_embed
        for step in range(max_new - 1):
            if eos is not None and not bool(unfinished.any()):
                return
            started = clock()
            forced = None if teacher is None else teacher[:, step, 1:]
            codes, summed = self._predict_codes(past_hidden, token, c_cfg, c_cache, forced)
            self._sync(device)
            middle = clock()
            stats.code_predictor += middle - started
            frame = torch.cat((token[:, None], codes), dim=1)
            stats.frames += 1
            yield frame
            if step == max_new - 2:
                return  # the official loop samples one more first-codebook token that never becomes a frame
            started = clock()
            if step < trailing.shape[1]:
                x = summed + trailing[:, step].unsqueeze(1)
            else:
                x = summed + pad_embed
            cache_position = length + step
            t_cache.reserve(cache_position + 1)
            pos = (cache_position + deltas).view(1, batch, 1).expand(3, batch, 1)
            mask = None
            if padded:
                mask = key_valid[:, None, None, : cache_position + 1]
            cos, sin = self._talker_rope(x, pos)
            h = self._stack(self.t_layers, x, cos, sin, t_cache, cache_position, mask, self.t_attn)
            h = _rms_norm(self.talker.model.norm, h)
            logits = self.codec_head(h)
            past_hidden = h[:, -1:, :]
            scores = process_logits(logits[:, -1].to(dtype=torch.float32), history, t_cfg, history.shape[1])
            token = pick_token(scores, t_cfg.do_sample)
            token = self._teach(token, None if teacher is None else teacher[:, step + 1, 0], True)
            if eos is not None:
                token = token * unfinished + eos * (1 - unfinished)
                unfinished = unfinished & (token != eos).long()
            history = torch.cat([history, token[:, None]], dim=-1)
            self._sync(device)
            stats.talker += clock() - started

    def generate(self, inputs: TalkerInputs, max_new_tokens: int | None = None,
                 on_frame: Callable[[int, torch.Tensor], None] | None = None,
                 teacher: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Codec frames per row, cut at the first end-of-speech (what the official ``generate`` returns)."""
        frames = []
        for index, frame in enumerate(self.frames(inputs, max_new_tokens, teacher)):
            frames.append(frame)
            if on_frame is not None:
                on_frame(index, frame)
        eos = inputs.kwargs.get("eos_token_id")
        batch = inputs.inputs_embeds.shape[0]
        if not frames:
            return [inputs.inputs_embeds.new_zeros((0, self.groups), dtype=torch.long) for _ in range(batch)]
        codes = torch.stack(frames, dim=1)  # (B, frames, 16)
        out = []
        for row in codes:
            stop = (row[:, 0] == eos).nonzero() if eos is not None else row.new_zeros((0, 1))
            out.append(row[: int(stop[0, 0])] if len(stop) else row)
        return out


def supported(model: Any) -> bool:
    """Whether :class:`FastTalker` reproduces this model's official decode (no sliding windows,
    SDPA-compatible attention, the expected module layout)."""
    try:
        talker = model.talker
        cp = talker.code_predictor
        if getattr(talker.config, "sliding_window", None) is not None:
            return False
        if getattr(cp.config, "sliding_window", None) is not None:
            return False
        if any(t != "full_attention" for t in getattr(cp.config, "layer_types", ["full_attention"])):
            return False
        allowed = ("sdpa", "flash_attention_2", "eager")  # all compute softmax attention; sdpa is bit-exact
        if talker.config._attn_implementation not in allowed or cp.config._attn_implementation not in allowed:
            return False
        return hasattr(talker.model, "rotary_emb") and hasattr(cp.model, "rotary_emb") and len(cp.lm_head) > 0
    except AttributeError:
        return False
