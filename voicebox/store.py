"""Metadata store: TinyDB on a journalled, locked JSON file, with in-memory indexes.

Why TinyDB: voicebox's metadata (profiles, samples, generations, projects) is JSON documents, and
a JSON file is easy to inspect, back up and move. Plain TinyDB rewrites the whole file in place on
every write, so a crash mid-write corrupts it, a write costs more as history grows, and it is not
thread-safe. Here:

* :class:`~voicebox.json_storage.JournalStorage` appends each change to a fsynced journal and
  folds it into ``voicebox.json`` atomically in the background (small stores rewrite the file
  atomically instead), so a write costs the same at 100 or 100,000 records and ``kill -9`` never
  loses an acknowledged write;
* :class:`~voicebox.store_table.JournalTable` hands the storage only what a write changed;
* :mod:`voicebox.store_index` keeps id lookups, the history listing and its search off full scans;
* :class:`Store` serialises all access with one process-wide lock (Gradio and FastAPI call handlers
  from thread pools) plus an advisory file lock so a second process on the same data dir cannot
  interleave writes; the storage notices another process's writes and reloads.

Files: a record points to a file only after the file is complete (callers write audio first with
``atomic_write_bytes``, then insert), and deleting a record deletes its files.

Owners (:mod:`voicebox.owners`): profiles, samples and generations carry an ``owner``. The methods
that read or change one record take ``owner=``: a record of another owner answers exactly like an
id that does not exist. ``owner=None`` (the default) is the studio itself (start-up recovery,
quotas, tests) and sees every record; the :class:`~voicebox.services.Studio` always passes one.
Listings take ``owner=`` too (``""``: the local user's records, those without the field included).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .atomic import remove_quietly
from .errors import Conflict, InvalidInput, NotFound, VoiceboxError
from .ids import is_valid_id, name_key, new_id, normalise_name, utc_now
from .json_storage import JournalStorage, check_database_file
from .owners import OWNERS_DIR, owner_of, owns
from .owners import root as owner_root
from .store_index import GenerationIndex, IdIndex
from .store_table import JournalDB

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


class StoreError(VoiceboxError):
    """The database file cannot be used (e.g. written by a newer voicebox)."""

    status_code = 500


class Store:
    """All metadata access. Thread-safe; every public method takes the store lock.

    Args:
        data_dir: root of the data directory; record ``file`` fields are relative to it.
        db_path: the JSON file (default ``data_dir / "voicebox.json"``).
    """

    def __init__(self, data_dir: Path | str, db_path: Path | str | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = Path(db_path) if db_path else self.data_dir / "voicebox.json"
        self._thread_lock = threading.RLock()
        self._lock_path = self.db_path.with_name(self.db_path.name + ".lock")
        self._depth = 0
        self._lock_fd: int | None = None
        with self._locked():
            moved_aside = None
            try:
                self._db = JournalDB(self.db_path, storage=JournalStorage, lock=self._locked)
            except ValueError:  # the snapshot is not JSON: move it aside, start from the journal
                moved_aside = check_database_file(self.db_path)
                self._db = JournalDB(self.db_path, storage=JournalStorage, lock=self._locked)
            self._storage: JournalStorage = self._db.storage
            self._check_schema()
            self.recovered_from_corruption = moved_aside or self._storage.recovery_message
            self._ids = {name: IdIndex(name) for name in ("profiles", "samples", "generations")}
            for index in self._ids.values():
                self._storage.add_listener(index)
            self._history = GenerationIndex("generations")
            self._storage.add_listener(self._history)
        self.profiles = self._db.table("profiles", cache_size=0)
        self.samples = self._db.table("samples", cache_size=0)
        self.generations = self._db.table("generations", cache_size=0)

    def table(self, name: str) -> Any:
        """Another TinyDB table in the same file (projects keep theirs here); use it under :meth:`locked`."""
        return self._db.table(name, cache_size=0)

    def locked(self) -> Any:
        """The store's lock (threads and processes), for code that keeps its own table here."""
        return self._locked()

    # ---- locking --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Thread lock plus an advisory file lock held for the outermost call."""
        with self._thread_lock:
            if self._depth == 0:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                    os.close(self._lock_fd)
                    self._lock_fd = None

    def _check_schema(self) -> None:
        meta = self._db.table("meta", cache_size=0)
        rows = meta.all()
        if not rows:
            meta.insert({"schema_version": SCHEMA_VERSION, "created_at": utc_now()})
            return
        version = rows[0].get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.db_path} has schema version {version!r}, but this voicebox understands "
                f"up to {SCHEMA_VERSION}. Upgrade voicebox or point VOICEBOX_DATA_DIR elsewhere."
            )

    def close(self) -> None:
        """Fold the journal into ``voicebox.json`` and let go of the files."""
        self._storage.stop_background()  # outside the lock: a running compaction needs it
        with self._locked():
            self._db.close()

    def compact(self) -> bool:
        """Bring ``voicebox.json`` up to date with the journal now (e.g. before a backup copies
        it). Call without holding :meth:`locked`. False if there was nothing to do."""
        return self._storage.compact()

    # ---- files ----------------------------------------------------------------------------
    def resolve_file(self, relative: str, owner: str | None = None) -> Path:
        """Absolute path of a record's file, refusing anything outside the data dir, and, for a
        record of ``owner``, anything outside that owner's folder (the local user's files are
        never inside ``owners/``); ``None``: only the data dir is checked."""
        path = (self.data_dir / relative).resolve()
        if owner is None:
            allowed = path.is_relative_to(self.data_dir)
        elif owner:
            allowed = path.is_relative_to(owner_root(self.data_dir, owner).resolve())
        else:
            allowed = path.is_relative_to(self.data_dir) and not path.is_relative_to(self.data_dir / OWNERS_DIR)
        if not allowed:
            raise NotFound("File not found.")
        return path

    def _delete_files(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            if record.get("file"):
                try:
                    remove_quietly(self.resolve_file(record["file"], owner_of(record)))
                except NotFound:
                    log.warning("refusing to delete a file outside its owner's folder: %s", record["file"])

    # ---- generic helpers -------------------------------------------------------------------
    def _doc_id(self, table: Any, record_id: str) -> int | None:
        """The TinyDB document id of the record with this ``id`` (by index, not a scan)."""
        if not is_valid_id(record_id):
            return None
        self._storage.read()  # first catch up with another process's writes (two stats if none)
        return self._ids[table.name].doc_id(record_id)

    def _get(self, table: Any, record_id: str, what: str, owner: str | None = None) -> dict[str, Any]:
        """The record with this id; another owner's answers as a missing one does (same message)."""
        return self._get_doc(table, record_id, what, owner)[1]

    def _get_doc(self, table: Any, record_id: str, what: str, owner: str | None = None) -> tuple[int, dict[str, Any]]:
        """(document id, record) of the record with this id, for a write that follows the read
        under the same lock (the id is looked up once)."""
        doc_id = self._found(table, record_id, owner)
        if doc_id is None:
            raise NotFound(f"{what} {record_id!r} does not exist.")
        return doc_id, dict(table.get(doc_id=doc_id))

    def _found(self, table: Any, record_id: str, owner: str | None) -> int | None:
        """The document id of ``owner``'s record with this id, or None."""
        doc_id = self._doc_id(table, record_id)
        if doc_id is not None:
            found = table.get(doc_id=doc_id)
            if found is not None and owns(owner, found):
                return doc_id
        return None

    @staticmethod
    def _page(
        rows: list[dict[str, Any]], limit: int | None, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        if offset < 0 or (limit is not None and limit < 0):
            raise InvalidInput("limit and offset must not be negative.")
        total = len(rows)
        end = None if limit is None else offset + limit
        return rows[offset:end], total

    # ---- profiles --------------------------------------------------------------------------
    def _ensure_unique_name(self, name: str, owner: str, exclude_id: str | None = None) -> None:
        """Names are unique per owner: two people may each have a "Narrator"."""
        key = name_key(name)
        clash = self.profiles.get(
            lambda r: name_key(r.get("name", "")) == key and r.get("id") != exclude_id and owner_of(r) == owner
        )
        if clash is not None:
            raise Conflict(f"A profile named {clash['name']!r} already exists; choose another name.")

    def create_profile(self, name: str, description: str = "", language: str = "auto",
                       owner: str = "", consented_at: str = "") -> dict[str, Any]:
        name = normalise_name(name)
        now = utc_now()
        record = {
            "id": new_id(),
            "name": name,
            "description": str(description or "").strip(),
            "language": language or "auto",
            "created_at": now,
            "updated_at": now,
            "owner": owner,
            **({"consented_at": consented_at} if consented_at else {}),
        }
        with self._locked():
            self._ensure_unique_name(name, owner)
            self.profiles.insert(record)
        return record

    def get_profile(self, profile_id: str, owner: str | None = None) -> dict[str, Any]:
        with self._locked():
            return self._get(self.profiles, profile_id, "Profile", owner)

    def find_profile(self, id_or_name: str, owner: str | None = None) -> dict[str, Any]:
        """A profile by id or by (case-insensitive) name: what API clients call a 'voice'; only
        ``owner``'s profiles are looked at."""
        with self._locked():
            doc_id = self._found(self.profiles, id_or_name, owner)
            if doc_id is not None:
                return dict(self.profiles.get(doc_id=doc_id))
            key = name_key(" ".join(str(id_or_name).split()))
            found = self.profiles.get(lambda r: name_key(r.get("name", "")) == key and owns(owner, r))
            if found is None:
                raise NotFound(f"No voice profile named or with id {id_or_name!r}.")
            return dict(found)

    def list_profiles(
        self, search: str | None = None, limit: int | None = None, offset: int = 0, owner: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        needle = (search or "").strip().casefold()

        def match(r: dict[str, Any]) -> bool:
            if not owns(owner, r):
                return False
            return not needle or needle in r.get("name", "").casefold() or needle in r.get(
                "description", ""
            ).casefold()

        with self._locked():
            rows = [dict(r) for r in self.profiles.all() if match(r)]
        rows.sort(key=lambda r: r["name"].casefold())
        return self._page(rows, limit, offset)

    def update_profile(self, profile_id: str, owner: str | None = None, **changes: Any) -> dict[str, Any]:
        allowed = {"name", "description", "language", "effects"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(f"Unknown profile field(s): {', '.join(sorted(unknown))}.")
        updates = {k: v for k, v in changes.items() if v is not None}
        if "name" in updates:
            updates["name"] = normalise_name(updates["name"])
        if "description" in updates:
            updates["description"] = str(updates["description"]).strip()
        with self._locked():
            doc_id, current = self._get_doc(self.profiles, profile_id, "Profile", owner)
            if "name" in updates:
                self._ensure_unique_name(updates["name"], owner_of(current), exclude_id=profile_id)
            updates["updated_at"] = utc_now()
            self.profiles.update(updates, doc_ids=[doc_id])
            current.update(updates)
        return current

    def delete_profile(self, profile_id: str, owner: str | None = None) -> dict[str, Any]:
        """Delete a profile and its samples (records and files). History keeps the name."""
        with self._locked():
            doc_id, profile = self._get_doc(self.profiles, profile_id, "Profile", owner)
            samples = [dict(s) for s in self.samples.search(lambda r: r.get("profile_id") == profile_id)]
            self.samples.remove(lambda r: r.get("profile_id") == profile_id)
            self.profiles.remove(doc_ids=[doc_id])
        self._delete_files(samples)
        profile["deleted_samples"] = samples
        return profile

    # ---- samples ---------------------------------------------------------------------------
    def add_sample(
        self,
        profile_id: str,
        file: str,
        reference_text: str,
        duration: float,
        sample_rate: int,
        sha256: str,
        sample_id: str | None = None,
        warnings: list[str] | None = None,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """Insert a sample whose audio ``file`` (relative to the data dir) is already written; it
        belongs to its profile's owner."""
        record = {
            "id": sample_id or new_id(),
            "profile_id": profile_id,
            "file": file,
            "reference_text": (reference_text or "").strip(),
            "duration": float(duration),
            "sample_rate": int(sample_rate),
            "sha256": sha256,
            "warnings": list(warnings or []),
            "created_at": utc_now(),
        }
        with self._locked():
            doc_id, profile = self._get_doc(self.profiles, profile_id, "Profile", owner)
            record["owner"] = owner_of(profile)
            self.samples.insert(record)
            self.profiles.update({"updated_at": record["created_at"]}, doc_ids=[doc_id])
        return record

    def get_sample(self, sample_id: str, owner: str | None = None) -> dict[str, Any]:
        with self._locked():
            return self._get(self.samples, sample_id, "Sample", owner)

    def list_samples(self, profile_id: str, owner: str | None = None) -> list[dict[str, Any]]:
        """A profile's samples in a stable order (creation time, then id)."""
        with self._locked():
            self._get(self.profiles, profile_id, "Profile", owner)
            rows = [dict(s) for s in self.samples.search(lambda r: r.get("profile_id") == profile_id)]
        rows.sort(key=lambda r: (r["created_at"], r["id"]))
        return rows

    def update_sample_text(self, sample_id: str, reference_text: str, owner: str | None = None) -> dict[str, Any]:
        with self._locked():
            doc_id, sample = self._get_doc(self.samples, sample_id, "Sample", owner)
            text = (reference_text or "").strip()
            self.samples.update({"reference_text": text}, doc_ids=[doc_id])
            sample["reference_text"] = text
        return sample

    def delete_sample(self, sample_id: str, owner: str | None = None) -> dict[str, Any]:
        with self._locked():
            doc_id, sample = self._get_doc(self.samples, sample_id, "Sample", owner)
            self.samples.remove(doc_ids=[doc_id])
        self._delete_files([sample])
        return sample

    # ---- generations -----------------------------------------------------------------------
    def add_generation(self, record: dict[str, Any]) -> dict[str, Any]:
        """Insert a generation whose audio file is already complete on disk."""
        record = dict(record)
        record.setdefault("id", new_id())
        record.setdefault("created_at", utc_now())
        with self._locked():
            self.generations.insert(record)
        return record

    def update_generation(self, record: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
        """Replace a generation's record (its files are already written); it must exist (as
        ``owner``'s)."""
        with self._locked():
            doc_id, _ = self._get_doc(self.generations, record["id"], "Generation", owner)
            self.generations.update(dict(record), doc_ids=[doc_id])
        return dict(record)

    def get_generation(self, generation_id: str, owner: str | None = None) -> dict[str, Any]:
        with self._locked():
            return self._get(self.generations, generation_id, "Generation", owner)

    def list_generations(
        self,
        search: str | None = None,
        profile_id: str | None = None,
        limit: int | None = 50,
        offset: int = 0,
        *,
        owner: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first; ``search`` matches text and profile name case-insensitively.

        ``owner`` keeps only that owner's records (``""``: the local user's, records without the
        field included; ``None`` lists everyone's). Served from
        :class:`~voicebox.store_index.GenerationIndex`.
        """
        if offset < 0 or (limit is not None and limit < 0):
            raise InvalidInput("limit and offset must not be negative.")
        needle = (search or "").strip().casefold()
        with self._locked():
            raw = self._storage.read().get("generations", {})
            keys, total = self._history.query(needle, profile_id or None, owner, limit, offset)
            return [dict(raw[k]) for k in keys], total

    def delete_generation(self, generation_id: str, owner: str | None = None) -> dict[str, Any]:
        with self._locked():
            doc_id, record = self._get_doc(self.generations, generation_id, "Generation", owner)
            self.generations.remove(doc_ids=[doc_id])
        self._delete_files([record])
        return record

    def generation_stats(self, owner: str | None = None) -> dict[str, Any]:
        """Count, total audio seconds, and the same per profile (by the name recorded), of
        ``owner``'s takes; takes of project blocks belong to their projects and are not counted
        here, as in the listing."""
        with self._locked():
            raw = self._storage.read().get("generations", {})
            rows = [r for r in raw.values() if not r.get("project_id") and owns(owner, r)]
        per_profile: dict[str, dict[str, Any]] = {}
        for r in rows:
            key = r.get("profile_id") or ""
            entry = per_profile.setdefault(
                key, {"profile_id": key, "profile_name": r.get("profile_name", ""), "count": 0, "seconds": 0.0}
            )
            entry["count"] += 1
            entry["seconds"] += float(r.get("duration") or 0.0)
        return {
            "count": len(rows),
            "total_seconds": round(sum(float(r.get("duration") or 0.0) for r in rows), 3),
            "per_profile": sorted(per_profile.values(), key=lambda e: -e["count"]),
        }
