"""The REST API through FastAPI's TestClient: each endpoint's happy path and its errors.

Everything below the HTTP layer is real: the store, the audio pipeline, a tiny random-weight
Qwen3-TTS checkpoint (capped at 8 codec frames per take, so the audio is 0.64 s of noise with
real shapes) and the real tiny.en Whisper model. One Studio is shared by the module. The
OpenAI-compatible route has its own module, ``test_api_openai.py``.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from tests.support import rest
from tests.support.rest import SAMPLES, basic, check_offline_docs, wav_frames
from voicebox import __version__
from voicebox.api import EXAMPLE_ID, INTERNAL_ERROR, create_api_app
from voicebox.auth import check_credentials, gradio_auth
from voicebox.config import Settings
from voicebox.services import Studio

MISSING_ID = "0" * 32
# this module's own studio, data directory, client and cloned voice
settings, studio, client, voice = rest.settings, rest.studio, rest.client, rest.voice


# ---- system and docs -----------------------------------------------------------------------------
def test_health_reports_version_and_models(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["version"] == __version__
    assert isinstance(body["tts_loaded"], bool) and isinstance(body["whisper_loaded"], bool)
    assert body["device"] == "cpu" and body["auth_required"] is False
    assert body["engine"] == "torch" and body["engine_why"].startswith("auto: ")  # which engine speaks, and why


def test_openapi_describes_every_route_with_schemas(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operations = {(path, method) for path, item in spec["paths"].items() for method in item}
    expected = {
        ("/health", "get"),
        ("/profiles", "post"),
        ("/profiles", "get"),
        ("/profiles/{profile_id}", "get"),
        ("/profiles/{profile_id}", "put"),
        ("/profiles/{profile_id}", "delete"),
        ("/profiles/{profile_id}/samples", "post"),
        ("/profiles/{profile_id}/samples", "get"),
        ("/profiles/samples/{sample_id}", "delete"),
        ("/generate", "post"),
        ("/history", "get"),
        ("/history/stats", "get"),
        ("/history/{generation_id}", "get"),
        ("/history/{generation_id}", "delete"),
        ("/audio/{generation_id}", "get"),
        ("/transcribe", "post"),
        ("/models/load", "post"),
        ("/models/unload", "post"),
        ("/v1/audio/speech", "post"),
    }
    assert expected <= operations
    tags = {tag["name"] for tag in spec["tags"]}
    assert {"profiles", "samples", "generate", "history", "audio", "transcribe", "models", "openai"} <= tags
    for path, method in expected:
        assert set(spec["paths"][path][method]["tags"]) <= tags
    schemas = spec["components"]["schemas"]
    assert schemas["GenerateRequest"]["examples"][0]["profile_id"] == EXAMPLE_ID
    assert "audio_url" in schemas["Generation"]["properties"]
    assert schemas["SpeechRequest"]["properties"]["response_format"]["enum"] == [
        "wav",
        "flac",
        "mp3",
        "opus",
        "pcm",
    ]
    assert "detail" in schemas["ErrorBody"]["properties"]


def test_docs_page_and_its_assets_are_served_here(client: TestClient) -> None:
    """Swagger UI comes from this server, not a CDN, so /docs renders offline."""
    assert any(url.endswith("swagger-ui-bundle.js") for url in check_offline_docs(client))


# ---- profiles ------------------------------------------------------------------------------------
def test_profile_create_read_update_delete(client: TestClient, voice: dict[str, Any]) -> None:
    created = client.post("/profiles", json={"name": "Ada", "description": "calm"})
    assert created.status_code == 201
    profile = created.json()
    assert len(profile["id"]) == 32 and profile["language"] == "auto" and profile["description"] == "calm"

    fetched = client.get(f"/profiles/{profile['id']}").json()
    assert fetched["name"] == "Ada" and fetched["samples"] == []

    updated = client.put(f"/profiles/{profile['id']}", json={"description": "calmer"})
    assert updated.status_code == 200
    assert updated.json()["name"] == "Ada" and updated.json()["description"] == "calmer"  # partial update

    clash = client.put(f"/profiles/{profile['id']}", json={"name": "jfk"})
    assert clash.status_code == 409 and "already exists" in clash.json()["detail"]

    deleted = client.delete(f"/profiles/{profile['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(f"/profiles/{profile['id']}").status_code == 404
    assert client.delete(f"/profiles/{profile['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "  jfk "}, 409, "already exists"),  # duplicate names ignore case and spaces
        ({}, 422, "name: Field required"),
        ({"name": "X", "language": "Klingon"}, 422, "not supported"),
        ({"name": "X", "colour": "red"}, 422, "colour"),
        ({"name": ""}, 422, "name"),
        ({"name": 5}, 422, "name"),
    ],
)
def test_profile_create_errors(
    client: TestClient, voice: dict[str, Any], body: dict, status: int, words: str
) -> None:
    response = client.post("/profiles", json=body)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str) and words in response.json()["detail"]


def test_profile_list_search_and_pages(client: TestClient) -> None:
    for name in ("Page B", "Page A", "Page C"):
        assert client.post("/profiles", json={"name": name}).status_code == 201
    page = client.get("/profiles", params={"search": "page", "limit": 2, "offset": 1}).json()
    assert page["total"] == 3 and [p["name"] for p in page["items"]] == ["Page B", "Page C"]
    assert all(p["sample_count"] == 0 for p in page["items"])
    assert client.get("/profiles", params={"limit": 0}).status_code == 422
    assert client.get("/profiles", params={"offset": -1}).status_code == 422


@pytest.mark.parametrize(
    "bad_id",
    [
        "..%2F..%2Fvoicebox.json",
        "%2Fetc%2Fpasswd",
        "%2e%2e",
        "..%5C..%5Cvoicebox.json",
        "A" * 32,
        "g" * 32,
        "abc",
        "%00" + "a" * 31,
        MISSING_ID,  # well-formed but unknown: the answer every malformed id above must match
    ],
)
def test_ids_are_validated_and_never_reach_files(client: TestClient, settings: Settings, bad_id: str) -> None:
    """README: ids are 32 lowercase hex digits, anything else is a 404, with the same
    ``{"detail": ...}`` as an id that does not exist (encoded slashes included)."""
    shown = unquote(bad_id)  # the id as the server reads it from the URL
    requests = [
        ("GET", f"/profiles/{bad_id}", "Profile"),
        ("GET", f"/profiles/{bad_id}/samples", "Profile"),
        ("GET", f"/history/{bad_id}", "Generation"),
        ("GET", f"/audio/{bad_id}", "Generation"),
        ("GET", f"/profiles/samples/{bad_id}/audio", "Sample"),
        ("DELETE", f"/history/{bad_id}", "Generation"),
        ("DELETE", f"/profiles/{bad_id}", "Profile"),
        ("DELETE", f"/profiles/samples/{bad_id}", "Sample"),
        ("POST", f"/history/{bad_id}/chunks/0/retake", "Generation"),
        ("PUT", f"/history/{bad_id}/chunks/0", "Generation"),
    ]
    for method, url, what in requests:
        response = client.request(method, url, json={"take": 0} if method == "PUT" else None)
        assert (response.status_code, response.json()) == (404, {"detail": f"{what} {shown!r} does not exist."}), (
            method,
            url,
        )
    assert settings.db_path.is_file()  # nothing was deleted through a crafted id


# ---- samples -------------------------------------------------------------------------------------
def test_sample_upload_without_text_is_transcribed(client: TestClient, voice: dict[str, Any]) -> None:
    sample = voice["samples"][0]
    assert "ask not what your country can do for you" in sample["reference_text"].lower()
    assert "file" not in sample and 9 < sample["duration"] < 12.5
    audio = client.get(sample["audio_url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    frames, rate, channels = wav_frames(audio.content)
    assert (rate, channels) == (24000, 1) and frames == pytest.approx(sample["duration"] * 24000, rel=0.1)


def test_sample_with_text_list_and_delete(
    client: TestClient, voice: dict[str, Any], espeak_wav: Path
) -> None:
    text = "The quick brown fox jumps over the lazy dog near the river bank."
    with espeak_wav.open("rb") as handle:
        added = client.post(
            f"/profiles/{voice['id']}/samples",
            files={"file": ("fox.wav", handle, "audio/wav")},
            data={"reference_text": text},
        )
    assert added.status_code == 201 and added.json()["reference_text"] == text
    listed = client.get(f"/profiles/{voice['id']}/samples").json()
    assert [s["id"] for s in listed][-1] == added.json()["id"] and len(listed) == 2

    again = client.post(
        f"/profiles/{voice['id']}/samples", files={"file": ("fox.wav", espeak_wav.read_bytes())}
    )
    assert again.status_code == 409

    fixed = client.put(
        f"/profiles/samples/{added.json()['id']}", json={"reference_text": "The quick brown fox."}
    )
    assert fixed.status_code == 200 and fixed.json()["reference_text"] == "The quick brown fox."

    assert client.delete(f"/profiles/samples/{added.json()['id']}").status_code == 204
    assert [s["id"] for s in client.get(f"/profiles/{voice['id']}/samples").json()] == [
        voice["samples"][0]["id"]
    ]
    assert client.delete(f"/profiles/samples/{added.json()['id']}").status_code == 404


def test_sample_upload_errors(client: TestClient, voice: dict[str, Any]) -> None:
    url = f"/profiles/{voice['id']}/samples"
    not_audio = client.post(url, files={"file": ("notes.wav", b"this is not audio at all" * 50, "audio/wav")})
    assert not_audio.status_code == 415 and "audio" in not_audio.json()["detail"]
    empty = client.post(url, files={"file": ("empty.wav", b"", "audio/wav")})
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    missing = client.post(url, data={"reference_text": "no file"})
    assert missing.status_code == 422 and "file" in missing.json()["detail"]
    unknown = client.post(f"/profiles/{MISSING_ID}/samples", files={"file": ("a.wav", b"RIFF")})
    assert unknown.status_code == 404
    assert len(client.get(url).json()) == 1  # nothing was stored by the failures


def test_oversized_uploads_answer_413_before_decoding(
    studio: Studio, settings: Settings, voice: dict[str, Any], jfk_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = settings.with_overrides(max_upload_mb=0.01)  # 10 KiB
    calls: list[str] = []
    monkeypatch.setattr(studio, "add_sample", lambda *a, **k: calls.append("add_sample"))
    monkeypatch.setattr(studio, "transcribe", lambda *a, **k: calls.append("transcribe"))
    client = TestClient(create_api_app(studio, small))
    data = jfk_path.read_bytes()  # 1.1 MB
    big = client.post(f"/profiles/{voice['id']}/samples", files={"file": ("jfk.flac", data, "audio/flac")})
    assert big.status_code == 413 and "limit" in big.json()["detail"]
    assert client.post("/transcribe", files={"file": ("jfk.flac", data)}).status_code == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: the cap applies while the body arrives
        for _ in range(20):
            yield b"x" * 32768

    streamed = client.post(
        "/transcribe", content=chunked(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert streamed.status_code == 413
    assert calls == []  # nothing reached the service layer


def test_upload_just_over_the_limit_is_refused_by_the_studio(
    studio: Studio, settings: Settings, tmp_path: Path
) -> None:
    """A file inside the multipart slack still gets 413 from Studio's own size check."""
    small_settings = settings.with_overrides(data_dir=tmp_path / "data", max_upload_mb=0.01)
    small = Studio(small_settings, tts=studio.tts, asr=studio.asr)
    client = TestClient(create_api_app(small, small_settings))
    profile = client.post("/profiles", json={"name": "Small limit"}).json()
    response = client.post(f"/profiles/{profile['id']}/samples", files={"file": ("a.wav", b"\x00" * 20000)})
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert response.json()["detail"].startswith("The file is")  # Studio's words, not the route's cap
    assert client.get(f"/profiles/{profile['id']}/samples").json() == []


# ---- generation, history, audio ------------------------------------------------------------------
def test_generate_history_and_audio(client: TestClient, studio: Studio, voice: dict[str, Any]) -> None:
    first = client.post(
        "/generate",
        json={
            "profile_id": voice["id"],
            "text": "History test one.",
            "seed": 7,
            "preset": "Stable",
            "top_k": 5,
            "model_size": "0.6B",
        },
    )
    assert first.status_code == 201, first.text
    record = first.json()
    assert record["audio_url"] == f"/audio/{record['id']}" and "file" not in record
    assert set(record["timings"]) >= {"prompt", "generate", "decode", "total"}
    assert all(isinstance(v, float) and v >= 0 for v in record["timings"].values())
    assert isinstance(record["cache_hit"], bool) and record["seed"] == 7 and record["size"] == "0.6B"
    assert record["params"]["top_k"] == 5 and record["params"]["temperature"] == 0.6  # preset + override
    assert record["profile_name"] == "JFK" and record["language"] == "English"
    second = client.post("/generate", json={"profile_id": voice["id"], "text": "History test two."}).json()
    assert second["cache_hit"] is True  # the voice prompt is built once

    wav = client.get(record["audio_url"])
    assert wav.headers["content-type"] == "audio/wav" and wav_frames(wav.content) == (SAMPLES, 24000, 1)
    for fmt, mime in (("flac", "audio/flac"), ("ogg", "audio/ogg"), ("mp3", "audio/mpeg")):
        converted = client.get(record["audio_url"], params={"format": fmt})
        assert converted.status_code == 200 and converted.headers["content-type"] == mime
        assert wav_frames(converted.content)[0] >= SAMPLES * 0.95
    assert client.get(record["audio_url"], params={"format": "aiff"}).status_code == 422

    listed = client.get("/history", params={"search": "history test"}).json()
    assert listed["total"] == 2 and [r["id"] for r in listed["items"]] == [second["id"], record["id"]]
    assert all(r["audio_url"] == f"/audio/{r['id']}" for r in listed["items"])
    by_profile = client.get("/history", params={"profile_id": voice["id"], "limit": 1}).json()
    assert by_profile["total"] >= 2 and len(by_profile["items"]) == 1
    assert client.get("/history", params={"profile_id": MISSING_ID}).json() == {"items": [], "total": 0}
    stats = client.get("/history/stats").json()
    jfk = next(p for p in stats["per_profile"] if p["profile_id"] == voice["id"])
    assert stats["count"] >= 2 and jfk["count"] >= 2 and jfk["seconds"] == pytest.approx(0.64 * jfk["count"])
    assert client.get(f"/history/{record['id']}").json()["text"] == "History test one."

    audio_file = studio.generation_path(record["id"])
    assert client.delete(f"/history/{record['id']}").status_code == 204
    assert not audio_file.exists()  # the audio is gone with the record
    assert client.get(f"/history/{record['id']}").status_code == 404
    assert client.get(record["audio_url"]).status_code == 404
    assert client.delete(f"/history/{record['id']}").status_code == 404


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({"profile_id": MISSING_ID}, 404, "does not exist"),
        ({"text": "   "}, 422, "Type some text"),
        ({"text": "x" * 5001}, 422, "limit"),
        ({"temperature": 9}, 422, "temperature"),
        ({"top_p": 0}, 422, "top_p"),
        ({"seed": -1}, 422, "seed"),
        ({"model_size": "3B"}, 422, "model_size"),
        ({"preset": "Shouty"}, 422, "preset"),
        ({"language": "Klingon"}, 422, "not supported"),
        ({"speed": 2}, 422, "speed"),  # not a /generate field
        ({"text": 42}, 422, "text"),
    ],
)
def test_generate_errors(
    client: TestClient, voice: dict[str, Any], changes: dict, status: int, words: str
) -> None:
    body = {"profile_id": voice["id"], "text": "Hello.", **changes}
    response = client.post("/generate", json=body)
    assert response.status_code == status, response.text
    assert words.lower() in response.json()["detail"].lower()


def test_generate_for_a_profile_without_samples(client: TestClient) -> None:
    empty = client.post("/profiles", json={"name": "Empty voice"}).json()
    response = client.post("/generate", json={"profile_id": empty["id"], "text": "Hello."})
    assert response.status_code == 422 and "no samples" in response.json()["detail"]


def test_malformed_json_is_a_readable_422(client: TestClient) -> None:
    response = client.post("/generate", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("Invalid request") and "Traceback" not in response.text


def test_internal_errors_are_logged_not_shown(
    client: TestClient, studio: Studio, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**_: object) -> dict:
        raise RuntimeError("secret detail /srv/private")

    monkeypatch.setattr(studio, "history_stats", broken)
    with caplog.at_level(logging.ERROR, logger="voicebox.api"):
        response = client.get("/history/stats")
    assert response.status_code == 500 and response.json() == {"detail": INTERNAL_ERROR}
    assert "secret" not in response.text
    assert any("secret detail" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


# ---- transcription -------------------------------------------------------------------------------
def test_transcribe(client: TestClient, jfk_path: Path) -> None:
    with jfk_path.open("rb") as handle:
        response = client.post("/transcribe", files={"file": ("jfk.flac", handle)}, data={"language": "en"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "ask not what your country can do for you" in body["text"].lower()
    assert body["language"] == "en" and 10 < body["duration"] < 12
    assert body["segments"] and all(s["end"] > s["start"] >= 0 for s in body["segments"])


def test_transcribe_errors(client: TestClient, jfk_path: Path) -> None:
    assert client.post("/transcribe", files={"file": ("x.wav", b"not audio" * 100)}).status_code == 415
    assert client.post("/transcribe", files={"file": ("x.wav", b"")}).status_code == 422
    assert client.post("/transcribe", data={"language": "en"}).status_code == 422
    german = client.post(
        "/transcribe", files={"file": ("jfk.flac", jfk_path.read_bytes())}, data={"language": "de"}
    )
    assert german.status_code == 422 and "English" in german.json()["detail"]  # tiny.en is English-only


# ---- models --------------------------------------------------------------------------------------
def test_models_load_and_unload(client: TestClient) -> None:
    loaded = client.post("/models/load", json={"model": "whisper"})
    assert loaded.status_code == 200 and loaded.json()["whisper"]["loaded"] is True
    assert client.post("/models/unload", json={"model": "whisper"}).json()["whisper"]["loaded"] is False
    tts = client.post("/models/load", json={"model": "tts", "size": "0.6B"}).json()["tts"]
    assert tts["loaded"] is True and tts["size"] == "0.6B"
    assert client.get("/health").json()["tts_loaded"] is True
    assert client.post("/models/unload", json={"model": "tts"}).json()["tts"]["loaded"] is False
    assert client.get("/models").json()["tts"]["loaded"] is False
    assert client.post("/models/load", json={"model": "gpu"}).status_code == 422
    assert client.post("/models/load", json={"model": "tts", "size": "3B"}).status_code == 422
    assert client.post("/models/unload", json={}).status_code == 422


def test_missing_model_is_a_503(tmp_path: Path) -> None:
    bad = Settings(data_dir=tmp_path / "data", tts_model=str(tmp_path / "no-such-model"), device="cpu")
    client = TestClient(create_api_app(Studio(bad), bad))
    response = client.post("/models/load", json={"model": "tts"})
    assert response.status_code == 503 and "not a directory" in response.json()["detail"]


# ---- authentication ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def locked(studio: Studio, settings: Settings) -> TestClient:
    secured = settings.with_overrides(auth=("ada", "corrèct horse"), api_token="tok-123")
    return TestClient(create_api_app(studio, secured))


def test_auth_protects_every_api_route(locked: TestClient) -> None:
    spec = TestClient(locked.app).get("/openapi.json", headers=basic("ada", "corrèct horse")).json()
    for path, item in spec["paths"].items():
        if path == "/health":
            continue
        for method in item:
            url = path.replace("{profile_id}", EXAMPLE_ID).replace("{sample_id}", EXAMPLE_ID)
            url = url.replace("{generation_id}", EXAMPLE_ID)
            response = locked.request(method.upper(), url)
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (basic("ada", "wrong"), 401),
        (basic("bob", "corrèct horse"), 401),
        ({"Authorization": "Basic !!!not-base64"}, 401),
        ({"Authorization": "Basic " + base64.b64encode(b"ada").decode()}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        ({"Authorization": "Token tok-123"}, 401),
        (basic("ada", "corrèct horse"), 200),
        ({"Authorization": "Bearer tok-123"}, 200),
        ({"Authorization": "bearer tok-123"}, 200),
    ],
)
def test_auth_credentials(locked: TestClient, headers: dict[str, str], status: int) -> None:
    response = locked.get("/profiles", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["detail"].startswith("Authentication required")


def test_auth_checks_before_reading_uploads(locked: TestClient, voice: dict[str, Any]) -> None:
    response = locked.post(
        f"/profiles/{voice['id']}/samples",
        content=b"x" * 10,
        headers={"content-length": "999999999999", "content-type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 401


def test_health_and_docs_with_auth(locked: TestClient) -> None:
    anonymous = locked.get("/health")
    assert anonymous.status_code == 200
    assert anonymous.json() == {"status": "ok", "version": __version__, "auth_required": True}
    assert "tts_loaded" in locked.get("/health", headers={"Authorization": "Bearer tok-123"}).json()
    assert locked.get("/openapi.json").status_code == 401 and locked.get("/docs").status_code == 401
    assert locked.get("/docs/oauth2-redirect").status_code == 401
    check_offline_docs(locked, basic("ada", "corrèct horse"))  # the assets are public: no user data
    spec = locked.get("/openapi.json", headers=basic("ada", "corrèct horse")).json()
    schemes = {s["scheme"] for s in spec["components"]["securitySchemes"].values()}
    assert schemes == {"basic", "bearer"}


def test_token_only_challenges_with_bearer(studio: Studio, settings: Settings) -> None:
    client = TestClient(create_api_app(studio, settings.with_overrides(api_token="tok-9")))
    refused = client.get("/history", headers=basic("any", "thing"))
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/history", headers={"Authorization": "Bearer tok-9"}).status_code == 200


def test_check_credentials_and_gradio_login() -> None:
    open_settings = Settings()
    assert check_credentials(open_settings, None) is True
    assert gradio_auth(open_settings) is None
    secured = Settings(auth=("ada", "pässword"))
    assert check_credentials(secured, None) is False
    assert check_credentials(secured, "Basic " + base64.b64encode("ada:pässword".encode()).decode()) is True
    assert check_credentials(secured, "Basic " + base64.b64encode(b"ada:pa:ss").decode()) is False
    assert check_credentials(secured, "Bearer pässword") is False  # no token configured
    login = gradio_auth(secured)
    assert login is not None and login("ada", "pässword") is True and login("ada", "password") is False
