"""Import a "My data" ZIP (:mod:`voicebox.my_data`) into one owner's library, here or on another
voicebox.

**Checked before anything is added**: the upload's size (the settings' upload limit), that it is a
ZIP, every member's name (no absolute paths, no ``..``, no backslashes), how much it would unpack
to (at most :data:`UNPACK_FACTOR` times the upload limit in all, and no member that claims to grow
more than :data:`MAX_RATIO` times: a zip bomb), the manifest (format and version), and that every
file the manifest names is in the ZIP. Members are read with a cap, so a header that lies about a
size cannot make more bytes come out.

**What comes back**: profiles with their samples (new ids; a name the owner already uses gets
" (2)", " (3)", ...), History takes with their audio and sentence takes, projects (through the
same ``project.json`` reader as ``POST /projects/import``, block voices mapped to the new profile
ids) with the takes of their rendered blocks. Batches' ZIPs are not imported (a batch keeps no
records). **All or nothing**: if anything fails, every record and file this import added is
removed again, and the error says what failed.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import soundfile as sf

from . import audio
from .atomic import atomic_write_bytes, remove_quietly, remove_quietly_dir
from .effects import stored as stored_effects
from .errors import InvalidInput, NotFound, PayloadTooLarge, VoiceboxError
from .ids import NAME_MAX_CHARS, name_key, new_id
from .my_data import FORMAT, FORMAT_VERSION, MANIFEST
from .owners import relative as owned_path
from .owners import root as owner_root
from .quotas import STORAGE
from .records import Generation

if TYPE_CHECKING:
    from .services import Studio

#: The unpacked ZIP may hold at most this many times the upload limit.
UNPACK_FACTOR = 4
#: No member may claim to unpack to more than this many times its packed size (beyond 1 MB).
MAX_RATIO = 200
MAX_MEMBERS = 100_000
NOT_OURS = "This ZIP is not a voicebox data export (Download my data); "


@dataclass
class ImportReport:
    """What an import added, and what it left out and why."""

    profiles: int = 0
    samples: int = 0
    history: int = 0
    projects: int = 0
    project_takes: int = 0
    renamed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"added": {"profiles": self.profiles, "samples": self.samples, "history": self.history,
                          "projects": self.projects, "project_takes": self.project_takes},
                "renamed": list(self.renamed), "skipped": list(self.skipped)}


class _Archive:
    """A checked ZIP: safe names, honest sizes, and reads that cannot exceed them."""

    def __init__(self, path: Path, max_upload: int) -> None:
        size = path.stat().st_size
        if size > max_upload:
            raise PayloadTooLarge(
                f"The ZIP is {size / 1048576:.1f} MB; the upload limit is {max_upload / 1048576:.0f} MB "
                "(VOICEBOX_MAX_UPLOAD_MB on the server that imports it)."
            )
        if not zipfile.is_zipfile(path):
            raise InvalidInput("This is not a ZIP file. Choose the ZIP that Download my data made.")
        try:
            self.zip = zipfile.ZipFile(path)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InvalidInput(f"The ZIP cannot be read ({exc}).") from None
        if len(infos) > MAX_MEMBERS:
            raise InvalidInput(f"The ZIP has {len(infos):,} files; an export has at most {MAX_MEMBERS:,}.")
        limit = UNPACK_FACTOR * max_upload
        total = 0
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            parts = PurePosixPath(name).parts
            if (not name or name.startswith("/") or "\\" in name or ":" in name or ".." in parts
                    or "\x00" in name):
                raise InvalidInput(f"The ZIP holds an unsafe file name ({name[:80]!r}); it is refused.")
            total += info.file_size
            packed = max(info.compress_size, 1)
            if info.file_size > limit or total > limit or (info.file_size > 1 << 20 and info.file_size / packed > MAX_RATIO):
                raise PayloadTooLarge(
                    f"The ZIP would unpack to more than {limit / 1048576:.0f} MB or one of its files "
                    f"({name[:80]!r}) claims to be far larger than it is packed: it is refused."
                )
            if not info.is_dir():
                self.infos[name] = info

    def read(self, name: str) -> bytes:
        info = self.infos.get(name)
        if info is None:
            raise InvalidInput(NOT_OURS + f"{name!r} is named in its manifest but not in the ZIP.")
        with self.zip.open(info) as handle:
            data = handle.read(info.file_size + 1)
        if len(data) != info.file_size:
            raise InvalidInput(f"{name!r} in the ZIP is not the size its header says; the ZIP is damaged.")
        return data

    def has(self, name: str) -> bool:
        return bool(name) and name in self.infos


def _manifest(archive: _Archive) -> dict[str, Any]:
    if MANIFEST not in archive.infos:
        raise InvalidInput(NOT_OURS + "it has no manifest.json.")
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except ValueError:
        raise InvalidInput(NOT_OURS + "its manifest.json is not JSON.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(NOT_OURS + f"its manifest.json does not say format {FORMAT!r}.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InvalidInput(f"This export has format version {version!r}; this voicebox reads up to "
                           f"{FORMAT_VERSION}. Update voicebox to import it.")
    for key in ("profiles", "history", "projects"):
        if not isinstance(manifest.get(key, []), list) or not all(isinstance(x, dict) for x in manifest.get(key, [])):
            raise InvalidInput(NOT_OURS + f"its manifest's {key!r} is not a list of records.")
    for name in _named_files(manifest):
        if not archive.has(name):
            raise InvalidInput(NOT_OURS + f"{name!r} is named in its manifest but not in the ZIP.")
    return manifest


def _named_files(manifest: dict[str, Any]) -> list[str]:
    names = []
    for profile in manifest.get("profiles", []):
        names += [s.get("file", "") for s in profile.get("samples", []) if isinstance(s, dict)]
    takes = list(manifest.get("history", []))
    for project in manifest.get("projects", []):
        names.append(project.get("file", ""))
        takes += [t for t in project.get("takes", []) if isinstance(t, dict)]
    for take in takes:
        names.append(take.get("file", ""))
        names += [t.get("file", "") for c in take.get("chunks") or [] if isinstance(c, dict)
                  for t in c.get("takes") or [] if isinstance(t, dict) and t.get("file")]
    return names


class _Importer:
    def __init__(self, studio: Studio, owner: str, archive: _Archive, user: str | None) -> None:
        self.studio, self.owner, self.archive, self.user = studio, owner, archive, user
        self.report = ImportReport()
        self.profiles: dict[str, str] = {}  # old id -> new id
        self.names: dict[str, str] = {}     # new id -> name
        self.added_profiles: list[str] = []
        self.added_takes: list[str] = []
        self.added_projects: list[str] = []
        self.files: list[Path] = []
        self.taken: set[str] | None = None  # the owner's profile names (name_key), read once

    def run(self, manifest: dict[str, Any]) -> ImportReport:
        if self.user is not None:
            audio_bytes = sum(self.archive.infos[n].file_size for n in _named_files(manifest) if n.endswith(".wav"))
            self.studio.quotas.check(self.user, STORAGE, audio_bytes)
        try:
            for profile in manifest.get("profiles", []):
                self._profile(profile)
            for take in manifest.get("history", []):
                self._take(take, "")
                self.report.history += 1
            for project in manifest.get("projects", []):
                self._project(project)
            for batch in manifest.get("batches", []) or []:
                self.report.skipped.append(f"batch {str(batch.get('id', ''))[:8]}: a batch's ZIP is kept in the "
                                           "export only (batches keep no records to import)")
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            self.undo()
            raise InvalidInput(f"A record in the ZIP's manifest.json is malformed ({type(exc).__name__}: {exc}); "
                               "nothing was imported.") from None
        except BaseException:
            self.undo()
            raise
        return self.report

    def _write(self, relative: str, data: bytes) -> str:
        path = self.studio.settings.data_dir / relative
        self.files.append(path)
        atomic_write_bytes(path, data)
        return relative

    def _profile(self, entry: dict[str, Any]) -> None:
        wanted = str(entry.get("name") or "Imported voice")
        name = self._free_name(wanted)
        profile = self.studio.create_profile(name, str(entry.get("description") or ""),
                                             str(entry.get("language") or "auto"), owner=self.owner, user=self.user,
                                             consent=str(entry.get("consented_at") or ""))  # as it was recorded
        self.added_profiles.append(profile.id)
        default = stored_effects(entry.get("effects"))  # the voice's default effect travels with it
        if default is not None:
            profile = self.studio.update_profile(profile.id, owner=self.owner, effects=default.to_dict())
        if name != " ".join(wanted.split()):
            self.report.renamed.append(f"profile {wanted!r} is now {name!r} (the name was taken)")
        self.profiles[str(entry.get("id", ""))] = profile.id
        self.names[profile.id] = profile.name
        self.report.profiles += 1
        for sample in entry.get("samples", []):
            data = self.archive.read(sample["file"])
            try:
                decoded, rate = audio.decode(data)
            except VoiceboxError as exc:
                raise InvalidInput(f"The sample {sample['file']!r} is not audio voicebox can read: {exc.message}") from None
            if sf.info(io.BytesIO(data)).format != "WAV" or rate != audio.MODEL_SAMPLE_RATE or decoded.shape[1] != 1:
                prepared = audio.prepare_reference(decoded, rate, self.studio.settings.max_sample_seconds)
                data, rate = audio.wav_bytes(prepared.samples, prepared.sample_rate), prepared.sample_rate
                decoded = prepared.samples.reshape(-1, 1)
            sample_id = new_id()
            relative = self._write(owned_path(self.owner, f"samples/{profile.id}/{sample_id}.wav"), data)
            self.studio.store.add_sample(
                profile.id, relative, str(sample.get("reference_text") or ""), round(len(decoded) / rate, 3), rate,
                audio.sha256_bytes(data), sample_id=sample_id, warnings=list(sample.get("warnings") or []),
                owner=self.owner,
            )
            self.report.samples += 1

    def _free_name(self, wanted: str) -> str:
        """``wanted``, or ``wanted (2)``... when the owner has a profile of that name (the store's
        rule, :func:`voicebox.ids.name_key`); the names are listed once per import."""
        if self.taken is None:
            self.taken = {name_key(p.name) for p in self.studio.list_profiles(owner=self.owner)["items"]}
        base = " ".join(wanted.split())[:NAME_MAX_CHARS] or "Imported voice"
        name, n = base, 1
        while name_key(name) in self.taken:
            n += 1
            suffix = f" ({n})"
            name = base[:NAME_MAX_CHARS - len(suffix)] + suffix
        self.taken.add(name_key(name))
        return name

    def _take(self, entry: dict[str, Any], project_id: str) -> str:
        """A take again: new id, its audio and sentence takes copied, its voice mapped (a voice that
        was not exported keeps its name but no profile)."""
        take_id = new_id()
        record = Generation.from_dict({**{k: v for k, v in entry.items() if k not in ("owner", "block_index")},
                                       "id": take_id})
        main = self._write(owned_path(self.owner, f"generations/{take_id}.wav"), self._audio(record.file))
        chunks = []
        for chunk in record.chunks:
            takes = []
            for number, take in enumerate(chunk.takes):
                file = ""
                if take.file:
                    file = self._write(owned_path(self.owner, f"generations/{take_id}/{chunk.index}-{number}.wav"),
                                       self._audio(take.file))
                takes.append(replace(take, file=file))
            chunks.append(replace(chunk, takes=tuple(takes)))
        profile_id = self.profiles.get(record.profile_id, "")
        data = replace(record, id=take_id, file=main, chunks=tuple(chunks), profile_id=profile_id,
                       profile_name=self.names.get(profile_id, record.profile_name), project_id=project_id,
                       owner=self.owner).to_dict()
        if entry.get("created_at"):
            data["created_at"] = entry["created_at"]
        else:
            del data["created_at"]
        self.studio.store.add_generation(data)
        self.added_takes.append(take_id)
        return take_id

    def _audio(self, name: str) -> bytes:
        data = self.archive.read(name)
        try:
            sf.info(io.BytesIO(data))
        except Exception:  # noqa: BLE001 - libsndfile says why in its own words
            raise InvalidInput(f"{name!r} in the ZIP is not a WAV file voicebox can read.") from None
        return data

    def _project(self, entry: dict[str, Any]) -> None:
        saved = json.loads(self.archive.read(entry["file"]))
        if not isinstance(saved, dict):
            raise InvalidInput(f"{entry['file']!r} is not a project.json.")
        saved["voice"] = self.profiles.get(str(saved.get("voice") or ""), "")
        for block in saved.get("blocks") or []:
            if isinstance(block, dict):
                block["voice"] = self.profiles.get(str(block.get("voice") or ""), "")
        projects = self.studio.projects
        project = projects.import_file(json.dumps(saved), "project", owner=self.owner)
        self.added_projects.append(project.id)
        self.report.projects += 1
        old_blocks = [b for b in saved.get("blocks") or [] if isinstance(b, dict)]
        blocks = list(project.blocks)
        for take in entry.get("takes") or []:
            index = take.get("block_index")
            if not isinstance(index, int) or not 0 <= index < len(blocks):
                self.report.skipped.append(f"a take of project {project.title!r} names no block; left out")
                continue
            take_id = self._take(take, project.id)
            status = old_blocks[index].get("status") if old_blocks[index].get("status") in ("rendered", "failed") else "rendered"
            blocks[index] = replace(blocks[index], generation_id=take_id, status=status,
                                    message=str(old_blocks[index].get("message") or ""))
            self.report.project_takes += 1
        if entry.get("takes"):
            with projects.store.lock:
                current = projects.store.get(project.id, self.owner)
                projects.store.put(replace(current, blocks=tuple(blocks)))

    def undo(self) -> None:
        """Remove every record and file this import added."""
        studio = self.studio
        for project_id in self.added_projects:
            try:
                studio.projects.store.remove(project_id)
            except NotFound:
                pass
        for take_id in self.added_takes:
            try:
                studio.delete_generation(take_id, owner=self.owner)
            except NotFound:
                pass
        for profile_id in self.added_profiles:
            try:
                studio.delete_profile(profile_id, owner=self.owner)
            except NotFound:
                pass
        for path in self.files:
            remove_quietly(path)
        root = owner_root(studio.settings.data_dir, self.owner)
        for take_id in self.added_takes:
            remove_quietly_dir(root / "generations" / take_id)
        for profile_id in self.added_profiles:
            remove_quietly_dir(root / "samples" / profile_id)


def import_library(studio: Studio, owner: str, zip_path: Path | str, *, user: str | None = None) -> ImportReport:
    """Add a "My data" ZIP to ``owner``'s library (see the module docstring). ``user``: whose
    quotas it uses (profiles, storage); ``None``: none.

    Raises:
        PayloadTooLarge: over the upload limit, or a zip bomb.
        InvalidInput: not a ZIP, an unsafe name, no or a foreign manifest, a named file missing,
            audio that cannot be read. Nothing is added then.
    """
    archive = _Archive(Path(zip_path), studio.settings.max_upload_bytes)
    with archive.zip:
        manifest = _manifest(archive)
        return _Importer(studio, owner, archive, user).run(manifest)
