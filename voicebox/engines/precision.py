"""Precision of voicebox's decode loop on a CPU: which copies of the linear layers it runs on.

On a CPU the loop is bound by reading the talker's weights, so fp16 or int8 copies of its linear
layers make it faster. ``VOICEBOX_CPU_INT8`` picks: ``auto`` times this CPU once and keeps the
fastest precision the quality guard allows (:mod:`.precision_choice`: fp32 or fp16; int8 did not
reach 95 % token agreement on full-size weights), ``on`` forces int8, ``off`` keeps fp32
(token-exact with the official path). Once reduced copies exist, the fp32 originals are released unless a
benchmark asks to keep them (2.2 GB for the 0.6B model), so the choice is made once per load.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .fast_talker import FastTalker

log = logging.getLogger(__name__)

#: ``VOICEBOX_CPU_INT8`` -> precision of the loop's linear layers on a CPU.
CPU_PRECISION = {"off": "fp32", "auto": "fp16", "on": "int8"}
_SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


class LoopPrecision:
    """The reduced-precision copies of one loaded model and the loop built over them."""

    def __init__(self, setting: str = "auto", keep_fp32: bool = False, memory: Path | None = None) -> None:
        """``memory``: the file where ``auto`` remembers its timed choice per machine (None: a
        model big enough to time is timed at every load; see :mod:`.precision_choice`)."""
        if setting not in CPU_PRECISION:
            raise ValueError(f"quantize must be one of {', '.join(CPU_PRECISION)}, not {setting!r}")
        self.setting = setting
        self.keep_fp32 = bool(keep_fp32)
        self.memory = memory
        self.reset()

    def reset(self) -> None:
        """Forget everything built for the previous model."""
        self.tables: dict[str, dict[str, Any]] = {}
        self.released = 0  # bytes of fp32 loop weights freed after the reduced copies were made
        self.extra_bytes = 0
        self.precision: str | None = None
        self.why = ""  # how the precision was chosen, in words

    def check(self, precision: str) -> None:
        """Refuse a precision that cannot be built on this load (before any work)."""
        if precision not in ("fp32", "fp16", "int8"):
            raise InvalidInput(f"precision must be fp32, fp16 or int8, not {precision!r}")
        if self.released and precision not in self.tables:
            raise InvalidInput(
                f"The fp32 weights of the decode loop were released after the {self.precision} copies were "
                "made (to save memory), so other precisions cannot be built; set VOICEBOX_CPU_INT8 and reload."
            )

    def build(self, inner: Any, device: str, dtype_name: str | None, wanted: str | None = None) -> FastTalker:
        """The loop over ``inner`` with ``wanted`` (default: the setting's) linear layers."""
        precision = dtype_name or "float32"
        linears = None
        self.extra_bytes = 0
        self.why = f"asked for {wanted}" if wanted else f"VOICEBOX_CPU_INT8={self.setting}"
        if wanted is None and self.setting == "auto" and device == "cpu" and precision == "float32":
            from .precision_choice import choose

            choice = choose(inner, self.memory)
            wanted, self.why = choice.precision, choice.why + (" (remembered)" if choice.remembered else "")
        wanted = wanted or CPU_PRECISION[self.setting]
        if device == "cpu" and precision == "float32" and wanted != "fp32":
            from .quantize import quantized_available, reduced_linears, release_originals, table_bytes

            if quantized_available():
                try:
                    linears = self.tables.get(wanted)
                    if linears is None:
                        linears = self.tables[wanted] = reduced_linears(inner, wanted)
                    self.extra_bytes = sum(table_bytes(t) for t in self.tables.values())
                    precision = wanted
                except Exception as exc:  # an exotic CPU/build: the fp32 loop still works
                    log.warning("could not build %s linear layers (%s); using fp32", wanted, exc)
                    linears = None
            if linears is not None and not self.keep_fp32 and not self.released:
                self.released = release_originals(inner)
                log.info("released %.0f MB of fp32 loop weights (replaced by %s copies)", self.released / 2**20, wanted)
        self.precision = _SHORT.get(precision, precision)
        return FastTalker(inner, linears=linears, profile=True)
