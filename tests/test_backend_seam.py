"""The speech-backend seam: the studio, REST, the OpenAI route and the UI on a second backend.

:class:`tests.support.espeak_backend.EspeakBackend` speaks with espeak-ng through the same
:class:`~voicebox.speech.SpeechBackend` protocol as the Qwen3-TTS engine. Every flow here runs
unchanged on it, which proves that nothing above the protocol depends on Qwen3-TTS internals;
and because espeak's speech is intelligible, Whisper can check that a whole take says its text,
chunk by chunk, in the right order.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, Iterator

import jiwer
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from tests.support.espeak_backend import EspeakBackend
from voicebox import audio
from voicebox.api import create_api_app
from voicebox.config import Settings
from voicebox.records import GenerationRequest
from voicebox.services import Studio
from voicebox.speech import SpeechBackend
from voicebox.ui.common import TempAudio, UIContext
from voicebox.ui.generate import GenerateHandlers

#: Two sentences that do not fit one 250-character chunk together.
TEXT = (
    "The lighthouse keeper climbed the narrow stairs every evening, trimmed the wick, polished the "
    "great lens and lit the lamp just before the sun went down behind the hills. "
    "Because of his patient work, the fishing boats and the cargo ships passed safely through the "
    "rocky channel all winter long, even on the darkest and stormiest nights."
)


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


@pytest.fixture(scope="module")
def backend() -> EspeakBackend:
    return EspeakBackend()


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, backend: EspeakBackend, shared_asr: Any) -> Studio:
    settings = Settings(data_dir=tmp_path_factory.mktemp("seam") / "data", host="127.0.0.1", quality="off")
    return Studio(settings, tts=backend, asr=shared_asr)


@pytest.fixture(scope="module")
def client(studio: Studio) -> Iterator[TestClient]:
    with TestClient(create_api_app(studio, studio.settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def voice(client: TestClient, espeak_wav: Path) -> dict[str, Any]:
    profile = client.post("/profiles", json={"name": "Keeper", "language": "English"}).json()
    with espeak_wav.open("rb") as handle:
        added = client.post(f"/profiles/{profile['id']}/samples", files={"file": ("speech.wav", handle, "audio/wav")})
    assert added.status_code == 201, added.text
    return profile


def heard(studio: Studio, wav: bytes) -> str:
    speech = audio.load_mono(wav, audio.WHISPER_SAMPLE_RATE)
    return studio.asr.transcribe(speech, language="en").text


def test_the_second_backend_is_a_speech_backend(backend: EspeakBackend) -> None:
    assert isinstance(backend, SpeechBackend)


def test_rest_generation_speaks_every_chunk_in_order(client: TestClient, studio: Studio, voice: dict) -> None:
    response = client.post("/generate", json={"profile_id": voice["id"], "text": TEXT, "seed": 5})
    assert response.status_code == 201, response.text
    take = response.json()
    assert take["backend"] == "espeak-ng" and take["status"] == "ok" and take["seed"] == 5
    chunks = take["chunks"]
    assert [c["index"] for c in chunks] == [0, 1]
    assert chunks[0]["text"].startswith("The lighthouse") and chunks[1]["text"].startswith("Because of")
    assert chunks[0]["seed"] == 5 and chunks[1]["seed"] != 5  # each chunk records its own seed
    assert chunks[0]["offset"] == 0.0
    assert chunks[1]["offset"] == pytest.approx(chunks[0]["duration"] - 0.02, abs=0.002)  # after the crossfade
    assert chunks[1]["offset"] + chunks[1]["duration"] == pytest.approx(take["duration"], abs=0.002)
    wav = client.get(take["audio_url"]).content
    assert sf.info(io.BytesIO(wav)).samplerate == audio.MODEL_SAMPLE_RATE
    assert jiwer.wer(words(TEXT), words(heard(studio, wav))) < 0.35


def test_openai_stream_runs_as_a_studio_job(client: TestClient, studio: Studio, voice: dict) -> None:
    before = studio.list_history()["total"]
    body = {"model": "whatever-the-user-typed", "input": "Streaming through the seam.", "voice": "Keeper",
            "response_format": "pcm", "stream": True}
    with client.stream("POST", "/v1/audio/speech", json=body) as response:
        assert response.status_code == 200
        assert response.headers["x-voicebox-model"] == "0.6B"
        pcm = b"".join(response.iter_bytes())
    assert len(pcm) > audio.MODEL_SAMPLE_RATE  # more than half a second of 16-bit audio
    latest = studio.list_history(limit=1)["items"][0]
    assert studio.list_history()["total"] == before + 1 and latest.backend == "espeak-ng"
    assert latest.text == "Streaming through the seam."


def test_generate_tab_streams_and_saves_on_the_second_backend(
    studio: Studio, voice: dict, tmp_path: Path
) -> None:
    ctx = UIContext(studio, studio.settings, TempAudio(tmp_path / "copies"))
    request = type("Request", (), {"session_hash": "seam"})()
    updates = list(GenerateHandlers(ctx).generate(
        "", voice["id"], "One tab, any backend.", "profile", "0.6B", "Balanced", "9", 0.9, 50, 1.0, 1.05,
        request, lambda *a, **k: None,
    ))
    live = [u[0] for u in updates if isinstance(u[0], bytes)]
    assert live, "the live player got no audio"
    final = updates[-1]
    assert Path(final[1]).is_file() and "Saved to History" in final[3]
    assert "Chunks" in final[2] and ">1<" in final[2].replace(" ", "")


def test_service_job_reports_chunks_then_the_record(studio: Studio, voice: dict) -> None:
    from voicebox.jobs import JobAudio, JobChunk, JobDone, JobProgress

    job = studio.start_generation(GenerationRequest(voice["id"], TEXT, seed=3), stream=True)
    events = list(job.events())
    kinds = [type(e) for e in events]
    assert kinds[0] is JobProgress and kinds[-1] is JobDone
    chunks = [e.chunk for e in events if isinstance(e, JobChunk)]
    assert [c.index for c in chunks] == [0, 1]
    assert kinds.index(JobAudio) < kinds.index(JobChunk)  # audio plays before the chunk is recorded
    record = events[-1].generation
    placed = [(c.index, c.text, c.seed, c.offset, c.duration) for c in chunks]
    assert [(c.index, c.text, c.seed, c.offset, c.duration) for c in record.chunks] == placed
    assert [len(c.takes) for c in record.chunks] == [1, 1] and job.result() == record
