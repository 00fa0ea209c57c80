"""Store speed: page of 50, text search and one insert, before and after the journalled store.

Run from the repo root: ``.venv/bin/python bench/store_speed.py`` (under a minute on 2 idle cores;
``--quick`` skips the old store at 100,000). Writes ``bench/results/store_speed.json``. Times are
medians over repeated runs, in milliseconds, on the CPU recorded in the file.

Scenarios (issue #16, "Many people, one server"):

* ``before``: the store as of commit :data:`BEFORE_COMMIT` (whole-file rewrite on every insert,
  full scan per listing), loaded from git into a throwaway package, at 10,000 and 100,000.
* ``after_one_user``: today's store at 1,000, 10,000 and 100,000 generations of one user.
* ``after_100_users``: 100 owners × 1,000 generations (an ``owner`` field and two profiles per
  owner); page, search and insert are each measured in a different owner's slice per repeat.
* ``after_insert_tail``: 1,000 inserts in a row at 100,000 – median, p95, p99 and max – and the
  cost of a compaction and of opening the store (snapshot parse, journal replay, index build).

Records are seeded by writing the JSON snapshot in one go (inserting one by one is the slow path
being measured); the old format is the new snapshot format, so both stores open the same file.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicebox.store import Store, new_id

BEFORE_COMMIT = "d71d1d0"  # the last commit with the whole-file store
REPEATS = 20
OWNERS = 100
PER_OWNER = 1_000


def generation(i: int, owner: str | None = None, profile_id: str | None = None) -> dict[str, Any]:
    record = {
        "id": new_id(), "profile_id": profile_id or new_id(), "profile_name": f"Voice {i % 40}",
        "text": f"Sentence number {i} about the weather, trains and {('cats', 'dogs', 'owls')[i % 3]}.",
        "language": "English", "model": "Qwen/Qwen3-TTS-12Hz-0.6B-Base",
        "params": {"temperature": 0.9, "top_k": 50, "top_p": 1.0, "repetition_penalty": 1.05},
        "seed": i, "duration": 3.2, "file": f"generations/{i}.wav",
        "created_at": f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}+00:00",
        "timings": {"prompt": 0.01, "generate": 2.0, "decode": 0.2, "total": 2.3},
        "cache_hit": True, "status": "ok",
    }
    if owner is not None:
        record["owner"] = owner
    return record


def seed_database(path: Path, records: int, owners: int = 0) -> list[str]:
    """Write ``records`` generations as one snapshot; returns the owner names used (if any)."""
    names = [f"user{n:03d}" for n in range(owners)]
    profiles = {name: (new_id(), new_id()) for name in names}
    generations = {}
    for i in range(records):
        if owners:
            owner = names[i % owners]
            generations[str(i + 1)] = generation(i, owner, profiles[owner][i // owners % 2])
        else:
            generations[str(i + 1)] = generation(i)
    path.write_bytes(orjson.dumps({"meta": {"1": {"schema_version": 1}}, "generations": generations}))
    return names


def timings_ms(fn: Callable[[int], Any], repeats: int = REPEATS) -> list[float]:
    times = []
    for n in range(repeats):
        start = time.perf_counter()
        fn(n)
        times.append((time.perf_counter() - start) * 1000)
    return times


def median_ms(fn: Callable[[int], Any], repeats: int = REPEATS) -> float:
    return round(statistics.median(timings_ms(fn, repeats)), 3)


def new_record(n: int, owner: str | None = None) -> dict[str, Any]:
    record = {"profile_id": "", "profile_name": "x", "text": f"new {n}", "duration": 1.0, "file": ""}
    if owner is not None:
        record["owner"] = owner
    return record


def one_user(store_cls: type, records: int, repeats: int = REPEATS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        seed_database(Path(tmp) / "voicebox.json", records)
        start = time.perf_counter()
        store = store_cls(tmp)
        opened = (time.perf_counter() - start) * 1000
        result = {
            "records": records,
            "open_ms": round(opened, 1),
            "list_page_of_50_ms": median_ms(lambda n: store.list_generations(limit=50, offset=100), repeats),
            "text_search_ms": median_ms(lambda n: store.list_generations(search="owls", limit=50), repeats),
            "text_search_no_match_ms": median_ms(lambda n: store.list_generations(search="zebra", limit=50), repeats),
            "insert_one_ms": median_ms(lambda n: store.add_generation(new_record(n)), repeats),
            "db_file_bytes": (Path(tmp) / "voicebox.json").stat().st_size,
        }
        store.close()
    return result


def many_users(repeats: int = REPEATS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        owners = seed_database(Path(tmp) / "voicebox.json", OWNERS * PER_OWNER, OWNERS)
        store = Store(tmp)
        pick = lambda n: owners[(n * 37) % OWNERS]
        page = median_ms(lambda n: store.list_generations(limit=50, offset=100, owner=pick(n)), repeats)
        search = median_ms(lambda n: store.list_generations(search="owls", limit=50, owner=pick(n)), repeats)
        sample = store.list_generations(limit=1, owner=owners[0])[0][0]
        by_profile = median_ms(lambda n: store.list_generations(profile_id=sample["profile_id"], limit=50), repeats)
        insert = median_ms(lambda n: store.add_generation(new_record(n, pick(n))), repeats)
        assert store.list_generations(owner=owners[0], limit=None)[1] >= PER_OWNER
        store.close()
    return {
        "owners": OWNERS, "records_per_owner": PER_OWNER, "records": OWNERS * PER_OWNER,
        "owner_page_of_50_ms": page, "owner_text_search_ms": search,
        "profile_page_of_50_ms": by_profile, "insert_one_ms": insert,
    }


def insert_tail(records: int, inserts: int = 1_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        seed_database(Path(tmp) / "voicebox.json", records)
        store = Store(tmp)
        times = sorted(timings_ms(lambda n: store.add_generation(new_record(n)), inserts))
        journal = Path(tmp) / "voicebox.json.journal"
        journal_bytes = journal.stat().st_size
        with store.locked():
            start = time.perf_counter()
            orjson.dumps(store._storage.read())  # what compaction does while it holds the lock
            serialise_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        store.compact()
        compact_ms = (time.perf_counter() - start) * 1000
        store.add_generation(new_record(-1))
        store._storage.stop_background()
        start = time.perf_counter()
        reopened = Store(tmp)  # replays one journal line over the 100,000-record snapshot
        open_ms = (time.perf_counter() - start) * 1000
        assert reopened.list_generations(limit=1)[1] == records + inserts + 1
        reopened.close()
    pct = lambda q: round(times[min(len(times) - 1, int(q * len(times)))], 3)
    return {
        "records": records, "inserts": inserts, "median_ms": round(statistics.median(times), 3),
        "p95_ms": pct(0.95), "p99_ms": pct(0.99), "max_ms": round(times[-1], 3),
        "journal_bytes_per_insert": round(journal_bytes / inserts, 1),
        "compact_ms": round(compact_ms, 1), "compact_lock_held_ms": round(serialise_ms, 1),
        "open_with_journal_ms": round(open_ms, 1),
    }


def before_store(workdir: Path) -> type | None:
    """The old ``Store`` class, imported from git as package ``vb_before`` (None without git)."""
    package = workdir / "vb_before"
    package.mkdir()
    try:
        for name in ("store.py", "json_storage.py"):
            source = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{BEFORE_COMMIT}:voicebox/{name}"],
                check=True, capture_output=True,
            ).stdout
            (package / name).write_bytes(source)
    except (OSError, subprocess.CalledProcessError):
        return None
    for name in ("atomic.py", "errors.py"):
        shutil.copyfile(ROOT / "voicebox" / name, package / name)
    (package / "__init__.py").write_text("")
    sys.path.insert(0, str(workdir))
    return importlib.import_module("vb_before.store").Store


def cpu() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine(), "python": platform.python_version()}
    try:
        out = subprocess.run(["lscpu"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return info
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    for key, name in (("Model name", "model"), ("CPU(s)", "cpus"), ("Hypervisor vendor", "hypervisor")):
        if key in fields:
            info[name] = fields[key].strip()
    info["flags"] = fields.get("Flags", "").strip()
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the old store at 100,000")
    args = parser.parse_args()
    results: dict[str, Any] = {"cpu": cpu(), "load_average_at_start": os.getloadavg(), "before_commit": BEFORE_COMMIT,
                               "targets_ms": 20}
    with tempfile.TemporaryDirectory() as tmp:
        old = before_store(Path(tmp))
        if old is not None:
            sizes = [10_000] if args.quick else [10_000, 100_000]
            results["before"] = [one_user(old, n, repeats=10 if n > 10_000 else REPEATS) for n in sizes]
    results["after_one_user"] = [one_user(Store, n) for n in (1_000, 10_000, 100_000)]
    results["after_100_users"] = many_users()
    results["after_insert_tail"] = insert_tail(100_000)
    results["load_average_at_end"] = os.getloadavg()
    out = ROOT / "bench" / "results" / "store_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    shown = {k: v for k, v in results.items() if k != "cpu"}
    print(json.dumps({"cpu": results["cpu"]["model"] if "model" in results["cpu"] else results["cpu"], **shown}, indent=2))


if __name__ == "__main__":
    main()
