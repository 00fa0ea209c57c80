"""Benchmark rendering a project of short same-voice blocks: one request per block, or batched.

Why: a project is mostly blocks of one to three short sentences, and the chunker packs such a
block into one sentence chunk, so rendering block by block runs the decode loop with one row. On a
CPU that loop is bound by reading the weights, and the engine already batches the chunks of one
long text (``bench/tts_long_stream.py``); here the chunks of several blocks share one batch.

Two levels, both on the full-size random-weight checkpoint of ``tts_speed.py`` (built once into
``bench/checkpoints/``; random weights of the real size run at the real speed), a cached ICL voice,
``--blocks`` short blocks (one chunk each):

* ``engine``: ``TTSEngine.speak`` once per block, against once per group of blocks whose chunks fit
  one batch (``rows_per_batch()``, 4 on a CPU): the engine's share alone;
* ``render``: the whole project rendered through the studio (``Renders``, takes saved, quality
  gate off) with batching off, then on: what a person waits for.

Random weights never emit end-of-speech, so every chunk is exactly ``--frames`` frames, and every
chunk would count as a runaway that the engine makes once more alone (``TakeRunner._settle``); a
real model stops, so that retry is switched off here in both arms alike. Runs are interleaved,
the arms' order alternating by repetition, so a busy machine slows both alike; medians are
reported, and the speedup is the ratio of the medians measured in the same run.

Run from the repo root: ``.venv/bin/python bench/project_render_speed.py`` (about 6 minutes on
2 cores). Writes ``bench/results/project_render_speed_cpu.json`` with the CPU model and flags from
``lscpu``; the last line printed is ``speedup=X.XX`` (render level, batched vs one at a time).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tts_speed as base  # same checkpoint, reference and helpers

#: Short blocks of a story, one to three sentences each (each one sentence chunk).
BLOCKS = [
    "The keeper climbed the stairs.",
    "He trimmed the wick and wiped the glass.",
    "He polished the great lens. It shone.",
    "He lit the lamp at dusk.",
    "Three ships passed the rocks that night.",
    "He wrote their names in the log. Then he slept.",
    "The fog came in before the morning.",
    "He rang the bell. Nobody answered. He rang again.",
]


def cpu() -> dict[str, Any]:
    """The CPU as ``lscpu`` names it: model, cores, flags (empty where lscpu is missing)."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"model": platform.processor(), "cpus": "", "flags": []}
    info = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}
    flags = info.get("Flags", "").split()
    return {
        "model": info.get("Model name", ""), "cpus": info.get("CPU(s)", ""),
        "hypervisor": info.get("Hypervisor vendor", ""),
        "simd": [f for f in flags if f.startswith(("avx", "amx", "fma", "sse4"))], "flags": flags,
    }


def no_runaway_retry() -> None:
    """Random weights never stop: keep each chunk's capped codes instead of making it again."""
    from voicebox.engines.synthesis import TakeRunner

    TakeRunner._settle = lambda self, take, index, codes, ran_away, seed: (codes, bool(ran_away), seed)


def groups_of(chunk_counts: list[int], rows: int) -> list[list[int]]:
    """Consecutive blocks whose chunks fit one batch of ``rows`` (a bigger block stays alone)."""
    out: list[list[int]] = []
    for i, count in enumerate(chunk_counts):
        if out and sum(chunk_counts[j] for j in out[-1]) + count <= rows:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def drain(engine: Any, request: Any) -> int:
    """Run one request through ``speak``; the frames made."""
    from voicebox.speech import ChunkResult

    return sum(e.frames for e in engine.speak(request) if isinstance(e, ChunkResult))


def engine_arms(engine: Any, sample: Any, frames: int) -> dict[str, Callable[[int], dict[str, Any]]]:
    """``one_at_a_time`` and ``batched`` at the engine level, each a call of a repetition number."""
    from dataclasses import replace

    from voicebox.assembly import speech_request
    from voicebox.engines.params import make_params

    def requests(seed: int) -> list[Any]:
        params = make_params(seed=seed, max_new_tokens=frames + 1)
        return [speech_request(text, [sample], params, "English") for text in BLOCKS]

    def one(rep: int) -> dict[str, Any]:
        started = time.perf_counter()
        made = sum(drain(engine, r) for r in requests(700 + rep))
        return {"total": time.perf_counter() - started, "frames": made, "calls": len(BLOCKS)}

    def batched(rep: int) -> dict[str, Any]:
        singles = requests(700 + rep)
        plan = groups_of([len(r.chunks) for r in singles], engine.rows_per_batch())
        started = time.perf_counter()
        made = 0
        for group in plan:
            chunks = tuple(c for i in group for c in singles[i].chunks)
            made += drain(engine, replace(singles[group[0]], chunks=chunks))
        return {"total": time.perf_counter() - started, "frames": made, "calls": len(plan)}

    return {"one_at_a_time": one, "batched": batched}


def render_arms(engine: Any, sample_path: Path, data: Path, frames: int) -> dict[str, Callable[[int], dict[str, Any]]]:
    """``one_at_a_time`` and ``batched`` through the studio: a project of ``BLOCKS`` rendered by
    ``Renders`` with ``batching`` off or on (the engine capped at ``frames`` frames a chunk)."""
    from voicebox.config import Settings
    from voicebox.services import Studio

    engine.max_frames = frames
    studio = Studio(Settings(data_dir=data, quality="off"), tts=engine, asr=object())
    profile = studio.create_profile("Bench", language="English")
    studio.add_sample(profile.id, sample_path, base.REFERENCE_TEXT)

    def arm(batching: bool) -> Callable[[int], dict[str, Any]]:
        def run(rep: int) -> dict[str, Any]:
            project = studio.projects.create(f"rep {rep}", voice=profile.id, language="English",
                                             blocks=[{"text": t} for t in BLOCKS])
            studio.renders.batching = batching
            started = time.perf_counter()
            studio.renders.start(project.id)
            done = studio.renders.wait(project.id)
            total = time.perf_counter() - started
            assert done.render.state == "done", done.render
            takes = [studio.get_generation(b.generation_id) for b in done.blocks]
            made = sum(c.frames for t in takes for c in t.chunks)
            studio.projects.delete(project.id)
            return {"total": total, "frames": made, "blocks": len(takes)}
        return run

    return {"one_at_a_time": arm(False), "batched": arm(True)}


def measure(arms: dict[str, Callable[[int], dict[str, Any]]], reps: int, label: str) -> dict[str, Any]:
    """Interleaved repetitions (order alternating), medians and the speedup of ``batched``."""
    names = list(arms)
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            runs[name].append(arms[name](rep))
        base.log(f"{label} rep {rep + 1}/{reps}: " + ", ".join(
            f"{n} {r[-1]['total']:.1f}s ({r[-1]['frames'] / r[-1]['total']:.2f} fr/s)" for n, r in runs.items()))
    summary: dict[str, Any] = {}
    for name, rows in runs.items():
        summary[name] = {
            "repetitions": len(rows), "frames": rows[0]["frames"],
            "total_s": round(statistics.median(r["total"] for r in rows), 3),
            "frames_per_s": round(statistics.median(r["frames"] / r["total"] for r in rows), 3),
        }
    summary["speedup"] = round(summary["one_at_a_time"]["total_s"] / summary["batched"]["total_s"], 2)
    # each repetition's own ratio too: on a shared machine the load drifts between repetitions
    paired = [a["total"] / b["total"] for a, b in zip(runs["one_at_a_time"], runs["batched"])]
    summary["paired_speedups"] = [round(x, 2) for x in paired]
    summary["paired_speedup_median"] = round(statistics.median(paired), 2)
    return {"results": summary, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="0.6B")
    parser.add_argument("--frames", type=int, default=10, help="frames per chunk (one chunk per block)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--levels", nargs="+", default=["engine", "render"], choices=["engine", "render"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    no_runaway_retry()
    path = base.checkpoint(args.size)
    engine = base.make_engine(path, args.size, "cpu", keep_fp32=False)
    engine.load(args.size)
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sample, ref_seconds = base.reference_sample(Path(tmp), 0.0)
        engine.voice_prompt([sample])
        from voicebox.assembly import speech_request
        from voicebox.engines.params import make_params

        drain(engine, speech_request(BLOCKS[0], [sample], make_params(seed=1, max_new_tokens=3), "English"))  # warm-up
        if "engine" in args.levels:
            report["engine"] = measure(engine_arms(engine, sample, args.frames), args.reps, "engine")
        if "render" in args.levels:
            report["render"] = measure(render_arms(engine, sample.path, Path(tmp) / "data", args.frames),
                                       args.reps, "render")

    import torch

    base.log(f"\n{args.size} on cpu, {len(BLOCKS)} blocks x {args.frames} frames, rows per batch "
             f"{engine.rows_per_batch()}, medians of {args.reps}:")
    base.log("| level | one at a time (s) | batched (s) | speedup |")
    base.log("|---|---|---|---|")
    for level, entry in report.items():
        r = entry["results"]
        base.log(f"| {level} | {r['one_at_a_time']['total_s']:.1f} | {r['batched']['total_s']:.1f} | {r['speedup']:.2f}x |")
    out = args.out or base.RESULTS / "project_render_speed_cpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "project_render_speed",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["bench/project_render_speed.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(), "cpu": cpu()},
        "size": args.size, "device": "cpu", "blocks": len(BLOCKS), "frames_per_chunk": args.frames,
        "rows_per_batch": engine.rows_per_batch(), "reference_seconds": round(ref_seconds, 2),
        "linear_precision": engine.status()["linear_precision"],
        **report, "wall_seconds": round(time.perf_counter() - started, 1),
    }, indent=2) + "\n", encoding="utf-8")
    base.log(f"results written to {out}")
    last = report.get("render") or report.get("engine")
    print(f"speedup={last['results']['speedup']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
