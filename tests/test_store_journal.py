"""The journalled store: crash recovery, torn and damaged lines, atomic and repeatable compaction,
old data dirs, indexes against a full scan, and a write cost that does not grow with history."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from tinydb import TinyDB

from voicebox import json_storage, store_journal
from voicebox.json_storage import JournalStorage, read_database
from voicebox.store import Store, new_id
from voicebox.store_journal import Change, encode_line, journal_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def journalled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write goes to the journal (no small-store snapshot rewrites), no background thread."""
    monkeypatch.setattr(JournalStorage, "INLINE_MAX_BYTES", 0)


def gen(text: str, **extra: Any) -> dict[str, Any]:
    return {"profile_id": "", "profile_name": "", "text": text, "duration": 0.5, "file": "", **extra}


def abandon(store: Store) -> None:
    """Drop a store the way a crash would: no close, no final compaction."""
    store._storage.stop_background()
    store._storage.journal.close()


def history(store: Store, **kw: Any) -> list[dict[str, Any]]:
    return store.list_generations(limit=None, **kw)[0]


# ---- kill -9 --------------------------------------------------------------------------------------
CHILD = r"""
import sys
from voicebox.json_storage import JournalStorage
JournalStorage.INLINE_MAX_BYTES = 0        # every write through the journal
JournalStorage.COMPACT_MIN_BYTES = 3000    # and background compactions all the time
JournalStorage.COMPACT_RATIO = 0.1
from voicebox.store import Store
store = Store(sys.argv[1])
kept, i = [], 0
while True:
    record = store.add_generation({"profile_id": "", "profile_name": "", "text": f"{sys.argv[2]}-{i}", "duration": 0.0, "file": ""})
    print("+", record["text"], flush=True)
    kept.append(record)
    if i % 4 == 3:
        victim = kept.pop(0)
        print("?", victim["text"], flush=True)
        store.delete_generation(victim["id"])
        print("-", victim["text"], flush=True)
    i += 1
"""


def test_sigkill_mid_journal_writes_and_compactions_loses_no_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random(99)
    inserted: set[str] = set()
    deleted: set[str] = set()
    for round_no in range(10):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), f"r{round_no}"],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert child.stdout is not None
        in_flight: set[str] = set()

        def take(line: str, in_flight: set[str] = in_flight, deleted: set[str] = deleted) -> None:
            mark, text = line.split()
            if mark == "+":
                inserted.add(text)
            elif mark == "?":
                in_flight.add(text)
            else:
                in_flight.discard(text)
                deleted.add(text)

        for _ in range(rng.randint(5, 120)):
            line = child.stdout.readline()
            assert line, f"child died early in round {round_no}"
            take(line)
        time.sleep(rng.random() * 0.01)  # land the kill at an arbitrary point of a later write
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate()
        for line in rest.splitlines(keepends=True):
            if line.endswith("\n"):  # a line the kill cut off is not read (its op stays unchecked)
                take(line)
        store = Store(tmp_path)
        assert store.recovered_from_corruption is None
        stored = {r["text"] for r in history(store)}
        missing = inserted - deleted - in_flight - stored
        assert not missing, f"acknowledged inserts lost: {sorted(missing)[:5]}"
        assert not (stored & deleted), f"acknowledged deletes undone: {sorted(stored & deleted)[:5]}"
        deleted |= in_flight - stored  # a delete that landed without its acknowledgement
        abandon(store)
    snapshot_only = orjson.loads((tmp_path / "voicebox.json").read_bytes())
    assert snapshot_only.get("generations"), "background compaction never folded the journal in"
    assert not list(tmp_path.glob("voicebox.json.corrupt-*"))
    assert not list(tmp_path.glob(".voicebox.json.*.tmp"))  # a killed compaction's temp is cleared at open


# ---- torn and damaged lines ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "tail",
    [
        encode_line(Change("generations", {"999": {"id": "x" * 32, "text": "never acknowledged"}}))[:-9],
        encode_line(Change("generations", {"999": {"id": "x" * 32, "text": "no newline yet"}}))[:-1],
        b"\x00" * 512,  # a power cut can leave zeros where the data never landed
        b'{"crc":1,"op":{"t":"generations","put":{"999":{"text":"bad checksum"}}}}\n',
    ],
)
def test_a_torn_last_journal_line_is_ignored_and_cut(tmp_path: Path, journalled: None, tail: bytes) -> None:
    store = Store(tmp_path)
    ids = [store.add_generation(gen(f"line {i}"))["id"] for i in range(5)]
    abandon(store)
    journal = journal_path(tmp_path / "voicebox.json")
    good_size = journal.stat().st_size
    with open(journal, "ab") as handle:
        handle.write(tail)
    reopened = Store(tmp_path)
    assert reopened.recovered_from_corruption is None
    assert {r["id"] for r in history(reopened)} == set(ids)
    assert journal.stat().st_size == good_size  # cut, so the next line does not follow garbage
    later = reopened.add_generation(gen("after the crash"))
    abandon(reopened)
    assert {r["id"] for r in history(Store(tmp_path))} == {*ids, later["id"]}


def test_a_damaged_line_between_good_ones_is_skipped_reported_and_kept(tmp_path: Path, journalled: None) -> None:
    store = Store(tmp_path)
    first = store.add_generation(gen("before"))
    abandon(store)
    journal = journal_path(tmp_path / "voicebox.json")
    damaged = bytearray(encode_line(Change("generations", {"50": gen("flipped bit", id=new_id())})))
    damaged[40] ^= 0x01
    after = gen("after", id=new_id())
    with open(journal, "ab") as handle:
        handle.write(bytes(damaged) + encode_line(Change("generations", {"51": after})))
    reopened = Store(tmp_path)
    assert {r["text"] for r in history(reopened)} == {"before", "after"}
    assert reopened.recovered_from_corruption and "damaged" in reopened.recovered_from_corruption
    kept = list(tmp_path.glob("voicebox.json.journal.damaged-*"))
    assert len(kept) == 1 and bytes(damaged) in kept[0].read_bytes()
    assert reopened.get_generation(first["id"])["text"] == "before"
    assert journal.stat().st_size == 0  # folded into the snapshot at once: reported only once
    assert Store(tmp_path).recovered_from_corruption is None


# ---- compaction ------------------------------------------------------------------------------------
def busy_store(tmp_path: Path, rng: random.Random) -> Store:
    """A journalled store with inserts, updates and deletes in its journal."""
    store = Store(tmp_path)
    rows = [store.add_generation(gen(f"text {i}")) for i in range(30)]
    for row in rng.sample(rows, 10):
        store.update_generation({**row, "text": row["text"] + " edited"})
    for row in rng.sample(rows, 8):
        store.delete_generation(row["id"])
    return store


def test_replaying_an_already_compacted_journal_changes_nothing(tmp_path: Path, journalled: None) -> None:
    store = busy_store(tmp_path, random.Random(5))
    expected = history(store)
    journal = journal_path(tmp_path / "voicebox.json")
    old_journal = journal.read_bytes()
    assert store.compact() and journal.stat().st_size == 0
    abandon(store)
    journal.write_bytes(old_journal)  # as if the crash came between the snapshot and the truncation
    assert history(Store(tmp_path)) == expected


def test_a_crash_after_the_snapshot_rename_keeps_data_consistent(
    tmp_path: Path, journalled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = busy_store(tmp_path, random.Random(6))
    expected = history(store)

    def die(*_: Any) -> None:
        raise OSError(errno.EIO, "simulated crash before the journal was truncated")

    with monkeypatch.context() as patch:
        patch.setattr(store_journal.JournalFile, "cut", die)
        with pytest.raises(OSError):
            store.compact()
    assert history(store) == expected  # the surviving process notices and reloads
    extra = store.add_generation(gen("after the failed compaction"))
    abandon(store)
    assert sorted(map(str, history(Store(tmp_path)))) == sorted(map(str, [extra, *expected]))


def test_writes_during_compaction_stay_in_the_journal_tail(
    tmp_path: Path, journalled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = busy_store(tmp_path, random.Random(7))
    during: list[dict[str, Any]] = []
    real_write_temp = json_storage.write_temp

    def write_temp_while_others_write(path: Path, payload: bytes) -> Path:
        during.append(store.add_generation(gen("written while compacting")))
        return real_write_temp(path, payload)

    monkeypatch.setattr(json_storage, "write_temp", write_temp_while_others_write)
    expected_ids = {r["id"] for r in history(store)}
    assert store.compact()
    journal = journal_path(tmp_path / "voicebox.json").read_bytes()
    assert journal.count(b"\n") == 1 and b"written while compacting" in journal
    snapshot = orjson.loads((tmp_path / "voicebox.json").read_bytes())
    assert during[0]["id"] not in {r["id"] for r in snapshot["generations"].values()}
    abandon(store)
    assert {r["id"] for r in history(Store(tmp_path))} == expected_ids | {during[0]["id"]}


def test_background_compaction_under_concurrent_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JournalStorage, "INLINE_MAX_BYTES", 0)
    monkeypatch.setattr(JournalStorage, "COMPACT_MIN_BYTES", 4096)
    monkeypatch.setattr(JournalStorage, "COMPACT_RATIO", 0.1)
    store = Store(tmp_path)

    def writer(t: int) -> None:
        for i in range(60):
            store.add_generation(gen(f"{t}-{i}"))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    store._storage.stop_background()
    assert store._storage.compactions > 0
    expected = {f"{t}-{i}" for t in range(4) for i in range(60)}
    assert {r["text"] for r in history(store)} == expected
    assert {r["text"] for r in read_database(store.db_path)["generations"].values()} == expected
    store.close()
    assert journal_path(store.db_path).stat().st_size == 0
    assert {r["text"] for r in orjson.loads(store.db_path.read_bytes())["generations"].values()} == expected


# ---- formats and cost -----------------------------------------------------------------------------
def test_an_old_single_file_data_dir_opens_unchanged_and_stays_tinydb(tmp_path: Path) -> None:
    profile = {"id": new_id(), "name": "Old", "description": "", "language": "auto",
               "created_at": "2025-01-01T00:00:00.000+00:00", "updated_at": "2025-01-01T00:00:00.000+00:00"}
    rows = {str(i): {"id": new_id(), "profile_id": profile["id"], "profile_name": "Old", "text": f"old {i}",
                     "duration": 1.0, "file": "", "created_at": f"2025-01-01T00:00:{i:02d}.000+00:00"} for i in range(1, 21)}
    old = {"meta": {"1": {"schema_version": 1, "created_at": "2025-01-01T00:00:00.000+00:00"}},
           "profiles": {"1": profile}, "samples": {}, "generations": rows}
    db = tmp_path / "voicebox.json"
    db.write_bytes(orjson.dumps(old))
    before = db.read_bytes()
    store = Store(tmp_path)
    assert db.read_bytes() == before and not journal_path(db).exists()  # opening writes nothing
    assert [r["text"] for r in history(store)][:2] == ["old 20", "old 19"]
    assert store.get_generation(rows["7"]["id"])["text"] == "old 7"
    assert store.list_generations(profile_id=profile["id"], limit=5)[1] == 20
    new = store.add_generation(gen("new"))
    store.close()
    plain = TinyDB(db)  # what an older voicebox (plain TinyDB JSON storage) would read
    assert {r["id"] for r in plain.table("generations").all()} == {r["id"] for r in rows.values()} | {new["id"]}
    plain.close()


def test_a_write_appends_one_small_line_and_leaves_the_snapshot_alone(tmp_path: Path, journalled: None) -> None:
    """Write cost independent of history: same bytes per insert at 100 and 20,000 records, and
    the snapshot is not touched."""
    grown: list[float] = []
    for records in (100, 20_000):
        data_dir = tmp_path / str(records)
        data_dir.mkdir()
        generations = {str(i + 1): gen(f"seed {i}", id=new_id(), created_at="2026-01-01T00:00:00+00:00") for i in range(records)}
        (data_dir / "voicebox.json").write_bytes(orjson.dumps({"meta": {"1": {"schema_version": 1}}, "generations": generations}))
        store = Store(data_dir)
        snapshot = os.stat(data_dir / "voicebox.json")
        for i in range(20):
            store.add_generation(gen(f"new {i:03d}", created_at="2026-02-01T00:00:00.000+00:00"))
        after = os.stat(data_dir / "voicebox.json")
        assert (after.st_ino, after.st_mtime_ns, after.st_size) == (snapshot.st_ino, snapshot.st_mtime_ns, snapshot.st_size)
        grown.append(journal_path(data_dir / "voicebox.json").stat().st_size / 20)
        abandon(store)
    assert grown[0] < 400 and abs(grown[0] - grown[1]) <= 4, grown  # only the doc keys' digits differ


def test_a_failed_append_changes_neither_memory_nor_disk(
    tmp_path: Path, journalled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path)
    kept = store.add_generation(gen("kept"))
    journal = journal_path(store.db_path)
    size = journal.stat().st_size
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(store_journal.os, "write", half_then_full)
        with pytest.raises(OSError):
            store.add_generation(gen("lost"))
    assert journal.stat().st_size == size
    assert [r["text"] for r in history(store)] == ["kept"]
    later = store.add_generation(gen("later"))
    abandon(store)
    assert {r["id"] for r in history(Store(tmp_path))} == {later["id"], kept["id"]}


def test_two_stores_on_one_dir_see_each_others_writes(tmp_path: Path, journalled: None) -> None:
    a, b = Store(tmp_path), Store(tmp_path)
    first = a.add_generation(gen("from a"))
    assert b.get_generation(first["id"])["text"] == "from a"
    second = b.add_generation(gen("from b"))
    assert {r["id"] for r in history(a)} == {first["id"], second["id"]}
    assert a.compact()
    third = b.add_generation(gen("b after a compacted"))
    a.delete_generation(second["id"])
    assert {r["id"] for r in history(b)} == {first["id"], third["id"]}
    b.close()
    a.close()
    assert {r["id"] for r in history(Store(tmp_path))} == {first["id"], third["id"]}


def test_generic_tinydb_operations_journal_only_what_they_touch(tmp_path: Path, journalled: None) -> None:
    store = Store(tmp_path)
    table = store.table("misc")
    with store.locked():
        table.insert_multiple([{"id": new_id(), "n": n} for n in range(50)])
        journal = journal_path(store.db_path)
        size = journal.stat().st_size
        table.update({"tag": "even"}, lambda r: r["n"] % 2 == 0)
        line = journal.read_bytes()[size:]
        assert line.count(b'"tag":"even"') == 25 and line.count(b'"n":') == 25
        table.update(lambda doc: doc.__setitem__("n", doc["n"] * 10), doc_ids=[1])
        table.upsert({"id": "z", "n": -1}, lambda r: r.get("id") == "z")
        table.remove(lambda r: r["n"] >= 40 and r["n"] != 0)
        expected = sorted((r["n"], r.get("tag")) for r in table.all())
    abandon(store)
    reopened = Store(tmp_path)
    with reopened.locked():
        misc = reopened.table("misc")
        assert sorted((r["n"], r.get("tag")) for r in misc.all()) == expected
        misc.truncate()
        assert misc.all() == []
        reopened._db.drop_table("misc")
    abandon(reopened)
    assert "misc" not in read_database(tmp_path / "voicebox.json")


# ---- indexes ---------------------------------------------------------------------------------------
WORDS = ["owl", "Owls", "ÉTÉ", "straße", "STRASSE", "rain", "train", "ß", "a", "voice", "ünï", "banana"]


def scan(store: Store, needle: str, profile_id: str | None, owner: str | None, limit: int | None, offset: int) -> tuple[list[str], int]:
    """The old full-scan listing, as the reference."""
    needle = needle.strip().casefold()
    raw = store._storage.read().get("generations", {}).values()
    rows = [
        r for r in raw
        if not r.get("project_id")
        and (not profile_id or r.get("profile_id") == profile_id)
        and (owner is None or (r.get("owner") or "") == owner)
        and (not needle or needle in r.get("text", "").casefold() or needle in r.get("profile_name", "").casefold())
    ]
    rows.sort(key=lambda r: (r.get("created_at", ""), r.get("id", "")), reverse=True)
    end = None if limit is None else offset + limit
    return [r["id"] for r in rows[offset:end]], len(rows)


def test_indexes_agree_with_a_full_scan_after_random_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JournalStorage, "INLINE_MAX_BYTES", 2048)  # both write paths
    monkeypatch.setattr(JournalStorage, "COMPACT_MIN_BYTES", 8192)
    monkeypatch.setattr(JournalStorage, "COMPACT_RATIO", 0.2)
    rng = random.Random(2024)
    profiles, owners = [new_id() for _ in range(4)], ["ana", "bo", "cy"]
    store = Store(tmp_path)
    live: dict[str, dict[str, Any]] = {}

    def random_record() -> dict[str, Any]:
        record = gen(" ".join(rng.choices(WORDS, k=3)), profile_id=rng.choice([*profiles, ""]),
                     profile_name=rng.choice(["Ana", "Bo ßig", "Owl Voice"]),
                     created_at=f"2026-01-01T00:00:{rng.randint(0, 9):02d}+00:00")  # many equal times
        if rng.random() < 0.5:
            record["owner"] = rng.choice(owners)
        if rng.random() < 0.15:
            record["project_id"] = new_id()
        return record

    def check() -> None:
        for _ in range(6):
            needle = rng.choice(["", "", "  OWL ", "ss", "strasse", "été", "ain", "zzz", "voice", "ß"])
            profile_id = rng.choice([None, *profiles])
            owner = rng.choice([None, None, "", *owners])
            limit = rng.choice([None, 1, 5, 50])
            offset = rng.choice([0, 0, 3, 40])
            page, total = store.list_generations(needle, profile_id, limit, offset, owner=owner)
            assert ([r["id"] for r in page], total) == scan(store, needle, profile_id, owner, limit, offset)
        for record_id in rng.sample(sorted(live), min(5, len(live))):
            assert store.get_generation(record_id) == live[record_id]

    for step in range(400):
        roll = rng.random()
        if roll < 0.55 or not live:
            record = store.add_generation(random_record())
            live[record["id"]] = record
        elif roll < 0.8:
            record_id = rng.choice(sorted(live))
            updated = {**random_record(), "id": record_id, "created_at": live[record_id]["created_at"]}
            live[record_id] = {**live[record_id], **updated}
            store.update_generation(updated)
        elif roll < 0.97:
            record_id = rng.choice(sorted(live))
            store.delete_generation(record_id)
            del live[record_id]
        else:
            with store.locked():  # a write that bypasses Store's methods must reach the index too
                store.generations.remove(lambda r: r.get("owner") == "cy")
            live = {k: v for k, v in live.items() if v.get("owner") != "cy"}
        if step % 20 == 0:
            check()
    check()
    store._storage.stop_background()
    assert store._storage.compactions > 0
    abandon(store)
    store = Store(tmp_path)  # indexes rebuilt from snapshot + journal agree too
    check()
    assert {r["id"] for r in history(store)} == {k for k, v in live.items() if not v.get("project_id")}
