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

Random draws come from torch's global generator, as in the official path, unless the caller hands
:meth:`FastTalker.frames`/:meth:`FastTalker.generate` a ``torch.Generator`` of its own: then a
seeded take is reproducible even while other requests draw random numbers in between.

The loop is device-agnostic (CPU, CUDA, MPS): nothing in it is CPU-specific, the buffers are
static (the shape a CUDA graph needs), and it synchronises once per frame (the end-of-speech
check). Linear layers are looked up through a table, so reduced-precision copies of the talker
and code-predictor layers (:mod:`voicebox.engines.quantize`) can be swapped in without touching
the original model, which the official path keeps using.

This module owns the stateful, model-specific part: :func:`capture_talker_inputs`, the rotary
positions, the code predictor's 15 passes and the loop over frames (:class:`FastTalker`), and
:func:`supported`. The stateless pieces (key/value buffers, attention, logits processing, the
token draw, the layer wrapper, :class:`FrameStats`) live in :mod:`.talker_ops` and are
re-exported here, so ``voicebox.engines.fast_talker`` stays the one import path.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .talker_ops import (
    JOINED_NAMES,
    LINEAR_NAMES,
    FrameStats,
    SamplingConfig,
    _Layer,
    _rms_norm,
    _StaticKV,
    pick_token,
    process_logits,
    run_stack,
    sampling_configs,
)

__all__ = [  # what other modules import from here (the stateless pieces live in .talker_ops)
    "INITIAL_FRAMES", "JOINED_NAMES", "LINEAR_NAMES", "FastTalker", "FrameStats", "SamplingConfig",
    "TalkerInputs", "capture_talker_inputs", "pick_token", "process_logits", "supported",
]

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
        #: the quality guard's recorder (:mod:`.loop_guard`): ``{kind: [tensor per decision]}``
        self.trace: dict[str, list[torch.Tensor]] | None = None
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

    def _sync(self, device: torch.device) -> None:
        if self.profile and device.type == "cuda":
            torch.cuda.synchronize(device)

    # ---- code predictor ----------------------------------------------------------------------------
    def _note(self, kind: str, value: torch.Tensor) -> None:
        """Keep a copy of ``value`` (B, N) for the quality guard when it is recording."""
        if self.trace is not None:
            self.trace.setdefault(kind, []).append(value.detach().to(torch.float32).cpu().clone())

    def _layer_note(self) -> Callable[[int, torch.Tensor], None] | None:
        """While the guard records: note each talker layer's output at the last position
        (``talker_layer.<i>``), so a drift can be placed in the layer where it starts."""
        if self.trace is None:
            return None
        return lambda index, h: self._note(f"talker_layer.{index}", h[:, -1])

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
                       cache: _StaticKV, forced: torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The 15 residual codebooks of one frame; returns (codes (B,15), summed frame embedding (B,1,D)).
        Sampled codes are drawn from ``generator`` (``None``: torch's global generator)."""
        cp = self.cp
        first = self.talker.model.codec_embedding(token.unsqueeze(1))  # (B,1,D)
        h = cp.small_to_mtp_projection(torch.cat((past_hidden, first), dim=1))
        cos, sin = self._predictor_rope(0, 2, h)
        h = run_stack(self.c_layers, h, cos, sin, cache, 0, None, self.c_attn)
        logits = self.lm_heads[0](_rms_norm(cp.model.norm, h))
        self._note("predictor_logits", logits[:, -1])
        code = pick_token(process_logits(logits[:, -1].to(dtype=torch.float32), None, cfg, 0), cfg.do_sample, generator)
        code = self._teach(code, None if forced is None else forced[:, 0], False)
        codes = [code]
        embeds = [first]
        for step in range(1, self.groups - 1):
            e = cp.model.codec_embedding[step - 1](code.unsqueeze(1))
            embeds.append(e)
            h = cp.small_to_mtp_projection(e)
            cos, sin = self._predictor_rope(step + 1, 1, h)
            h = run_stack(self.c_layers, h, cos, sin, cache, step + 1, None, self.c_attn)
            logits = self.lm_heads[step](_rms_norm(cp.model.norm, h))
            self._note("predictor_logits", logits[:, -1])
            scores = process_logits(logits[:, -1].to(dtype=torch.float32), None, cfg, step)
            code = pick_token(scores, cfg.do_sample, generator)
            code = self._teach(code, None if forced is None else forced[:, step], False)
            codes.append(code)
        embeds.append(cp.model.codec_embedding[self.groups - 2](code.unsqueeze(1)))
        return torch.stack(codes, dim=1), torch.cat(embeds, dim=1).sum(1, keepdim=True)

    # ---- the loop ------------------------------------------------------------------------------------
    @torch.inference_mode()
    def frames(self, inputs: TalkerInputs, max_new_tokens: int | None = None,
               teacher: torch.Tensor | None = None, *,
               generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """Yield one (B, 16) tensor of codes per 80 ms frame as soon as it exists.

        Rows that emitted end-of-speech keep being computed (as in ``generate``) and yield the
        end-of-speech id in column 0 from then on; :meth:`generate` trims them. The generator
        returns when every row has ended or ``max_new_tokens - 1`` frames exist (the official
        path's count: its last sampled token never becomes a frame).

        ``teacher`` (B, F, 16): instead of its own choices, continue with these codes and count in
        ``stats`` how often its choice agreed (measures a reduced-precision path per decision,
        without one early difference changing everything after it).

        ``generator``: the random source of every sampled token, the talker's first codebook and
        the code predictor's 15 alike, so a seeded take depends on its own generator only, not on
        whatever else draws random numbers meanwhile (another request interleaved with this one).
        It must live on the inputs' device (``torch.Generator(device=...)``). ``None`` draws from
        torch's global generator, as the official ``generate`` does; the draws are the same calls
        in the same order either way, so a generator seeded with ``s`` gives the tokens that
        ``torch.manual_seed(s)`` gives without one (on CPU, where both are the same algorithm).
        """
        kwargs = inputs.kwargs
        embeds = inputs.inputs_embeds
        device = embeds.device
        if generator is not None and torch.device(generator.device).type != device.type:
            raise ValueError(f"the generator is on {generator.device}, the inputs are on {device}")
        batch, length, _ = embeds.shape
        max_new = int(max_new_tokens or kwargs.get("max_new_tokens") or 4096)
        if teacher is not None:
            teacher = teacher.to(device)
            max_new = min(max_new, int(teacher.shape[1]) + 1)
        t_cfg, c_cfg = sampling_configs(kwargs, self.config.vocab_size, device)
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
        h = run_stack(self.t_layers, embeds, cos, sin, t_cache, 0, mask, self.t_attn, self._layer_note())
        h = _rms_norm(self.talker.model.norm, h)
        logits = self.codec_head(h)
        past_hidden = h[:, -1:, :]
        self._note("talker_hidden", h[:, -1])
        self._note("talker_logits", logits[:, -1])
        scores = process_logits(logits[:, -1].to(dtype=torch.float32), None, t_cfg, 0)
        token = pick_token(scores, t_cfg.do_sample, generator)
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
            codes, summed = self._predict_codes(past_hidden, token, c_cfg, c_cache, forced, generator)
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
            h = run_stack(self.t_layers, x, cos, sin, t_cache, cache_position, mask, self.t_attn,
                          self._layer_note())
            h = _rms_norm(self.talker.model.norm, h)
            logits = self.codec_head(h)
            past_hidden = h[:, -1:, :]
            self._note("talker_hidden", h[:, -1])
            self._note("talker_logits", logits[:, -1])
            scores = process_logits(logits[:, -1].to(dtype=torch.float32), history, t_cfg, history.shape[1])
            token = pick_token(scores, t_cfg.do_sample, generator)
            token = self._teach(token, None if teacher is None else teacher[:, step + 1, 0], True)
            if eos is not None:
                token = token * unfinished + eos * (1 - unfinished)
                unfinished = unfinished & (token != eos).long()
            history = torch.cat([history, token[:, None]], dim=-1)
            self._sync(device)
            stats.talker += clock() - started

    def generate(self, inputs: TalkerInputs, max_new_tokens: int | None = None,
                 on_frame: Callable[[int, torch.Tensor], None] | None = None,
                 teacher: torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Codec frames per row, cut at the first end-of-speech (what the official ``generate`` returns).

        The arguments are those of :meth:`frames`; ``generator`` (optional, on the inputs' device)
        is the random source of every sampled token, ``None`` meaning torch's global generator.
        """
        frames = []
        for index, frame in enumerate(self.frames(inputs, max_new_tokens, teacher, generator=generator)):
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
