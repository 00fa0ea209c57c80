"""What the TTS speed benchmark prints once a size is measured: the table and the speedup lines.

Apart from the measuring so that the printed form (which people paste into issues, and whose
``speedup_vs_official`` lines other tooling reads) changes in one place. The JSON report is the
record; this only renders it.
"""

from __future__ import annotations

from typing import Any

from tts_bench_setup import log


def memory_cell(result: dict[str, Any]) -> str:
    """``loaded / peak generating`` MiB of one engine's fresh-process probe, or empty."""
    m = result.get("peak_memory", {})
    return f"{m['rss_loaded_mib']:.0f} / {m['rss_peak_generating_mib']:.0f}" if "rss_loaded_mib" in m else ""


def print_table(report: dict[str, Any]) -> None:
    log(f"\n{report['size']} on {report['device']} ({report['frames_per_take']} frames per take, "
        f"{report['reference_seconds']}s ICL reference), medians:")
    log("| path | linears | frames/s | RTF | first audio (s) | talker ms/frame | code predictor ms/frame "
        "| decode ms/frame | RSS loaded / peak generating (MiB) | speedup |")
    log("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in report["results"].items():
        mem = memory_cell(r)
        pf = r["per_frame_ms"]
        log(f"| {name} | {r['precision']} | {r['frames_per_s']:.2f} | {r['rtf']:.2f} | {r['first_audio_s']:.2f} | "
            f"{pf['talker']} | {pf['code_predictor']} | {pf['decode']} | {mem} | {r['speedup_vs_official']:.2f}x |")
    for quant, r in report.get("ggml", {}).get("results", {}).items():
        if "icl" in r:  # the library times its stages per take, not per frame: those columns stay empty
            g = r["icl"]
            log(f"| GGML {quant} | {quant} (GGUF) | {g['frames_per_s']:.2f} | {g['rtf']:.2f} | "
                f"{g['first_audio_s']:.2f} | | | | {memory_cell(r)} | {r['speedup_vs_official']:.2f}x |")
    for row in report.get("first_audio_by_reference", []):
        log(f"first audio, voicebox default, {row['reference_seconds']}s reference: {row['first_audio_s']:.2f}s")


def engine_speedups(report: dict[str, Any]) -> list[tuple[str, float]]:
    """``(engine, frames/s over the official path's)`` for every engine of ``report`` but the official
    path itself: ``voicebox <default precision>``, the other voicebox variants (``voicebox fp32``,
    ``voicebox int8``, ``voicebox loop``), then ``GGML <quant>`` for each quantisation measured."""
    rows = []
    for name, r in report["results"].items():
        if name != "official":
            label = f"voicebox {r['precision']}" if name == "voicebox" else name.replace("_", " ")
            rows.append((label, r["speedup_vs_official"]))
    for quant, r in report.get("ggml", {}).get("results", {}).items():
        if "speedup_vs_official" in r:
            rows.append((f"GGML {quant}", r["speedup_vs_official"]))
    return rows


def default_engine(report: dict[str, Any]) -> tuple[str, float]:
    """The engine ``VOICEBOX_BACKEND=auto`` runs for this report's device, with its speedup: on a
    CPU the GGML engine at the default quantisation when it was measured (auto picks it wherever
    the library runs and its files can be had, voicebox/backends.py), else voicebox's torch engine
    at its default precision."""
    from voicebox.config import Settings

    quant = Settings.gguf_quant
    ggml = report.get("ggml", {}).get("results", {}).get(quant, {})
    if report["device"] == "cpu" and "speedup_vs_official" in ggml:
        return f"GGML {quant}", ggml["speedup_vs_official"]
    voicebox = report["results"]["voicebox"]
    return f"voicebox {voicebox['precision']}", voicebox["speedup_vs_official"]
