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

A precision passes when the lowest cosine of each kind over all decisions reaches ``THRESHOLDS``;
token agreement (first codebook, all 16) is reported beside it as the second figure. The same
guard judges every precision of this loop; the GGML engine does not expose its hidden states or
logits to Python yet, so it is judged by its audio and speed for now (bench/ggml_speed.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

#: Lowest cosine similarity to fp32 that each compared quantity may reach, over all decisions.
THRESHOLDS = {"talker_hidden": 0.999, "talker_logits": 0.999, "predictor_logits": 0.998}


@dataclass(frozen=True)
class GuardResult:
    """How close one precision stays to fp32 over ``frames`` teacher-forced frames."""

    precision: str
    frames: int
    cosine_min: dict[str, float]
    cosine_mean: dict[str, float]
    agree_first: float  # share of first-codebook decisions equal to fp32's
    agree_all: float  # share of all 16 codebooks' decisions equal to fp32's

    @property
    def passed(self) -> bool:
        return all(self.cosine_min.get(kind, 0.0) >= floor for kind, floor in THRESHOLDS.items())

    def as_dict(self) -> dict[str, Any]:
        """For reports: the cosines, and ``gap_max`` = 1 - the lowest cosine (how far from
        identical, readable where the cosine itself rounds to 1)."""
        gap = {kind: float(f"{1.0 - value:.3g}") for kind, value in self.cosine_min.items()}
        return {"precision": self.precision, "frames": self.frames, "passed": self.passed, "gap_max": gap,
                "cosine_min": self.cosine_min, "cosine_mean": self.cosine_mean,
                "agree_first": self.agree_first, "agree_all": self.agree_all, "thresholds": THRESHOLDS}


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


def judge(engine: Any, precision: str, inputs: Any, frames: int = 30) -> GuardResult:
    """Compare ``precision`` with fp32 on the loaded ``engine`` (a :class:`~.tts.TTSEngine` built
    with ``keep_fp32=True``), greedy, for ``frames`` frames of the talker ``inputs``
    (:func:`~.fast_talker.capture_talker_inputs`, one row, greedy sampling settings). Leaves the
    engine at ``precision``."""
    engine.use_precision("fp32")
    codes, reference = _traced(engine._fast, inputs, frames, None)
    engine.use_precision(precision)
    _, other = _traced(engine._fast, inputs, frames, codes[None])
    stats = engine._fast.stats.as_dict()
    low, mean = {}, {}
    for kind in THRESHOLDS:
        values = cosines(reference[kind], other[kind])
        low[kind], mean[kind] = float(values.min()), float(values.mean())
    return GuardResult(precision, frames, low, mean, stats.get("agree_first", 1.0), stats.get("agree_all", 1.0))
