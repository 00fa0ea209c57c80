"""The benchmark's quality guard: the speed figures count only if the loop still says the same.

On the same weights and greedy decoding, voicebox's fp32 loop must give the official path's codec
tokens exactly (token parity), and the reduced-precision loops (fp16, int8 weights) must keep at
least ``AGREEMENT_TARGET`` of fp32's first-codebook tokens over ``AGREEMENT_FRAMES`` frames,
free-running; teacher-forced agreement is reported beside it. Separate from the timing because it
answers another question (is the faster loop still right?) and runs on its own with
``tts_speed.py --quality-only``.
"""

from __future__ import annotations

import time
from typing import Any

from tts_bench_setup import TEXT, log

AGREEMENT_FRAMES = 50
AGREEMENT_TARGET = 0.95
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
