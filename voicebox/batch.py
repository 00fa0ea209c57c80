"""Batch without a project: many lines, each in its own voice, made in the background into a ZIP.

``POST /batch`` hands a list of items (``text``, ``voice``, optional ``language``, ``preset``,
``seed``) to :meth:`Batches.start`: every item is checked first (a voice that matches no profile,
empty text, a bad seed or preset is refused with the item's number, and nothing starts), then one
daemon thread makes the items in order, each an ordinary take through :meth:`Studio.generate`.
The takes carry the batch id as their ``project_id``, so they stay out of History.

The batch's state lives in memory and in ``<data>/batches/<id>.json``, rewritten atomically after
each item. When the thread ends it writes ``<data>/batches/<id>.zip`` (one WAV per item made,
``001-<slug>.wav``, and ``batch.json``), so a finished batch can still be downloaded after a
restart even though its takes are not kept (start-up removes takes that no project points to).
A batch that was running when the server stopped is marked ``failed`` at the next start.

A batch is its starter's (:mod:`voicebox.owners`): its voices are looked up in their profiles,
its takes are theirs, its files live in their folder (``batches/`` there), and anyone else's
batch id answers "does not exist".
"""

from __future__ import annotations

import json
import logging
import threading
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import atomic_write_bytes, replacing
from .errors import Cancelled, Conflict, InvalidInput, NotFound, VoiceboxError
from .ids import new_id, utc_now
from .owners import OWNERS_DIR
from .owners import root as owner_root
from .projects.export import slug
from .records import GenerationRequest
from .take_effects import played_path

if TYPE_CHECKING:
    from .services import Studio

log = logging.getLogger(__name__)

MAX_ITEMS = 500
INTERRUPTED = "The server stopped while this batch was running; start it again."
STATES = ("running", "done", "failed", "cancelled")


@dataclass
class BatchItem:
    """One line of a batch and what became of it (``waiting``, ``running``, ``done``, ``failed``,
    ``cancelled``)."""

    index: int  # 1-based, as the file names and messages count
    text: str
    voice: str
    profile_id: str
    language: str | None = None
    preset: str | None = None
    seed: int | str | None = None
    status: str = "waiting"
    message: str = ""
    generation_id: str = ""
    used_seed: int | None = None
    duration: float = 0.0

    @property
    def file_name(self) -> str:
        return f"{self.index:03d}-{slug(self.text, fallback='item')}.wav"


@dataclass
class BatchState:
    id: str
    state: str
    total: int
    items: list[BatchItem]
    quality: str | None = None
    done: int = 0
    message: str = ""
    created_at: str = ""
    finished_at: str = ""
    zip_ready: bool = False
    owner: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for item, raw in zip(self.items, out["items"]):
            raw["file"] = item.file_name
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchState:
        items = [BatchItem(**{k: v for k, v in raw.items() if k != "file"}) for raw in data.get("items", [])]
        return cls(**{**data, "items": items})


def _copy(state: BatchState) -> BatchState:
    """A copy a caller may read while the batch's thread goes on changing the original."""
    return BatchState.from_dict(json.loads(json.dumps(state.to_dict())))


class Batches:
    """Every batch of this server: start, progress, cancel, and the finished ZIP."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.data_dir = Path(studio.settings.data_dir)
        self._lock = threading.Lock()
        self._batches: dict[str, BatchState] = {}
        self._stops: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._recover()

    # ---- public --------------------------------------------------------------------------------
    def folder(self, owner: str) -> Path:
        """Where ``owner``'s batches keep their state and ZIPs."""
        return owner_root(self.data_dir, owner) / "batches"

    def start(self, items: list[dict[str, Any]], quality: str | None = None, *, owner: str = "") -> BatchState:
        """Check every item (voices among ``owner``'s profiles), then make them on a background
        thread; returns the running state."""
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
            raise InvalidInput(f"A batch has 1 to {MAX_ITEMS} items.")
        batch_id = new_id()
        checked = [self._check(number, raw, quality, batch_id, owner) for number, raw in enumerate(items, 1)]
        state = BatchState(batch_id, "running", len(checked), checked, quality=quality or None, created_at=utc_now(),
                           owner=owner)
        stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(state, stop), daemon=True,
                                  name=f"voicebox-batch-{batch_id[:8]}")
        with self._lock:
            self._batches[batch_id] = state
            self._stops[batch_id] = stop
            self._threads[batch_id] = thread
            self._save(state)
        thread.start()
        return self.get(batch_id, owner=owner)

    def get(self, batch_id: str, *, owner: str = "") -> BatchState:
        """One of ``owner``'s batches (a copy); anyone else's answers as a missing one."""
        with self._lock:
            state = self._batches.get(batch_id)
            if state is None or state.owner != owner:
                raise NotFound(f"Batch {batch_id!r} does not exist.")
            return _copy(state)

    def of_owner(self, owner: str) -> list[BatchState]:
        """Copies of ``owner``'s batches (their library: counts, export, delete)."""
        with self._lock:
            return [_copy(state) for state in self._batches.values() if state.owner == owner]

    def forget(self, owner: str) -> int:
        """Drop ``owner``'s batches from memory (their files go with the owner's folders);
        returns how many. Used when a person deletes everything."""
        with self._lock:
            mine = [bid for bid, state in self._batches.items() if state.owner == owner]
            for bid in mine:
                for table in (self._batches, self._stops, self._threads):
                    table.pop(bid, None)
        return len(mine)

    def cancel(self, batch_id: str, *, owner: str = "") -> BatchState:
        """Stop a running batch (the item being made is abandoned); a finished one is left as it is."""
        self.get(batch_id, owner=owner)
        with self._lock:
            stop = self._stops.get(batch_id)
        if stop is not None:
            stop.set()
        return self.get(batch_id, owner=owner)

    def wait(self, batch_id: str, timeout: float | None = None, *, owner: str = "") -> BatchState:
        """Block until the batch's thread ends (for tests and scripts)."""
        self.get(batch_id, owner=owner)
        with self._lock:
            thread = self._threads.get(batch_id)
        if thread is not None:
            thread.join(timeout)
        return self.get(batch_id, owner=owner)

    def zip_path(self, batch_id: str, *, owner: str = "") -> Path:
        """The finished batch's ZIP; refused while it runs or when it made nothing."""
        state = self.get(batch_id, owner=owner)
        if state.state == "running":
            raise Conflict(f"The batch is still running ({state.done} of {state.total} done); download it when done.")
        path = self.folder(owner) / f"{batch_id}.zip"
        if not state.zip_ready or not path.is_file():
            raise NotFound(f"Batch {batch_id!r} has no audio to download ({state.state}: {state.message or 'nothing was made'}).")
        return path

    # ---- work ----------------------------------------------------------------------------------
    def _check(self, number: int, raw: dict[str, Any], quality: str | None, batch_id: str, owner: str) -> BatchItem:
        if not isinstance(raw, dict):
            raise InvalidInput(f"Item {number}: expected an object with text and voice.")
        voice = str(raw.get("voice") or "").strip()
        if not voice:
            raise InvalidInput(f"Item {number}: no voice given.")
        try:
            profile = self.studio.find_profile(voice, owner=owner)
        except NotFound:
            raise InvalidInput(f"Item {number}: no voice profile named {voice!r}.") from None
        item = BatchItem(number, str(raw.get("text") or ""), voice, profile.id, raw.get("language") or None,
                         raw.get("preset") or None, raw.get("seed"))
        try:
            self.studio.check_generation(self._request(item, quality, batch_id), owner=owner)
        except VoiceboxError as error:
            raise InvalidInput(f"Item {number}: {error.message}") from None
        return item

    @staticmethod
    def _request(item: BatchItem, quality: str | None, batch_id: str) -> GenerationRequest:
        return GenerationRequest(profile_id=item.profile_id, text=item.text, language=item.language,
                                 preset=item.preset, seed=item.seed, quality=quality, project_id=batch_id)

    def _run(self, state: BatchState, stop: threading.Event) -> None:
        final, message = "done", ""
        try:
            for item in state.items:
                if stop.is_set():
                    break
                with self._lock:
                    item.status = "running"
                try:
                    take = self.studio.generate(self._request(item, state.quality, state.id), stop, owner=state.owner)
                except Cancelled:
                    with self._lock:
                        item.status, item.message = "cancelled", "Cancelled."
                    break
                except VoiceboxError as error:
                    with self._lock:
                        item.status, item.message = "failed", error.message
                except Exception as error:
                    log.exception("batch %s item %d failed", state.id, item.index)
                    with self._lock:
                        item.status, item.message = "failed", f"Unexpected error: {error}"
                else:
                    with self._lock:
                        item.status, item.generation_id = "done", take.id
                        item.used_seed, item.duration = take.seed, take.duration
                        if take.status != "ok" and take.message:
                            item.message = take.message
                        state.done += 1
                with self._lock:
                    self._save(state)
            if stop.is_set():
                final, message = "cancelled", "Cancelled."
            elif state.done == 0:
                final, message = "failed", "No item could be made."
            elif state.done < state.total:
                message = f"{state.total - state.done} item(s) failed."
        except Exception as error:
            log.exception("batch %s failed", state.id)
            final, message = "failed", f"Unexpected error: {error}"
        zip_ready = False
        if state.done:
            try:
                self._write_zip(state, final, message)
                zip_ready = True
            except Exception as error:
                log.exception("batch %s: the ZIP could not be written", state.id)
                final, message = "failed", f"The ZIP could not be written: {error}"
        with self._lock:
            for item in state.items:
                if item.status in ("waiting", "running"):
                    item.status = "cancelled" if final == "cancelled" else "failed"
            state.state, state.message, state.zip_ready = final, message, zip_ready
            state.finished_at = utc_now()
            self._save(state)
            self._stops.pop(state.id, None)

    def _write_zip(self, state: BatchState, final: str, message: str) -> None:
        with self._lock:
            summary = state.to_dict()
        summary.update(state=final, message=message, zip_ready=True)
        summary["items"] = [{k: raw[k] for k in ("index", "file", "text", "voice", "language", "preset", "status",
                                                 "message", "generation_id", "used_seed", "duration")}
                            | {"seed": raw["used_seed"] if raw["used_seed"] is not None else raw["seed"]}
                            for raw in summary["items"]]
        folder = self.folder(state.owner)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{state.id}.zip"
        with replacing(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
            for item in state.items:
                if item.status == "done":
                    archive.write(played_path(self.studio, item.generation_id, owner=state.owner), item.file_name)
            archive.writestr("batch.json", json.dumps(summary, indent=2, ensure_ascii=False),
                             compress_type=zipfile.ZIP_DEFLATED)

    # ---- persistence ---------------------------------------------------------------------------
    def _save(self, state: BatchState) -> None:
        """Caller holds the lock."""
        data = json.dumps(state.to_dict(), ensure_ascii=False).encode("utf-8")
        atomic_write_bytes(self.folder(state.owner) / f"{state.id}.json", data)

    def _recover(self) -> None:
        """Load the batches of earlier runs (the local user's and every owner's folder); one that
        was running then is now ``failed``."""
        folders = [self.data_dir / "batches", *sorted((self.data_dir / OWNERS_DIR).glob("*/batches"))]
        for path in sorted(p for folder in folders if folder.is_dir() for p in folder.glob("*.json")):
            try:
                state = BatchState.from_dict(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError) as error:
                log.warning("skipping unreadable batch file %s: %s", path, error)
                continue
            if state.state == "running":
                state.state, state.message, state.finished_at = "failed", INTERRUPTED, utc_now()
                for item in state.items:
                    if item.status in ("waiting", "running"):
                        item.status = "failed"
                self._save(state)
            self._batches[state.id] = state
