"""Deployment hardening: logins for UI and API, no data-dir file serving, Spaces mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.rest import basic
from tests.support.studio import studio_settings
from voicebox.server import create_app
from voicebox.records import GenerationRequest
from voicebox.services import Studio


@pytest.fixture(scope="module")
def secured(
    tiny_checkpoint: Path,
    whisper_tiny_path: str,
    tmp_path_factory: pytest.TempPathFactory,
    shared_tts: Any,
    shared_asr: Any,
):
    data = tmp_path_factory.mktemp("secure") / "data"
    settings = studio_settings(data, tiny_checkpoint, whisper_tiny_path, auth=("alice", "s3cret-pass"))
    studio = Studio(settings, tts=shared_tts, asr=shared_asr)
    app = create_app(settings, studio)
    with TestClient(app) as client:
        yield client, studio


def test_api_rejects_anonymous_and_wrong_password(secured) -> None:
    client, _ = secured
    assert client.get("/profiles").status_code == 401
    assert client.get("/profiles", headers=basic("alice", "wrong")).status_code == 401
    assert client.get("/profiles", headers=basic("mallory", "s3cret-pass")).status_code == 401
    ok = client.get("/profiles", headers=basic("alice", "s3cret-pass"))
    assert ok.status_code == 200 and ok.json()["total"] == 0


def test_ui_requires_login(secured) -> None:
    client, _ = secured
    client.cookies.clear()
    assert client.get("/config").status_code == 401
    wrong = client.post("/login", data={"username": "alice", "password": "nope"})
    assert wrong.status_code >= 400
    assert client.get("/config").status_code == 401
    right = client.post("/login", data={"username": "alice", "password": "s3cret-pass"})
    assert right.status_code == 200
    assert client.get("/config").status_code == 200
    client.cookies.clear()


def test_monitoring_dashboard_is_not_served(secured) -> None:
    client, _ = secured
    client.post("/login", data={"username": "alice", "password": "s3cret-pass"})
    for url in ("/monitoring", "/monitoring/summary"):  # Gradio's dashboard link and its data
        response = client.get(url)
        assert (response.status_code, response.json()) == (403, {"detail": "Monitoring is not enabled."}), url
    client.cookies.clear()


def test_data_dir_files_are_never_served(secured) -> None:
    client, studio = secured
    client.post("/login", data={"username": "alice", "password": "s3cret-pass"})
    db = studio.store.db_path.resolve()
    assert db.exists()
    for url in (f"/gradio_api/file={db}", f"/file={db}", f"/gradio_api/file={studio.settings.data_dir.resolve()}/voicebox.json"):
        response = client.get(url)
        assert response.status_code in (403, 404), url
        assert "schema_version" not in response.text
    client.cookies.clear()


def test_gradio_temp_dir_is_private(secured) -> None:
    temp = Path(os.environ["GRADIO_TEMP_DIR"])
    assert temp.is_dir() and stat.S_IMODE(temp.stat().st_mode) == 0o700


def test_spaces_mode_builds_the_app_with_the_gpu_wrapper(
    tiny_checkpoint: Path, whisper_tiny_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jfk_path: Path
) -> None:
    from voicebox import hf_spaces

    monkeypatch.setenv("SPACE_ID", "someone/voicebox")
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.setenv("VOICEBOX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VOICEBOX_TTS_MODEL", str(tiny_checkpoint))
    monkeypatch.setenv("VOICEBOX_WHISPER_MODEL", whisper_tiny_path)
    monkeypatch.setenv("VOICEBOX_DEVICE", "cpu")
    monkeypatch.setenv("VOICEBOX_MAX_FRAMES", "6")
    monkeypatch.setenv("VOICEBOX_QUALITY", "off")  # the tiny model speaks noise; the gate has its own tests
    assert hf_spaces.on_spaces()
    demo, launch_kwargs, studio = hf_spaces.build_spaces_app()
    assert studio.gpu_backend == "spaces"  # the real `spaces` package wraps the GPU functions
    assert isinstance(studio.tts, hf_spaces.ZeroGPUBackend) and studio.tts._speak.__name__ == "_speak"
    assert studio.model_sizes() == ["0.6B"]  # CPU Space: the small model only
    assert not studio.designer.available and studio.speakers.source == "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice"
    assert not studio.speakers.takes_style  # the small CustomVoice model: built-in voices without styles
    assert hf_spaces.CPU_NOTICE in studio.notices
    assert launch_kwargs["show_error"] is False and launch_kwargs["server_name"] == "0.0.0.0"
    assert str((tmp_path / "data").resolve()) in launch_kwargs["blocked_paths"]
    from voicebox.ui.files import FileGuard
    from voicebox.ui.mcp_guard import McpGuard

    # each person's temp files for them only, on a Space too (Gradio gets the guard as app middleware),
    # and the MCP server behind account credentials (tests/test_mcp.py)
    assert [m.cls for m in launch_kwargs["app_kwargs"]["middleware"]] == [FileGuard, McpGuard]
    assert launch_kwargs["mcp_server"] is True
    profile = studio.create_profile("Space voice")
    studio.add_sample(profile.id, jfk_path, "And so, my fellow Americans.")
    record = studio.generate(GenerationRequest(profile.id, "Hello from a Space.", seed=1))  # through the GPU wrapper
    assert record.duration == pytest.approx(6 * 1920 / 24000)
    assert hf_spaces.gpu_duration("x" * 100) < hf_spaces.gpu_duration("x" * 2000) <= hf_spaces.GPU_MAX_SECONDS
