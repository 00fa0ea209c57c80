"""GGML engine speed (qwentts.cpp via realtimetts-qwen-native-cpu) on full-size random weights.

Converts the benchmark's random checkpoint (bench/checkpoints/<size>, built by tts_speed.py) to
GGUF once per quantisation, then, per quantisation and mode (x-vector / ICL, a cached voice),
streams one take of ``--frames`` frames ``--reps`` times through :class:`GGMLBackend`'s library and
reports frames/s, real-time factor, first audio, and the library's own per-stage times. Random
weights never emit end-of-speech, so every take runs exactly to its cap: the speed is the real
speed, the audio is noise.

    python bench/ggml_speed.py --quants Q8_0 Q4_K_M --frames 25 --reps 3

Writes bench/results/ggml_speed.json; the last lines are ``frames_per_s[GGML Q8_0 icl]=X.XX``.
:func:`measure` is what tts_speed.py calls for its GGML lines.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.qwen_checkpoint import build_random_checkpoint  # noqa: E402
from voicebox.engines.ggml_runtime import probe, thread_count  # noqa: E402
from voicebox.engines.gguf_convert import convert_checkpoint  # noqa: E402

CHECKPOINTS = ROOT / "bench" / "checkpoints"
RESULTS = ROOT / "bench" / "results"
TEXT = "The lighthouse keeper climbed the narrow stairs every evening and lit the lamp."
REF_TEXT = "A reference sentence of about five seconds of speech."
FRAME = 1920
_PERF = re.compile(r"\[Perf\] (\w+) ([\d.]+) ms")


def cpu_description() -> dict[str, Any]:
    """CPU model, cores and the flags that matter to GGML's kernels."""
    model, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ["avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16"]
    return {"model": model, "threads": thread_count(), "flags": [f for f in wanted if f in flags]}


def gguf_files(size: str, quant: str) -> tuple[Path, Path]:
    source = build_random_checkpoint(CHECKPOINTS / size, size, seed=0, reuse=True)
    pair = convert_checkpoint(source, CHECKPOINTS / f"{size}-gguf", quant)
    return pair.talker, pair.codec


def measure(size: str, quant: str, frames: int, reps: int, ref_seconds: float = 5.0,
            modes: tuple[str, ...] = ("xvector", "icl"), threads: int | None = None, text: str = TEXT,
            reference: np.ndarray | None = None, ref_text: str = REF_TEXT) -> dict[str, Any]:
    """One quantisation: load, voice reference, then ``reps`` streamed takes per mode.

    ``reference`` (float32 mono, 24 kHz) and its transcript ``ref_text`` are the voice; without it,
    ``ref_seconds`` of seeded noise. tts_speed.py passes its own text and reference so that the
    GGML lines time the same take as the torch paths."""
    from qwentts_cpp_cpu import QwenTTS

    talker, codec = gguf_files(size, quant)
    started = time.perf_counter()
    tts = QwenTTS(talker, codec, cpu_threads=threads or thread_count())
    load = time.perf_counter() - started
    perf: dict[str, float] = {}
    tts.set_log_callback(lambda level, message: (m := _PERF.search(message)) and perf.__setitem__(m[1], float(m[2])))
    if reference is None:
        reference = (np.random.default_rng(0).standard_normal(int(ref_seconds * 24000)) * 0.1).astype(np.float32)
    started = time.perf_counter()
    ref = tts.extract_voice_ref(reference)
    prompt_s = time.perf_counter() - started
    out: dict[str, Any] = {"quant": quant, "size": size, "load_s": round(load, 2), "voice_ref_s": round(prompt_s, 3),
                           "talker_mb": round(talker.stat().st_size / 2**20), "codec_mb": round(codec.stat().st_size / 2**20)}
    for mode in modes:
        voice: dict[str, Any] = {"ref_spk_emb": ref.ref_spk_emb}
        if mode == "icl":
            voice.update(ref_codes=ref.ref_codes, ref_text=ref_text)
        runs = []
        for rep in range(reps):
            perf.clear()
            started = time.perf_counter()
            first, samples = None, 0
            for piece, _rate in tts.stream(text=text, lang="english", seed=rep, max_new_tokens=frames, **voice):
                first = first if first is not None else time.perf_counter() - started
                samples += piece.size
            total = time.perf_counter() - started
            made = samples // FRAME
            runs.append({"frames": made, "seconds": total, "first_audio": first, "frames_per_s": made / total,
                         "rtf": total / (samples / 24000), "stages_ms": dict(perf)})
        best = statistics.median(r["frames_per_s"] for r in runs)
        out[mode] = {
            "frames_per_s": round(best, 2),
            "rtf": round(statistics.median(r["rtf"] for r in runs), 2),
            "first_audio_s": round(statistics.median(r["first_audio"] for r in runs), 3),
            "stages_ms": runs[len(runs) // 2]["stages_ms"],
            "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in runs],
        }
    tts.set_log_callback(None)  # the hook is process-wide: unhook before the callback is freed
    tts.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="0.6B", choices=("0.6B", "1.7B"))
    parser.add_argument("--quants", nargs="+", default=["Q8_0", "Q4_K_M"])
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--modes", nargs="+", default=["xvector", "icl"])
    args = parser.parse_args(argv)
    runtime = probe()
    if not runtime.ok:
        print(f"the GGML engine cannot run here: {runtime.why}", file=sys.stderr)
        return 2
    import os

    report = {"cpu": cpu_description(), "native": runtime.why, "frames": args.frames,
              "load_average_before": os.getloadavg(), "results": {}}
    for quant in args.quants:
        report["results"][quant] = measure(args.size, quant, args.frames, args.reps, modes=tuple(args.modes),
                                           threads=args.threads)
    report["load_average_after"] = os.getloadavg()  # other processes on the CPUs distort every figure
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ggml_speed.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report["cpu"]), "load average", report["load_average_before"], report["load_average_after"])
    for quant, result in report["results"].items():
        for mode in args.modes:
            r = result[mode]
            print(f"frames_per_s[GGML {quant} {mode}]={r['frames_per_s']:.2f} rtf={r['rtf']:.2f} "
                  f"first_audio={r['first_audio_s']:.2f}s stages_ms={r['stages_ms']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
