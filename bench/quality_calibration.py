"""Calibrate the quality checks: score real and damaged speech with the real gate and show where
good speech and bad speech fall for every check.

Every case is scored by :class:`voicebox.quality.QualityGate` exactly as a generated chunk is
(Whisper, Resemblyzer, pace, signal), with the thresholds in force; each case says which checks it
was made to pass or to fail (``expect``), and the summary gives per check the range of the good
cases, the range of the bad ones and the cases the thresholds misjudge. README "Quality checks"
explains the thresholds chosen from this. The speech is ``bench/quality_cases.py``'s.

Run from the repo root (about a minute on two CPU cores)::

    .venv/bin/python bench/quality_calibration.py [--model auto|NAME|DIR]

Writes ``bench/results/quality_calibration.json`` and prints a table (``!`` marks a value judged
against its expectation).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

from asr_speed import default_model, model_label
from quality_cases import RATE, SENTENCES, Materials, build, noise, silence

from voicebox import audio
from voicebox.engines.asr import WhisperEngine
from voicebox.quality import CHECK_NAMES, QualityGate, Thresholds, VoiceRef, level_db
from voicebox.speech import VoiceSample

RESULTS = REPO_ROOT / "bench" / "results" / "quality_calibration.json"
SHORT = {"cer": "cer", "similarity": "sim", "pace": "pace", "pace_vs_voice": "vs_voice",
         "silence": "silence", "clipping": "clip", "level": "level"}


@dataclass
class Case:
    """One clip to score, what it should say, against which voice and take, and what should
    happen (``expect``: check name -> should pass)."""

    group: str
    name: str
    samples: np.ndarray
    text: str
    voice: str | None = None
    take: list[np.ndarray] | None = None
    expect: dict[str, bool] = field(default_factory=dict)


def cases(m: Materials) -> list[Case]:
    """Every calibration case (see the module docstring of quality_cases for the audio)."""
    c: list[Case] = []
    ok_words = {"cer": True, "pace": True, "silence": True, "clipping": True}  # natural, whole speech
    # words: real speech and espeak-ng speech of the right text pass, of other text fail
    for name in ("jfk", "jfk_part0", "jfk_part1", "mit_english", *[f"mit_part{i}" for i in range(6)]):
        c.append(Case("real speech, right words", name, m[name].samples, m[name].text, expect=dict(ok_words)))
    for i in range(len(SENTENCES)):
        for prefix in ("espeak", "espeak_f"):
            clip = m[f"{prefix}_{i}"]
            c.append(Case("espeak-ng, right words", clip.name, clip.samples, clip.text, expect=dict(ok_words)))
            c.append(Case("espeak-ng, swapped words", f"{clip.name} as {(i + 1) % 8}", clip.samples,
                          SENTENCES[(i + 1) % len(SENTENCES)], expect={"cer": False}))
    c.append(Case("real speech, other words", "jfk as espeak_0", m["jfk"].samples, SENTENCES[0], expect={"cer": False}))
    c.append(Case("real speech, other words", "mit_other_language", m["mit_other_language"].samples,
                  m["mit_part0"].text + " " + m["mit_part1"].text, expect={"cer": False}))
    for name in ("white_noise", "brown_noise", "gibberish_20s"):
        c.append(Case("noise and gibberish", name, m[name].samples, SENTENCES[0],
                      voice="jfk_part0", expect={"cer": False, "similarity": False}))
    # runaways: the right speech, then more
    fox, jfk = m["espeak_0"], m["jfk"]
    runaway = {"cer": False, "pace": False}
    c.append(Case("runaway", "jfk + 20 s noise", np.concatenate([jfk.samples, noise(20, rms=0.02)]), jfk.text,
                  expect={"pace": False}))
    c.append(Case("runaway", "jfk x5", np.tile(jfk.samples, 5), jfk.text, expect=dict(runaway)))
    c.append(Case("runaway", "espeak_0 x5", np.tile(fox.samples, 5), fox.text, voice="espeak_ref",
                  expect={**runaway, "pace_vs_voice": False}))
    c.append(Case("runaway", "espeak_0 + 20 s gibberish", np.concatenate([fox.samples, m["gibberish_20s"].samples]),
                  fox.text, voice="espeak_ref", expect={**runaway, "pace_vs_voice": False}))
    c.append(Case("swallowed words", "espeak_0 first 60%", fox.samples[: int(len(fox.samples) * 0.6)], fox.text,
                  voice="espeak_ref", expect={"cer": False}))
    c.append(Case("swallowed words", "espeak_0 first 85%", fox.samples[: int(len(fox.samples) * 0.85)], fox.text))
    # voice: the same speaker passes, another speaker fails
    same = [("jfk_part1", "jfk_part0"), *[(f"mit_part{i}", "mit_ref") for i in (3, 4, 5)],
            *[(f"espeak_{i}", "espeak_ref") for i in range(5)], *[(f"espeak_f_{i}", "espeak_f_ref") for i in range(5)]]
    for name, voice in same:
        c.append(Case("voice: same speaker", f"{name} vs {voice}", m[name].samples, m[name].text, voice,
                      expect={"similarity": True, "pace_vs_voice": True}))
    c.append(Case("voice: same reader, other language", "mit_other_language vs mit_ref",
                  m["mit_other_language"].samples, "", "mit_ref"))
    other = [("jfk", "mit_ref"), ("mit_part3", "jfk_part0"), ("espeak_0", "jfk_part0"), ("jfk", "espeak_ref"),
             ("stereo_ch1", "stereo_ch0"), ("espeak_f_0", "espeak_ref"), ("espeak_0", "espeak_f_ref")]
    for name, voice in other:
        c.append(Case("voice: another speaker", f"{name} vs {voice}", m[name].samples, m[name].text, voice,
                      expect={"similarity": False}))
    # pace against the text and against the voice's own: espeak-ng at other speeds (175 is its own)
    speeds = {80: {"pace_vs_voice": False}, 120: {"pace_vs_voice": True}, 260: {"pace": True, "pace_vs_voice": True},
              350: {"pace": False}, 450: {"pace": False, "pace_vs_voice": False}}
    for speed, expect in speeds.items():
        clip = m[f"espeak_speed{speed}"]
        c.append(Case("pace: espeak-ng speed", f"{speed} wpm vs 175", clip.samples, clip.text, "espeak_ref",
                      expect=expect))
    # silence, clipping, level
    half = len(fox.samples) // 2
    for gap, fine in ((1.0, True), (1.5, True), (3.0, False)):
        gapped = np.concatenate([fox.samples[:half], silence(gap), fox.samples[half:]])
        c.append(Case("silence", f"espeak_0 + {gap:g} s pause", gapped, fox.text, expect={"silence": fine}))
    c.append(Case("silence", "espeak_0 + 3 s dead air", np.concatenate([fox.samples, silence(3.0)]), fox.text,
                  expect={"silence": False}))
    for name, gain in (("espeak_0", 10.0), ("jfk", 8.0)):
        clipped = np.clip(m[name].samples * gain, -1.0, 1.0)
        c.append(Case("clipping", f"{name} x{gain:g} clipped", clipped, m[name].text, expect={"clipping": False}))
    mit_take = [m[f"mit_part{i}"].samples for i in range(6)]
    for i in range(6):
        c.append(Case("level: a real reading", f"mit_part{i} in its take", mit_take[i], m[f"mit_part{i}"].text,
                      take=mit_take[:i] + mit_take[i + 1:], expect={"level": True}))
    espeak_take = [m[f"espeak_{i}"].samples for i in range(1, 8)]
    for gain, fine in ((1.0, True), (1.41, True), (2.0, None), (3.0, False), (0.3, False)):
        expect = {} if fine is None else {"level": fine}
        c.append(Case("level: espeak-ng take", f"espeak_0 x{gain:g} ({20 * np.log10(gain):+.0f} dB)",
                      fox.samples * gain, fox.text, take=espeak_take, expect=expect))
    return c


def run(m: Materials, gate: QualityGate) -> list[dict]:
    voices = {}
    rows = []
    for case in cases(m):
        voice = None
        if case.voice:
            if case.voice not in voices:
                clip = m[case.voice]
                sample = VoiceSample(clip.path, audio.sha256_file(clip.path), clip.text)
                voices[case.voice] = VoiceRef.of([sample])
            voice = voices[case.voice]
        take_level = None
        if case.take:
            take_level = statistics.median(level_db(x, RATE) for x in case.take)
        score = gate.score(case.samples, RATE, case.text, "English", voice, take_level)
        checks = {check.name: check for check in score.checks}
        rows.append({
            "group": case.group, "case": case.name, "seconds": round(len(case.samples) / RATE, 2),
            "voice": case.voice, "heard": score.heard, "passed": score.passed, "score": score.score,
            "values": score.values(), "judged": {n: checks[n].passed for n in CHECK_NAMES if checks[n].measured},
            "expect": case.expect,
            "misjudged": sorted(n for n, want in case.expect.items() if checks[n].measured and checks[n].passed != want),
        })
    return rows


def _badness(name: str, value: float) -> float:
    """Distance from ideal on one axis: the level's size, the pace ratio either way."""
    if name == "level":
        return abs(value)
    if name == "pace_vs_voice":
        return max(value, 1 / value)
    return value


def summary(rows: list[dict]) -> dict:
    """Per check: the values of the cases expected to pass and to fail, and the misjudged ones."""
    out = {}
    for name in CHECK_NAMES:
        good = [r["values"][name] for r in rows if r["expect"].get(name) is True and r["values"][name] is not None]
        bad = [r["values"][name] for r in rows if r["expect"].get(name) is False and r["values"][name] is not None]
        out[name] = {
            "good": {"n": len(good), "min": min(good, default=None), "max": max(good, default=None),
                     "worst": max((_badness(name, v) for v in good), default=None) if name != "similarity"
                     else min(good, default=None)},
            "bad": {"n": len(bad), "min": min(bad, default=None), "max": max(bad, default=None)},
            "misjudged": [r["case"] for r in rows if name in r["misjudged"]],
        }
    return out


def table(rows: list[dict]) -> str:
    head = f"{'group':34} {'case':30} " + " ".join(f"{SHORT[n]:>8}" for n in CHECK_NAMES) + "  result"
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = []
        for n in CHECK_NAMES:
            v = r["values"][n]
            text = "-" if v is None else f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
            mark = "!" if n in r["misjudged"] else "*" if n in r["expect"] else " "
            cells.append(f"{text + mark:>8}")
        lines.append(f"{r['group'][:34]:34} {r['case'][:30]:30} " + " ".join(cells)
                     + ("  pass" if r["passed"] else "  FAIL"))
    lines.append("(* a value the case was made to test; ! judged against that expectation)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=default_model(), help="Whisper model (default: bundled tiny.en)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    asr = WhisperEngine(model=args.model, device="cpu")
    gate = QualityGate(asr, Thresholds())
    rows = run(build(), gate)
    result = {
        "benchmark": "quality_calibration",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "whisper_model": model_label(args.model, asr.model_name),
        "thresholds": Thresholds().to_dict(),
        "summary": summary(rows),
        "cases": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(table(rows))
    print(f"\nWhisper {result['whisper_model']}; thresholds {result['thresholds']}")
    for name, s in result["summary"].items():
        print(f"{name:14} good {s['good']['min']}..{s['good']['max']}  bad {s['bad']['min']}..{s['bad']['max']}  "
              f"misjudged {s['misjudged'] or 'none'}")
    print(f"wrote {args.out.relative_to(REPO_ROOT)} in {result['seconds']} s")


if __name__ == "__main__":
    main()
