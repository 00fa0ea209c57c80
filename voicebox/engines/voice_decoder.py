"""Codec frames to audio, continuing from a voice's reference so the first words do not click.

In ICL mode the official path decodes the whole reference again on every call and cuts it off.
The codec decoder is causal, and upstream decodes in chunks with a 25-frame left context anyway
(``chunked_decode``), so voicebox decodes only the new frames after the last
:data:`DECODE_LEFT_CONTEXT` reference frames (:meth:`VoiceDecoder.decode`), or, on the fast
path, feeds an incremental decoder primed once per voice (:meth:`VoiceDecoder.stream_for`;
the primed states of the last :data:`PRIMED_VOICES` voices are kept).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .codec_stream import PRIME_FRAMES, CodecStream
from .prompt_cache import VoicePrompt

SAMPLES_PER_FRAME = 1920
DECODE_LEFT_CONTEXT = 25
PRIMED_VOICES = 8


class VoiceDecoder:
    """The codec decoder of one loaded model, with primed states per voice."""

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self._primed: dict[str, Any] = {}

    def stream_for(self, prompt: VoicePrompt) -> CodecStream:
        """An incremental decoder primed with this voice's reference (primed once per voice)."""
        stream = CodecStream(self.decoder)
        if prompt.ref_code is None:
            return stream
        ref = prompt.ref_code[-PRIME_FRAMES:]
        key = hashlib.sha256(ref.detach().cpu().numpy().astype(np.int64).tobytes()).hexdigest()
        state = self._primed.pop(key, None)
        if state is None:
            stream.prime(ref)
            state = stream.snapshot()
        self._primed[key] = state  # most recently used last
        while len(self._primed) > PRIMED_VOICES:
            self._primed.pop(next(iter(self._primed)))
        return stream.restore(state)

    def decode(self, codes: Any, prompt: VoicePrompt | None = None) -> np.ndarray:
        """Codec frames -> float32 audio, with up to 25 reference frames as left context."""
        import torch

        if codes is None or int(codes.shape[0]) == 0:
            return np.zeros(0, dtype=np.float32)
        context = None
        if prompt is not None and prompt.ref_code is not None:
            context = prompt.ref_code[-DECODE_LEFT_CONTEXT:].to(codes.device)
        frames = codes if context is None else torch.cat([context, codes], dim=0)
        with torch.inference_mode():
            wav = self.decoder.chunked_decode(torch.clamp(frames, min=0).T.unsqueeze(0).long())
        wav = wav.reshape(-1).float().cpu().numpy()
        skip = 0 if context is None else int(context.shape[0]) * SAMPLES_PER_FRAME
        return wav[skip : int(frames.shape[0]) * SAMPLES_PER_FRAME].astype(np.float32)
