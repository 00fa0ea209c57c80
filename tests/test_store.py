"""Store: CRUD, name rules, concurrency, crash safety and corrupt-file start-up."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from voicebox.errors import Conflict, InvalidInput, NotFound
from voicebox.json_storage import read_database
from voicebox.store import SCHEMA_VERSION, Store, StoreError, is_valid_id


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "data")


def test_profile_crud_round_trip(store: Store) -> None:
    created = store.create_profile("  Ana   María ", description=" warm voice ", language="es")
    assert created["name"] == "Ana María"
    assert created["description"] == "warm voice"
    assert is_valid_id(created["id"])
    assert created["created_at"].endswith("+00:00")
    assert store.get_profile(created["id"]) == created
    updated = store.update_profile(created["id"], description="calm")
    assert updated["description"] == "calm" and updated["name"] == "Ana María"
    assert store.get_profile(created["id"])["description"] == "calm"
    items, total = store.list_profiles()
    assert total == 1 and items[0]["id"] == created["id"]
    store.delete_profile(created["id"])
    with pytest.raises(NotFound):
        store.get_profile(created["id"])


def test_profile_names_unique_case_insensitively_any_unicode(store: Store) -> None:
    store.create_profile("Zoë")
    with pytest.raises(Conflict):
        store.create_profile("ZOË")
    store.create_profile("声音 🎙")
    with pytest.raises(Conflict):
        store.create_profile("  声音   🎙 ")
    other = store.create_profile("Bob")
    with pytest.raises(Conflict):
        store.update_profile(other["id"], name="zoë")
    assert store.update_profile(other["id"], name="BOB")["name"] == "BOB"  # renaming itself is fine


@pytest.mark.parametrize("bad", ["", "   ", "x" * 101, None, 42])
def test_profile_name_rules(store: Store, bad: object) -> None:
    with pytest.raises(InvalidInput):
        store.create_profile(bad)  # type: ignore[arg-type]


def test_name_of_exactly_100_characters_is_allowed(store: Store) -> None:
    assert len(store.create_profile("y" * 100)["name"]) == 100


def test_lookup_by_name_or_id_and_bad_ids(store: Store) -> None:
    p = store.create_profile("Narrator")
    assert store.find_profile("narrator")["id"] == p["id"]
    assert store.find_profile(p["id"])["name"] == "Narrator"
    for bad in ["../etc/passwd", "/etc/passwd", "%2e%2e%2f", "0" * 31, ""]:
        with pytest.raises(NotFound):
            store.get_profile(bad)
    with pytest.raises(NotFound):
        store.find_profile("nobody")


def test_profile_search_and_paging(store: Store) -> None:
    for i in range(12):
        store.create_profile(f"Voice {i:02d}", description="studio" if i % 2 else "")
    items, total = store.list_profiles(limit=5, offset=10)
    assert total == 12 and [p["name"] for p in items] == ["Voice 10", "Voice 11"]
    items, total = store.list_profiles(search="STUDIO")
    assert total == 6
    with pytest.raises(InvalidInput):
        store.list_profiles(offset=-1)


def test_samples_and_delete_removes_files(store: Store) -> None:
    p = store.create_profile("With samples")
    f = store.data_dir / "samples" / p["id"] / "a.wav"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"RIFF")
    s = store.add_sample(p["id"], f"samples/{p['id']}/a.wav", " hi ", 2.5, 24000, "ab" * 32)
    assert s["reference_text"] == "hi"
    assert store.list_samples(p["id"])[0]["id"] == s["id"]
    assert store.update_sample_text(s["id"], "hello there")["reference_text"] == "hello there"
    assert store.get_sample(s["id"])["reference_text"] == "hello there"
    store.delete_profile(p["id"])
    assert not f.exists()
    with pytest.raises(NotFound):
        store.get_sample(s["id"])
    with pytest.raises(NotFound):
        store.add_sample(p["id"], "x.wav", "", 1, 24000, "00")


def test_generations_search_filter_page_stats_and_delete(store: Store) -> None:
    a, b = store.create_profile("A"), store.create_profile("B")
    audio = store.data_dir / "generations" / "g.wav"
    audio.parent.mkdir(parents=True)
    audio.write_bytes(b"x")
    for i in range(30):
        owner = a if i % 3 else b
        store.add_generation(
            {"profile_id": owner["id"], "profile_name": owner["name"], "text": f"line {i} banana" if i == 7 else f"line {i}",
             "duration": 1.5, "file": "generations/g.wav" if i == 29 else "", "created_at": f"2026-01-01T00:00:{i:02d}+00:00"}
        )
    items, total = store.list_generations(limit=10)
    assert total == 30 and items[0]["text"] == "line 29"  # newest first
    assert store.list_generations(search="BANANA")[1] == 1
    assert store.list_generations(profile_id=b["id"], limit=None)[1] == 10
    stats = store.generation_stats()
    assert stats["count"] == 30 and stats["total_seconds"] == 45.0
    assert {e["profile_name"]: e["count"] for e in stats["per_profile"]} == {"A": 20, "B": 10}
    store.delete_generation(items[0]["id"])
    assert not audio.exists()
    assert store.list_generations()[1] == 29


def test_records_never_point_outside_the_data_dir(store: Store) -> None:
    with pytest.raises(NotFound):
        store.resolve_file("../../etc/passwd")


def test_file_is_valid_json_with_schema_version(store: Store) -> None:
    store.create_profile("x")
    data = json.loads(store.db_path.read_text())
    assert data["meta"]["1"]["schema_version"] == SCHEMA_VERSION
    assert oct(store.db_path.stat().st_mode & 0o777) == "0o600"


def test_newer_schema_refuses_to_start(tmp_path: Path) -> None:
    db = tmp_path / "voicebox.json"
    db.write_text(json.dumps({"meta": {"1": {"schema_version": SCHEMA_VERSION + 1}}}))
    with pytest.raises(StoreError, match="schema version"):
        Store(tmp_path)
    assert json.loads(db.read_text())["meta"]["1"]["schema_version"] == SCHEMA_VERSION + 1  # untouched


@pytest.mark.parametrize("garbage", [b"{not json", b"\x00\xff\x00", b"[1, 2]", b'{"profiles": '])
def test_corrupt_file_is_moved_aside_never_overwritten(tmp_path: Path, garbage: bytes) -> None:
    (tmp_path / "voicebox.json").write_bytes(garbage)
    store = Store(tmp_path)
    assert store.recovered_from_corruption and "moved aside" in store.recovered_from_corruption
    aside = list(tmp_path.glob("voicebox.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    store.create_profile("fresh start")
    assert Store(tmp_path).list_profiles()[1] == 1


def test_concurrent_writes_lose_nothing(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(50):
                store.add_generation({"profile_id": "", "profile_name": "", "text": f"{t}-{i}", "duration": 0.1, "file": ""})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    expected = {f"{t}-{i}" for t in range(8) for i in range(50)}
    data = read_database(store.db_path)  # the snapshot with its journal replayed
    assert {r["text"] for r in data["generations"].values()} == expected
    assert Store(store.data_dir).list_generations(limit=None)[1] == 400
    store.close()  # closing folds the journal in: voicebox.json alone is complete again
    data = orjson.loads(store.db_path.read_bytes())
    assert {r["text"] for r in data["generations"].values()} == expected


CHILD = r"""
import sys
from voicebox.store import Store
store = Store(sys.argv[1])
i = 0
while True:
    record = store.add_generation({"profile_id": "", "profile_name": "", "text": f"{sys.argv[2]}-{i}", "duration": 0.0, "file": ""})
    print(record["text"], flush=True)
    i += 1
"""


def test_sigkill_mid_write_never_breaks_the_file(tmp_path: Path) -> None:
    rng = random.Random(1234)
    returned: set[str] = set()
    for round_no in range(12):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), f"round{round_no}"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        assert child.stdout is not None
        target = rng.randint(1, 40)
        seen = 0
        while seen < target:
            line = child.stdout.readline()
            assert line, f"child died early in round {round_no}"
            returned.add(line.strip())
            seen += 1
        time.sleep(rng.random() * 0.01)  # land the kill at an arbitrary point of a later write
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate()
        returned.update(x for x in rest.split() if x)
        store = Store(tmp_path)  # must load
        assert store.recovered_from_corruption is None
        stored = {r["text"] for r in store.list_generations(limit=None)[0]}
        missing = returned - stored
        assert not missing, f"writes that returned were lost: {sorted(missing)[:5]}"
    assert not list(tmp_path.glob("voicebox.json.corrupt-*"))
