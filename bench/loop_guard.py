"""The loop's quality guard on the full-size 0.6B architecture (random weights, seeded).

Runs :func:`voicebox.engines.loop_guard.judge` for fp16 and int8 against fp32: fp32's greedy take
of ``--frames`` frames from an x-vector voice (jfk.flac), then each precision teacher-forced on
fp32's codes, compared by cosine similarity (talker hidden state, talker logits, code-predictor
logits, and each talker layer's output) with token agreement beside it; with ``--ggml``, the
GGML engine's arithmetic on the talker GGUF files the project's converter writes from the same
checkpoint (voicebox/engines/ggml_numerics.py), judged the same way. The checkpoint is
bench/checkpoints/0.6B (built by tts_speed.py; built here if missing), its GGUF files
bench/checkpoints/0.6B-gguf (converted here if missing).

    python bench/loop_guard.py --frames 30 --ggml Q8_0 Q4_K_M

Writes bench/results/loop_guard_cpu.json; the last line is ``guard_passed=fp16,...``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tts_speed import checkpoint, make_engine, reference_sample  # noqa: E402

from voicebox.engines.fast_talker import capture_talker_inputs  # noqa: E402
from voicebox.engines.loop_guard import judge, judge_ggml  # noqa: E402
from voicebox.engines.params import GenerationParams  # noqa: E402
from voicebox.engines.precision_choice import cpu_name  # noqa: E402

TEXT = "The lighthouse keeper climbed the narrow stairs every evening and lit the lamp."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--precisions", nargs="+", default=["fp16", "int8"])
    parser.add_argument("--ggml", nargs="*", default=[], type=str.upper, help="GGUF quantisations (Q8_0 Q4_K_M)")
    args = parser.parse_args()
    engine = make_engine(checkpoint("0.6B"), "0.6B", "cpu")
    engine.load("0.6B")
    with tempfile.TemporaryDirectory() as tmp:
        sample, _ = reference_sample(Path(tmp), 0.0)
        xvector = type(sample)(sample.path, sample.sha256, "")  # no transcript: the x-vector prompt
        prompt, _, _ = engine.voice_prompt([xvector])
    params = GenerationParams(seed=0, max_new_tokens=args.frames + 1, do_sample=False)
    kwargs = engine._generate_kwargs([TEXT], prompt, "english", params, args.frames + 1)
    results = []
    for precision in args.precisions:
        inputs = capture_talker_inputs(engine._model.model, **kwargs)
        result = judge(engine, precision, inputs, args.frames)
        results.append(result.as_dict())
        print(json.dumps(result.as_dict()))
    if args.ggml:
        import ggml_speed

        for quant in args.ggml:
            talker, _ = ggml_speed.gguf_files("0.6B", quant)
            result = judge_ggml(engine, talker, kwargs, args.frames)
            results.append(result.as_dict())
            print(json.dumps(result.as_dict()))
    report = {"cpu": cpu_name(), "checkpoint": "0.6B random (seed 0)", "frames": args.frames, "results": results}
    out = ROOT / "bench" / "results" / "loop_guard_cpu.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print("guard_passed=" + ",".join(r["precision"] for r in results if r["passed"]))


if __name__ == "__main__":
    main()
