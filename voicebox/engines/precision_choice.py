"""Which precision the CPU decode loop runs in, chosen by timing this machine, once.

Why measure: the fastest precision for the loop's one-row matrix products differs between CPUs
(fp16 weights gave 1.9x over fp32 on one machine and 1.16x on another; torch's int8 was slower
than fp16 on the project's AVX-512 Xeon). So on the first load of a model on a CPU, voicebox times
the loop's own linear layers - one talker layer, one code-predictor layer and the output heads,
each shape in every allowed precision - weighs each by how often a frame runs it (every talker
layer once, every predictor layer and head 15 times), and keeps the fastest. The result is
remembered in the cache folder under a key of the CPU (model name and the vector flags that
matter), the torch version, the thread count and the layer shapes, so later starts skip it.

Allowed precisions are the ones that passed the quality guard (:mod:`.loop_guard`) on the
full-size 0.6B architecture (``GUARD``; bench/loop_guard.py, bench/results/loop_guard_cpu.json):
fp32 always; fp16 (1 - cosine to fp32 at most 8e-12 over 30 teacher-forced frames, every token
the same: the weights are bfloat16 in the checkpoints, exact in fp16 but for the tiniest); not
int8 (lowest cosine 0.992-0.996, 83 % of tokens the same).
``VOICEBOX_CPU_INT8=on`` or ``off`` still forces a precision.

Layers smaller than a real model's (hidden size under ``MIN_HIDDEN``: the tests' tiny
checkpoints) are not timed: one-row products that small measure Python call overhead, not how
fast weights stream, so the timing would be noise; they get the default, fp16.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes

log = logging.getLogger(__name__)

#: What the quality guard said of each precision on full-size weights (bench/loop_guard.py).
GUARD = {"fp16": "passed", "fp32": "reference", "int8": "failed"}
DEFAULT = "fp16"
MIN_HIDDEN = 512  # the real 0.6B talker is 1024 wide
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_tile", "f16c", "fma", "neon", "asimd")
PREDICTOR_PASSES = 15  # code groups 2-16: the predictor runs once per group
REPEATS = 30


@dataclass(frozen=True)
class PrecisionChoice:
    """The loop's precision on this machine and why, with what was timed (ms of linear products
    per frame, by precision)."""

    precision: str
    why: str
    frame_ms: dict[str, float] = field(default_factory=dict)
    remembered: bool = False


def cpu_name() -> str:
    """The CPU's model name and the vector features that decide the kernels' speed."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                name = line.split(":", 1)[1].strip()
            elif line.startswith(("flags", "Features")) and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return f"{name} [{' '.join(f for f in FLAGS if f in flags)}]"


def machine_key(shapes: list[tuple[str, int, int, int]]) -> str:
    """What a remembered choice depends on: CPU, torch version, threads and layer shapes."""
    import torch

    text = json.dumps([cpu_name(), torch.__version__, torch.get_num_threads(), shapes])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def loop_layers(inner: Any) -> list[tuple[str, Any, int]]:
    """``(name, fp32 linear layer, calls per frame)`` for one layer of each shape the loop runs:
    q/k/v and gate/up joined as the loop runs them."""
    from .quantize import layer_linears

    talker = inner.talker
    stacks = (("talker", talker.model.layers, 1),
              ("predictor", talker.code_predictor.model.layers, PREDICTOR_PASSES))
    out: list[tuple[str, Any, int]] = []
    for prefix, layers, passes in stacks:
        count = len(layers) * passes
        out += [(f"{prefix}.{name}", linear, count) for name, linear in layer_linears(layers[0])]
    out.append(("codec_head", talker.codec_head, 1))
    out.append(("lm_head", talker.code_predictor.lm_head[0], PREDICTOR_PASSES))
    return out


def _ms_per_call(module: Any, width: int) -> float:
    import torch

    x = torch.randn(1, 1, width)
    with torch.inference_mode():
        for _ in range(3):
            module(x)
        start = time.perf_counter()
        for _ in range(REPEATS):
            module(x)
    return (time.perf_counter() - start) * 1000 / REPEATS


def measure(layers: list[tuple[str, Any, int]], precisions: tuple[str, ...]) -> dict[str, float]:
    """Milliseconds of linear products per frame in each precision (fp32 layers as given; fp16
    and int8 copies made here, the same way the loop makes them). Precisions are timed
    interleaved, layer by layer, so a busy moment of the machine hits them alike."""
    from .quantize import quantize_linear

    totals = dict.fromkeys(precisions, 0.0)
    for _name, linear, count in layers:
        for precision in precisions:
            module = linear if precision == "fp32" else quantize_linear(linear, precision)
            totals[precision] += _ms_per_call(module, linear.in_features) * count
    return {p: round(v, 3) for p, v in totals.items()}


def _describe(best: str, frame_ms: dict[str, float]) -> str:
    others = ", ".join(f"{p} {frame_ms[p]:.1f} ms" for p in frame_ms if p != best)
    skipped = [p for p, verdict in GUARD.items() if verdict == "failed"]
    note = f"; {' and '.join(skipped)} failed the quality guard" if skipped else ""
    return f"timed on this CPU: {best} {frame_ms[best]:.1f} ms of linear products per frame ({others}){note}"


def choose(inner: Any, memory: Path | None) -> PrecisionChoice:
    """The precision for the loop over ``inner`` (fp32, on a CPU): remembered, or timed now."""
    hidden = int(inner.talker.model.layers[0].self_attn.q_proj.in_features)
    if hidden < MIN_HIDDEN:
        return PrecisionChoice(DEFAULT, f"{DEFAULT}: layers too small to time (hidden size {hidden})")
    layers = loop_layers(inner)
    shapes = [(name, linear.in_features, linear.out_features, count) for name, linear, count in layers]
    key, table = machine_key(shapes), _read(memory)
    remembered = table.get(key)
    if remembered:
        return PrecisionChoice(remembered["precision"], remembered["why"], remembered["frame_ms"], True)
    allowed = tuple(p for p, verdict in GUARD.items() if verdict != "failed")
    frame_ms = measure(layers, allowed)
    best = min(frame_ms, key=frame_ms.__getitem__)
    choice = PrecisionChoice(best, _describe(best, frame_ms), frame_ms)
    log.info("decode loop precision %s (%s)", best, choice.why)
    if memory is not None:
        table[key] = {**asdict(choice), "cpu": cpu_name()}
        del table[key]["remembered"]
        atomic_write_bytes(memory, json.dumps(table, indent=1).encode())
    return choice


def _read(memory: Path | None) -> dict[str, Any]:
    if memory is None or not memory.exists():
        return {}
    try:
        table = json.loads(memory.read_text())
    except (OSError, ValueError):
        log.warning("ignoring an unreadable precision memory %s", memory.name)
        return {}
    return table if isinstance(table, dict) else {}
