"""Helpers for the REST API tests: credentials headers, audio inspection, a cloned voice."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import soundfile as sf
from fastapi.testclient import TestClient


def basic(user: str, password: str) -> dict[str, str]:
    """An HTTP Basic ``Authorization`` header."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def wav_frames(data: bytes) -> tuple[int, int, int]:
    """(frames, sample rate, channels) of encoded audio."""
    info = sf.info(io.BytesIO(data))
    return info.frames, info.samplerate, info.channels


def create_voice(client: TestClient, jfk_path: Path, name: str = "JFK") -> dict[str, Any]:
    """Profile ``name`` with jfk.flac uploaded without a transcript (Whisper fills it in)."""
    created = client.post(
        "/profiles", json={"name": name, "description": "public domain", "language": "English"}
    )
    assert created.status_code == 201, created.text
    with jfk_path.open("rb") as handle:
        upload = client.post(
            f"/profiles/{created.json()['id']}/samples", files={"file": ("jfk.flac", handle, "audio/flac")}
        )
    assert upload.status_code == 201, upload.text
    return client.get(f"/profiles/{created.json()['id']}").json()
