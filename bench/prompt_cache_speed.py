"""Voice-prompt cache: time to get a prompt on a memory hit, a disk hit (restart) and a miss.

Run from the repo root: ``.venv/bin/python bench/prompt_cache_speed.py``. Writes
``bench/results/prompt_cache_speed.json``. Uses the tiny random checkpoint: a hit costs the same
for any model size (a key hash and a dictionary lookup, or reading two small files), while a miss
runs the speech tokenizer and speaker encoder (much slower on full-size models).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.qwen_checkpoint import build_random_checkpoint  # noqa: E402
from voicebox import audio  # noqa: E402
from voicebox.engines.prompt_cache import PromptCache  # noqa: E402
from voicebox.engines.tts import ReferenceSample, TTSEngine  # noqa: E402

REPEATS = 50


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        checkpoint = build_random_checkpoint(tmp_path / "tiny", "tiny", seed=0)
        samples, rate = audio.decode(ROOT.parent / "shared" / "data" / "jfk.flac")
        ref = tmp_path / "ref.wav"
        ref.write_bytes(audio.wav_bytes(audio.prepare_reference(samples, rate).samples))
        sample = [ReferenceSample(ref, audio.sha256_file(ref), "And so, my fellow Americans.")]

        def engine() -> TTSEngine:
            e = TTSEngine({"0.6B": str(checkpoint)}, device="cpu", prompt_cache=PromptCache(tmp_path / "prompts"))
            e.load("0.6B")
            return e

        first = engine()
        miss = first.voice_prompt(sample)[2]
        memory = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            _, hit, _ = first.voice_prompt(sample)
            memory.append((time.perf_counter() - start) * 1000)
            assert hit
        disk = []
        for _ in range(5):
            restarted = engine()
            start = time.perf_counter()
            _, hit, _ = restarted.voice_prompt(sample)
            disk.append((time.perf_counter() - start) * 1000)
            assert hit and restarted.prompt_builds == 0
    results = {
        "memory_hit_ms_median": round(statistics.median(memory), 3),
        "memory_hit_ms_max": round(max(memory), 3),
        "disk_hit_ms_median": round(statistics.median(disk), 3),
        "miss_build_ms_tiny_model": round(miss * 1000, 1),
        "repeats": REPEATS,
        "target": "memory hit <= 10 ms",
    }
    out = ROOT / "bench" / "results" / "prompt_cache_speed.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
