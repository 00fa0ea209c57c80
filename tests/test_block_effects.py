"""Effects on project blocks: kept with the block, applied to its take without a new render, used
by every later render and by the export (with the cues moved when the speed changes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from tests.test_projects import make_studio, rendered, voiced
from voicebox.api import create_api_app
from voicebox.errors import InvalidInput, NotFound
from voicebox.projects.block_effects import set_block_effect
from voicebox.projects.exporting import export_project
from voicebox.services import Studio
from voicebox.take_effects import played_file


def cue_of(srt: str, text: str) -> tuple[float, float]:
    """(start, end) seconds of the SRT cue that shows ``text``."""
    def seconds(stamp: str) -> float:
        h, m, rest = stamp.strip().split(":")
        return int(h) * 3600 + int(m) * 60 + float(rest.replace(",", "."))

    for cue in srt.strip().split("\n\n"):
        lines = cue.splitlines()
        if text in " ".join(lines[2:]):
            start, end = lines[1].split(" --> ")
            return seconds(start), seconds(end)
    raise AssertionError(f"no cue shows {text!r}:\n{srt}")


@pytest.fixture
def studio(tmp_path: Path, shared_asr: Any) -> Studio:
    return make_studio(tmp_path / "data", shared_asr)


def test_a_block_effect_changes_the_take_not_the_render(studio: Studio, espeak_wav: Path) -> None:
    voice = voiced(studio, espeak_wav)
    project = rendered(studio, studio.projects.create("Radio play", voice=voice, language="English", blocks=[
        {"text": "This is the news at nine."}, {"text": "And now, the weather."}]))
    first, second = project.blocks
    clean = studio.get_generation(first.generation_id)
    clean_bytes = studio.take_file(clean).read_bytes()

    changed = set_block_effect(studio, project.id, first.id, "telephone")
    block = changed.block(first.id)
    assert block.effects is not None and block.effects.preset == "telephone"
    assert block.status == "rendered" and block.generation_id == first.generation_id  # no new render
    take = studio.get_generation(first.generation_id)
    assert take.effects is not None and studio.take_file(take).read_bytes() == clean_bytes  # the clean take is kept
    assert not np.array_equal(sf.read(played_file(studio, take))[0], sf.read(studio.take_file(take))[0])

    # edited words: a new render, and the new take gets the block's effect too
    studio.projects.update_block(project.id, first.id, text="This is the news at ten.")
    again = rendered(studio, studio.projects.store.get(project.id))
    remade = studio.get_generation(again.block(first.id).generation_id)
    assert remade.id != take.id and remade.effects is not None and remade.effects.preset == "telephone"

    # a slower effect moves the export's cues with the audio
    slow = {"speed": 0.5}
    set_block_effect(studio, project.id, second.id, slow)
    files = export_project(studio.projects, project.id, "wav", "srt", "sentence")
    second_take = studio.get_generation(again.block(second.id).generation_id)
    assert second_take.effects is not None and second_take.effects.speed == 0.5
    start, end = cue_of(files[1].read_text(), "And now, the weather.")
    clean_seconds = second_take.chunks[0].duration
    assert end - start == pytest.approx(2 * clean_seconds, rel=0.05)  # the cue spans the slowed sentence

    removed = set_block_effect(studio, project.id, second.id, "none")
    assert removed.block(second.id).effects is None
    assert studio.get_generation(second_take.id).effects is None


def test_refusals_change_nothing(studio: Studio, espeak_wav: Path) -> None:
    voice = voiced(studio, espeak_wav)
    project = studio.projects.create("Unrendered", voice=voice, blocks=[{"text": "One line."}])
    block = project.blocks[0]
    with pytest.raises(InvalidInput, match="Unknown effect preset 'loud'"):
        set_block_effect(studio, project.id, block.id, "loud")
    with pytest.raises(NotFound):
        set_block_effect(studio, project.id, block.id, "radio", owner="someone-else")
    assert studio.projects.store.get(project.id).blocks[0].effects is None
    set_block_effect(studio, project.id, block.id, "radio")  # not rendered yet: kept for its first render
    assert studio.projects.store.get(project.id).blocks[0].effects.preset == "radio"


def test_rest_sets_a_block_effect(studio: Studio, espeak_wav: Path) -> None:
    voice = voiced(studio, espeak_wav)
    project = studio.projects.create("Over REST", voice=voice, blocks=[{"text": "One line."}])
    client = TestClient(create_api_app(studio, studio.settings))
    url = f"/projects/{project.id}/blocks/{project.blocks[0].id}/effects"
    answer = client.put(url, json={"effects": "megaphone"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["blocks"][0]["effects"]["preset"] == "megaphone"
    bad = client.put(url, json={"effects": "loud"})
    assert bad.status_code == 422 and "Unknown effect preset" in bad.json()["detail"]
