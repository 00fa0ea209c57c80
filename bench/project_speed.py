"""Project speed at 200 blocks, and exporting a one-hour project's audio once rendered.

Run from the repo root: ``.venv/bin/python bench/project_speed.py`` (``--quick`` skips the export and
only prints).
No model runs: the studio has the espeak-ng test backend (never asked to speak) and Whisper is
never loaded. Measured, each the median of several runs, in milliseconds:

- ``parse``: reading a 200-block plain-text file (``voicebox.projects.importers.parse``);
- ``import_file``: parse plus creating the project (what ``POST /projects/import`` does);
- ``create``: ``studio.projects.create`` with 200 blocks;
- ``get``: ``studio.projects.store.get`` of that project;
- ``update_block``: ``studio.projects.update_block`` (a new text for one block, stored);
- ``list``: what ``GET /projects`` does (every project, summarised), with 1 and with 10 projects
  of 200 blocks in the store.

Export: 60 one-minute WAV takes of real speech (``jfk.flac`` repeated), as a rendered project's
60 blocks with a chapter every 10; ``voicebox.projects.export.assemble`` (join, loudness to
-18 LUFS, true-peak limit) once, then ``export_audio`` as M4B (AAC, chapters) and MP3, in seconds.

Writes ``bench/results/project_speed.json`` (with the CPU model and flags from ``lscpu``).
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
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicebox import audio
from voicebox.config import Settings
from voicebox.projects.export import RenderedBlock, assemble, export_audio
from voicebox.projects.importers import parse
from voicebox.services import Studio

BLOCKS = 200
REPEATS = 15
JFK = ROOT.parent / "shared" / "data" / "jfk.flac"
WORDS = ["keeper", "lamp", "stairs", "wick", "lens", "dusk", "ships", "rocks", "log", "night", "sea", "storm", "harbour", "bell", "tide", "gull", "rope", "lantern", "window", "island", "fog", "whistle", "morning", "letter", "captain"]


def block_text(i: int) -> str:
    """A paragraph of 3-5 sentences (~300 characters), different for every block."""
    rng = np.random.default_rng(i)
    sentences = []
    for _ in range(3 + i % 3):
        words = [WORDS[k] for k in rng.integers(0, len(WORDS), 10 + int(rng.integers(0, 6)))]
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def text_file() -> str:
    return "\n\n".join(block_text(i) for i in range(BLOCKS)) + "\n"


def median_ms(fn: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, list[float]]:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2), [round(t, 2) for t in times]


def cpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"model": platform.processor() or platform.machine(), "flags": "", "cpus": ""}
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    get = lambda key: fields.get(key, "").strip()
    return {"model": get("Model name"), "cpus": get("CPU(s)"), "flags": get("Flags")}


def make_studio(data: Path) -> Studio:
    from tests.support.espeak_backend import EspeakBackend

    return Studio(Settings(data_dir=data, quality="off"), tts=EspeakBackend())


def list_projects(studio: Studio) -> dict[str, Any]:
    """What ``GET /projects`` answers."""
    items = studio.projects.store.all()
    return {"items": [{"id": p.id, "title": p.title, "blocks": len(p.blocks), "render": p.render.to_dict(),
                       "updated_at": p.updated_at} for p in items], "total": len(items)}


def project_figures(tmp: Path) -> dict[str, Any]:
    studio = make_studio(tmp / "data")
    data = text_file().encode("utf-8")
    drafts = [{"text": b.text} for b in parse(data, "text").blocks]
    assert len(drafts) == BLOCKS, len(drafts)
    figures: dict[str, Any] = {"blocks": BLOCKS, "file_bytes": len(data)}
    runs: dict[str, list[float]] = {}

    figures["parse_ms"], runs["parse"] = median_ms(lambda: parse(data, "text"))
    # create and import add a project each run; they are deleted again so the store stays small
    made: list[str] = []
    figures["create_ms"], runs["create"] = median_ms(
        lambda: made.append(studio.projects.create("Bench", blocks=drafts).id))
    figures["import_file_ms"], runs["import_file"] = median_ms(
        lambda: made.append(studio.projects.import_file(data, "text", title="Bench").id))
    for project_id in made:
        studio.projects.delete(project_id)

    project = studio.projects.create("The lighthouse", blocks=drafts)
    figures["get_ms"], runs["get"] = median_ms(lambda: studio.projects.store.get(project.id))
    counter = iter(range(10**6))
    target = project.blocks[BLOCKS // 2].id
    figures["update_block_ms"], runs["update_block"] = median_ms(
        lambda: studio.projects.update_block(project.id, target, text=f"An edited line, take {next(counter)}."))
    figures["list_1_project_ms"], runs["list_1"] = median_ms(lambda: list_projects(studio))
    for n in range(9):
        studio.projects.create(f"Chapter {n + 2}", blocks=drafts)
    figures["list_10_projects_ms"], runs["list_10"] = median_ms(lambda: list_projects(studio))
    figures["get_with_10_projects_ms"], runs["get_10"] = median_ms(lambda: studio.projects.store.get(project.id))
    figures["update_block_with_10_projects_ms"], runs["update_block_10"] = median_ms(
        lambda: studio.projects.update_block(project.id, target, text=f"An edited line, take {next(counter)}."))
    figures["db_file_bytes_10_projects"] = sum(p.stat().st_size for p in (tmp / "data").glob("*.json"))
    figures["runs_ms"] = runs
    return figures


def export_figures(tmp: Path) -> dict[str, Any]:
    rate = audio.MODEL_SAMPLE_RATE
    speech = audio.load_mono(JFK, rate)
    minute = np.tile(speech, int(np.ceil(60 * rate / len(speech))))[: 60 * rate]
    folder = tmp / "takes"
    folder.mkdir()
    blocks = []
    for i in range(60):
        path = folder / f"{i:03d}.wav"
        _write_pcm16(path, minute * (0.5 + 0.5 * ((i % 5) / 4)), rate)  # blocks at different levels
        blocks.append(RenderedBlock(i, f"Block {i + 1}", path, 0.6, f"Chapter {i // 10 + 1}" if i % 10 == 0 else ""))
    figures: dict[str, Any] = {"blocks": 60, "block_seconds": 60.0}
    start = time.perf_counter()
    samples, out_rate, timeline = assemble(blocks, target_lufs=-18.0)
    figures["assemble_s"] = round(time.perf_counter() - start, 2)
    figures["audio_seconds"] = round(len(samples) / out_rate, 1)
    for fmt in ("m4b", "mp3"):
        start = time.perf_counter()
        out = export_audio(samples, out_rate, timeline, fmt, tmp / f"hour.{fmt}", "One hour")
        figures[f"{fmt}_encode_s"] = round(time.perf_counter() - start, 2)
        figures[f"{fmt}_total_s"] = round(figures["assemble_s"] + figures[f"{fmt}_encode_s"], 2)
        figures[f"{fmt}_bytes"] = out.stat().st_size
    return figures


def _write_pcm16(path: Path, samples: np.ndarray, rate: int) -> None:
    import wave

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the one-hour export (and write no results file)")
    args = parser.parse_args()
    results: dict[str, Any] = {"cpu": cpu(), "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        results["project"] = project_figures(Path(tmp) / "p")
        if not args.quick:
            (Path(tmp) / "e").mkdir()
            results["export_one_hour"] = export_figures(Path(tmp) / "e")
    if not args.quick:  # a quick run prints only, so the results file always holds a whole run
        out = ROOT / "bench" / "results" / "project_speed.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")

    p = results["project"]
    print(f"CPU: {results['cpu']['model']} ({results['cpu']['cpus']} CPUs)")
    print(f"{BLOCKS} blocks, {p['file_bytes']:,} bytes of text; medians of {REPEATS} runs")
    print(f"| {'step':<36} | {'ms':>8} |")
    print(f"|{'-' * 38}|{'-' * 10}|")
    for key in ("parse_ms", "import_file_ms", "create_ms", "get_ms", "update_block_ms", "list_1_project_ms",
                "list_10_projects_ms", "get_with_10_projects_ms", "update_block_with_10_projects_ms"):
        print(f"| {key[:-3]:<36} | {p[key]:>8.2f} |")
    if "export_one_hour" in results:
        e = results["export_one_hour"]
        print(f"one-hour export ({e['audio_seconds']} s of audio): assemble {e['assemble_s']} s; "
              f"m4b encode {e['m4b_encode_s']} s (total {e['m4b_total_s']} s, {e['m4b_bytes']:,} bytes); "
              f"mp3 encode {e['mp3_encode_s']} s (total {e['mp3_total_s']} s, {e['mp3_bytes']:,} bytes)")


if __name__ == "__main__":
    main()
