"""The quality guard for the CPU loop's reduced precisions: a judge that means something on any weights.

Why not token agreement alone: with random weights (all this project can test with) the logits
are nearly flat, so any rounding flips the arg-max and agreement says "bad" for harmless
precision; a trained model's peaked logits would barely notice. What is stable on any weights is
how close the numbers stay. So the guard runs fp32's own greedy take, then the candidate
precision teacher-forced on fp32's codes (the same history at every step, so one early difference
does not change everything after it), and compares, decision by decision, by cosine similarity:

* ``talker_hidden`` - the talker's last hidden state of each frame (what the code predictor reads);
* ``talker_logits`` - its first-codebook logits;
* ``predictor_logits`` - the code predictor's logits for the other 15 codebooks.

and, layer by layer, each talker decoder layer's output (``layers``), so a drift is placed where
it starts. A precision passes when the lowest cosine of each kind over all decisions reaches
``THRESHOLDS`` and every layer's reaches ``LAYER_THRESHOLD``; token agreement (first codebook,
all 16) is reported beside it as the second figure.

The same guard judges the GGML engine (:func:`judge_ggml`): it cannot show its numbers, so its
arithmetic - the GGUF file's quantised weights and GGML's rounding of activations - is reproduced
in this loop (:mod:`.ggml_numerics`) and compared with fp32 in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

#: Lowest cosine similarity to fp32 that each compared quantity may reach, over all decisions.
THRESHOLDS = {"talker_hidden": 0.999, "talker_logits": 0.999, "predictor_logits": 0.998}
#: Lowest cosine each talker layer's output may reach (as strict as the last hidden state).
LAYER_THRESHOLD = THRESHOLDS["talker_hidden"]


@dataclass(frozen=True)
class GuardResult:
    """How close one precision stays to fp32 over ``frames`` teacher-forced frames."""

    precision: str
    frames: int
    cosine_min: dict[str, float]
    cosine_mean: dict[str, float]
    agree_first: float  # share of first-codebook decisions equal to fp32's
    agree_all: float  # share of all 16 codebooks' decisions equal to fp32's
    layers: dict[str, float] = field(default_factory=dict)  # lowest cosine of each talker layer's output

    @property
    def passed(self) -> bool:
        return (all(self.cosine_min.get(kind, 0.0) >= floor for kind, floor in THRESHOLDS.items())
                and all(value >= LAYER_THRESHOLD for value in self.layers.values()))

    @property
    def worst_layer(self) -> str:
        """The talker layer whose output strays furthest from fp32 (``""`` when none were traced)."""
        return min(self.layers, key=self.layers.__getitem__) if self.layers else ""

    def as_dict(self) -> dict[str, Any]:
        """For reports: the cosines, and ``gap_max`` = 1 - the lowest cosine (how far from
        identical, readable where the cosine itself rounds to 1)."""
        gap = {kind: float(f"{1.0 - value:.3g}") for kind, value in self.cosine_min.items()}
        layer_gap = {name: float(f"{1.0 - value:.3g}") for name, value in self.layers.items()}
        return {"precision": self.precision, "frames": self.frames, "passed": self.passed, "gap_max": gap,
                "cosine_min": self.cosine_min, "cosine_mean": self.cosine_mean,
                "agree_first": self.agree_first, "agree_all": self.agree_all, "thresholds": THRESHOLDS,
                "layer_gap_max": layer_gap, "worst_layer": self.worst_layer, "layer_threshold": LAYER_THRESHOLD}


def cosines(reference: list[torch.Tensor], other: list[torch.Tensor]) -> torch.Tensor:
    """Cosine similarity of each pair of recorded rows (every decision of every batch row)."""
    a, b = torch.cat(reference), torch.cat(other)
    return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)


def _traced(fast: Any, inputs: Any, frames: int, teacher: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
    """(codes of the one row, what the loop recorded) for ``frames`` frames."""
    fast.trace = {}
    try:
        codes = fast.generate(inputs, frames + 1, teacher=teacher)[0]
        return codes, fast.trace
    finally:
        fast.trace = None


def compare(name: str, reference: Any, candidate: Any, inputs: Any, frames: int = 30,
            candidate_inputs: Any = None) -> GuardResult:
    """``reference`` loop (fp32) greedy for ``frames`` frames of ``inputs``, then ``candidate``
    teacher-forced on its codes (from ``candidate_inputs`` when its weights build the prompt
    differently), compared decision by decision and layer by layer."""
    codes, expected = _traced(reference, inputs, frames, None)
    _, seen = _traced(candidate, inputs if candidate_inputs is None else candidate_inputs, frames, codes[None])
    return _result(name, frames, expected, seen, candidate.stats.as_dict())


def _result(name: str, frames: int, expected: dict, seen: dict, stats: dict[str, Any]) -> GuardResult:
    low, mean = {}, {}
    for kind in THRESHOLDS:
        values = cosines(expected[kind], seen[kind])
        low[kind], mean[kind] = float(values.min()), float(values.mean())
    layer_kinds = sorted((kind for kind in expected if kind.startswith("talker_layer.")),
                         key=lambda kind: int(kind.rsplit(".", 1)[1]))
    layers = {kind.removeprefix("talker_"): float(cosines(expected[kind], seen[kind]).min()) for kind in layer_kinds}
    return GuardResult(name, frames, low, mean, stats.get("agree_first", 1.0), stats.get("agree_all", 1.0), layers)


def judge(engine: Any, precision: str, inputs: Any, frames: int = 30) -> GuardResult:
    """Compare ``precision`` with fp32 on the loaded ``engine`` (a :class:`~.tts.TTSEngine` built
    with ``keep_fp32=True``), greedy, for ``frames`` frames of the talker ``inputs``
    (:func:`~.fast_talker.capture_talker_inputs`, one row, greedy sampling settings). Leaves the
    engine at ``precision``."""
    engine.use_precision("fp32")
    reference = engine._fast
    engine.use_precision(precision)
    return compare(precision, reference, engine._fast, inputs, frames)


def judge_ggml(engine: Any, gguf_path: Path | str, generate_kwargs: dict[str, Any], frames: int = 30) -> GuardResult:
    """Compare the GGML engine's arithmetic on the talker GGUF file at ``gguf_path`` (converted
    from the checkpoint ``engine`` has loaded, ``keep_fp32=True``) with fp32, as :func:`judge`
    does; ``generate_kwargs`` are the official ``generate`` arguments of one greedy row
    (the prompt is built twice: with fp32 and with the file's embeddings). Leaves the engine at fp32."""
    from .fast_talker import FastTalker, capture_talker_inputs
    from .ggml_numerics import TalkerGGUF, ggml_linears, ggml_weights

    engine.use_precision("fp32")
    inner = engine._model.model
    inputs = capture_talker_inputs(inner, **generate_kwargs)
    gguf = TalkerGGUF(gguf_path)
    candidate = FastTalker(inner, linears=ggml_linears(inner, gguf), profile=False)
    quant = gguf_path_quant(Path(gguf_path))
    reference = engine._fast
    codes, expected = _traced(reference, inputs, frames, None)
    with ggml_weights(inner, gguf):
        candidate_inputs = capture_talker_inputs(inner, **generate_kwargs)
        _, seen = _traced(candidate, candidate_inputs, frames, codes[None])
    return _result(f"GGML {quant}", frames, expected, seen, candidate.stats.as_dict())


def gguf_path_quant(path: Path) -> str:
    """``Q8_0`` from ``qwen-talker-0.6b-base-Q8_0.gguf``."""
    return path.stem.rsplit("-", 1)[-1]
