"""Store speed with 10,000 generation records: page of 50, text search, one insert.

Run from the repo root: ``.venv/bin/python bench/store_speed.py``. Writes
``bench/results/store_speed.json``. Medians over repeated runs, in milliseconds.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicebox.store import Store, new_id  # noqa: E402

RECORDS = 10_000
REPEATS = 20


def seed_database(path: Path) -> None:
    """Write 10,000 realistic generation records in one go (inserting one by one is the slow path)."""
    generations = {}
    for i in range(RECORDS):
        generations[str(i + 1)] = {
            "id": new_id(), "profile_id": new_id(), "profile_name": f"Voice {i % 40}",
            "text": f"Sentence number {i} about the weather, trains and {('cats', 'dogs', 'owls')[i % 3]}.",
            "language": "English", "model": "Qwen/Qwen3-TTS-12Hz-0.6B-Base",
            "params": {"temperature": 0.9, "top_k": 50, "top_p": 1.0, "repetition_penalty": 1.05},
            "seed": i, "duration": 3.2, "file": f"generations/{i}.wav",
            "created_at": f"2026-01-01T00:00:{i % 60:02d}.{i:06d}+00:00",
            "timings": {"prompt": 0.01, "generate": 2.0, "decode": 0.2, "total": 2.3},
            "cache_hit": True, "status": "ok",
        }
    path.write_bytes(orjson.dumps({"meta": {"1": {"schema_version": 1}}, "generations": generations}))


def median_ms(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        seed_database(Path(tmp) / "voicebox.json")
        store = Store(tmp)
        results = {
            "records": RECORDS,
            "list_page_of_50_ms": median_ms(lambda: store.list_generations(limit=50, offset=100)),
            "text_search_ms": median_ms(lambda: store.list_generations(search="owls", limit=50)),
            "insert_one_ms": median_ms(
                lambda: store.add_generation({"profile_id": "", "profile_name": "x", "text": "new", "duration": 1.0, "file": ""})
            ),
            "db_file_bytes": (Path(tmp) / "voicebox.json").stat().st_size,
            "machine": platform.processor() or platform.machine(),
        }
    out = ROOT / "bench" / "results" / "store_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
