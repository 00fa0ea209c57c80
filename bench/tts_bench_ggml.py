"""The GGML engine (qwentts.cpp) as extra lines of the TTS speed benchmark (``--ggml Q8_0 Q4_K_M``).

voicebox can also speak through qwentts.cpp, a C++/GGML port of Qwen3-TTS (the
``realtimetts-qwen-native-cpu`` package). To compare it with the torch paths on equal terms, each
requested quantisation is measured by :func:`ggml_speed.measure` right after the torch runs of a
size: the same random checkpoint (converted to GGUF once, under ``bench/checkpoints/<size>-gguf``),
the same text, the same reference audio and transcript (ICL mode, a cached voice), the same frames
per take and repetitions. Its speedup is its frames/s over the official path's frames/s measured in
the same run. Not interleaved with the official takes (another engine, loaded on its own), so a
machine whose load changes during the run shifts these ratios more than the torch ones.

The engine runs on the CPU only, and only where :func:`voicebox.engines.ggml_runtime.probe` says the
library loads; elsewhere one line says why it was skipped and the benchmark goes on.
"""

from __future__ import annotations

from typing import Any

from tts_bench_setup import TEXT, log


def ggml_engines(size: str, device: str, quants: list[str], frames: int, reps: int, sample: Any,
                 official_fps: float) -> dict[str, Any]:
    """``{"runtime", "threads", "mode", "results": {quant: measure(...) + speedup_vs_official}}``,
    or ``{"skipped": why}`` where the engine cannot run."""
    from voicebox.engines.ggml_runtime import probe, thread_count

    runtime = probe()
    why = runtime.why if not runtime.ok else (f"it runs on the CPU only, not {device}" if device != "cpu" else "")
    if why:
        log(f"GGML engines skipped ({', '.join(quants)}): {why}")
        return {"skipped": why}

    import ggml_speed

    from voicebox import audio

    reference = audio.load_mono(sample.path)  # the prepared 24 kHz reference the torch paths use
    out: dict[str, Any] = {"runtime": runtime.why, "threads": thread_count(), "mode": "icl", "results": {}}
    for quant in quants:
        try:
            result = ggml_speed.measure(size, quant, frames, reps, modes=("icl",), text=TEXT, reference=reference,
                                        ref_text=sample.text)
        except Exception as exc:  # noqa: BLE001 - one engine failing must not lose the torch results
            log(f"GGML {quant} failed: {type(exc).__name__}: {exc}")
            out["results"][quant] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        take = result["icl"]
        result["speedup_vs_official"] = round(take["frames_per_s"] / official_fps, 2)
        log(f"GGML {quant}: {take['frames_per_s']:.2f} fr/s (first audio {take['first_audio_s']:.2f}s, "
            f"median of {reps}), {result['speedup_vs_official']:.2f}x official")
        out["results"][quant] = result
    return out
