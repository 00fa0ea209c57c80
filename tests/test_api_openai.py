"""The OpenAI-compatible route, ``POST /v1/audio/speech``, through FastAPI's TestClient.

What an OpenAI client relies on: any model name is accepted (known names keep their size, the
``X-Voicebox-Model`` header says which size spoke), the formats and streaming work, and every
error, from validation to a crash, has OpenAI's body ``{"error": {message, type, param, code}}``
so the SDKs show voicebox's sentence; the other routes keep ``{"detail": ...}``. The real SDK is
exercised against a served app in ``test_api_server.py``. Models and data are real, as in
``test_api.py`` (a tiny random-weight checkpoint, 8 codec frames a take, tiny.en Whisper).
"""

from __future__ import annotations

import struct
import threading
from typing import Any, Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.support import rest
from tests.support.rest import SAMPLES, wav_frames
from voicebox.api import INTERNAL_ERROR, create_api_app, time_stretch, wav_stream_header
from voicebox.api.openai import next_audible
from voicebox.jobs import Job, JobAudio, JobDone
from voicebox.records import Generation
from voicebox.config import Settings
from voicebox.errors import ModelUnavailable
from voicebox.services import Studio

SPEECH = "/v1/audio/speech"
# this module's own studio, data directory, client and cloned voice
settings, studio, client, voice = rest.settings, rest.studio, rest.client, rest.voice


def speak(client: TestClient, **changes: Any) -> Any:
    body = {"model": "tts-1", "input": "Hello.", "voice": "JFK", "response_format": "wav", **changes}
    return client.post(SPEECH, json=body)


def openai_error(response: Any, status: int) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped error body, after checking its shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and set(body["error"]) == {"message", "type", "param", "code"}, body
    error = body["error"]
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    assert isinstance(error["message"], str) and error["message"]
    assert error["code"] is None or isinstance(error["code"], str)
    assert "Traceback" not in response.text
    return error


# ---- speech --------------------------------------------------------------------------------------
def test_openai_speech_formats_and_models(
    client: TestClient, voice: dict[str, Any], restores_tts_size: None
) -> None:
    wav = client.post(
        SPEECH, json={"model": "tts-1", "input": "Speech one.", "voice": "jfk", "response_format": "wav"}
    )
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    assert wav_frames(wav.content) == (SAMPLES, 24000, 1) and wav.headers["x-voicebox-model"] == "0.6B"
    saved = client.get(f"/history/{wav.headers['x-generation-id']}").json()
    assert saved["size"] == "0.6B" and saved["text"] == "Speech one."

    pcm = client.post(SPEECH, json={"input": "Speech two.", "voice": voice["id"], "response_format": "pcm"})
    assert pcm.headers["content-type"] == "audio/pcm" and len(pcm.content) == SAMPLES * 2

    default = client.post(SPEECH, json={"input": "Speech three.", "voice": "JFK", "model": "tts-1-hd"})
    assert (
        default.headers["content-type"] == "audio/mpeg" and wav_frames(default.content)[0] >= SAMPLES * 0.95
    )
    assert default.headers["x-voicebox-model"] == "1.7B"
    assert client.get(f"/history/{default.headers['x-generation-id']}").json()["size"] == "1.7B"

    for fmt in ("flac", "opus"):
        encoded = speak(client, input="Four.", response_format=fmt, model="0.6B")
        assert encoded.status_code == 200 and wav_frames(encoded.content)[0] > 0
    # a cloned voice cannot follow instructions: said, not silently dropped (built-in voices can)
    styled = speak(client, input="Four.", model="0.6B", instructions="whisper it")
    assert styled.status_code == 422 and "Cloned voices do not take style instructions" in styled.text


def test_any_model_name_is_accepted_and_uses_the_default_size(
    client: TestClient, voice: dict[str, Any], restores_tts_size: None
) -> None:
    """OpenAI clients send whatever the user typed; the header says which size spoke."""
    assert client.post("/models/unload", json={"model": "tts"}).status_code == 200
    for model in ("voicebox", "qwen3-tts", "whisper-1", ""):
        response = speak(client, model=model)
        assert response.status_code == 200, (model, response.text)
        assert response.headers["x-voicebox-model"] == "0.6B"  # nothing loaded: the small model
        assert client.get(f"/history/{response.headers['x-generation-id']}").json()["size"] == "0.6B"

    assert client.post("/models/load", json={"model": "tts", "size": "1.7B"}).status_code == 200
    kept = speak(client, model="voicebox")  # the default is the loaded size: no model switch
    assert kept.status_code == 200 and kept.headers["x-voicebox-model"] == "1.7B"
    body = {"input": "Hi.", "voice": "JFK", "model": "mine", "response_format": "pcm", "stream": True}
    with client.stream("POST", SPEECH, json=body) as stream:
        assert stream.status_code == 200 and stream.headers["x-voicebox-model"] == "1.7B"
        assert len(b"".join(stream.iter_bytes())) == SAMPLES * 2
    alias = speak(client, model="TTS-1")  # a known name keeps its size
    assert alias.status_code == 200 and alias.headers["x-voicebox-model"] == "0.6B"


def test_openai_speed_is_a_time_stretch(client: TestClient, voice: dict[str, Any]) -> None:
    fast = speak(client, input="Fast.", speed=2.0)
    assert fast.status_code == 200
    assert wav_frames(fast.content)[0] == pytest.approx(SAMPLES / 2, rel=0.05)


def test_time_stretch_keeps_pitch() -> None:
    rate = 24000
    tone = np.sin(2 * np.pi * 440 * np.arange(rate) / rate).astype(np.float32)
    stretched = time_stretch(tone, 2.0)
    assert len(stretched) == pytest.approx(rate / 2, rel=0.02)
    spectrum = np.abs(np.fft.rfft(stretched))
    assert np.fft.rfftfreq(len(stretched), 1 / rate)[spectrum.argmax()] == pytest.approx(440, abs=10)
    assert time_stretch(tone, 1.0) is tone


def test_openai_speech_streams_pcm_and_wav(client: TestClient, studio: Studio, voice: dict[str, Any]) -> None:
    before = client.get("/history").json()["total"]
    body = {"input": "Streamed pcm.", "voice": "JFK", "response_format": "pcm", "stream": True}
    with client.stream("POST", SPEECH, json=body) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "audio/pcm"
        assert response.headers["x-voicebox-model"] == "0.6B"
        pcm = b"".join(response.iter_bytes())
    assert len(pcm) == SAMPLES * 2

    wav = speak(client, input="Streamed wav.", stream=True)
    assert wav.status_code == 200 and wav.content[:44] == wav_stream_header()
    riff, riff_size, _, _, _, fmt, channels, rate, _, _, bits, data, data_size = struct.unpack(
        "<4sI4s4sIHHIIHH4sI", wav.content[:44]
    )
    assert (riff, fmt, channels, rate, bits, data) == (b"RIFF", 1, 1, 24000, 16, b"data")
    assert riff_size == data_size == 0xFFFFFFFF and len(wav.content) - 44 == SAMPLES * 2

    assert client.get("/history").json()["total"] == before + 2  # streamed takes are saved too
    assert studio.tts.lock.acquire(blocking=False)  # the stream thread released the model lock
    studio.tts.lock.release()


def test_stream_job_keeps_the_lock_on_its_own_thread() -> None:
    """A take holding an RLock across its events, read from other threads (as a server's worker
    pool reads the stream), must not break: the job's own thread takes and releases it."""
    lock = threading.RLock()
    record = Generation(id="x" * 32, profile_id="p", profile_name="P", text="t", file="f.wav", language="Auto",
                        model="m", size="0.6B", mode="icl", seed=1, duration=0.0)

    def holds_lock(cancel: threading.Event) -> Iterator[Any]:
        with lock:
            yield JobAudio(np.ones(4, np.float32))
            yield JobAudio(np.ones(2, np.float32))
            yield JobDone(record)

    job = Job(holds_lock)
    got: list[Any] = []
    for _ in range(3):  # each read from a fresh thread
        worker = threading.Thread(target=lambda: got.append(next_audible(job)))
        worker.start()
        worker.join()
    assert [type(e) for e in got] == [JobAudio, JobAudio, JobDone] and got[-1].generation == record
    assert job.result(5) == record
    assert lock.acquire(blocking=False)
    lock.release()


# ---- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "status", "words", "param"),
    [
        ({"voice": "Nobody"}, 404, "Nobody", None),
        ({"speed": 5}, 422, "speed", "speed"),
        ({"speed": 0.1}, 422, "speed", "speed"),
        ({"response_format": "aac"}, 422, "response_format", "response_format"),
        ({"voice": None}, 422, "voice", "voice"),
        ({"input": ""}, 422, "text", None),
        ({"stream": True, "response_format": "mp3"}, 422, "wav or pcm", None),
        ({"stream": True, "response_format": "pcm", "speed": 1.5}, 422, "speed other than 1.0", None),
        ({"stream": True, "response_format": "pcm", "voice": "Nobody"}, 404, "Nobody", None),
    ],
)
def test_openai_speech_errors(
    client: TestClient, voice: dict[str, Any], changes: dict, status: int, words: str, param: str | None
) -> None:
    error = openai_error(speak(client, **changes), status)
    assert words.lower() in error["message"].lower() and error["param"] == param
    assert error["code"] == {404: "not_found", 422: "invalid_value"}[status]


def test_missing_field_and_malformed_json(client: TestClient) -> None:
    missing = openai_error(client.post(SPEECH, json={"input": "Hello."}), 422)
    assert missing["message"] == "Invalid request: voice: Field required" and missing["param"] == "voice"
    broken = client.post(SPEECH, content=b"{not json", headers={"content-type": "application/json"})
    error = openai_error(broken, 422)
    assert error["message"].startswith("Invalid request") and error["param"] is None


def test_stream_that_fails_before_audio_gets_a_json_status(client: TestClient) -> None:
    """Studio's checks run lazily inside the generator; the API must surface them as a status."""
    client.post("/profiles", json={"name": "Silent stream"})
    response = speak(client, voice="Silent stream", response_format="pcm", stream=True)
    assert "no samples" in openai_error(response, 422)["message"]


def test_unauthenticated_speech_gets_an_openai_401(studio: Studio, settings: Settings) -> None:
    locked = TestClient(create_api_app(studio, settings.with_overrides(api_token="tok-7")))
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = locked.post(SPEECH, json={"input": "Hi.", "voice": "JFK"}, headers=headers)
        error = openai_error(response, 401)
        assert error["message"].startswith("Authentication required") and error["code"] == "invalid_api_key"
        assert response.headers["www-authenticate"].startswith("Bearer")
    other = locked.get("/profiles")
    assert other.status_code == 401 and list(other.json()) == ["detail"]


def test_oversized_speech_body_gets_an_openai_413(studio: Studio, settings: Settings) -> None:
    small = TestClient(create_api_app(studio, settings.with_overrides(max_upload_mb=0.01)))
    error = openai_error(small.post(SPEECH, json={"input": "x" * 200_000, "voice": "JFK"}), 413)
    assert "limit" in error["message"] and error["code"] == "payload_too_large"


def test_unavailable_model_gets_an_openai_503(
    client: TestClient, studio: Studio, voice: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: Any, **kwargs: Any) -> dict:
        raise ModelUnavailable("The 0.6B model is not downloaded and the machine is offline.")

    monkeypatch.setattr(studio, "generate", offline)
    error = openai_error(speak(client), 503)
    assert "offline" in error["message"] and error["code"] == "model_unavailable" and error["param"] is None


def test_crash_gets_an_openai_500_without_internals(
    client: TestClient, studio: Studio, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> dict:
        raise RuntimeError("secret detail /srv/private/voicebox.json")

    monkeypatch.setattr(studio, "find_profile", broken)
    response = speak(client)
    error = openai_error(response, 500)
    assert error["message"] == INTERNAL_ERROR and error["code"] == "internal_error"
    assert "secret" not in response.text and "/srv" not in response.text


def test_other_routes_keep_detail(client: TestClient) -> None:
    missing = client.get(f"/profiles/{'0' * 32}")
    assert missing.status_code == 404 and list(missing.json()) == ["detail"]
    invalid = client.post("/profiles", json={})
    assert invalid.status_code == 422 and set(invalid.json()) == {"detail", "errors"}
    assert invalid.json()["detail"] == "Invalid request: name: Field required"


def test_openapi_documents_both_error_shapes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    speech = paths[SPEECH]["post"]["responses"]
    for status in ("401", "404", "413", "422", "500", "503"):
        assert speech[status]["content"]["application/json"]["schema"]["$ref"].endswith("/OpenAIErrorBody")
    profile = paths["/profiles/{profile_id}"]["get"]["responses"]
    assert profile["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
