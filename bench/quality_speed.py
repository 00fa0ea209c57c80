"""What the quality checks cost: seconds of check time per second of audio, per part.

For clips of typical chunk length and longer (``bench/quality_cases.py``: one espeak-ng sentence,
``jfk.flac``, 30 s of read speech, 20 s of gibberish) it times, separately, the parts of
:meth:`voicebox.quality.QualityGate.score`:

* ``asr``: ``WhisperEngine.transcribe(samples, language="en", use_cache=False)`` (VAD + model);
* ``embedding``: ``SpeakerEncoder.embed`` (Resemblyzer's preprocessing + the encoder);
* ``signal_text``: the signal statistics, the loudness and the error rate (no model);

each the median of ``--runs`` calls after one warm-up, as a ratio to the clip's duration (0.05 =
one second of audio costs 50 ms); the best run is kept too, since the machine is shared and a
busy neighbour slows single runs several-fold. It also times building a profile's embedding from three
samples (once per voice, then cached), and relates the total to the TTS real-time factor in
``bench/results/tts_speed_cpu.json`` when present. Results, with the CPU model and flags from
``lscpu``, go to ``bench/results/quality_speed.json``.

Run from the repo root::

    .venv/bin/python bench/quality_speed.py [--model auto|NAME|DIR] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

from asr_speed import default_model, model_label
from quality_cases import RATE, build

from voicebox.engines.asr import WhisperEngine
from voicebox.errors import InvalidInput
from voicebox.quality import SpeakerEncoder, Thresholds, level_db
from voicebox.quality import signal as signal_stats
from voicebox.quality.text import cer

RESULTS = REPO_ROOT / "bench" / "results" / "quality_speed.json"
TTS_RESULTS = REPO_ROOT / "bench" / "results" / "tts_speed_cpu.json"
CLIPS = ("espeak_0", "jfk", "gibberish_20s", "mit_english")


def cpu() -> dict:
    """The CPU as ``lscpu`` names it: model, cores, flags (empty where lscpu is missing)."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"model": platform.processor(), "cpu_count": os.cpu_count(), "flags": []}
    info = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}
    flags = info.get("Flags", "").split()
    return {
        "model": info.get("Model name", ""),
        "cpu_count": os.cpu_count(),
        "vendor": info.get("Vendor ID", ""),
        "hypervisor": info.get("Hypervisor vendor", ""),
        "simd": [flag for flag in flags if flag.startswith(("avx", "amx", "fma", "sse4"))],
        "flags": flags,
    }


def timed(call, runs: int) -> tuple[float, list[float]]:
    """Median seconds of ``runs`` calls after one warm-up call."""
    call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), [round(t, 4) for t in times]


def transcribe(asr: WhisperEngine, samples) -> str:
    """A model call as the gate makes it; "heard nothing" is an answer, not an error."""
    try:
        return asr.transcribe(samples, language="en", use_cache=False).text
    except InvalidInput:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=default_model(), help="Whisper model (default: bundled tiny.en)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    m = build()
    asr = WhisperEngine(model=args.model, device="cpu")
    started = time.perf_counter()
    asr.load()
    asr_load = time.perf_counter() - started
    speaker = SpeakerEncoder("cpu")
    started = time.perf_counter()
    speaker.load()
    speaker_load = time.perf_counter() - started

    rows = []
    for name in CLIPS:
        clip = m[name]
        samples, text, seconds = clip.samples, clip.text or "x", clip.seconds
        parts = {
            "asr": lambda: transcribe(asr, samples),
            "embedding": lambda: speaker.embed(samples, RATE),
            "signal_text": lambda: (signal_stats.stats(samples, RATE), level_db(samples, RATE),
                                    cer(text, text[::-1], "en")),
        }
        row = {"clip": name, "seconds": round(seconds, 2)}
        for part, call in parts.items():
            median, runs = timed(call, args.runs)
            row[part] = {"median_s": round(median, 4), "per_audio_s": round(median / seconds, 4),
                         "best_per_audio_s": round(min(runs) / seconds, 4), "runs_s": runs}
        row["total_per_audio_s"] = round(sum(row[p]["per_audio_s"] for p in parts), 4)
        rows.append(row)

    voice = [m[f"espeak_{i}"].samples for i in (5, 6, 7)]
    profile_s, _ = timed(lambda: speaker.embed_many([(x, RATE) for x in voice]), args.runs)
    profile_audio = sum(len(x) for x in voice) / RATE

    weighted = {part: round(sum(r[part]["median_s"] for r in rows) / sum(r["seconds"] for r in rows), 4)
                for part in ("asr", "embedding", "signal_text")}
    total = round(sum(weighted.values()), 4)
    tts = None
    if TTS_RESULTS.exists():
        report = json.loads(TTS_RESULTS.read_text())["reports"][0]
        tts = {"size": report["size"], "device": report["device"], "rtf": report["results"]["voicebox"]["rtf"]}
    import torch

    result = {
        "benchmark": "quality_speed",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu(),
                    "torch_threads": torch.get_num_threads(), "load_average": list(os.getloadavg())},
        "whisper_model": model_label(args.model, asr.model_name),
        "whisper_compute_type": asr.status()["compute_type"],
        "method": "median of N calls after a warm-up; per_audio_s = seconds of check time per second of audio",
        "load_s": {"whisper": round(asr_load, 3), "speaker_encoder": round(speaker_load, 3)},
        "clips": rows,
        "per_audio_s_all_clips": {**weighted, "total": total},
        "profile_embedding": {"samples": 3, "audio_s": round(profile_audio, 2), "median_s": round(profile_s, 4),
                              "note": "once per voice, then cached"},
        "tts_for_comparison": tts,
        "checks_share_of_generation": round(total / (tts["rtf"] + total), 4) if tts else None,
        "thresholds": Thresholds().to_dict(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"CPU {result['machine']['cpu']['model']} x{os.cpu_count()}; Whisper {result['whisper_model']}")
    print(f"{'clip':16} {'audio s':>8} {'asr':>8} {'embed':>8} {'signal':>8} {'total':>8}  (s per s of audio)")
    for r in rows:
        print(f"{r['clip']:16} {r['seconds']:8.2f} {r['asr']['per_audio_s']:8.4f} {r['embedding']['per_audio_s']:8.4f} "
              f"{r['signal_text']['per_audio_s']:8.4f} {r['total_per_audio_s']:8.4f}")
    print(f"{'all clips':16} {'':8} {weighted['asr']:8.4f} {weighted['embedding']:8.4f} "
          f"{weighted['signal_text']:8.4f} {total:8.4f}")
    print(f"profile embedding (3 samples, {profile_audio:.1f} s): {profile_s:.3f} s, once per voice")
    if tts:
        print(f"TTS {tts['size']} {tts['device']} RTF {tts['rtf']}: checks are "
              f"{result['checks_share_of_generation']:.1%} of generation + checks")
    print(f"wrote {args.out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
