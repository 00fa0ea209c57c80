"""Benchmark a long text (five sentence chunks) streamed by voicebox, against the official path.

Why a second TTS bench: ``tts_speed.py`` times one sentence, where batching cannot help. A long
text is split into chunks; :meth:`TTSEngine.stream` generates the first chunk alone (quick first
audio) and the others together, because on a CPU the decode loop is bound by reading the weights
and a batch of four costs little more per frame than one row. This bench measures that against
the same engine taking the chunks one at a time (``max_batch=1``) and against the official
``generate_voice_clone`` speaking the whole text as one utterance, in the same run.

Same setup as ``tts_speed.py`` (full-size random weights, cached ICL voice, interleaved runs,
medians); random weights never stop, so every chunk is exactly ``--frames`` frames and the
official take ``5 * --frames``. Results: ``bench/results/tts_long_stream_<device>.json``; the last
line printed is ``speedup_vs_official=X.XX`` (batched streaming, frames/s).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tts_speed as base  # noqa: E402  (same checkpoint, reference and helpers)

LONG_TEXT = (
    "Voice cloning on a small computer should feel quick, even for a long text, and this first part "
    "of the paragraph is here to start the measurement with a sentence of ordinary length. "
    "The second part keeps going in the same calm voice, describing nothing in particular, so that "
    "the model has a fair amount of text to read before the paragraph is over and done. "
    "A third part follows, a little different in rhythm, because long readings are rarely uniform "
    "and a studio that reads articles aloud should not care about that at all, really. "
    "The fourth part is where a listener might start to wonder how much is left, which is exactly "
    "the moment when waiting for a slow machine becomes annoying, so speed matters here. "
    "And the fifth part closes the paragraph, with one last sentence that ends the measurement and "
    "lets the numbers speak for themselves, whatever they turn out to be on this machine."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--size", default="0.6B")
    parser.add_argument("--frames", type=int, default=10, help="frames per chunk (the official take: 5x)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from voicebox.engines.params import make_params
    from voicebox.engines.text_split import chunk_text
    from voicebox.engines.tts import CHUNK_MAX_CHARS

    chunks = len(chunk_text(LONG_TEXT, CHUNK_MAX_CHARS))
    started = time.perf_counter()
    path = base.checkpoint(args.size)
    engine = base.make_engine(path, args.size, args.device)
    engine.load(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        sample, ref_seconds = base.reference_sample(Path(tmp), 0.0)
        prompt, _, _ = engine.voice_prompt([sample])
        item = base.official_item(prompt)
        batch = engine.max_batch
        runs: dict[str, list[dict[str, Any]]] = {"official": [], "voicebox_one_at_a_time": [], "voicebox": []}
        warm = make_params(seed=99, max_new_tokens=3)
        base.run_voicebox(engine, sample, warm, args.device)
        for rep in range(args.reps):
            params = make_params(seed=500 + rep, max_new_tokens=args.frames + 1)
            runs["official"].append(base.run_official(engine, item, make_params(
                seed=500 + rep, max_new_tokens=chunks * args.frames + 1), chunks * args.frames, args.device,
                text=LONG_TEXT))
            engine.max_batch = 1
            runs["voicebox_one_at_a_time"].append(base.run_voicebox(engine, sample, params, args.device, text=LONG_TEXT))
            engine.max_batch = batch
            runs["voicebox"].append(base.run_voicebox(engine, sample, params, args.device, text=LONG_TEXT))
            base.log(f"rep {rep + 1}/{args.reps}: " + ", ".join(
                f"{name} {r[-1]['frames'] / r[-1]['total']:.2f} fr/s" for name, r in runs.items()))

    summary: dict[str, Any] = {}
    for name, rows in runs.items():
        fps = statistics.median(r["frames"] / r["total"] for r in rows)
        summary[name] = {
            "repetitions": len(rows), "frames": rows[0]["frames"], "frames_per_s": round(fps, 3),
            "rtf": round(statistics.median(r["total"] / r["audio_seconds"] for r in rows), 3),
            "first_audio_s": round(statistics.median(r["first_audio"] for r in rows), 3),
            "total_s": round(statistics.median(r["total"] for r in rows), 3),
        }
    for entry in summary.values():
        entry["speedup_vs_official"] = round(entry["frames_per_s"] / summary["official"]["frames_per_s"], 2)

    base.log(f"\n{args.size} on {args.device}, {chunks} chunks x {args.frames} frames, medians of {args.reps}:")
    base.log("| path | frames/s | RTF | first audio (s) | total (s) | speedup |")
    base.log("|---|---|---|---|---|---|")
    for name, r in summary.items():
        base.log(f"| {name} | {r['frames_per_s']:.2f} | {r['rtf']:.2f} | {r['first_audio_s']:.2f} | "
                 f"{r['total_s']:.1f} | {r['speedup_vs_official']:.2f}x |")
    import torch

    out = args.out or base.RESULTS / f"tts_long_stream_{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "tts_long_stream",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["bench/tts_long_stream.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__},
        "size": args.size, "device": args.device, "chunks": chunks, "frames_per_chunk": args.frames,
        "max_batch": batch, "reference_seconds": round(ref_seconds, 2), "text_chars": len(LONG_TEXT),
        "results": summary, "runs": runs, "wall_seconds": round(time.perf_counter() - started, 1),
    }, indent=2) + "\n", encoding="utf-8")
    base.log(f"results written to {out.relative_to(base.REPO_ROOT)}")
    print(f"speedup_vs_official={summary['voicebox']['speedup_vs_official']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
