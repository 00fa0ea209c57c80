"""What a check produces: :class:`Check` (one number and how it was judged) and
:class:`ChunkScore` (all of a chunk's checks, pass/fail and one combined score).

Why keep every number with its threshold: a person looking at a flagged sentence wants to know
*why* (and by how much), and thresholds change with calibration; a stored score must still say
what it was judged against. Both records are frozen and round-trip through plain JSON-ready dicts
(:meth:`to_dict` / :meth:`from_dict`), which is how generation records and REST carry them.

The combined score (:func:`combine`) is what picks the best of several takes of a sentence:

* each measured check gets a quality ``q`` in [0, 1]: 1 is ideal, 0.5 exactly at the threshold,
  0 at twice as far past it (each check's :func:`quality` says how "far" is measured);
* ``quality`` = the weighted mean of ``q`` over the measured checks, with :data:`WEIGHTS`
  (the words count most, then the voice; signal details least);
* ``score = 0.5 + 0.5 * quality`` when every measured check passed, else ``0.5 * quality``.

So a take that passed always outranks one that failed, and among failed takes the one closest
to passing wins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: The checks, in the order they are reported.
CHECK_NAMES = ("cer", "similarity", "pace", "pace_vs_voice", "silence", "clipping", "level")
#: How much each check counts in the combined score.
WEIGHTS = {
    "cer": 4.0,
    "similarity": 2.0,
    "pace": 1.0,
    "pace_vs_voice": 1.0,
    "silence": 1.0,
    "clipping": 0.5,
    "level": 0.5,
}


@dataclass(frozen=True)
class Check:
    """One measured number and how it was judged.

    Attributes:
        name: one of :data:`CHECK_NAMES`.
        value: the measurement; ``None`` when it could not be measured (no profile -> no
            similarity), in which case the check cannot fail.
        threshold: the limit it was judged against (for a two-sided check, the side it is on).
        passed: whether it was within the limit (True when not measured).
        detail: one sentence a person can read, plain words first, numbers in brackets:
            "the words did not match (CER 0.42 > 0.25)".
    """

    name: str
    value: float | None
    threshold: float
    passed: bool
    detail: str = ""

    @property
    def measured(self) -> bool:
        return self.value is not None

    @property
    def words(self) -> str:
        """The detail's plain words, without the numbers: what the UI and progress show."""
        return self.detail.split(" (", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "threshold": self.threshold,
            "passed": self.passed,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        value = data.get("value")
        return cls(
            name=str(data["name"]),
            value=None if value is None else float(value),
            threshold=float(data["threshold"]),
            passed=bool(data["passed"]),
            detail=str(data.get("detail", "")),
        )


@dataclass(frozen=True)
class ChunkScore:
    """All checks of one chunk (or any scored clip).

    Attributes:
        checks: one :class:`Check` per name in :data:`CHECK_NAMES`, in that order.
        passed: every check that could be measured passed.
        score: the combined score in [0, 1] (see the module docstring); higher is better.
        heard: what Whisper heard ("" when it heard no speech or was not asked).
    """

    checks: tuple[Check, ...]
    passed: bool
    score: float
    heard: str = ""

    def failed(self) -> list[Check]:
        """The checks that were measured and failed, in report order."""
        return [check for check in self.checks if not check.passed]

    def reason(self) -> str:
        """The first failed check in plain words ("the words did not match"), or ""."""
        failed = self.failed()
        return failed[0].words if failed else ""

    def check(self, name: str) -> Check | None:
        """The check called ``name``, if it is there."""
        return next((check for check in self.checks if check.name == name), None)

    def values(self) -> dict[str, float | None]:
        """``{name: value}``: the numbers alone, as ``scores`` in a generation record."""
        return {check.name: check.value for check in self.checks}

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "score": self.score,
            "heard": self.heard,
            "checks": [check.to_dict() for check in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkScore:
        return cls(
            checks=tuple(Check.from_dict(item) for item in data.get("checks", ())),
            passed=bool(data["passed"]),
            score=float(data["score"]),
            heard=str(data.get("heard", "")),
        )


# ---- the combined score ------------------------------------------------------------------------
def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def quality(check: Check, centre: float | None = None) -> float | None:
    """A measured check's quality in [0, 1]: 1 ideal, 0.5 at the threshold, 0 twice as far out.

    "Far" is linear for the one-sided checks (error rate, silence, clipping, level difference),
    from the ideal 1.0 for similarity, and in log ratio from ``centre`` for the two-sided pace
    checks (twice too fast is as bad as twice too slow; ``pace_vs_voice`` is centred on 1.0).
    """
    value, limit = check.value, check.threshold
    if value is None:
        return None
    if check.name == "similarity":
        span = 1.0 - limit
        return _clamp(1.0 - (1.0 - value) / (2 * span)) if span > 0 else float(value >= limit)
    if check.name in ("pace", "pace_vs_voice"):
        return _clamp(1.0 - _log_distance(value, limit, centre) / 2)
    if check.name == "level":
        value = abs(value)
    return _clamp(1.0 - value / (2 * limit)) if limit > 0 else float(value <= 0)


def _log_distance(value: float, limit: float, centre: float | None) -> float:
    """Distance from the centre of a two-sided range in units of its half-width (1 at the limit)."""
    if value <= 0 or limit <= 0:
        return 2.0
    centre = centre if centre is not None else 1.0
    half = abs(math.log(limit / centre))
    return abs(math.log(value / centre)) / half if half > 0 else 2.0


def combine(checks: Iterable[Check], heard: str = "", centres: dict[str, float] | None = None) -> ChunkScore:
    """Build a :class:`ChunkScore` from its checks with the documented formula.

    ``centres`` gives the two-sided pace checks the middle of their range (for ``pace``, the
    geometric mean of the slowest and fastest rates; ``pace_vs_voice`` is centred on 1.0).
    """
    checks = tuple(checks)
    centres = centres or {}
    total = weight_sum = 0.0
    for check in checks:
        q = quality(check, centres.get(check.name))
        if q is None:
            continue
        weight = WEIGHTS.get(check.name, 1.0)
        total += weight * q
        weight_sum += weight
    mean = total / weight_sum if weight_sum else 0.0
    passed = all(check.passed for check in checks)
    score = 0.5 + 0.5 * mean if passed else 0.5 * mean
    return ChunkScore(checks=checks, passed=passed, score=round(score, 4), heard=heard)
