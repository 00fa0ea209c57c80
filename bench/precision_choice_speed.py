"""What the CPU loop's precision choice measures, on the real Qwen3-TTS layer shapes.

Times the loop's linear layers (random weights: speed does not depend on the values) with
:func:`voicebox.engines.precision_choice.measure`, exactly as the first load of a model on a CPU
does, for the 0.6B and 1.7B talkers (the code predictor is the same size in both), in fp32, fp16
and int8 - int8 for information only: it failed the quality guard, so the choice never takes it.
Reports milliseconds of linear products per frame and each precision's speed against fp32, in
the same run, ``--rounds`` times interleaved (median).

    python bench/precision_choice_speed.py --rounds 3

Writes bench/results/precision_choice_cpu.json; the last line is ``fp16_vs_fp32=X.XX`` (0.6B).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from voicebox.engines import precision_choice  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PREDICTOR = {"hidden": 1024, "layers": 5, "q": 2048, "kv": 1024, "intermediate": 3072}
TALKERS = {
    "0.6B": {"hidden": 1024, "layers": 28, "q": 2048, "kv": 1024, "intermediate": 3072},
    "1.7B": {"hidden": 2048, "layers": 28, "q": 2048, "kv": 1024, "intermediate": 6144},
}


def layers_for(talker: dict[str, int]) -> list[tuple[str, Any, int]]:
    """One linear layer per shape the loop runs, with its calls per frame (as ``loop_layers``)."""
    out: list[tuple[str, Any, int]] = []
    for prefix, size, count in (("talker", talker, talker["layers"]),
                                ("predictor", PREDICTOR, PREDICTOR["layers"] * precision_choice.PREDICTOR_PASSES)):
        h, q, kv, inter = size["hidden"], size["q"], size["kv"], size["intermediate"]
        out += [(f"{prefix}.qkv", torch.nn.Linear(h, q + 2 * kv, bias=False), count),
                (f"{prefix}.o_proj", torch.nn.Linear(q, h, bias=False), count),
                (f"{prefix}.gate_up", torch.nn.Linear(h, 2 * inter, bias=False), count),
                (f"{prefix}.down_proj", torch.nn.Linear(inter, h, bias=False), count)]
    out.append(("codec_head", torch.nn.Linear(talker["hidden"], 3072, bias=False), 1))
    out.append(("lm_head", torch.nn.Linear(PREDICTOR["hidden"], 2048, bias=False), precision_choice.PREDICTOR_PASSES))
    return out


def copy_bandwidth() -> float:
    """GB/s of a plain 1 GiB memory copy: the ceiling these products run against, measured in the
    same run (a shared machine's memory can slow down several-fold for minutes)."""
    import time

    import numpy as np

    source = np.ones(2**27)
    start = time.perf_counter()
    for _ in range(3):
        source.copy()
    return round(3 * source.nbytes * 2 / (time.perf_counter() - start) / 1e9, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    report: dict[str, Any] = {"cpu": precision_choice.cpu_name(), "torch": torch.__version__,
                              "threads": torch.get_num_threads(), "copy_gb_s": copy_bandwidth(), "sizes": {}}
    for size, talker in TALKERS.items():
        layers = layers_for(talker)
        rounds = [precision_choice.measure(layers, ("fp32", "fp16", "int8")) for _ in range(args.rounds)]
        ms = {p: round(statistics.median(r[p] for r in rounds), 2) for p in rounds[0]}
        allowed = {p: v for p, v in ms.items() if precision_choice.GUARD.get(p) != "failed"}
        report["sizes"][size] = {
            "ms_per_frame": ms,
            "vs_fp32": {p: round(ms["fp32"] / v, 2) for p, v in ms.items()},
            "chosen": min(allowed, key=allowed.__getitem__),
        }
        print(f"{size}: " + ", ".join(f"{p} {v:.1f} ms" for p, v in ms.items()) + f" -> {report['sizes'][size]['chosen']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "precision_choice_cpu.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"cpu={report['cpu']} copy_gb_s={report['copy_gb_s']}")
    print(f"fp16_vs_fp32={report['sizes']['0.6B']['vs_fp32']['fp16']:.2f}")


if __name__ == "__main__":
    main()
