"""Splitting, merging and moving a project's blocks, through the service and REST, with real speech
(the espeak-ng backend): what was rendered stays only where its words still match, bad requests are
refused with a message that says what to do, and nothing stored is lost by a refusal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fastapi.testclient import TestClient

from tests.test_projects import make_studio, rendered, voiced
from voicebox.api import create_api_app
from voicebox.errors import InvalidInput, NotFound
from voicebox.services import Studio

TEXT = "The keeper climbed the stairs. He lit the lamp at dusk."


@pytest.fixture
def studio(tmp_path: Path, shared_asr: Any) -> Studio:
    return make_studio(tmp_path / "data", shared_asr)


def test_split_at_the_cursor_makes_two_blocks_to_render(studio: Studio, espeak_wav: Path) -> None:
    voice = voiced(studio, espeak_wav)
    project = studio.projects.create("Split", voice=voice, blocks=[
        {"text": TEXT, "pause": 1.5, "chapter": "One"}, {"text": "Ships passed."}])
    project = rendered(studio, project)
    old_take = project.blocks[0].generation_id
    at = TEXT.index("He lit")
    split = studio.projects.split_block(project.id, project.blocks[0].id, at)
    first, second, third = split.blocks
    assert (first.text, second.text) == ("The keeper climbed the stairs.", "He lit the lamp at dusk.")
    assert first.id == project.blocks[0].id and first.chapter == "One" and second.chapter == ""
    assert (first.pause, second.pause) == (0.6, 1.5)  # the pause followed the whole block: it follows its end
    assert (first.status, second.status, third.status) == ("stale", "new", "rendered")
    assert third.generation_id == project.blocks[1].generation_id
    with pytest.raises(NotFound):  # the old take said both parts: it is gone
        studio.get_generation(old_take)
    again = rendered(studio, split)
    assert [b.status for b in again.blocks] == ["rendered"] * 3


def test_split_refuses_a_cursor_at_either_end_and_keeps_the_block(studio: Studio, espeak_wav: Path) -> None:
    project = studio.projects.create("Split", voice=voiced(studio, espeak_wav), blocks=[{"text": TEXT}])
    block = project.blocks[0]
    for at in (0, len(TEXT), len(TEXT) + 9, -3, "x"):
        with pytest.raises(InvalidInput, match="Put the cursor"):
            studio.projects.split_block(project.id, block.id, at)
    assert studio.projects.store.get(project.id).blocks == (block,)


def test_split_takes_the_edited_text_from_the_editor(studio: Studio, espeak_wav: Path) -> None:
    project = studio.projects.create("Split", voice=voiced(studio, espeak_wav), blocks=[{"text": TEXT}])
    edited = "First part here. Second part there."
    split = studio.projects.split_block(project.id, project.blocks[0].id, edited.index("Second"), edited)
    assert [b.text for b in split.blocks] == ["First part here.", "Second part there."]


def test_merge_joins_a_block_with_the_next_and_refuses_what_cannot_be_one_block(studio: Studio, espeak_wav: Path) -> None:
    keeper = voiced(studio, espeak_wav)
    other = voiced(studio, espeak_wav, "Sailor")
    project = studio.projects.create("Merge", voice=keeper, blocks=[
        {"text": "One.", "chapter": "Start"}, {"text": "Two.", "pause": 2}, {"text": "Three.", "voice": other},
        {"text": "Four.", "voice": other, "chapter": "Later"}])
    project = rendered(studio, project)
    merged = studio.projects.merge_with_next(project.id, project.blocks[0].id)
    assert [b.text for b in merged.blocks] == ["One. Two.", "Three.", "Four."]
    assert merged.blocks[0].chapter == "Start" and merged.blocks[0].pause == 2.0 and merged.blocks[0].status == "stale"
    for gone in (project.blocks[0].generation_id, project.blocks[1].generation_id):
        with pytest.raises(NotFound):
            studio.get_generation(gone)
    with pytest.raises(InvalidInput, match="different voices"):
        studio.projects.merge_with_next(project.id, merged.blocks[0].id)
    with pytest.raises(InvalidInput, match="starts the chapter"):
        studio.projects.merge_with_next(project.id, merged.blocks[1].id)
    with pytest.raises(InvalidInput, match="last block"):
        studio.projects.merge_with_next(project.id, merged.blocks[2].id)
    assert studio.projects.store.get(project.id).blocks == merged.blocks  # refusals changed nothing


def test_a_sentence_re_made_with_new_words_becomes_the_blocks_text(studio: Studio, espeak_wav: Path) -> None:
    project = studio.projects.create("Words", voice=voiced(studio, espeak_wav), blocks=[{"text": TEXT}])
    block = rendered(studio, project).blocks[0]
    new_words = "The keeper climbed the old stairs. He lit the lamp at dusk."
    studio.retake_sentence(block.generation_id, 0, text=new_words, seed=7)  # a short block is one chunk
    after = studio.projects.adopt_take_words(project.id, block.id).blocks[0]
    assert after.text == new_words
    assert after.status == "rendered" and after.generation_id == block.generation_id


def test_split_and_merge_through_rest(studio: Studio, espeak_wav: Path) -> None:
    voice = voiced(studio, espeak_wav)
    with TestClient(create_api_app(studio, studio.settings)) as client:
        made = client.post("/projects", json={"title": "REST", "voice": voice, "blocks": [{"text": TEXT}]}).json()
        block = made["blocks"][0]["id"]
        url = f"/projects/{made['id']}/blocks/{block}"
        split = client.post(f"{url}/split", json={"at": TEXT.index("He lit")})
        assert split.status_code == 200, split.text
        assert [b["text"] for b in split.json()["blocks"]] == ["The keeper climbed the stairs.", "He lit the lamp at dusk."]
        refused = client.post(f"{url}/split", json={"at": 0})
        assert refused.status_code == 422 and "Put the cursor" in refused.json()["detail"]
        merged = client.post(f"{url}/merge")
        assert merged.status_code == 200 and [b["text"] for b in merged.json()["blocks"]] == [TEXT]
        assert client.post(f"{url}/merge").status_code == 422
        missing = client.post(f"/projects/{made['id']}/blocks/{'0' * 32}/merge")
        assert missing.status_code == 404 and "does not exist" in missing.json()["detail"]
        moved = client.post(f"{url}/split", json={"at": 4, "text": "One. Two."}).json()
        second = moved["blocks"][1]["id"]
        order = client.put(f"/projects/{made['id']}/blocks/{second}", json={"position": 0}).json()
        assert [b["text"] for b in order["blocks"]] == ["Two.", "One."]


def test_an_export_file_index_out_of_range_says_which_exist(studio: Studio, espeak_wav: Path) -> None:
    project = studio.projects.create("Index", voice=voiced(studio, espeak_wav), blocks=[{"text": "One."}])
    rendered(studio, project)
    with TestClient(create_api_app(studio, studio.settings)) as client:
        job = client.post(f"/projects/{project.id}/export", json={"format": "wav", "subtitles": "srt"}).json()
        studio.exports.wait(project.id, job["id"])
        url = f"/projects/{project.id}/export/{job['id']}/file"
        assert client.get(f"{url}?index=1").headers["content-type"].startswith("application/x-subrip")
        missing = client.get(f"{url}?index=5")
        assert missing.status_code == 404
        assert missing.json()["detail"] == "This export has 2 file(s): ask for index 0 to 1, not 5."
