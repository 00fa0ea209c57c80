"""Benchmark Qwen3-TTS: the official ``generate_voice_clone`` path against voicebox's engine.

Both run in the same process, on the same full-size random-weight checkpoint (built once into
``bench/checkpoints/``; random weights of the real size run at the real speed), with the same
voice prompt, text and sampling parameters, interleaved repetition by repetition so that a busy
machine slows both alike. Reported per path (medians over the repetitions):

* frames/s and real-time factor (compute seconds / audio seconds; < 1 is faster than real time);
* time to the first audio: the official path returns audio only when the take is done; voicebox
  streams (:meth:`TTSEngine.stream`) with a cached voice prompt;
* per-stage seconds: prefill, talker steps, code predictor, codec decode;
* peak memory: peak RSS (CPU) or peak CUDA allocation of a fresh process that loads the model and
  generates once with that path.

Quality guard on the same weights, greedy decoding: voicebox's fp32 loop must give the official
path's codec tokens exactly (token parity); the reduced-precision loops (fp16, int8 weights) are
compared with fp32 over 50 frames, free-running (the share of first-codebook tokens that agree)
and teacher-forced (the share of decisions that agree given the same history).

Random weights never emit end-of-speech, so every take is exactly ``--frames`` frames long.

Run from the repo root::

    .venv/bin/python bench/tts_speed.py --quick          # 0.6B, CPU (+ CUDA when present), ~10 min
    .venv/bin/python bench/tts_speed.py --sizes 0.6B 1.7B --frames 50 --reps 7

Results go to ``bench/results/tts_speed_<device>.json``; the last line printed is
``speedup_vs_official=X.XX`` (voicebox's default configuration, frames/s ratio of medians).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

warnings.filterwarnings("ignore")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402

CHECKPOINTS = REPO_ROOT / "bench" / "checkpoints"
RESULTS = REPO_ROOT / "bench" / "results"
REFERENCE = REPO_ROOT.parent / "shared" / "data" / "jfk.flac"
REFERENCE_TEXT = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
TEXT = "Voice cloning on a small computer should feel quick, and this sentence is here to measure it."
FRAME_SECONDS = 0.08
AGREEMENT_FRAMES = 50
AGREEMENT_TARGET = 0.95


def log(message: str) -> None:
    print(message, flush=True)


# ---- setup ------------------------------------------------------------------------------------
def checkpoint(size: str) -> Path:
    from tests.support.qwen_checkpoint import build_random_checkpoint

    started = time.perf_counter()
    path = build_random_checkpoint(CHECKPOINTS / size, size, seed=0, reuse=True)
    log(f"checkpoint {size}: {path} ({time.perf_counter() - started:.0f}s)")
    return path


def reference_sample(tmp: Path, seconds: float) -> Any:
    from voicebox import audio
    from voicebox.engines.tts import ReferenceSample

    samples, rate = audio.decode(REFERENCE)
    prepared = audio.prepare_reference(samples, rate)
    wav = prepared.samples[: int(seconds * prepared.sample_rate)] if seconds else prepared.samples
    text = REFERENCE_TEXT
    if len(wav) < len(prepared.samples):  # a trimmed reference keeps about the words it still holds
        words = text.split()
        text = " ".join(words[: max(1, round(len(words) * len(wav) / len(prepared.samples)))])
    path = tmp / "reference.wav"
    path.write_bytes(audio.wav_bytes(wav, prepared.sample_rate))
    return ReferenceSample(path, audio.sha256_file(path), text), len(wav) / prepared.sample_rate


def make_engine(path: Path, size: str, device: str, quantize: str = "auto", fast: bool = True,
                keep_fp32: bool = True) -> Any:
    """An engine on ``path``. ``keep_fp32``: the timing runs need the fp32 layers (the official
    path runs on the same model, and the precisions are switched); the memory probe measures the
    product's default, which releases them once the reduced copies exist."""
    from voicebox.engines.prompt_cache import PromptCache
    from voicebox.engines.tts import TTSEngine

    return TTSEngine({size: str(path)}, device=device, prompt_cache=PromptCache(None), quantize=quantize, fast=fast,
                     keep_fp32=keep_fp32)


def official_item(prompt: Any) -> Any:
    from qwen_tts.inference.qwen3_tts_model import VoiceClonePromptItem

    return VoiceClonePromptItem(
        ref_code=prompt.ref_code, ref_spk_embedding=prompt.ref_spk_embedding,
        x_vector_only_mode=prompt.mode != "icl", icl_mode=prompt.mode == "icl", ref_text=prompt.ref_text,
    )


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


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

    def __enter__(self) -> "StageTimer":
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

    def __exit__(self, *exc: Any) -> None:
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


# ---- one take per path -------------------------------------------------------------------------
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


# ---- quality guard ------------------------------------------------------------------------------
AGREEMENT_TEXTS = [
    TEXT,
    "The quick brown fox jumps over the lazy dog near the quiet river bank.",
    "Numbers like 42 and 1999 are read aloud, one by one, slowly.",
]


def quality(engine: Any, sample: Any, parity_frames: int, agreement_texts: int, device: str) -> dict[str, Any]:
    """Greedy token parity (fp32 loop vs official) and reduced-precision agreement (vs fp32)."""
    from voicebox.engines.fast_talker import capture_talker_inputs
    from voicebox.engines.params import make_params

    prompt, _, _ = engine.voice_prompt([sample])
    model = engine._model.model
    out: dict[str, Any] = {"parity": {}, "agreement": {"fp16": [], "int8": []}}
    cases = [("icl", prompt, text) for text in AGREEMENT_TEXTS[:agreement_texts]] + [("xvector", _xvector(prompt), TEXT)]
    for index, (mode, voice, text) in enumerate(cases):
        parity = index == 0 or mode == "xvector"
        n = parity_frames if mode == "icl" else min(parity_frames, 10)
        length = AGREEMENT_FRAMES if (mode == "icl" or agreement_texts > 1) else n
        greedy = make_params(seed=0, max_new_tokens=length + 1, do_sample=False)
        kwargs = engine._generate_kwargs([text], voice, "english", greedy, length + 1)
        engine.use_precision("fp32")
        fast = engine._fast.generate(capture_talker_inputs(model, **kwargs))[0]
        if parity:
            started = time.perf_counter()
            official = model.generate(**dict(kwargs, max_new_tokens=n + 1))[0][0]
            same = (official[:n] == fast[:n]).all(dim=1)
            leading = int(same.long().cumprod(0).sum())
            out["parity"][mode] = {"frames_checked": n, "identical_leading_frames": leading, "token_parity": leading == n,
                                   "official_seconds": round(time.perf_counter() - started, 2)}
            log(f"  parity {mode}: {leading}/{n} leading frames identical (official vs voicebox fp32, greedy)")
        if len(fast) < AGREEMENT_FRAMES or device != "cpu":  # reduced-precision copies exist on CPU only
            continue
        for precision in ("fp16", "int8"):
            engine.use_precision(precision)
            inputs = capture_talker_inputs(model, **kwargs)
            free = engine._fast.generate(inputs)[0]
            first = (free[:, 0] == fast[: len(free), 0]).float()
            diverged = (first == 0).nonzero()
            engine._fast.generate(inputs, teacher=fast[None])
            forced = engine._fast.stats.as_dict()
            entry = {
                "mode": mode, "text": text, "frames": AGREEMENT_FRAMES,
                "free_running_first_codebook": round(float(first.mean()), 4),
                "free_running_all_codebooks": round(float((free == fast[: len(free)]).float().mean()), 4),
                "first_divergence_frame": int(diverged[0, 0]) if len(diverged) else None,
                "teacher_forced_first_codebook": forced.get("agree_first"),
                "teacher_forced_all_codebooks": forced.get("agree_all"),
            }
            out["agreement"][precision].append(entry)
            log(f"  {precision} vs fp32, {mode} {text[:24]!r}..., {AGREEMENT_FRAMES} frames: first codebook "
                f"{entry['free_running_first_codebook']:.1%} free-running; teacher-forced "
                f"{forced.get('agree_first', 0):.1%} first / {forced.get('agree_all', 0):.1%} all codebooks")
    for precision, entries in out["agreement"].items():
        worst = min((e["free_running_first_codebook"] for e in entries), default=None)
        out[f"{precision}_passes_guard"] = worst is not None and worst >= AGREEMENT_TARGET
        out[f"{precision}_worst_free_running_first_codebook"] = worst
    out["guard"] = (f"reduced precision passes when every prompt keeps >= {AGREEMENT_TARGET:.0%} of the first-codebook "
                    f"tokens of the fp32 loop over {AGREEMENT_FRAMES} greedy frames (free-running)")
    engine.use_precision("fp32")
    return out


def _xvector(prompt: Any) -> Any:
    from dataclasses import replace

    return replace(prompt, mode="xvector", ref_code=None, ref_text=None)


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


# ---- peak memory (fresh process per path) --------------------------------------------------------
def memory_probe(path: str, size: str, device: str, which: str, frames: int, ref_seconds: float) -> dict[str, Any]:
    import tempfile

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


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """Samples this process's RSS every 10 ms in a thread (the peak of one phase, not of the process)."""

    def __enter__(self) -> "RssSampler":
        import threading

        self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def measure_memory(path: Path, size: str, device: str, which: str, frames: int, ref_seconds: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--memory-probe", which, "--checkpoint", str(path), "--size", size,
           "--device", device, "--frames", str(frames), "--ref-seconds", str(ref_seconds)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": (done.stderr or done.stdout)[-500:]}


# ---- main --------------------------------------------------------------------------------------------
def bench_size(size: str, device: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import torch

    from voicebox.engines.params import make_params

    path = checkpoint(size)
    sample, ref_seconds = reference_sample(tmp, args.ref_seconds)
    engine = make_engine(path, size, device)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = engine.load(size)
    load_s = time.perf_counter() - started
    if args.quality_only:
        log(f"{size} on {device}: quality guard only (greedy, same weights):")
        return {"size": size, "device": device, "reference_seconds": round(ref_seconds, 2),
                "quality": quality(engine, sample, args.parity_frames, args.agreement_texts, device)}
    default_precision = status["linear_precision"]
    stream_frames = {"first": engine.stream_first_frames, "then_every": engine.stream_frames}
    log(f"{size} on {device}: loaded in {load_s:.1f}s (voicebox default: fast loop, {default_precision} linears)")
    started = time.perf_counter()
    prompt, _, _ = engine.voice_prompt([sample])
    prompt_build = time.perf_counter() - started
    item = official_item(prompt)
    log(f"voice prompt (ICL, {ref_seconds:.1f}s reference, {prompt.reference_frames} frames) built in {prompt_build:.2f}s")

    variants = [("voicebox", default_precision)]
    if device == "cpu":
        variants += [(f"voicebox_{p}", p) for p in ("fp32", "fp16", "int8") if p != default_precision]
    graphs = engine._graphs  # CUDA graphs (faster-qwen3-tts) when on CUDA and installed
    if graphs is not None:
        variants.append(("voicebox_loop", "loop"))  # the same engine with voicebox's own loop
    log(f"decode loop: {status['decode_loop']} (CUDA graphs: {status['cuda_graphs']})")

    def select(precision: str) -> None:
        if device == "cpu":
            engine.use_precision(precision)
        elif graphs is not None:
            engine._graphs = None if precision == "loop" else graphs
    runs: dict[str, list[dict[str, Any]]] = {"official": [], **{name: [] for name, _ in variants}}
    extra_reps = args.extra_reps if args.extra_reps is not None else args.reps

    # warm-up (first-call allocations, priming the voice's decoder state)
    warm = make_params(seed=99, max_new_tokens=3)
    run_official(engine, item, warm, 2, device)
    for _, precision in variants:
        select(precision)
        run_voicebox(engine, sample, warm, device)

    for rep in range(args.reps):
        params = make_params(seed=1000 + rep, max_new_tokens=args.frames + 1)
        row = run_official(engine, item, params, args.frames, device)
        runs["official"].append(row)
        line = [f"rep {rep + 1}/{args.reps}: official {row['frames'] / row['total']:.2f} fr/s"]
        for name, precision in variants:
            if name != "voicebox" and rep >= extra_reps:
                continue
            select(precision)
            row = run_voicebox(engine, sample, params, device)
            runs[name].append(row)
            line.append(f"{name} {row['frames'] / row['total']:.2f} fr/s (first audio {row['first_audio']:.2f}s)")
        log(", ".join(line))
    select(default_precision)

    summary = {name: summarise(r) for name, r in runs.items() if r}
    for name, entry in summary.items():
        entry["speedup_vs_official"] = round(entry["frames_per_s"] / summary["official"]["frames_per_s"], 2)
        # each voicebox take against the official take run just before it (same machine load)
        pairs = [o["total"] / o["frames"] * v["frames"] / v["total"] for o, v in zip(runs["official"], runs[name])]
        entry["speedup_paired_median"] = round(statistics.median(pairs), 2)
        if name == "official":
            entry["precision"] = f"{'fp32' if device == 'cpu' else status['dtype']} (official generate)"
        elif name == "voicebox" or device != "cpu":
            entry["precision"] = default_precision
        else:
            entry["precision"] = name.split("_")[1]

    sweep = first_audio_sweep(engine, tmp, device, args.sweep_reps) if args.sweep_reps else []

    log("quality guard (greedy, same weights):")
    quality_result = quality(engine, sample, args.parity_frames, args.agreement_texts, device)
    if device == "cpu":
        engine.use_precision(default_precision)

    memory: dict[str, Any] = {}
    if not args.no_memory:
        engine.unload()
        del engine
        import gc

        gc.collect()
        for which in ("official", "voicebox"):
            memory[which] = measure_memory(path, size, device, which, args.frames, args.ref_seconds)
            log(f"peak memory {which}: {memory[which]}")
    for name in summary:
        key = "official" if name == "official" else ("voicebox" if name == "voicebox" else None)
        if key and key in memory:
            summary[name]["peak_memory"] = memory[key]

    return {
        "size": size, "device": device, "checkpoint": "random weights, full size (tests/support/qwen_checkpoint.py)",
        "load_s": round(load_s, 2), "prompt_build_s": round(prompt_build, 3),
        "reference_seconds": round(ref_seconds, 2), "reference_frames": prompt.reference_frames, "mode": "icl",
        "text": TEXT, "frames_per_take": args.frames, "voicebox_default_precision": default_precision,
        "stream_frames": stream_frames, "decode_loop": status["decode_loop"], "cuda_graphs": status["cuda_graphs"],
        "results": summary, "first_audio_by_reference": sweep, "quality": quality_result,
        "torch_threads": torch.get_num_threads(),
    }


def print_table(report: dict[str, Any]) -> None:
    log(f"\n{report['size']} on {report['device']} ({report['frames_per_take']} frames per take, "
        f"{report['reference_seconds']}s ICL reference), medians:")
    log("| path | linears | frames/s | RTF | first audio (s) | talker ms/frame | code predictor ms/frame "
        "| decode ms/frame | RSS loaded / peak generating (MiB) | speedup |")
    log("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in report["results"].items():
        m = r.get("peak_memory", {})
        mem = f"{m['rss_loaded_mib']:.0f} / {m['rss_peak_generating_mib']:.0f}" if "rss_loaded_mib" in m else ""
        pf = r["per_frame_ms"]
        log(f"| {name} | {r['precision']} | {r['frames_per_s']:.2f} | {r['rtf']:.2f} | {r['first_audio_s']:.2f} | "
            f"{pf['talker']} | {pf['code_predictor']} | {pf['decode']} | {mem} | {r['speedup_vs_official']:.2f}x |")
    for row in report.get("first_audio_by_reference", []):
        log(f"first audio, voicebox default, {row['reference_seconds']}s reference: {row['first_audio_s']:.2f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.6B, 25 frames, 5 repetitions (2 for the extra precisions)")
    parser.add_argument("--sizes", nargs="+", default=None, help="checkpoint sizes (0.6B, 1.7B)")
    parser.add_argument("--device", default="auto", help="auto (CPU, plus CUDA when present), cpu or cuda")
    parser.add_argument("--frames", type=int, default=None, help="codec frames per take (12.5 per second)")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions per path (median)")
    parser.add_argument("--extra-reps", type=int, default=None, help="repetitions for the non-default precisions")
    parser.add_argument("--parity-frames", type=int, default=None, help="frames compared for token parity")
    parser.add_argument("--agreement-texts", type=int, default=None, help="prompts for the precision agreement (1-3)")
    parser.add_argument("--ref-seconds", type=float, default=0.0, help="trim the reference (0: all of jfk.flac)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--quality-only", action="store_true", help="only the parity/agreement guard "
                        "(writes tts_quality_<device>.json)")
    parser.add_argument("--sweep-reps", type=int, default=None, help="first-audio runs per reference length (0: skip)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument("--memory-probe", choices=("official", "voicebox"), help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", default="0.6B", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_probe:
        with contextlib.redirect_stdout(io.StringIO()):
            info = memory_probe(args.checkpoint, args.size, args.device, args.memory_probe, args.frames, args.ref_seconds)
        print(json.dumps(info))
        return 0

    args.sizes = args.sizes or ["0.6B"]
    args.frames = args.frames or (25 if args.quick else 50)
    args.reps = args.reps or (5 if args.quick else 7)
    if args.quick and args.extra_reps is None:
        args.extra_reps = 2
    if args.sweep_reps is None:
        args.sweep_reps = 2 if args.quick else 3
    args.parity_frames = args.parity_frames or (25 if args.quick else 50)
    args.agreement_texts = args.agreement_texts or (1 if args.quick else 3)

    import tempfile

    import torch

    devices = [args.device] if args.device != "auto" else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    started = time.perf_counter()
    final_speedup = None
    for device in devices:
        reports = []
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                report = bench_size(size, device, args, Path(tmp))
            reports.append(report)
            if args.quality_only:
                continue
            print_table(report)
            final_speedup = report["results"]["voicebox"]["speedup_vs_official"] if final_speedup is None else final_speedup
        out = args.out or RESULTS / f"tts_{'quality' if args.quality_only else 'speed'}_{device}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "benchmark": "tts_speed",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["bench/tts_speed.py", *(argv if argv is not None else sys.argv[1:])]),
            "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                        "cpu_count": os.cpu_count(), "cuda": torch.cuda.get_device_name(0) if device == "cuda" else None},
            "reports": reports,
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
        out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        log(f"results written to {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}")
    log(f"total wall time {time.perf_counter() - started:.0f}s")
    if final_speedup is not None:
        print(f"speedup_vs_official={final_speedup:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
