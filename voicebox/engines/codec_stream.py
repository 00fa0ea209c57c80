"""Incremental codec decoding: every call turns only the *new* codec frames into audio.

The Qwen3-TTS 12 Hz codec decoder is causal end to end: a per-frame codebook lookup, causal
convolutions (left padding only), a transformer with a 72-frame sliding causal window, causal
transposed convolutions and pointwise activations. So instead of decoding a window again and
again (the official path decodes the whole reference on every call; upstream's ``chunked_decode``
and voicebox's one-shot :meth:`TTSEngine.decode` re-decode 25 frames of left context), this
module carries the decoder's state from one call to the next:

* each causal convolution keeps the last ``kernel - 1`` samples of its input (the zeros of its
  left padding at the start);
* each causal transposed convolution keeps the input frames whose kernel overlaps new output;
* the transformer keeps its key/value cache (``transformers``' ``DynamicCache``, which already
  trims sliding-window layers).

The audio of the new frames is therefore the audio a single decode of the whole sequence gives
(to float rounding), with no seams between pieces and nothing to crossfade. A voice's reference
codes prime the state once (the same 25-frame left context :meth:`TTSEngine.decode` uses); the
primed state is reusable, so a cached voice never decodes its reference again.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

#: reference frames fed through the transformer when priming (as ``TTSEngine.decode`` uses)
PRIME_FRAMES = 25


class CodecStream:
    """Stateful decoder over ``speech_tokenizer.model.decoder`` (a ``Qwen3TTSTokenizerV2Decoder``).

    Usage: ``stream = CodecStream(decoder); stream.prime(ref_codes); audio = stream.push(codes)``
    repeatedly; :meth:`snapshot`/:meth:`restore` copy the state (to reuse a primed voice).
    """

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self.samples_per_frame = int(decoder.total_upsample)
        self._conv: dict[int, torch.Tensor] = {}
        self._kv: Any = None
        self._modules = self._classify(decoder)
        self.frames_decoded = 0

    # ---- state ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"conv": {k: v.clone() for k, v in self._conv.items()}, "kv": copy.deepcopy(self._kv),
                "frames": self.frames_decoded}

    def restore(self, state: dict[str, Any]) -> "CodecStream":
        self._conv = {k: v.clone() for k, v in state["conv"].items()}
        self._kv = copy.deepcopy(state["kv"])
        self.frames_decoded = state["frames"]
        return self

    def reset(self) -> None:
        self._conv, self._kv, self.frames_decoded = {}, None, 0

    # ---- decoding ------------------------------------------------------------------------------
    @torch.inference_mode()
    def prime(self, ref_codes: torch.Tensor | None, frames: int = PRIME_FRAMES) -> None:
        """Feed the tail of a reference (T x 16 codes) as left context; its audio is discarded.

        The transformer sees the last ``frames`` reference frames; the convolutions only the last
        few (their receptive field), which gives them exactly the state a longer run would.
        """
        self.reset()
        if ref_codes is None or int(ref_codes.shape[0]) == 0:
            return
        tail = ref_codes[-frames:]
        hidden = self._to_transformer_output(tail)
        keep = min(int(hidden.shape[-1]), self.conv_context_frames())
        self._conv_stack(hidden[..., -keep:])
        self.frames_decoded = 0

    @torch.inference_mode()
    def push(self, codes: torch.Tensor) -> torch.Tensor:
        """Audio (1-D float tensor, ``len(codes) * samples_per_frame`` samples) for ``codes`` (n x 16)."""
        if codes is None or int(codes.shape[0]) == 0:
            return torch.zeros(0)
        hidden = self._to_transformer_output(codes)
        wav = self._conv_stack(hidden)
        self.frames_decoded += int(codes.shape[0])
        return wav.reshape(-1)

    def _to_transformer_output(self, codes: torch.Tensor) -> torch.Tensor:
        dec = self.decoder
        frames = torch.clamp(codes, min=0).T.unsqueeze(0).long().to(self._device())
        hidden = dec.quantizer.decode(frames)
        hidden = self._run(dec.pre_conv, hidden).transpose(1, 2)
        out = dec.pre_transformer(inputs_embeds=hidden, past_key_values=self._kv, use_cache=True)
        self._kv = out.past_key_values
        return out.last_hidden_state.permute(0, 2, 1)

    def _conv_stack(self, hidden: torch.Tensor) -> torch.Tensor:
        for blocks in self.decoder.upsample:
            for block in blocks:
                hidden = self._run(block, hidden)
        wav = hidden
        for block in self.decoder.decoder:
            wav = self._run(block, wav)
        return wav.clamp(min=-1, max=1)

    def _device(self) -> torch.device:
        return next(self.decoder.parameters()).device

    # ---- stateful versions of the decoder's causal blocks ---------------------------------------
    @staticmethod
    def _classify(decoder: Any) -> dict[str, type]:
        from qwen_tts.core.tokenizer_12hz import modeling_qwen3_tts_tokenizer_v2 as m

        return {
            "conv": m.Qwen3TTSTokenizerV2CausalConvNet,
            "transconv": m.Qwen3TTSTokenizerV2CausalTransConvNet,
            "convnext": m.Qwen3TTSTokenizerV2ConvNeXtBlock,
            "residual": m.Qwen3TTSTokenizerV2DecoderDecoderResidualUnit,
            "block": m.Qwen3TTSTokenizerV2DecoderDecoderBlock,
        }

    def _run(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        kinds = self._modules
        if isinstance(module, kinds["conv"]):
            return self._causal_conv(module, x)
        if isinstance(module, kinds["transconv"]):
            return self._causal_transconv(module, x)
        if isinstance(module, kinds["convnext"]):
            residual = x
            h = self._causal_conv(module.dwconv, x).permute(0, 2, 1)
            h = module.pwconv2(module.act(module.pwconv1(module.norm(h))))
            h = (module.gamma * h).permute(0, 2, 1)
            return residual + h
        if isinstance(module, kinds["residual"]):
            residual = x
            h = self._causal_conv(module.conv1, module.act1(x))
            h = self._causal_conv(module.conv2, module.act2(h))
            return h + residual
        if isinstance(module, kinds["block"]):
            for child in module.block:
                x = self._run(child, x)
            return x
        return module(x)  # pointwise: SnakeBeta

    def _causal_conv(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        if module.stride != 1:
            raise ValueError("strided causal convolutions are not used by this decoder")
        pad = int(module.padding)
        if pad == 0:
            return module.conv(x).contiguous()
        return module.conv(self._with_history(module, x, pad)).contiguous()

    def _causal_transconv(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        conv = module.conv
        kernel, stride = int(conv.kernel_size[0]), int(conv.stride[0])
        keep = math.ceil(kernel / stride) - 1  # earlier input frames whose kernels reach new output
        n = int(x.shape[-1])
        if keep == 0:
            out = conv(x)
            return out[..., : n * stride].contiguous()
        out = conv(self._with_history(module, x, keep))
        return out[..., keep * stride : (keep + n) * stride].contiguous()

    def _with_history(self, module: Any, x: torch.Tensor, keep: int) -> torch.Tensor:
        """``x`` with the last ``keep`` input steps this module saw before it (zeros at the start,
        as its left padding would be); remembers the new last ``keep`` steps for the next call."""
        state = self._conv.get(id(module))
        if state is None:
            state = x.new_zeros(x.shape[0], x.shape[1], keep)
        joined = torch.cat([state, x], dim=-1)
        self._conv[id(module)] = joined[..., -keep:].clone()
        return joined

    # ---- receptive field --------------------------------------------------------------------------
    def conv_context_frames(self) -> int:
        """Frames of transformer output that fully determine the convolutions' state.

        Computed from the kernels: each causal convolution looks back ``(kernel - 1) * dilation``
        samples at its own rate, each transposed convolution one input step; rounded up, plus one.
        """
        cached = getattr(self, "_rf", None)
        if cached is not None:
            return cached
        kinds = self._modules
        rate = 1.0  # samples per frame at the current point of the stack
        reach = 0.0  # frames of look-back accumulated so far

        def visit(module: Any) -> None:
            nonlocal rate, reach
            if isinstance(module, kinds["conv"]):
                reach += int(module.padding) / rate
            elif isinstance(module, kinds["transconv"]):
                conv = module.conv
                kernel, stride = int(conv.kernel_size[0]), int(conv.stride[0])
                reach += (math.ceil(kernel / stride) - 1) / rate
                rate *= stride
            elif isinstance(module, (kinds["convnext"], kinds["residual"], kinds["block"])):
                for child in module.children():
                    if isinstance(child, torch.nn.ModuleList):
                        for grandchild in child:
                            visit(grandchild)
                    else:
                        visit(child)

        for blocks in self.decoder.upsample:
            for block in blocks:
                visit(block)
        for block in self.decoder.decoder:
            visit(block)
        self._rf = int(math.ceil(reach)) + 1
        return self._rf
