"""CUDA fast path: faster-qwen3-tts's CUDA graphs as the frame source of :class:`TTSEngine`.

Why: on a GPU the arithmetic of one decode step is quick, and launching its hundreds of small
kernels from Python is most of the time (16 transformer passes per 80 ms frame: the talker once,
the code predictor 15 times). ``faster-qwen3-tts`` captures the predictor's whole 15-step loop and
the talker's step as CUDA graphs over static key/value caches, so each replays with one launch.

What voicebox keeps: the model it already loaded (the graphs wrap its modules, no second copy),
the prompt built by the official code (:func:`.fast_talker.capture_talker_inputs`), the
voice-prompt cache, the incremental codec decoder and the streaming and joining around it. This
module only turns talker inputs into codec frames, one ``(1, 16)`` tensor at a time, the way
:meth:`.fast_talker.FastTalker.frames` does on other devices.

Used when the model runs on CUDA, the optional package is installed (``requirements-cuda.txt``)
and ``VOICEBOX_CUDA_GRAPHS`` is not ``off``. When building or capturing the graphs fails, the
engine logs why and keeps voicebox's own loop, which runs anywhere.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator

from .fast_talker import FrameStats, TalkerInputs

PACKAGE = "faster_qwen3_tts"
#: the release whose ``fast_generate_streaming``/``TalkerGraph``/``PredictorGraph`` this adapter calls
TESTED_VERSION = "0.5.4"
#: talker positions the static cache holds (prompt plus frames); longer requests use the loop
MAX_SEQ_LEN = 2048
#: captured predictor graphs kept at once (one per sampling setting; each is a few MB)
PREDICTOR_GRAPHS = 3


def installed() -> bool:
    """Whether ``faster-qwen3-tts`` can be imported."""
    return importlib.util.find_spec(PACKAGE) is not None


def wanted(setting: str, device: str) -> tuple[bool, str]:
    """Whether to use CUDA graphs for ``VOICEBOX_CUDA_GRAPHS=setting`` on ``device``, and why not."""
    if setting == "off":
        return False, "VOICEBOX_CUDA_GRAPHS=off"
    if device != "cuda":
        return False, f"the model runs on {device}, not CUDA"
    if not installed():
        return False, "faster-qwen3-tts is not installed (pip install -r requirements-cuda.txt)"
    return True, ""


@dataclass(frozen=True)
class PredictorSampling:
    """The code predictor's sampling settings: a captured graph has them built in."""

    do_sample: bool
    top_k: int
    top_p: float
    temperature: float

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> "PredictorSampling":
        return cls(
            do_sample=bool(kwargs.get("subtalker_dosample", True)),
            top_k=int(kwargs.get("subtalker_top_k") or 0),
            top_p=float(kwargs.get("subtalker_top_p") or 1.0),
            temperature=float(kwargs.get("subtalker_temperature") or 1.0),
        )


class GraphedTalker:
    """Talker + code predictor replayed as CUDA graphs (batch of one).

    Args:
        model: ``Qwen3TTSModel.model`` on a CUDA device (its modules are used, not copied).
        dtype: the model's dtype (bf16 on CUDA).
        max_seq_len: positions of the talker's static cache.
    """

    def __init__(self, model: Any, dtype: Any, max_seq_len: int = MAX_SEQ_LEN) -> None:
        from faster_qwen3_tts.talker_graph import TalkerGraph

        self.model = model
        self.talker = model.talker
        self.config = model.config.talker_config
        self.device = str(self.talker.device)
        self.dtype = dtype
        self.max_seq_len = int(max_seq_len)
        self.talker_graph = TalkerGraph(self.talker.model, self.config, device=self.device, dtype=dtype,
                                        max_seq_len=self.max_seq_len)
        self._predictors: OrderedDict[PredictorSampling, Any] = OrderedDict()
        self.stats = FrameStats()
        self.captures = 0

    def capture(self, prefill_len: int = 100) -> None:
        """Capture the talker graph and the default predictor graph now (at load, not at the
        first request, so the first audio is not delayed by it)."""
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on every capture
            self.talker_graph.capture(prefill_len=prefill_len, num_warmup=3)
        self._predictor(PredictorSampling(do_sample=True, top_k=50, top_p=1.0, temperature=0.9))

    def _predictor(self, sampling: PredictorSampling) -> Any:
        graph = self._predictors.pop(sampling, None)
        if graph is None:
            from faster_qwen3_tts.predictor_graph import PredictorGraph

            graph = PredictorGraph(
                self.talker.code_predictor, self.talker.code_predictor.model.config, self.config.hidden_size,
                device=self.device, dtype=self.dtype, do_sample=sampling.do_sample, top_k=sampling.top_k,
                top_p=sampling.top_p, temperature=sampling.temperature,
            )
            with contextlib.redirect_stdout(io.StringIO()):
                graph.capture(num_warmup=3)
            self.captures += 1
        self._predictors[sampling] = graph
        while len(self._predictors) > PREDICTOR_GRAPHS:
            self._predictors.popitem(last=False)
        return graph

    def fits(self, inputs: TalkerInputs, max_frames: int) -> bool:
        """A batch of one whose prompt and frames fit the static cache."""
        embeds = inputs.inputs_embeds
        return int(embeds.shape[0]) == 1 and int(embeds.shape[1]) + max_frames + 1 < self.max_seq_len

    def frames(self, inputs: TalkerInputs, max_frames: int) -> Iterator[Any]:
        """Yield ``(1, 16)`` codes per frame until end-of-speech or ``max_frames`` frames."""
        from faster_qwen3_tts.streaming import fast_generate_streaming

        kwargs = inputs.kwargs
        predictor = self._predictor(PredictorSampling.from_kwargs(kwargs))
        self.talker.rope_deltas = None  # the talker's prefill recomputes it for this prompt
        stats = self.stats = FrameStats(prompt_tokens=int(inputs.inputs_embeds.shape[1]))
        started = time.perf_counter()
        chunks = fast_generate_streaming(
            talker=self.talker,
            talker_input_embeds=inputs.inputs_embeds,
            attention_mask=inputs.attention_mask,
            trailing_text_hiddens=inputs.trailing_text_hidden,
            tts_pad_embed=inputs.tts_pad_embed,
            config=self.config,
            predictor_graph=predictor,
            talker_graph=self.talker_graph,
            max_new_tokens=int(max_frames),
            min_new_tokens=int(kwargs.get("min_new_tokens") or 2),
            temperature=float(kwargs.get("temperature") or 1.0),
            top_k=int(kwargs.get("top_k") or 0),
            top_p=float(kwargs.get("top_p") or 1.0),
            do_sample=bool(kwargs.get("do_sample", True)),
            repetition_penalty=float(kwargs.get("repetition_penalty") or 1.0),
            chunk_size=1,
        )
        try:
            for chunk, timing in chunks:
                now = time.perf_counter()
                if stats.frames == 0:
                    stats.prefill = float(timing.get("prefill_ms", 0.0)) / 1000
                    stats.talker += max(0.0, now - started - stats.prefill)
                else:
                    stats.talker += now - started
                for row in chunk.reshape(-1, chunk.shape[-1]):
                    stats.frames += 1
                    yield row.unsqueeze(0)
                started = time.perf_counter()
        finally:
            chunks.close()
