"""My data (issue #16): everything of one owner out as a ZIP, back in from one, or gone for good.

**Export** (:func:`export_library`) writes one ZIP a person can open without voicebox:

* ``manifest.json``: the format (``voicebox-library``, version), the voicebox version, when, whose,
  the counts, and every record as JSON, with ``file`` fields naming files *inside the ZIP*;
* ``profiles/<slug>/profile.json``, each sample's audio as stored (``sample-01.wav``) and what it
  says (``sample-01.transcript.txt``);
* ``history/<date>-<slug>-<id8>.wav`` for each take of the History (its sentence takes beside, in a
  folder of the same name) and ``history/history.json`` with their metadata;
* ``projects/<slug>/project.json`` (the ``project.json`` that ``POST /projects/import`` with format
  ``project`` reads) and the audio of each rendered block (``blocks/001-<slug>.wav``);
* ``batches/<id8>.zip``: finished batches' ZIPs, as downloaded (not imported again).

Files are streamed from disk into the ZIP (never the whole library in memory), and the ZIP is
written to a temporary name and renamed, so a half-written export is never served.

**Import** lives in :mod:`voicebox.my_data_import`; **delete everything** is
:func:`delete_everything` here.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .atomic import remove_quietly, replacing
from .errors import Conflict, NotFound
from .ids import utc_now
from .owners import owner_of
from .owners import root as owner_root
from .projects.export import slug

if TYPE_CHECKING:
    from .services import Studio

FORMAT = "voicebox-library"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Where an export is kept in the owner's folder (the newest replaces the one before).
EXPORT_FOLDER = "exports/my-data"
#: The folders of the data directory that hold only the local user's files (everyone else's
#: live under ``owners/``).
LOCAL_FOLDERS = ("samples", "generations", "exports", "batches", "designs")
STOP_FIRST = "stop it first (pause or cancel it), then delete everything again."


class _Names:
    """Unique folder names within one ZIP (``narrator``, ``narrator-2``, ...)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, base: str) -> str:
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}-{n}"
        self.used.add(name)
        return name


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("owner", "samples", "sample_count")}


def _take_files(studio: Studio, record: dict[str, Any], owner: str, base: str) -> tuple[dict[str, Any], list[tuple[Path, str]]]:
    """A take's record with its files renamed into the ZIP (``base``.wav, ``base``/i-n.wav), and
    the (disk path, ZIP name) pairs to copy; files missing on disk are left out (``file`` "")."""
    out = _public(record)
    copies: list[tuple[Path, str]] = []

    def place(relative: str, name: str) -> str:
        if not relative:
            return ""
        try:
            path = studio.store.resolve_file(relative, owner)
        except NotFound:
            return ""
        if not path.is_file():
            return ""
        copies.append((path, name))
        return name

    out["file"] = place(record.get("file") or "", f"{base}.wav")
    chunks = []
    for chunk in record.get("chunks") or []:
        chunk = dict(chunk)
        chunk["takes"] = [dict(t, file=place(t.get("file") or "", f"{base}/{chunk.get('index', 0)}-{n}.wav"))
                          for n, t in enumerate(chunk.get("takes") or [])]
        chunks.append(chunk)
    out["chunks"] = chunks
    return out, copies


def library(studio: Studio, owner: str) -> tuple[dict[str, Any], list[tuple[Path, str]], dict[str, bytes]]:
    """The manifest, the files to copy (disk path, ZIP name) and the small documents to write."""
    copies: list[tuple[Path, str]] = []
    documents: dict[str, bytes] = {}
    names = _Names()
    profiles = []
    for item in studio.list_profiles(owner=owner)["items"]:
        profile = studio.get_profile(item.id, owner=owner)
        folder = "profiles/" + names(slug(profile.name, fallback="profile"))
        entry = _public(profile.to_dict())
        samples = []
        for number, sample in enumerate(profile.samples, 1):
            record = _public(sample.to_dict())
            stem = f"{folder}/sample-{number:02d}"
            try:
                path = studio.sample_path(sample.id, owner=owner)
            except NotFound:
                continue  # its audio is gone: nothing to give back
            suffix = path.suffix or ".wav"
            copies.append((path, stem + suffix))
            record["file"], record["transcript_file"] = stem + suffix, stem + ".transcript.txt"
            documents[record["transcript_file"]] = sample.reference_text.encode("utf-8")
            samples.append(record)
        entry["folder"], entry["samples"] = folder, samples
        documents[f"{folder}/profile.json"] = _json(entry)
        profiles.append(entry)

    history = []
    rows, _ = studio.store.list_generations(None, None, None, 0, owner=owner)
    for row in rows:
        base = f"history/{(row.get('created_at') or '')[:10] or 'undated'}-{slug(row.get('text', ''), 30, 'take')}-{row['id'][:8]}"
        record, files = _take_files(studio, row, owner, base)
        if record["file"]:
            history.append(record)
            copies += files
    documents["history/history.json"] = _json(history)

    projects = []
    for project in studio.projects.store.all(owner):
        folder = "projects/" + names(slug(project.title, fallback="project"))
        data = _public(project.to_dict())
        takes = []
        for index, block in enumerate(project.blocks):
            if not block.generation_id:
                continue
            try:
                row = studio.store.get_generation(block.generation_id, owner)
            except NotFound:
                continue
            record, files = _take_files(studio, row, owner, f"{folder}/blocks/{index + 1:03d}-{slug(block.text, 30)}")
            if record["file"]:
                takes.append(dict(record, block_index=index))
                copies += files
        documents[f"{folder}/project.json"] = _json(data)
        projects.append({"folder": folder, "file": f"{folder}/project.json", "project": data, "takes": takes})

    batches = []
    for state in studio.batches.of_owner(owner):
        path = studio.batches.folder(owner) / f"{state.id}.zip"
        if state.zip_ready and path.is_file():
            name = f"batches/{state.id[:8]}.zip"
            copies.append((path, name))
            batches.append({"id": state.id, "file": name, "state": state.state, "created_at": state.created_at,
                            "total": state.total, "done": state.done})

    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "voicebox_version": __version__,
        "exported_at": utc_now(), "owner": owner,
        "counts": {"profiles": len(profiles), "samples": sum(len(p["samples"]) for p in profiles),
                   "history": len(history), "projects": len(projects),
                   "project_takes": sum(len(p["takes"]) for p in projects), "batches": len(batches)},
        "profiles": profiles, "history": history, "projects": projects, "batches": batches,
    }
    return manifest, copies, documents


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")


def export_library(studio: Studio, owner: str, out: Path | None = None) -> Path:
    """Everything of ``owner`` as one ZIP (see the module docstring); returns its path: ``out``, or
    ``<owner's folder>/exports/my-data/voicebox-data-<date>.zip`` (the previous one is removed)."""
    manifest, copies, documents = library(studio, owner)
    if out is None:
        folder = owner_root(studio.settings.data_dir, owner) / EXPORT_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d-%H%M%S")
        out = folder / f"voicebox-data-{stamp}.zip"
        for old in folder.glob("voicebox-data-*.zip"):
            if old != out:
                remove_quietly(old)
    out = Path(out)
    with replacing(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, name in copies:
            # audio barely deflates: stored is as small and much faster
            archive.write(path, name, compress_type=zipfile.ZIP_STORED)
        for name, data in documents.items():
            archive.writestr(name, data)
        archive.writestr(MANIFEST, _json(manifest))
    return out


def counts(studio: Studio, owner: str) -> dict[str, int]:
    """How many records ``owner`` has, by kind (``GET /me``)."""
    profiles = studio.list_profiles(owner=owner)["items"]
    history = studio.store.list_generations(limit=0, owner=owner)[1]  # the index: project takes are not history
    return {"profiles": len(profiles), "samples": sum(p.sample_count for p in profiles),
            "history": history,
            "projects": len(studio.projects.store.all(owner)),
            "batches": len(studio.batches.of_owner(owner))}


# ---- delete everything ---------------------------------------------------------------------
@dataclass
class Deleted:
    """What :func:`delete_everything` removed."""

    profiles: int = 0
    samples: int = 0
    generations: int = 0
    projects: int = 0
    batches: int = 0
    files: int = 0
    folders: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"profiles": self.profiles, "samples": self.samples, "generations": self.generations,
                "projects": self.projects, "batches": self.batches, "files": self.files}


def busy(studio: Studio, owner: str) -> str:
    """Why ``owner``'s data cannot be deleted now ("" when it can): a render, batch or export runs."""
    for project in studio.projects.store.all(owner):
        if studio.renders.is_running(project.id):
            return f"The project {project.title!r} is rendering: {STOP_FIRST}"
    for state in studio.batches.of_owner(owner):
        if state.state == "running":
            return f"A batch is running ({state.done} of {state.total} done): {STOP_FIRST}"
    if studio.exports.running_for(owner):
        return "A project export is being written: wait until it is done, then delete everything again."
    return ""


def delete_everything(studio: Studio, owner: str) -> Deleted:
    """Remove every record of ``owner`` (profiles, samples, takes, projects, batches, export jobs,
    the quota ledger's list of their files) and every file: for an account its whole folder
    under ``owners/``; for the local user ``""`` the files of its records and the local folders
    (``samples``, ``generations``, ``exports``, ``batches``), never the data directory itself,
    the database, the caches or anyone else's folder.

    Raises:
        Conflict: a render, batch or export of ``owner`` is running (stop it first).
    """
    why = busy(studio, owner)
    if why:
        raise Conflict(why)
    done = Deleted()
    # the locks a delete of a take or a block takes, in the order they do
    with studio.projects.store.lock, studio.sentences.lock:
        why = busy(studio, owner)  # one may have started while we waited
        if why:
            raise Conflict(why)
        for project in studio.projects.store.all(owner):
            studio.projects.store.remove(project.id)
            done.projects += 1
        with studio.store.locked():
            takes = [r["id"] for r in studio.store.generations.all() if owner_of(r) == owner]
        for take in takes:
            try:
                studio.delete_generation(take, owner=owner)
                done.generations += 1
            except NotFound:
                pass
        for profile in studio.list_profiles(owner=owner)["items"]:
            done.samples += profile.sample_count
            try:
                studio.delete_profile(profile.id, owner=owner)
                done.profiles += 1
            except NotFound:
                pass
        with studio.store.locked():  # samples whose profile went another way
            strays = [dict(r) for r in studio.store.samples.all() if owner_of(r) == owner]
            if strays:
                studio.store.samples.remove(lambda r: owner_of(r) == owner)
        studio.store._delete_files(strays)
        done.samples += len(strays)
    done.batches = studio.batches.forget(owner)
    studio.designer.forget(owner)  # voice designs waiting to be kept
    studio.exports.forget(owner)
    _forget_quota_files(studio, owner)
    done.files, done.folders = _remove_folders(studio, owner)
    studio.store.compact()  # the journal, too, forgets the removed records now
    return done


def _forget_quota_files(studio: Studio, owner: str) -> None:
    """The ledger row of ``owner`` (an account's quotas use its name; the local user's ``""``) no
    longer lists their profiles or files; the times of recent takes stay (without their ids) until
    they leave the 24-hour window, so deleting everything does not reset a rate limit."""
    quotas = studio.quotas
    with studio.store.locked():
        row = quotas.table.get(lambda r: r.get("user") == owner)
        if row is None:
            return
        takes = [[t[0], t[1], ""] for t in row.get("takes", []) if isinstance(t, list) and len(t) >= 2]
        quotas.table.update({"takes": takes, "profiles": [], "files": {}}, lambda r: r.get("user") == owner)


def _remove_folders(studio: Studio, owner: str) -> tuple[int, list[str]]:
    """Remove the owner's folders; returns how many files went and which folders."""
    data = Path(studio.settings.data_dir)
    targets: Iterable[Path] = [owner_root(data, owner)] if owner else [data / name for name in LOCAL_FOLDERS]
    files, removed = 0, []
    for target in targets:
        if not target.is_dir() or target.resolve() == data.resolve():
            continue
        files += sum(1 for p in target.rglob("*") if p.is_file())
        shutil.rmtree(target, ignore_errors=True)
        removed.append(str(target.relative_to(data)))
    if not owner:
        studio.settings.ensure_dirs()  # the local layout the studio expects, empty
    return files, removed
