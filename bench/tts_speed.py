"""Benchmark Qwen3-TTS: the official ``generate_voice_clone`` path against voicebox's engine.

Both run in the same process, on the same full-size random-weight checkpoint (built once into
``bench/checkpoints/``; random weights of the real size run at the real speed), with the same
voice prompt, text and sampling parameters, interleaved repetition by repetition so that a busy
machine slows both alike. Reported per path (medians over the repetitions):

* frames/s and real-time factor (compute seconds / audio seconds; < 1 is faster than real time);
* time to the first audio: the official path returns audio only when the take is done; voicebox
  streams (:meth:`TTSEngine.stream`) with a cached voice prompt;
* per-stage seconds: prefill, talker steps, code predictor, codec decode;
* peak memory: peak RSS (CPU) or peak CUDA allocation of a fresh process that loads the model and
  generates once with that path.

Quality guard on the same weights, greedy decoding: voicebox's fp32 loop must give the official
path's codec tokens exactly (token parity); the reduced-precision loops (fp16, int8 weights) are
compared with fp32 over 50 frames, free-running (the share of first-codebook tokens that agree)
and teacher-forced (the share of decisions that agree given the same history).

Optionally (``--ggml Q8_0 Q4_K_M``), the GGML engine (qwentts.cpp) in each of those quantisations,
on the CPU, after the torch runs of each size: same checkpoint, text, reference and frames.

Random weights never emit end-of-speech, so every take is exactly ``--frames`` frames long.

Run from the repo root::

    .venv/bin/python bench/tts_speed.py --quick          # 0.6B, CPU (+ CUDA when present), ~10 min
    .venv/bin/python bench/tts_speed.py --sizes 0.6B 1.7B --frames 50 --reps 7
    .venv/bin/python bench/tts_speed.py --quick --ggml Q8_0 Q4_K_M

Results go to ``bench/results/tts_speed_<device>.json``; the last line printed is
``speedup_vs_official=X.XX`` for the engine ``VOICEBOX_BACKEND=auto`` runs there (frames/s ratio of
medians), named on the line before it (``default_cpu_engine=...``): on a CPU the GGML engine at
the default ``Q8_0`` when ``--ggml`` measured it, else voicebox's torch engine. With
``--ggml``, one line ``speedup_vs_official[ENGINE]=X.XX`` per engine (``voicebox fp16``,
``GGML Q8_0``, ...) comes before it, for the same size and device as that last line.

The pieces live beside this entry point: tts_bench_setup (checkpoint, reference, engine),
tts_bench_timing (one take per path, medians), tts_bench_quality (parity and agreement guard),
tts_bench_memory (peak memory in a fresh process), tts_bench_ggml (the GGML lines) and
tts_bench_report (the table and speedup lines).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Every tts_bench_* module imports tts_bench_setup first, which puts the repository on sys.path and
# quiets transformers. checkpoint, make_engine and reference_sample are re-exported for bench/loop_guard.py.
from tts_bench_ggml import ggml_engines
from tts_bench_memory import measure_memory, memory_probe
from tts_bench_quality import quality
from tts_bench_report import default_engine, engine_speedups, print_table
from tts_bench_setup import (
    REPO_ROOT,
    RESULTS,
    TEXT,
    checkpoint,
    log,
    make_engine,
    official_item,
    reference_sample,
)
from tts_bench_timing import first_audio_sweep, run_official, run_voicebox, summarise

__all__ = ["checkpoint", "main", "make_engine", "reference_sample"]


def bench_size(size: str, device: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import torch

    from voicebox.engines.params import make_params

    path = checkpoint(size)
    sample, ref_seconds = reference_sample(tmp, args.ref_seconds)
    engine = make_engine(path, size, device)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = engine.load(size)
    load_s = time.perf_counter() - started
    if args.quality_only:
        log(f"{size} on {device}: quality guard only (greedy, same weights):")
        return {"size": size, "device": device, "reference_seconds": round(ref_seconds, 2),
                "quality": quality(engine, sample, args.parity_frames, args.agreement_texts, device)}
    default_precision = status["linear_precision"]
    stream_frames = {"first": engine.stream_first_frames, "then_every": engine.stream_frames}
    log(f"{size} on {device}: loaded in {load_s:.1f}s (voicebox default: fast loop, {default_precision} linears)")
    started = time.perf_counter()
    prompt, _, _ = engine.voice_prompt([sample])
    prompt_build = time.perf_counter() - started
    item = official_item(prompt)
    log(f"voice prompt (ICL, {ref_seconds:.1f}s reference, {prompt.reference_frames} frames) built in {prompt_build:.2f}s")

    variants = [("voicebox", default_precision)]
    if device == "cpu":
        variants += [(f"voicebox_{p}", p) for p in ("fp32", "fp16", "int8") if p != default_precision]
    graphs = engine._graphs  # CUDA graphs (faster-qwen3-tts) when on CUDA and installed
    if graphs is not None:
        variants.append(("voicebox_loop", "loop"))  # the same engine with voicebox's own loop
    log(f"decode loop: {status['decode_loop']} (CUDA graphs: {status['cuda_graphs']})")

    def select(precision: str) -> None:
        if device == "cpu":
            engine.use_precision(precision)
        elif graphs is not None:
            engine._graphs = None if precision == "loop" else graphs
    runs: dict[str, list[dict[str, Any]]] = {"official": [], **{name: [] for name, _ in variants}}
    extra_reps = args.extra_reps if args.extra_reps is not None else args.reps

    # warm-up (first-call allocations, priming the voice's decoder state)
    warm = make_params(seed=99, max_new_tokens=3)
    run_official(engine, item, warm, 2, device)
    for _, precision in variants:
        select(precision)
        run_voicebox(engine, sample, warm, device)

    for rep in range(args.reps):
        params = make_params(seed=1000 + rep, max_new_tokens=args.frames + 1)
        row = run_official(engine, item, params, args.frames, device)
        runs["official"].append(row)
        line = [f"rep {rep + 1}/{args.reps}: official {row['frames'] / row['total']:.2f} fr/s"]
        for name, precision in variants:
            if name != "voicebox" and rep >= extra_reps:
                continue
            select(precision)
            row = run_voicebox(engine, sample, params, device)
            runs[name].append(row)
            line.append(f"{name} {row['frames'] / row['total']:.2f} fr/s (first audio {row['first_audio']:.2f}s)")
        log(", ".join(line))
    select(default_precision)

    summary = {name: summarise(r) for name, r in runs.items() if r}
    for name, entry in summary.items():
        entry["speedup_vs_official"] = round(entry["frames_per_s"] / summary["official"]["frames_per_s"], 2)
        # each voicebox take against the official take run just before it (same machine load)
        pairs = [o["total"] / o["frames"] * v["frames"] / v["total"] for o, v in zip(runs["official"], runs[name])]
        entry["speedup_paired_median"] = round(statistics.median(pairs), 2)
        if name == "official":
            entry["precision"] = f"{'fp32' if device == 'cpu' else status['dtype']} (official generate)"
        elif name == "voicebox" or device != "cpu":
            entry["precision"] = default_precision
        else:
            entry["precision"] = name.split("_")[1]

    sweep = first_audio_sweep(engine, tmp, device, args.sweep_reps) if args.sweep_reps else []

    log("quality guard (greedy, same weights):")
    quality_result = quality(engine, sample, args.parity_frames, args.agreement_texts, device)
    if device == "cpu":
        engine.use_precision(default_precision)

    memory: dict[str, Any] = {}
    if not args.no_memory or args.ggml:  # the probes and the GGML engine run without the torch model in memory
        engine.unload()
        del engine
        import gc

        gc.collect()
    if not args.no_memory:
        for which in ("official", "voicebox"):
            memory[which] = measure_memory(path, size, device, which, args.frames, args.ref_seconds)
            log(f"peak memory {which}: {memory[which]}")
    for name, entry in summary.items():
        key = "official" if name == "official" else ("voicebox" if name == "voicebox" else None)
        if key and key in memory:
            entry["peak_memory"] = memory[key]

    report = {
        "size": size, "device": device, "checkpoint": "random weights, full size (tests/support/qwen_checkpoint.py)",
        "load_s": round(load_s, 2), "prompt_build_s": round(prompt_build, 3),
        "reference_seconds": round(ref_seconds, 2), "reference_frames": prompt.reference_frames, "mode": "icl",
        "text": TEXT, "frames_per_take": args.frames, "voicebox_default_precision": default_precision,
        "stream_frames": stream_frames, "decode_loop": status["decode_loop"], "cuda_graphs": status["cuda_graphs"],
        "results": summary, "first_audio_by_reference": sweep, "quality": quality_result,
        "torch_threads": torch.get_num_threads(),
    }
    if args.ggml:  # extra engines, after the torch runs of this size; their speedups are against this official
        report["ggml"] = ggml_engines(size, device, args.ggml, args.frames, args.reps, sample,
                                      summary["official"]["frames_per_s"])
        for quant, entry in report["ggml"].get("results", {}).items():
            if not args.no_memory and "error" not in entry:
                entry["peak_memory"] = measure_memory(path, size, device, f"ggml-{quant}", args.frames,
                                                      args.ref_seconds)
                log(f"peak memory GGML {quant}: {entry['peak_memory']}")
    report["guard"] = guard_figures()
    return report


def guard_figures() -> dict[str, Any]:
    """The quality guard's verdict per engine, from bench/loop_guard.py's latest results (it runs
    the fp32 reference with the fp32 weights kept, which these timed engines do not)."""
    source = RESULTS / "loop_guard_cpu.json"
    if not source.is_file():
        return {"missing": "run bench/loop_guard.py --ggml Q8_0 Q4_K_M"}
    results = json.loads(source.read_text()).get("results", [])
    return {"source": source.name, **{r["precision"]: {"passed": r["passed"], "gap_max": r["gap_max"],
                                                       "worst_layer": r.get("worst_layer", "")} for r in results}}



def main(argv: list[str] | None = None) -> int:
    from voicebox.engines.gguf_convert import QUANTS as GGML_QUANTS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.6B, 25 frames, 5 repetitions (2 for the extra precisions)")
    parser.add_argument("--sizes", nargs="+", default=None, help="checkpoint sizes (0.6B, 1.7B)")
    parser.add_argument("--device", default="auto", help="auto (CPU, plus CUDA when present), cpu or cuda")
    parser.add_argument("--frames", type=int, default=None, help="codec frames per take (12.5 per second)")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions per path (median)")
    parser.add_argument("--extra-reps", type=int, default=None, help="repetitions for the non-default precisions")
    parser.add_argument("--parity-frames", type=int, default=None, help="frames compared for token parity")
    parser.add_argument("--agreement-texts", type=int, default=None, help="prompts for the precision agreement (1-3)")
    parser.add_argument("--ref-seconds", type=float, default=0.0, help="trim the reference (0: all of jfk.flac)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--quality-only", action="store_true", help="only the parity/agreement guard "
                        "(writes tts_quality_<device>.json)")
    parser.add_argument("--sweep-reps", type=int, default=None, help="first-audio runs per reference length (0: skip)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument("--ggml", nargs="+", default=[], type=str.upper, choices=GGML_QUANTS, metavar="QUANT",
                        help=f"also measure the GGML engine (qwentts.cpp, CPU) in these quantisations "
                             f"({', '.join(GGML_QUANTS)}), after the torch runs of each size; default: none")
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)  # official, voicebox or ggml-<QUANT>
    parser.add_argument("--checkpoint", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", default="0.6B", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_probe:
        with contextlib.redirect_stdout(io.StringIO()):
            info = memory_probe(args.checkpoint, args.size, args.device, args.memory_probe, args.frames, args.ref_seconds)
        print(json.dumps(info))
        return 0

    args.sizes = args.sizes or ["0.6B"]
    args.frames = args.frames or (25 if args.quick else 50)
    args.reps = args.reps or (5 if args.quick else 7)
    if args.quick and args.extra_reps is None:
        args.extra_reps = 2
    if args.sweep_reps is None:
        args.sweep_reps = 2 if args.quick else 3
    args.parity_frames = args.parity_frames or (25 if args.quick else 50)
    args.agreement_texts = args.agreement_texts or (1 if args.quick else 3)

    import tempfile

    import torch

    devices = [args.device] if args.device != "auto" else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    started = time.perf_counter()
    final_speedup, final_report, final_engine = None, None, ""
    for device in devices:
        reports = []
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                report = bench_size(size, device, args, Path(tmp))
            reports.append(report)
            if args.quality_only:
                continue
            print_table(report)
            if final_speedup is None:
                final_engine, final_speedup = default_engine(report)
            final_report = report if final_report is None else final_report
        out = args.out or RESULTS / f"tts_{'quality' if args.quality_only else 'speed'}_{device}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "benchmark": "tts_speed",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["bench/tts_speed.py", *(argv if argv is not None else sys.argv[1:])]),
            "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                        "cpu_count": os.cpu_count(), "cuda": torch.cuda.get_device_name(0) if device == "cuda" else None},
            "reports": reports,
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
        out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        log(f"results written to {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}")
    log(f"total wall time {time.perf_counter() - started:.0f}s")
    if final_speedup is not None:
        if args.ggml:  # every engine of the report the last line speaks of, that line itself last
            for engine, speedup in engine_speedups(final_report):
                print(f"speedup_vs_official[{engine}]={speedup:.2f}")
        print(f"default_cpu_engine={final_engine}" if final_report["device"] == "cpu" else f"default_engine={final_engine}")
        print(f"speedup_vs_official={final_speedup:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
