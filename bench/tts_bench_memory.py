"""Peak memory of one path, measured in a fresh process so that neither path sees the other's.

:func:`measure_memory` starts ``tts_speed.py --memory-probe official|voicebox`` (the hidden probe
mode of the entry point), which runs :func:`memory_probe`: load the model as that path would,
build the voice, generate one take, and report RSS once loaded, the peak while generating and the
peak of the whole process (and the peak CUDA allocation on CUDA). RSS is sampled by a thread
(:class:`RssSampler`), because ``ru_maxrss`` survives ``exec`` and would report the parent's peak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tts_bench_setup import REPO_ROOT, TEXT, make_engine, official_item, reference_sample
from tts_bench_timing import run_official, run_voicebox

ENTRY_POINT = Path(__file__).with_name("tts_speed.py")


def memory_probe(path: str, size: str, device: str, which: str, frames: int, ref_seconds: float) -> dict[str, Any]:
    import tempfile

    if which.startswith("ggml-"):
        return ggml_memory_probe(size, which.removeprefix("ggml-"), frames, ref_seconds)

    import torch

    from voicebox.engines.params import make_params

    whole = RssSampler().__enter__()  # the whole probe, loading included
    with tempfile.TemporaryDirectory() as tmp:
        sample, _ = reference_sample(Path(tmp), ref_seconds)
        engine = make_engine(Path(path), size, device, quantize="auto" if which == "voicebox" else "off",
                             fast=which == "voicebox", keep_fp32=False)
        engine.load(size)
        prompt, _, _ = engine.voice_prompt([sample])
        loaded = rss_mib()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        params = make_params(seed=1, max_new_tokens=frames + 1)
        with RssSampler() as sampler:
            if which == "voicebox":
                run_voicebox(engine, sample, params, device)
            else:
                run_official(engine, official_item(prompt), params, frames, device)
    whole.__exit__(None, None, None)
    info = {
        "rss_loaded_mib": round(loaded, 1),  # model (and reduced copies) in memory, before generating
        "rss_peak_generating_mib": round(sampler.peak, 1),  # highest RSS seen while generating
        # incl. loading; sampled, because ru_maxrss survives exec and would report the parent's peak
        "peak_rss_mib": round(whole.peak, 1),
    }
    if device == "cuda":
        info["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return info


def ggml_memory_probe(size: str, quant: str, frames: int, ref_seconds: float) -> dict[str, Any]:
    """The GGML engine's side of :func:`memory_probe`: load its GGUF files, build the voice
    (speaker embedding and reference codes), stream one take (ICL, as the torch paths)."""
    import tempfile

    import ggml_speed
    from qwentts_cpp_cpu import QwenTTS

    from voicebox import audio
    from voicebox.engines.ggml_runtime import thread_count

    whole = RssSampler().__enter__()
    talker, codec = ggml_speed.gguf_files(size, quant)
    with tempfile.TemporaryDirectory() as tmp:
        sample, _ = reference_sample(Path(tmp), ref_seconds)
        reference = audio.load_mono(sample.path)
    baseline = rss_mib()  # this Python process with its imports (torch among them, as in voicebox)
    tts = QwenTTS(talker, codec, cpu_threads=thread_count())
    ref = tts.extract_voice_ref(reference)
    loaded = rss_mib()
    with RssSampler() as sampler:
        for _ in tts.stream(text=TEXT, lang="english", seed=1, max_new_tokens=frames, ref_spk_emb=ref.ref_spk_emb,
                            ref_codes=ref.ref_codes, ref_text=sample.text):
            pass
    whole.__exit__(None, None, None)
    tts.close()
    return {"rss_before_load_mib": round(baseline, 1), "rss_loaded_mib": round(loaded, 1),
            "rss_peak_generating_mib": round(sampler.peak, 1), "peak_rss_mib": round(whole.peak, 1)}


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """Samples this process's RSS every 10 ms in a thread (the peak of one phase, not of the process)."""

    def __enter__(self) -> RssSampler:
        import threading

        self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def measure_memory(path: Path, size: str, device: str, which: str, frames: int, ref_seconds: float) -> dict[str, Any]:
    cmd = [sys.executable, str(ENTRY_POINT), "--memory-probe", which, "--checkpoint", str(path), "--size", size,
           "--device", device, "--frames", str(frames), "--ref-seconds", str(ref_seconds)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": (done.stderr or done.stdout)[-500:]}

