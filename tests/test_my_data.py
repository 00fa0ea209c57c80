"""My data (issue #16): export everything of one owner as a ZIP, delete everything, import it back
(here or into another voicebox), with real speech (espeak-ng) and two owners, alice and bob."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from tests.support.espeak_backend import EspeakBackend
from tests.support.studio import account_headers
from tests.test_projects import make_studio
from voicebox.api import create_api_app
from voicebox.config import Settings
from voicebox.errors import Conflict, InvalidInput, PayloadTooLarge, VoiceboxError
from voicebox.my_data import delete_everything, export_library
from voicebox.my_data_import import import_library
from voicebox.owners import folder, owner_of
from voicebox.records import GenerationRequest
from voicebox.services import Studio

WORDS = "The quick brown fox jumps over the lazy dog near the river bank."
TAKES = ["Alice reads the first line.", "Alice reads another line."]
BLOCKS = ["The keeper climbed the stairs.", "He lit the lamp at dusk."]
BOB_SECRET = "Bob's secret line about the harbour."


@pytest.fixture
def studio(tmp_path: Path, shared_asr: Any) -> Studio:
    return make_studio(tmp_path / "data", shared_asr)


def library_of(studio: Studio, owner: str, espeak_wav: Path, name: str = "Narrator") -> dict[str, Any]:
    """A profile with a sample, two takes and a rendered project of ``owner``."""
    profile = studio.create_profile(name, "my voice", language="English", owner=owner)
    studio.add_sample(profile.id, espeak_wav, WORDS, owner=owner)
    for text in TAKES:
        studio.generate(GenerationRequest(profile_id=profile.id, text=text), owner=owner)
    project = studio.projects.create("The lighthouse", voice=profile.id, language="English",
                                     blocks=[{"text": t} for t in BLOCKS], owner=owner)
    studio.renders.start(project.id, owner=owner)
    done = studio.renders.wait(project.id, timeout=120)
    assert [b.status for b in done.blocks] == ["rendered"] * len(BLOCKS)
    job = studio.exports.start(project.id, "wav", owner=owner)
    assert studio.exports.wait(project.id, job.id, owner=owner).state == "done"
    return {"profile": profile.id, "project": project.id}


def rows(studio: Studio, owner: str) -> dict[str, list[dict[str, Any]]]:
    """Every stored record of ``owner``, by table."""
    with studio.store.locked():
        return {name: [dict(r) for r in studio.store.table(name).all() if owner_of(r) == owner]
                for name in ("profiles", "samples", "generations", "projects")}


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def snapshot(studio: Studio, owner: str) -> dict[str, Any]:
    """What a person would compare: names, sample audio, take texts and audio, project words."""
    profiles = []
    for item in studio.list_profiles(owner=owner)["items"]:
        profile = studio.get_profile(item.id, owner=owner)
        profiles.append((profile.name, profile.description, profile.language,
                         [(s.reference_text, studio.sample_path(s.id, owner=owner).read_bytes()) for s in profile.samples]))
    takes = sorted((g.text, g.profile_name, studio.generation_path(g.id, owner=owner).read_bytes(), len(g.chunks))
                   for g in studio.list_history(limit=None, owner=owner)["items"])
    projects = []
    for project in studio.projects.store.all(owner):
        voices = {studio.get_profile(b.voice or project.voice, owner=owner).name for b in project.blocks}
        audio = [studio.generation_path(b.generation_id, owner=owner).read_bytes() for b in project.blocks]
        projects.append((project.title, [b.text for b in project.blocks], [b.status for b in project.blocks],
                         voices, audio))
    return {"profiles": profiles, "takes": takes, "projects": projects}


def test_export_delete_everything_import_restores_the_library(studio: Studio, espeak_wav: Path,
                                                              tmp_path: Path) -> None:
    library_of(studio, "alice", espeak_wav)
    bob = studio.create_profile("Bob Voice", language="English", owner="bob")
    studio.add_sample(bob.id, espeak_wav, WORDS, owner="bob")
    bob_take = studio.generate(GenerationRequest(profile_id=bob.id, text=BOB_SECRET), owner="bob")
    local = studio.create_profile("Local Voice")
    before = snapshot(studio, "alice")
    bob_before, bob_files = snapshot(studio, "bob"), files_under(studio.settings.data_dir / folder("bob"))

    made = export_library(studio, "alice")
    assert made.is_relative_to(studio.settings.data_dir / folder("alice"))
    kept = tmp_path / "download.zip"  # what the person downloaded
    shutil.copy(made, kept)
    with zipfile.ZipFile(kept) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["format"] == "voicebox-library" and manifest["owner"] == "alice"
        assert manifest["counts"] == {"profiles": 1, "samples": 1, "history": 2, "projects": 1,
                                      "project_takes": 2, "batches": 0}
        assert {"profiles/narrator/profile.json", "profiles/narrator/sample-01.wav",
                "profiles/narrator/sample-01.transcript.txt", "history/history.json",
                "projects/the-lighthouse/project.json"} <= names
        assert archive.read("profiles/narrator/sample-01.transcript.txt").decode() == WORDS
        assert sorted(t["text"] for t in manifest["history"]) == sorted(TAKES)
        assert json.loads(archive.read("projects/the-lighthouse/project.json"))["title"] == "The lighthouse"
        wavs = [n for n in names if n.endswith(".wav")]
        assert len(wavs) >= 5  # a sample, two takes, two blocks (and their sentence takes)
        for name in wavs:
            data, rate = sf.read(io.BytesIO(archive.read(name)))
            assert rate > 0 and len(data) > 0, name
        everything = b"".join(archive.read(n) for n in names)
        assert BOB_SECRET.encode() not in everything and b"Bob Voice" not in everything
    ids = {r["id"] for table in rows(studio, "alice").values() for r in table}

    deleted = delete_everything(studio, "alice")
    assert (deleted.profiles, deleted.samples, deleted.projects) == (1, 1, 1)
    assert deleted.generations == 4  # two takes, two blocks
    assert rows(studio, "alice") == {"profiles": [], "samples": [], "generations": [], "projects": []}
    assert not (studio.settings.data_dir / folder("alice")).exists()
    data_files = files_under(studio.settings.data_dir)
    assert not [f for f in data_files if any(i in f for i in ids) or folder("alice").strip("/") in f]
    for path in studio.settings.data_dir.rglob("*"):  # the database and its journal included
        if path.is_file() and path.suffix != ".wav":
            text = path.read_bytes()
            assert not [i for i in ids if i.encode() in text], path
    assert snapshot(studio, "bob") == bob_before  # bob untouched
    assert files_under(studio.settings.data_dir / folder("bob")) == bob_files
    assert studio.get_generation(bob_take.id, owner="bob").text == BOB_SECRET
    assert studio.get_profile(local.id).name == "Local Voice"

    report = import_library(studio, "alice", kept)
    assert report.to_dict()["added"] == {"profiles": 1, "samples": 1, "history": 2, "projects": 1,
                                         "project_takes": 2}
    assert snapshot(studio, "alice") == before
    assert not {r["id"] for table in rows(studio, "alice").values() for r in table} & ids  # new ids
    project = studio.projects.store.all("alice")[0]
    assert project.voice == studio.list_profiles(owner="alice")["items"][0].id  # remapped voice

    again = import_library(studio, "alice", kept)  # a name clash gets " (2)"
    assert [p.name for p in studio.list_profiles(owner="alice")["items"]] == ["Narrator", "Narrator (2)"]
    assert again.renamed and "Narrator (2)" in again.renamed[0]


def test_import_into_another_voicebox_and_as_another_owner(studio: Studio, espeak_wav: Path, tmp_path: Path,
                                                           shared_asr: Any) -> None:
    library_of(studio, "alice", espeak_wav)
    before = snapshot(studio, "alice")
    kept = export_library(studio, "alice", tmp_path / "alice.zip")
    elsewhere = make_studio(tmp_path / "other", shared_asr)
    import_library(elsewhere, "", kept)  # the local user of another instance
    assert snapshot(elsewhere, "") == before
    assert elsewhere.projects.store.all("")[0].blocks[0].status == "rendered"


def test_deleting_everything_of_the_local_user_keeps_the_data_dir_and_others(studio: Studio,
                                                                             espeak_wav: Path) -> None:
    library_of(studio, "", espeak_wav)
    library_of(studio, "bob", espeak_wav)
    bob_before = snapshot(studio, "bob")
    export_library(studio, "")
    delete_everything(studio, "")
    data = studio.settings.data_dir
    assert data.is_dir() and (data / "voicebox.json").exists()
    assert rows(studio, "") == {"profiles": [], "samples": [], "generations": [], "projects": []}
    assert not [f for f in files_under(data) if f.split("/")[0] in ("samples", "generations", "exports", "batches")]
    assert snapshot(studio, "bob") == bob_before


def test_delete_everything_waits_for_a_running_render(studio: Studio, espeak_wav: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    library_of(studio, "alice", espeak_wav)
    monkeypatch.setattr(studio.renders, "is_running", lambda project_id: True)
    with pytest.raises(Conflict, match="stop it first"):
        delete_everything(studio, "alice")
    assert len(rows(studio, "alice")["profiles"]) == 1


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("case, error, words", [
    ("not a zip", InvalidInput, "not a ZIP"),
    ("traversal", InvalidInput, "unsafe file name"),
    ("absolute", InvalidInput, "unsafe file name"),
    ("no manifest", InvalidInput, "no manifest.json"),
    ("foreign manifest", InvalidInput, "format"),
    ("missing file", InvalidInput, "not in the ZIP"),
    ("bomb", PayloadTooLarge, "refused"),
    ("too large", PayloadTooLarge, "upload limit"),
])
def test_bad_zips_are_refused_and_add_nothing(studio: Studio, tmp_path: Path, case: str, error: type,
                                              words: str, espeak_wav: Path) -> None:
    manifest = {"format": "voicebox-library", "format_version": 1,
                "profiles": [{"id": "x", "name": "Sneaky", "samples": [{"file": "profiles/s/sample-01.wav"}]}]}
    good = {"manifest.json": json.dumps(manifest).encode(), "profiles/s/sample-01.wav": espeak_wav.read_bytes()}
    path = tmp_path / "bad.zip"
    if case == "not a zip":
        path.write_bytes(b"just some text, not a zip")
    elif case == "traversal":
        zip_of(path, {**good, "../x": b"escape"})
    elif case == "absolute":
        zip_of(path, {**good, "/etc/x": b"escape"})
    elif case == "no manifest":
        zip_of(path, {"profiles/s/sample-01.wav": espeak_wav.read_bytes()})
    elif case == "foreign manifest":
        zip_of(path, {"manifest.json": b'{"format": "something else"}'})
    elif case == "missing file":
        zip_of(path, {"manifest.json": good["manifest.json"]})
    elif case == "bomb":  # a few KB that claim to unpack to far more than the limit allows
        studio.settings = studio.settings.with_overrides(max_upload_mb=1.0)
        zip_of(path, {**good, "profiles/s/padding.bin": b"\0" * (20 << 20)})
    elif case == "too large":
        studio.settings = studio.settings.with_overrides(max_upload_mb=0.01)
        zip_of(path, good)
    before = files_under(studio.settings.data_dir)
    with pytest.raises(error) as caught:
        import_library(studio, "alice", path)
    assert words in caught.value.message
    assert studio.list_profiles(owner="alice")["total"] == 0
    assert files_under(studio.settings.data_dir) == before


def test_a_failure_half_way_removes_what_the_import_added(studio: Studio, espeak_wav: Path, tmp_path: Path) -> None:
    library_of(studio, "alice", espeak_wav)
    kept = export_library(studio, "alice", tmp_path / "alice.zip")
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(kept) as source, zipfile.ZipFile(broken, "w") as target:
        manifest = json.loads(source.read("manifest.json"))
        for name in source.namelist():
            data = source.read(name)
            if name == manifest["projects"][0]["file"]:
                data = b"not json"  # the profiles and takes import first, then this fails
            target.writestr(name, data)
    before = files_under(studio.settings.data_dir)
    with pytest.raises(VoiceboxError, match="malformed"):
        import_library(studio, "bob", broken)
    assert rows(studio, "bob") == {"profiles": [], "samples": [], "generations": [], "projects": []}
    assert files_under(studio.settings.data_dir) == before


# ---- REST --------------------------------------------------------------------------------------
def test_rest_my_data_with_two_accounts(tmp_path: Path, shared_asr: Any, espeak_wav: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", quality="off", quotas="off", rate_limit="off")
    headers = account_headers(settings, ("alice", "bob"))
    studio = Studio(settings, tts=EspeakBackend(), asr=shared_asr)
    client = TestClient(create_api_app(studio, settings))
    for name, text in (("alice", "Alice's own line."), ("bob", BOB_SECRET)):
        profile = client.post("/profiles", json={"name": f"{name.title()} Voice", "language": "English", "consent": True},
                              headers=headers[name]).json()
        with espeak_wav.open("rb") as handle:
            assert client.post(f"/profiles/{profile['id']}/samples", data={"reference_text": WORDS},
                               files={"file": ("a.wav", handle, "audio/wav")}, headers=headers[name]).status_code == 201
        assert client.post("/generate", json={"profile_id": profile["id"], "text": text},
                           headers=headers[name]).status_code == 201
    me = client.get("/me", headers=headers["alice"]).json()
    assert me == {"name": "alice", "counts": {"profiles": 1, "samples": 1, "history": 1, "projects": 0, "batches": 0}}

    download = client.get("/me/data", headers=headers["alice"])
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert "voicebox-my-data-" in download.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        everything = b"".join(archive.read(n) for n in archive.namelist())
    assert b"Alice's own line." in everything
    assert BOB_SECRET.encode() not in everything and b"Bob Voice" not in everything and b"bob" not in everything
    assert not list(settings.data_dir.rglob("*.zip"))  # sent, not kept: no copy of her library lingers

    refused = client.delete("/me/data", headers=headers["alice"])
    assert refused.status_code == 422 and "confirm=delete-everything" in refused.json()["detail"]
    assert client.delete("/me/data?confirm=yes", headers=headers["alice"]).status_code == 422
    gone = client.request("DELETE", "/me/data", json={"confirm": "delete-everything"}, headers=headers["alice"])
    assert gone.status_code == 200, gone.text
    assert gone.json()["deleted"]["profiles"] == 1 and gone.json()["deleted"]["generations"] == 1
    assert client.get("/me", headers=headers["alice"]).json()["counts"]["profiles"] == 0
    assert not (settings.data_dir / folder("alice")).exists()

    back = client.post("/me/data/import", files={"file": ("mine.zip", download.content, "application/zip")},
                       headers=headers["alice"])
    assert back.status_code == 200, back.text
    assert back.json()["added"]["profiles"] == 1 and back.json()["added"]["history"] == 1
    assert [p["name"] for p in client.get("/profiles", headers=headers["alice"]).json()["items"]] == ["Alice Voice"]
    history = client.get("/history", headers=headers["alice"]).json()["items"]
    assert [h["text"] for h in history] == ["Alice's own line."]
    bad = client.post("/me/data/import", files={"file": ("x.zip", b"nope", "application/zip")},
                      headers=headers["alice"])
    assert bad.status_code == 422 and "not a ZIP" in bad.json()["detail"]
    bob = client.get("/me", headers=headers["bob"]).json()
    assert bob["counts"]["profiles"] == 1 and bob["counts"]["history"] == 1
    assert client.delete("/me/data?confirm=delete-everything", headers=headers["bob"]).status_code == 200
    assert [h["text"] for h in client.get("/history", headers=headers["alice"]).json()["items"]] == ["Alice's own line."]
