"""Batch without a project, through REST with real speech (the espeak-ng backend): many lines in
two voices made in the background into a ZIP; a bad item refused with its number; cancel; a
malformed or unknown id answers 404; a finished batch is still downloadable after a restart.
"""

from __future__ import annotations

import io
import json
import threading
import time
import wave
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.espeak_backend import EspeakBackend
from tests.test_projects import make_studio, voiced
from voicebox.api import create_api_app
from voicebox.services import Studio

ITEMS = [
    {"text": "The keeper climbed the stairs.", "voice": "Keeper"},
    {"text": "Who goes there?", "voice": "Sailor", "seed": 7},
    {"text": "Only the night, and the sea.", "voice": "Keeper", "language": "English"},
]


@pytest.fixture
def studio(tmp_path: Path, shared_asr: Any, espeak_wav: Path) -> Studio:
    studio = make_studio(tmp_path / "data", shared_asr)
    voiced(studio, espeak_wav, "Keeper")
    voiced(studio, espeak_wav, "Sailor")
    return studio


def poll(client: TestClient, batch_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/batch/{batch_id}").json()
        if body["state"] != "running" or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_a_batch_of_two_voices_becomes_a_zip(studio: Studio) -> None:
    with TestClient(create_api_app(studio, studio.settings)) as client:
        started = client.post("/batch", json={"items": ITEMS, "quality": "off"})
        assert started.status_code == 202, started.text
        body = started.json()
        assert body["state"] == "running" and body["total"] == 3 and body["done"] == 0
        done = poll(client, body["id"])
        assert done["state"] == "done" and done["done"] == 3, done
        assert [i["status"] for i in done["items"]] == ["done"] * 3
        assert done["items"][1]["used_seed"] == 7
        download = client.get(f"/batch/{body['id']}/download")
        assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(download.content))
        names = archive.namelist()
        assert sorted(names) == ["001-the-keeper-climbed-the-stairs.wav", "002-who-goes-there.wav",
                                 "003-only-the-night-and-the-sea.wav", "batch.json"]
        for name in names[:-1]:
            with wave.open(io.BytesIO(archive.read(name))) as audio:
                assert audio.getnframes() / audio.getframerate() > 0.5
        summary = json.loads(archive.read("batch.json"))
        assert summary["state"] == "done" and [i["seed"] for i in summary["items"]][1] == 7
        ids = [i["generation_id"] for i in summary["items"]]
        voices = [studio.get_generation(g).profile_name for g in ids]
        assert voices == ["Keeper", "Sailor", "Keeper"]
    assert studio.list_history()["total"] == 0  # batch takes are not History's

    # a restart: the finished batch is still there, and its ZIP too
    again = Studio(studio.settings, tts=EspeakBackend(), asr=studio.asr)
    with TestClient(create_api_app(again, again.settings)) as client:
        assert client.get(f"/batch/{body['id']}").json()["state"] == "done"
        assert client.get(f"/batch/{body['id']}/download").content == download.content


def test_a_bad_item_is_refused_with_its_number_and_nothing_starts(studio: Studio) -> None:
    with TestClient(create_api_app(studio, studio.settings)) as client:
        bad = client.post("/batch", json={"items": [*ITEMS[:2], {"text": "Hello.", "voice": "Bob"}]})
        assert bad.status_code == 422 and bad.json()["detail"] == "Item 3: no voice profile named 'Bob'."
        empty = client.post("/batch", json={"items": [ITEMS[0], {"text": "  ", "voice": "Keeper"}]})
        assert empty.status_code == 422 and empty.json()["detail"].startswith("Item 2: ")
        assert client.post("/batch", json={"items": []}).status_code == 422
    assert studio.batches._batches == {}
    assert studio.tts.chunks_spoken == 0


class SlowBackend(EspeakBackend):
    """espeak-ng that holds each chunk until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def speak(self, request: Any, cancel: threading.Event | None = None) -> Any:
        while not self.gate.wait(0.05):
            if cancel is not None and cancel.is_set():
                break
        yield from super().speak(request, cancel)


def test_cancel_stops_a_running_batch(tmp_path: Path, shared_asr: Any, espeak_wav: Path) -> None:
    backend = SlowBackend()
    studio = make_studio(tmp_path / "data", shared_asr, backend)
    voiced(studio, espeak_wav, "Keeper")
    with TestClient(create_api_app(studio, studio.settings)) as client:
        body = client.post("/batch", json={"items": [{"text": f"Line {n}.", "voice": "Keeper"} for n in range(5)]}).json()
        refused = client.get(f"/batch/{body['id']}/download")
        assert refused.status_code == 409
        cancelled = client.delete(f"/batch/{body['id']}")
        assert cancelled.status_code == 200
        backend.gate.set()
        done = studio.batches.wait(body["id"], timeout=60)
        assert done.state == "cancelled" and done.done < 5
        assert {i.status for i in done.items if i.status != "done"} == {"cancelled"}
        assert client.get(f"/batch/{body['id']}").json()["state"] == "cancelled"


def test_unknown_and_malformed_batch_ids_answer_404(studio: Studio) -> None:
    with TestClient(create_api_app(studio, studio.settings)) as client:
        for bad in ("0" * 32, "nope", "..%2F..%2Fvoicebox.json"):
            for method, path in (("get", ""), ("get", "/download"), ("delete", "")):
                answer = client.request(method.upper(), f"/batch/{bad}{path}")
                assert answer.status_code == 404, (bad, path, answer.text)
                assert "does not exist" in answer.json()["detail"]
