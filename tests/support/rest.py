"""Helpers for the REST API tests: the module-scoped studio and client, credentials headers,
audio inspection, a cloned voice, and the offline check of the ``/docs`` page.

A test module takes the fixtures as its own names (``client = rest.client``...); being
module-scoped, each such module then has its own Studio, data directory and client, over the
session's shared engines (``shared_tts``, ``shared_asr`` in ``tests/conftest.py``).
"""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from tests.support.studio import studio_settings
from voicebox.api import create_api_app
from voicebox.config import Settings
from voicebox.services import Studio

FRAMES = 8
SAMPLES = FRAMES * 1920  # samples per take at 24 kHz


@pytest.fixture(scope="module")
def settings(
    tiny_checkpoint: Path, whisper_tiny_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """The tiny checkpoint for both sizes, capped at ``FRAMES`` codec frames (0.64 s) a take."""
    data = tmp_path_factory.mktemp("api") / "data"
    return studio_settings(data, tiny_checkpoint, whisper_tiny_path, FRAMES)


@pytest.fixture(scope="module")
def studio(settings: Settings, shared_tts: Any, shared_asr: Any) -> Studio:
    return Studio(settings, tts=shared_tts, asr=shared_asr)


@pytest.fixture(scope="module")
def client(studio: Studio, settings: Settings) -> Iterator[TestClient]:
    """The REST API alone (``create_api_app``) through FastAPI's TestClient."""
    with TestClient(create_api_app(studio, settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def voice(client: TestClient, jfk_path: Path) -> dict[str, Any]:
    return create_voice(client, jfk_path)


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
        "/profiles", json={"name": name, "description": "public domain", "language": "English", "consent": True}
    )
    assert created.status_code == 201, created.text
    with jfk_path.open("rb") as handle:
        upload = client.post(
            f"/profiles/{created.json()['id']}/samples", files={"file": ("jfk.flac", handle, "audio/flac")}
        )
    assert upload.status_code == 201, upload.text
    return client.get(f"/profiles/{created.json()['id']}").json()


class _AssetLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def check_offline_docs(client: TestClient | httpx.Client, headers: dict[str, str] | None = None) -> list[str]:
    """Fetch ``/docs`` (with ``headers``) and every script, stylesheet and icon it names (without:
    they are public); all must be served here.

    Returns the asset paths. Fails on any absolute URL (a CDN would leave the page blank offline).
    """
    page = client.get("/docs", headers=headers)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"], page.text
    assert re.search(r"https?://|(?<![:\w])//\w", page.text) is None, page.text  # nothing off this host
    links = _AssetLinks()
    links.feed(page.text)
    assert len(links.urls) >= 3, links.urls  # stylesheet, icon, Swagger UI's bundle
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in links.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        kind = kinds[Path(url).suffix]
        assert asset.status_code == 200 and kind in asset.headers["content-type"], (url, asset.status_code)
        assert len(asset.content) > 1000, url
    bundle = next(url for url in links.urls if url.endswith(".js"))
    assert b"SwaggerUIBundle" in client.get(bundle).content
    return links.urls
