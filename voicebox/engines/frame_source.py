"""Where codec frames come from: the official ``generate``, voicebox's loop, or CUDA graphs.

Three sources make the same thing (16 codec tokens per 80 ms frame). Which one runs used to be
decided in six branches across the engine; here one object decides, counts what ran, and falls
back: the CUDA graphs take one row up to their captured length, and if they fail before their
first frame (a replay error on some driver) they are switched off for this load and the loop
makes the take. Randomness comes from a ``torch.Generator`` per call where the source allows it
(voicebox's loop); the official path and the graphs draw from the global RNG, which the caller
seeds under the model lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator

from .cuda_graphs import GraphedTalker
from .fast_talker import FastTalker, TalkerInputs, capture_talker_inputs

log = logging.getLogger(__name__)


@dataclass
class SourceCounts:
    """How many generations each source made: observable facts for tests and the Models tab."""

    fast: int = 0
    official: int = 0
    graphs: int = 0


class FrameSource:
    """The frame makers of one loaded model, with the fallback between them."""

    def __init__(self, model: Any, fast: FastTalker | None, graphs: GraphedTalker | None,
                 counts: SourceCounts, graphs_note: str = "") -> None:
        self.model = model  # the Qwen3TTSModel wrapper
        self.fast = fast
        self.graphs = graphs
        self.counts = counts
        self.graphs_note = graphs_note

    @property
    def name(self) -> str:
        if self.graphs is not None:
            return "cuda-graphs"
        return "voicebox" if self.fast is not None else "official"

    @property
    def rows_per_batch_limit(self) -> int | None:
        """The CUDA graphs take one row; the loops take any number."""
        return 1 if self.graphs is not None else None

    def capture(self, kwargs: dict[str, Any]) -> TalkerInputs:
        return capture_talker_inputs(self.model.model, **kwargs)

    def _fits_graphs(self, inputs: TalkerInputs, cap: int) -> bool:
        return self.graphs is not None and self.graphs.fits(inputs, cap - 1)

    def frames(self, inputs: TalkerInputs, cap: int, generator: Any = None) -> tuple[Iterator[Any], Any]:
        """Frames for streaming (fast path only) and the object whose ``stats`` describe the run."""
        if self._fits_graphs(inputs, cap):
            return self._graph_frames(inputs, cap, generator), self.graphs
        self.counts.fast += 1
        return self.fast.frames(inputs, generator=generator), self.fast

    def codes(self, kwargs: dict[str, Any], rows: int, cap: int, generator: Any = None) -> tuple[list[Any], Any]:
        """Whole codes for a batch of ``rows`` chunks, and the source that made them (``None``
        for the official path, which keeps no stage timings)."""
        import torch

        if self.fast is None:
            codes_list, _ = self.model.model.generate(**kwargs)
            self.counts.official += 1
            return list(codes_list), None
        inputs = self.capture(kwargs)
        if rows == 1 and self._fits_graphs(inputs, cap):
            source = self.graphs
            made = list(self._graph_frames(inputs, cap, generator))
            empty = inputs.inputs_embeds.new_zeros((0, 16), dtype=torch.long)
            return [torch.cat(made) if made else empty], source
        self.counts.fast += 1
        return self.fast.generate(inputs, generator=generator), self.fast

    def _graph_frames(self, inputs: TalkerInputs, cap: int, generator: Any) -> Iterator[Any]:
        """The graphs' frames; on a failure before the first frame, the loop from now on."""
        self.counts.graphs += 1
        frames = self.graphs.frames(inputs, cap - 1)
        try:
            first = next(frames)
        except StopIteration:
            return
        except Exception as exc:
            frames.close()
            self.graphs = None
            self.graphs_note = f"CUDA graphs failed while generating ({type(exc).__name__}: {exc})"
            log.warning("%s; using voicebox's decode loop from now on", self.graphs_note)
            self.counts.fast += 1
            yield from self.fast.frames(inputs, generator=generator)
            return
        yield first
        yield from frames
