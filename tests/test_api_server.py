"""The whole server on a real socket: uvicorn serving create_app (REST API + Gradio UI) on 127.0.0.1.

Covers what TestClient cannot: routes declared before Gradio's mount at ``/`` stay reachable,
Gradio's login guards the UI, ``example_usage.py`` runs its whole flow against the server, the
official ``openai`` SDK speaks and reports voicebox's error messages, ``/docs`` renders in
headless Chromium with every request to another host blocked, and parallel ``/generate``
requests from separate connections all succeed while the model is never entered twice at once.
The server is started with a login and a token, so every request here also proves the
credentials path.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import soundfile as sf

from tests.support.rest import check_offline_docs
from tests.support.studio import serve_app, studio_settings
from voicebox.config import Settings
from voicebox.services import Studio
from voicebox.store import Store

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "test-token-4d1f"
LOGIN = ("ada", "open sesame")
FOX = "The quick brown fox jumps over the lazy dog near the river bank."
FRAMES = 8
PARALLEL = 8


@dataclass
class Running:
    url: str
    studio: Studio
    settings: Settings

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300)

    def add_voice(self, name: str, wav: Path, language: str = "auto") -> dict[str, Any]:
        """A new profile with ``wav`` (espeak-ng's fox sentence) as its sample, transcript typed."""
        with self.client() as client:
            profile = client.post("/profiles", json={"name": name, "language": language}).json()
            with wav.open("rb") as handle:
                added = client.post(
                    f"/profiles/{profile['id']}/samples",
                    files={"file": ("fox.wav", handle)},
                    data={"reference_text": FOX},
                )
            assert added.status_code == 201, added.text
        return profile


@pytest.fixture(scope="module")
def server(
    tiny_checkpoint: Path,
    whisper_tiny_path: str,
    tmp_path_factory: pytest.TempPathFactory,
    shared_tts: Any,
    shared_asr: Any,
) -> Iterator[Running]:
    data = tmp_path_factory.mktemp("server") / "data"
    settings = studio_settings(data, tiny_checkpoint, whisper_tiny_path, FRAMES, auth=LOGIN, api_token=TOKEN)
    studio = Studio(settings, tts=shared_tts, asr=shared_asr)
    for url in serve_app(settings, studio):
        yield Running(url.rstrip("/"), studio, settings)


def run_example(server: Running, *args: str, cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    """``example_usage.py`` against the test server, as a user would start it."""
    command = [sys.executable, str(REPO / "example_usage.py"), "--base-url", server.url, *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_api_routes_are_not_hidden_by_gradio(server: Running) -> None:
    with server.client() as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and "tts_loaded" in health  # ours, not Gradio's
        check_offline_docs(client)  # Swagger UI's assets are served before Gradio's mount too
        spec = client.get("/openapi.json").json()
        assert "/v1/audio/speech" in spec["paths"] and "/generate" in spec["paths"]
        crafted = client.get("/profiles/..%2F..%2Fvoicebox.json")  # no route has that many segments
        assert (crafted.status_code, crafted.json()) == (
            404,
            {"detail": "Profile '../../voicebox.json' does not exist."},  # ours, not Gradio's "Not Found"
        )
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]  # Gradio serves the UI


def test_gradio_ui_requires_the_login(server: Running) -> None:
    with httpx.Client(base_url=server.url) as browser:
        assert browser.get("/config").status_code == 401
        assert browser.post("/login", data={"username": "ada", "password": "wrong"}).status_code >= 400
        assert browser.post("/login", data={"username": LOGIN[0], "password": LOGIN[1]}).status_code == 200
        assert browser.get("/config").status_code == 200  # the session cookie now opens the UI
        assert browser.get("/profiles").status_code == 401  # the API still wants Basic or the token


def test_example_usage_runs_the_whole_flow(server: Running, jfk_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    name = "Example run"
    result = run_example(
        server, "--sample", str(jfk_path), "--out", str(out), "--name", name, "--token", TOKEN,
        "--text", "Testing the example.", cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    for line in (
        "created profile 'Example run'",
        "ask not what your country",
        "generation ",
        "saved ",
        "streamed speech",
        "deleted 3 generation(s)",
        "All steps succeeded.",
    ):
        assert line.lower() in output.lower(), line
    assert sf.info(str(out / "generation.wav")).frames == FRAMES * 1920
    assert sf.info(str(out / "speech.wav")).frames == FRAMES * 1920
    assert (out / "generation.mp3").stat().st_size > 0
    assert (out / "stream.pcm").stat().st_size == FRAMES * 1920 * 2
    with server.client() as client:  # the example cleaned up after itself
        assert name not in [p["name"] for p in client.get("/profiles").json()["items"]]
        assert "Testing the example." not in [g["text"] for g in client.get("/history").json()["items"]]


def test_example_usage_reports_a_refused_login(server: Running, jfk_path: Path, tmp_path: Path) -> None:
    result = run_example(
        server, "--sample", str(jfk_path), "--out", str(tmp_path), "--token", "wrong-token",
        cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 1 and "401" in result.stderr and "Authentication required" in result.stderr


class EntrySpy:
    """Wraps the engine's code generation (the real one still runs) and records overlaps."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.active = 0
        self.max_active = 0
        self.calls = 0
        self._guard = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._guard:
            self.active += 1
            self.calls += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(0.05)  # widen the window in which a missing lock would show
            return self.real(*args, **kwargs)
        finally:
            with self._guard:
                self.active -= 1


def test_parallel_generate_requests_are_serialised(server: Running, espeak_wav: Path) -> None:
    profile = server.add_voice("Parallel voice", espeak_wav, "English")

    engine = server.studio.tts
    spy = EntrySpy(engine._generate_codes)
    engine._generate_codes = spy  # instance attribute shadows the method
    try:

        def generate(index: int) -> httpx.Response:
            with server.client() as own:  # one connection per request
                return own.post(
                    "/generate",
                    json={"profile_id": profile["id"], "text": f"Parallel take {index}.", "seed": index},
                )

        with ThreadPoolExecutor(PARALLEL) as pool:
            responses = list(pool.map(generate, range(PARALLEL)))
    finally:
        del engine._generate_codes

    assert [r.status_code for r in responses] == [201] * PARALLEL, [
        r.text for r in responses if r.status_code != 201
    ]
    records = [r.json() for r in responses]
    assert sorted(r["seed"] for r in records) == list(range(PARALLEL))
    assert len({r["id"] for r in records}) == PARALLEL
    assert spy.calls >= PARALLEL and spy.max_active == 1  # the model was never entered twice at once

    with server.client() as client:
        listed = client.get("/history", params={"profile_id": profile["id"], "limit": 100}).json()
        assert listed["total"] == PARALLEL
        for record in records:
            audio = client.get(record["audio_url"])
            assert audio.status_code == 200 and sf.info(io.BytesIO(audio.content)).frames == FRAMES * 1920

    raw = json.loads(server.settings.db_path.read_text())  # the file on disk is complete, valid JSON
    stored = {row["id"] for row in raw["generations"].values()}
    assert {r["id"] for r in records} <= stored
    reopened = Store(server.settings.data_dir)  # a fresh reader sees every record
    try:
        assert reopened.list_generations(profile_id=profile["id"], limit=None)[1] == PARALLEL
    finally:
        reopened.close()


def test_stream_stops_generating_when_the_client_goes_away(server: Running, espeak_wav: Path) -> None:
    from voicebox.engines.text_split import chunk_text
    from voicebox.engines.tts import CHUNK_MAX_CHARS

    text = " ".join(
        f"This is sentence number {i} of a long passage that a listener abandons early." for i in range(24)
    )
    chunks = len(chunk_text(text, CHUNK_MAX_CHARS))
    assert chunks >= 6
    profile = server.add_voice("Abandoned stream", espeak_wav)

    engine = server.studio.tts
    spy = EntrySpy(engine._generate_codes)
    engine._generate_codes = spy
    try:
        with server.client() as client:
            body = {"input": text, "voice": profile["id"], "response_format": "pcm", "stream": True}
            with client.stream("POST", "/v1/audio/speech", json=body) as response:
                assert response.status_code == 200
                first = next(response.iter_bytes())
                assert len(first) > 0
            # leaving the block closes the connection mid-stream
        assert server.studio.tts.lock.acquire(timeout=120)  # the stream thread let go of the model
        server.studio.tts.lock.release()
    finally:
        del engine._generate_codes
    assert spy.calls < chunks  # generation stopped early instead of finishing every chunk
    with server.client() as client:
        assert client.get("/history", params={"profile_id": profile["id"]}).json()["total"] == 0


def test_openai_sdk_speaks_and_shows_voicebox_errors(server: Running, espeak_wav: Path) -> None:
    """The official SDK: any model name works, and its exceptions carry voicebox's sentence."""
    import openai

    server.add_voice("SDK voice", espeak_wav, "English")
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0, timeout=300)
    spoken = sdk.audio.speech.with_raw_response.create(
        model="voicebox", voice="SDK voice", input="Hello from the SDK.", response_format="wav"
    )
    assert spoken.headers["x-voicebox-model"] == "0.6B"  # no model asked of this server: the small one
    assert sf.info(io.BytesIO(spoken.content)).frames == FRAMES * 1920

    with pytest.raises(openai.NotFoundError) as missing:
        sdk.audio.speech.create(model="tts-1", voice="Nobody", input="Hello.")
    assert "No voice profile named or with id 'Nobody'" in str(missing.value)
    assert missing.value.code == "not_found" and missing.value.type == "invalid_request_error"

    with pytest.raises(openai.UnprocessableEntityError) as invalid:
        sdk.audio.speech.create(model="tts-1", voice="SDK voice", input="Hello.", speed=9)
    assert "speed" in str(invalid.value) and invalid.value.param == "speed"

    stranger = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        stranger.audio.speech.create(model="tts-1", voice="SDK voice", input="Hello.")
    assert "Authentication required" in str(refused.value)


@pytest.mark.browser
def test_docs_render_offline_in_chromium(server: Running, tmp_path: Path) -> None:
    """Swagger UI lists the operations with every request to another host refused (as offline)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import expect, sync_playwright

    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
            context.route("**/*", only_this_server)
            page = context.new_page()
            page.goto(f"{server.url}/docs")
            operation = '.opblock-summary-path[data-path="{}"]'  # one operation's row in the list
            expect(page.locator(operation.format("/v1/audio/speech"))).to_be_visible(timeout=30_000)
            expect(page.locator(operation.format("/generate"))).to_be_visible()
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        finally:
            browser.close()
    assert elsewhere == []
