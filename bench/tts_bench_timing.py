"""Timing one take of each path: the official ``generate_voice_clone`` and voicebox's stream.

Why a module of its own: the two paths must be timed the same way (synchronised, wall clock, the
same frame count from the audio length), and the memory probe runs exactly these takes in a fresh
process. :class:`StageTimer` splits the official path into prefill, talker steps, code predictor
and codec decode by wrapping its pieces; voicebox reports the same stages itself
(``engine.last_profile``). :func:`summarise` turns repetitions into medians, and
:func:`first_audio_sweep` times the first streamed audio for shorter references.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tts_bench_setup import FRAME_SECONDS, TEXT, log, reference_sample, sync


class StageTimer:
    """Wraps the official path's pieces (instance attributes, removed afterwards) to time its stages."""

    def __init__(self, qwen: Any, device: str) -> None:
        self.qwen, self.device = qwen, device
        self.t = {"prefill": 0.0, "generate": 0.0, "code_predictor": 0.0, "decode": 0.0}

    def _wrap(self, owner: Any, name: str, key: str, when: Callable[..., bool] | None = None) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)  # transformers inspects forward()'s signature
        def timed(*args: Any, **kwargs: Any) -> Any:
            if when is not None and not when(*args, **kwargs):
                return original(*args, **kwargs)
            sync(self.device)
            started = time.perf_counter()
            out = original(*args, **kwargs)
            sync(self.device)
            self.t[key] += time.perf_counter() - started
            return out

        setattr(owner, name, timed)

    def __enter__(self) -> StageTimer:
        inner = self.qwen.model
        talker = inner.talker

        def is_prefill(*args: Any, **kwargs: Any) -> bool:
            embeds = kwargs.get("inputs_embeds")
            return embeds is not None and embeds.shape[1] > 1

        self._wrap(inner, "generate", "generate")
        self._wrap(talker.code_predictor, "generate", "code_predictor")
        self._wrap(talker, "forward", "prefill", is_prefill)
        self._wrap(inner.speech_tokenizer, "decode", "decode")
        return self

    def __exit__(self, *exc: object) -> None:
        inner = self.qwen.model
        for owner, name in ((inner, "generate"), (inner.talker.code_predictor, "generate"),
                            (inner.talker, "forward"), (inner.speech_tokenizer, "decode")):
            with contextlib.suppress(AttributeError):
                delattr(owner, name)

    def stages(self) -> dict[str, float]:
        t = self.t
        return {
            "prefill": t["prefill"], "talker": t["generate"] - t["prefill"] - t["code_predictor"],
            "code_predictor": t["code_predictor"], "decode": t["decode"],
        }



def run_official(engine: Any, item: Any, params: Any, frames: int, device: str, text: str = TEXT) -> dict[str, Any]:
    import torch

    qwen = engine._model
    torch.manual_seed(params.seed)
    sync(device)
    with StageTimer(qwen, device) as timer:
        started = time.perf_counter()
        wavs, rate = qwen.generate_voice_clone(
            text, language="English", voice_clone_prompt=[item], max_new_tokens=frames + 1,
            non_streaming_mode=False, **params.sampling_kwargs(),
        )
        sync(device)
        total = time.perf_counter() - started
    audio_s = len(wavs[0]) / rate
    return {"total": total, "first_audio": total, "audio_seconds": audio_s, "frames": round(audio_s / FRAME_SECONDS),
            **timer.stages()}


def run_voicebox(engine: Any, sample: Any, params: Any, device: str, text: str = TEXT) -> dict[str, Any]:
    sync(device)
    started = time.perf_counter()
    first = None
    result = None
    for piece in engine.stream(text, [sample], "English", params=params):
        if first is None and len(piece.audio):
            first = time.perf_counter() - started
        if piece.result is not None:
            result = piece.result
    sync(device)
    total = time.perf_counter() - started
    prof = engine.last_profile
    audio_s = len(result.audio) / result.sample_rate
    return {"total": total, "first_audio": first, "audio_seconds": audio_s, "frames": round(audio_s / FRAME_SECONDS),
            "prefill": prof.get("prefill"), "talker": prof.get("talker"), "code_predictor": prof.get("code_predictor"),
            "decode": prof.get("decode"), "status": result.status}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float | None:
        values = [r[key] for r in runs if r.get(key) is not None]
        return round(statistics.median(values), 4) if values else None

    total, audio_s, frames = med("total"), med("audio_seconds"), med("frames")
    per_run_fps = [r["frames"] / r["total"] for r in runs]
    return {
        "repetitions": len(runs),
        "frames": frames,
        "audio_seconds": audio_s,
        "total_s": total,
        "frames_per_s": round(statistics.median(per_run_fps), 3),
        "rtf": round(statistics.median(r["total"] / r["audio_seconds"] for r in runs), 3),
        "first_audio_s": med("first_audio"),
        "stages_s": {k: med(k) for k in ("prefill", "talker", "code_predictor", "decode")},
        "per_frame_ms": {
            k: (round(1000 * med(k) / frames, 1) if med(k) is not None and frames else None)
            for k in ("talker", "code_predictor", "decode")
        },
        "runs": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in runs],
    }



def first_audio_sweep(engine: Any, tmp: Path, device: str, reps: int) -> list[dict[str, Any]]:
    """voicebox's default configuration: time to the first streamed audio for shorter references
    (the ICL prefill grows with the reference: ~12.5 positions per second)."""
    from voicebox.engines.params import make_params

    rows = []
    for seconds in (3.0, 6.0, 0.0):
        folder = tmp / f"ref{seconds:g}"
        folder.mkdir(exist_ok=True)
        sample, actual = reference_sample(folder, seconds)
        engine.voice_prompt([sample])  # cached voice, as in the main runs
        run_voicebox(engine, sample, make_params(seed=499, max_new_tokens=2), device)  # primes the codec state
        times = []
        for rep in range(reps):
            params = make_params(seed=500 + rep, max_new_tokens=engine.stream_first_frames + 2)
            times.append(run_voicebox(engine, sample, params, device)["first_audio"])
        rows.append({"reference_seconds": round(actual, 2), "first_audio_s": round(statistics.median(times), 3),
                     "runs": [round(t, 3) for t in times]})
        log(f"first audio with a {actual:.1f}s reference: {statistics.median(times):.2f}s (median of {reps})")
    return rows

