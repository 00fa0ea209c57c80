"""Isolation (issue #16) through the Studio: two owners, "ana" and "bo", beside the local user.

Neither sees, lists, searches, plays, changes or deletes the other's profiles, samples or takes;
another owner's id fails exactly like an id that does not exist (same error, same words but the
id), names are unique per owner, and each owner's files live in their own folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from tests.test_projects import make_studio
from voicebox.errors import Conflict, NotFound, VoiceboxError
from voicebox.owners import folder, owner_of
from voicebox.records import GenerationRequest
from voicebox.services import Studio
from voicebox.store import new_id

WORDS = "The quick brown fox jumps over the lazy dog near the river bank."


@pytest.fixture
def studio(tmp_path: Path, shared_asr: Any) -> Studio:
    return make_studio(tmp_path / "data", shared_asr)


def voice_of(studio: Studio, owner: str, espeak_wav: Path, name: str = "Narrator") -> str:
    profile = studio.create_profile(name, language="English", owner=owner)
    studio.add_sample(profile.id, espeak_wav, WORDS, owner=owner)
    return profile.id


def refusal(call: Callable[[], Any]) -> tuple[type, str]:
    """The error a call raises: its type and message."""
    with pytest.raises(VoiceboxError) as caught:
        call()
    return type(caught.value), caught.value.message


def same_as_missing(theirs: str, call: Callable[[str], Any]) -> None:
    """``call`` on someone else's id fails exactly as on an id that never existed."""
    missing = new_id()
    kind, text = refusal(lambda: call(theirs))
    missing_kind, missing_text = refusal(lambda: call(missing))
    assert kind is NotFound
    assert (kind, text.replace(theirs, "<id>")) == (missing_kind, missing_text.replace(missing, "<id>"))


def test_profiles_and_samples_are_the_owners_alone(studio: Studio, espeak_wav: Path) -> None:
    ana = voice_of(studio, "ana", espeak_wav)
    bo = voice_of(studio, "bo", espeak_wav)  # the same name is fine for another owner
    with pytest.raises(Conflict):
        studio.create_profile("narrator", owner="ana")
    local = studio.create_profile("Narrator")  # and for the local user
    assert [p.id for p in studio.list_profiles(owner="ana")["items"]] == [ana]
    assert [p.id for p in studio.list_profiles(owner="bo")["items"]] == [bo]
    assert [p.id for p in studio.list_profiles()["items"]] == [local.id]
    assert studio.list_profiles("narr", owner="bo")["total"] == 1
    assert studio.find_profile("Narrator", owner="ana").id == ana
    assert studio.find_profile("narrator", owner="bo").id == bo
    assert studio.get_profile(ana, owner="ana").owner == "ana"
    sample = studio.list_samples(ana, owner="ana")[0]

    for call in (
        lambda i: studio.get_profile(i, owner="bo"),
        lambda i: studio.update_profile(i, owner="bo", description="mine now"),
        lambda i: studio.list_samples(i, owner="bo"),
        lambda i: studio.add_sample(i, espeak_wav, WORDS, owner="bo"),
        lambda i: studio.references(i, owner="bo"),
        lambda i: studio.delete_profile(i, owner="bo"),
        lambda i: studio.get_profile(i),  # the local user is an owner like any other
    ):
        same_as_missing(ana, call)
    for call in (
        lambda i: studio.sample_path(i, owner="bo"),
        lambda i: studio.update_sample_text(i, "changed", owner="bo"),
        lambda i: studio.delete_sample(i, owner="bo"),
    ):
        same_as_missing(sample.id, call)
    same_as_missing(ana, lambda i: studio.find_profile(i, owner="bo"))
    with pytest.raises(NotFound):
        studio.find_profile("Narrator", owner="carl")
    # nothing of ana's changed
    after = studio.get_profile(ana, owner="ana")
    assert after.description == "" and [s.reference_text for s in after.samples] == [WORDS]


def test_takes_history_and_stats_are_the_owners_alone(studio: Studio, espeak_wav: Path) -> None:
    ana = voice_of(studio, "ana", espeak_wav)
    voice_of(studio, "bo", espeak_wav)
    take = studio.generate(GenerationRequest(ana, "Ana's secret words."), owner="ana")
    assert take.owner == "ana"
    same_as_missing(ana, lambda i: studio.generate(GenerationRequest(i, "Borrowed voice."), owner="bo"))
    borrowed = "Borrowed voice."
    same_as_missing(ana, lambda i: studio.check_generation(GenerationRequest(i, borrowed), owner="bo"))
    same_as_missing(ana, lambda i: studio.start_generation(GenerationRequest(i, borrowed), owner="bo"))

    assert [r.id for r in studio.list_history(owner="ana")["items"]] == [take.id]
    for owner in ("bo", ""):
        assert studio.list_history(owner=owner) == {"items": [], "total": 0}
        assert studio.list_history("secret", owner=owner)["total"] == 0
        assert studio.list_history(profile_id=ana, owner=owner)["total"] == 0
        assert studio.history_stats(owner=owner) == {"count": 0, "total_seconds": 0.0, "per_profile": []}
    assert studio.history_stats(owner="ana")["count"] == 1
    for call in (
        lambda i: studio.get_generation(i, owner="bo"),
        lambda i: studio.generation_path(i, owner="bo"),
        lambda i: studio.generation_audio(i, "mp3", owner="bo"),
        lambda i: studio.retake_sentence(i, 0, owner="bo"),
        lambda i: studio.choose_take(i, 0, 0, owner="bo"),
        lambda i: studio.delete_generation(i, owner="bo"),
        lambda i: studio.get_generation(i),
    ):
        same_as_missing(take.id, call)
    same_as_missing(ana, lambda i: studio.score_clip(espeak_wav, WORDS, i, owner="bo"))

    again = studio.retake_sentence(take.id, 0, owner="ana")  # the owner still can
    assert len(again.chunks[0].takes) == 2 and again.owner == "ana"
    studio.delete_generation(take.id, owner="ana")
    assert studio.list_history(owner="ana")["total"] == 0


def test_files_live_in_the_owners_folder(studio: Studio, espeak_wav: Path) -> None:
    data = studio.settings.data_dir
    ana = voice_of(studio, "../../ana/..", espeak_wav)  # a name is never a path
    mine = voice_of(studio, "", espeak_wav)
    owned = data / folder("../../ana/..")
    assert owned.parent == data / "owners" and ".." not in owned.name and "/" not in owned.name
    sample = studio.sample_path(studio.list_samples(ana, owner="../../ana/..")[0].id, owner="../../ana/..")
    assert sample.is_relative_to(owned / "samples" / ana)
    take = studio.generate(GenerationRequest(ana, "Filed away."), owner="../../ana/..")
    path = studio.generation_path(take.id, owner="../../ana/..")
    assert path == owned / "generations" / f"{take.id}.wav"
    assert all(t.file.startswith(folder("../../ana/..")) for c in take.chunks for t in c.takes)
    # the local user keeps today's layout
    assert studio.sample_path(studio.list_samples(mine)[0].id).is_relative_to(data / "samples" / mine)
    local = studio.generate(GenerationRequest(mine, "Where it always was."))
    assert studio.generation_path(local.id) == data / "generations" / f"{local.id}.wav"
    # a record's file never resolves outside its owner's folder
    with pytest.raises(NotFound):
        studio.store.resolve_file(local.file, "../../ana/..")
    with pytest.raises(NotFound):
        studio.store.resolve_file(take.file, "")
    with pytest.raises(NotFound):
        studio.store.resolve_file(take.file, "bo")
    studio.delete_generation(take.id, owner="../../ana/..")
    assert not path.exists() and not (owned / "generations" / take.id).exists()
    studio.delete_profile(ana, owner="../../ana/..")
    assert not (owned / "samples" / ana).exists()


def test_records_from_before_owners_are_the_local_users(studio: Studio) -> None:
    record = {"id": new_id(), "name": "Old voice", "description": "", "language": "auto",
              "created_at": "2025-01-01T00:00:00+00:00", "updated_at": "2025-01-01T00:00:00+00:00"}
    with studio.store.locked():
        studio.store.profiles.insert(record)
    assert owner_of(record) == ""
    assert studio.get_profile(record["id"]).owner == ""
    assert [p.name for p in studio.list_profiles()["items"]] == ["Old voice"]
    same_as_missing(record["id"], lambda i: studio.get_profile(i, owner="ana"))
    with pytest.raises(Conflict):
        studio.create_profile("old voice")
    studio.create_profile("old voice", owner="ana")


def test_projects_exports_and_batches_are_the_owners_alone(studio: Studio, espeak_wav: Path) -> None:
    ana = voice_of(studio, "ana", espeak_wav, "Ana Voice")
    bo = voice_of(studio, "bo", espeak_wav, "Bo Voice")
    projects, renders, exports, batches = studio.projects, studio.renders, studio.exports, studio.batches
    same_as_missing(ana, lambda i: projects.create("Borrowed", voice=i, owner="bo"))
    with pytest.raises(NotFound):
        projects.create("Borrowed", voice="Ana Voice", owner="bo")
    book = projects.create("Ana's book", voice="Ana Voice", blocks=[{"text": "First block."}], owner="ana")
    assert book.owner == "ana" and book.voice == ana
    block = book.blocks[0].id
    mine = projects.create("Bo's book", voice=bo, blocks=[{"text": "Mine."}], owner="bo")
    same_as_missing(ana, lambda i: projects.add_block(mine.id, text="Hi.", voice=i, owner="bo"))
    same_as_missing(ana, lambda i: projects.update(mine.id, voice=i, owner="bo"))
    with pytest.raises(VoiceboxError, match="match no voice profile"):
        projects.import_file(b"Ana Voice: hello.", "dialogue", owner="bo")
    assert [p.id for p in projects.store.all("bo")] == [mine.id]
    assert [p.id for p in projects.store.all("")] == []

    renders.start(book.id, owner="ana")
    book = renders.wait(book.id, timeout=120)
    assert book.render.state == "done", book.render
    take = studio.get_generation(book.blocks[0].generation_id, owner="ana")
    assert take.owner == "ana" and take.file.startswith(folder("ana"))
    assert studio.list_history(owner="ana")["total"] == 0  # a project's take is not in History
    job = exports.start(book.id, "wav", owner="ana")
    assert exports.wait(book.id, job.id, owner="ana").state == "done"
    assert exports.file(book.id, job.id, owner="ana").is_relative_to(studio.settings.data_dir / folder("ana"))
    for call in (
        lambda i: projects.store.get(i, "bo"),
        lambda i: projects.update(i, title="Mine", owner="bo"),
        lambda i: projects.add_block(i, text="More.", owner="bo"),
        lambda i: projects.update_block(i, block, text="Changed.", owner="bo"),
        lambda i: projects.move_block(i, block, 0, owner="bo"),
        lambda i: projects.split_block(i, block, 3, owner="bo"),
        lambda i: projects.merge_with_next(i, block, owner="bo"),
        lambda i: projects.adopt_take_words(i, block, owner="bo"),
        lambda i: projects.delete_block(i, block, owner="bo"),
        lambda i: renders.start(i, owner="bo"),
        lambda i: renders.pause(i, owner="bo"),
        lambda i: renders.cancel(i, owner="bo"),
        lambda i: exports.start(i, "wav", owner="bo"),
        lambda i: projects.delete(i, owner="bo"),
    ):
        same_as_missing(book.id, call)
    for call in (
        lambda i: exports.get(book.id, i, owner="bo"),
        lambda i: exports.file(book.id, i, owner="bo"),
    ):
        same_as_missing(job.id, call)

    with pytest.raises(VoiceboxError, match="Item 1: no voice profile named 'Ana Voice'"):
        batches.start([{"text": "Hi.", "voice": "Ana Voice"}], owner="bo")
    batch = batches.start([{"text": "A line.", "voice": "Ana Voice"}], owner="ana")
    done = batches.wait(batch.id, 120, owner="ana")
    assert done.state == "done" and done.owner == "ana"
    assert batches.zip_path(batch.id, owner="ana").is_relative_to(studio.settings.data_dir / folder("ana"))
    for call in (
        lambda i: batches.get(i, owner="bo"),
        lambda i: batches.cancel(i, owner="bo"),
        lambda i: batches.zip_path(i, owner="bo"),
        lambda i: batches.get(i),
    ):
        same_as_missing(batch.id, call)
    assert studio.get_generation(done.items[0].generation_id, owner="ana").owner == "ana"
    # a restart finds every owner's batches again, still theirs
    again = make_studio(studio.settings.data_dir, studio.asr)
    assert again.batches.get(batch.id, owner="ana").zip_ready
    same_as_missing(batch.id, lambda i: again.batches.get(i, owner="bo"))
    assert again.projects.store.get(book.id, "ana").render.state == "done"
    projects.delete(book.id, owner="ana")
    same_as_missing(take.id, lambda i: studio.get_generation(i, owner="ana"))


def test_the_ledger_of_served_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """voicebox.ui.files: a temp folder handed to one owner is refused to others; unknown folders
    and byte-identical files follow Gradio's own rules; cleaned-away folders leave the ledger."""
    from voicebox.ui.files import ServedFiles, folder_key

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    ledger = ServedFiles()
    take = tmp_path / "copy" / "take.wav"
    take.parent.mkdir()
    take.write_bytes(b"RIFF ana's take")
    ledger.handed(take, "ana")
    from gradio.processing_utils import hash_file

    key = hash_file(take)  # the folder Gradio will copy it to
    assert ledger.allowed(key, "ana") and not ledger.allowed(key, "bo") and not ledger.allowed(key, "")
    same = tmp_path / "other" / "same.wav"
    same.parent.mkdir()
    same.write_bytes(take.read_bytes())
    ledger.handed(same, "bo")  # the very same bytes, made by bo too: his as well
    assert ledger.allowed(key, "bo")
    ledger.uploaded(tmp_path / "upload-folder" / "mine.wav", "ana")
    assert folder_key(tmp_path / "upload-folder" / "mine.wav") == "upload-folder"
    assert not ledger.allowed("upload-folder", "bo") and ledger.allowed("never-handed", "bo")
    assert folder_key("/etc/passwd") is None and ledger.allowed(None, "bo")
    ledger.PRUNE_EVERY, ledger.GRACE = 1, 0.0
    ledger.record("fresh", "ana")  # prunes: neither key's folder exists in the temp folder
    assert ledger.allowed(key, "carl") and ledger.allowed("upload-folder", "carl")
