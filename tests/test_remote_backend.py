"""``VOICEBOX_BACKEND=remote`` through the speech seam and through the studio, against two fake
vLLM-Omni servers that speak with espeak-ng (``tests/support/fake_vllm_omni.py``): takes, streaming,
cancel, seeds and sampling on the wire, the runaway cap, the voice registry, load sharing,
failover, and status / ``/health`` listing the servers without the key."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.fake_vllm_omni import FakeVllmOmni, reference_sample
from voicebox.engines.params import GenerationParams, chunk_seed
from voicebox.errors import Cancelled, ModelUnavailable
from voicebox.remote.backend import RemoteBackend
from voicebox.speech import AudioPiece, ChunkResult, SpeechBackend, SpeechDone, SpeechRequest, batch_rows

KEY = "sk-remote-test-key"
SENTENCES = ("The lighthouse keeper climbed the stairs.", "He lit the lamp at dusk.", "Ships passed safely.")


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeVllmOmni, FakeVllmOmni]]:
    first, second = FakeVllmOmni(api_key=KEY), FakeVllmOmni(api_key=KEY)
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture()
def fakes(servers: tuple[FakeVllmOmni, FakeVllmOmni]) -> tuple[FakeVllmOmni, FakeVllmOmni]:
    for fake in servers:
        fake.reset()
    return servers


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory):
    return reference_sample(tmp_path_factory.mktemp("voice"))


def backend_on(*fakes: FakeVllmOmni, **options) -> RemoteBackend:
    return RemoteBackend([f.url for f in fakes], api_key=KEY, timeout=10, **options)


def request(voice, chunks=SENTENCES, seed=7, stream=False, **params) -> SpeechRequest:
    return SpeechRequest(tuple(chunks), (voice,), GenerationParams(seed=seed, **params), language="english",
                         stream=stream)


def test_a_take_through_the_protocol_carries_seeds_and_sampling(fakes, voice) -> None:
    first, _ = fakes
    backend = backend_on(first)
    assert isinstance(backend, SpeechBackend) and batch_rows(backend) == backend.rows_per_batch() == 4
    events = list(backend.speak(request(voice, temperature=0.7, top_k=30, top_p=0.9, repetition_penalty=1.2)))
    results = [e for e in events if isinstance(e, ChunkResult)]
    assert [r.index for r in results] == [0, 1, 2] and [r.text for r in results] == list(SENTENCES)
    assert [r.seed for r in results] == [chunk_seed(7, i) for i in range(3)]
    assert all(r.sample_rate == 24_000 and r.audio.size > 12_000 and not r.hit_cap for r in results)
    assert all(r.frames == -(-r.audio.size // 1920) for r in results)
    done = events[-1]
    assert isinstance(done, SpeechDone) and done.model.source == first.model and done.model.size == "0.6B"
    assert done.mode == "icl" and done.language == "English" and done.timings["total"] > 0
    bodies = sorted(first.bodies, key=lambda b: b["seed"] != 7)
    assert {b["seed"] for b in bodies} == {chunk_seed(7, i) for i in range(3)}
    for body in bodies:
        assert body["extra_params"] == {"temperature": 0.7, "top_k": 30, "top_p": 0.9, "repetition_penalty": 1.2}
        assert body["language"] == "English" and body["task_type"] == "Base" and body["model"] == first.model
        assert body["stream"] is True and body["stream_format"] == "sse" and body["response_format"] == "pcm"
        assert body["max_new_tokens"] == backend.cap(body["input"], GenerationParams()) - 1
    assert first.max_active > 1  # the chunks were in flight together
    assert set(first.seen_keys) == {f"Bearer {KEY}"}


def test_streaming_yields_pieces_before_each_chunk(fakes, voice) -> None:
    first, _ = fakes
    events = list(backend_on(first).speak(request(voice, stream=True, seed=11)))
    for result in (e for e in events if isinstance(e, ChunkResult)):
        position = events.index(result)
        pieces = [e for e in events[:position] if isinstance(e, AudioPiece) and e.index == result.index]
        assert pieces and np.array_equal(np.concatenate([p.audio for p in pieces]), result.audio)
    assert "first_audio" in events[-1].timings


def test_cancel_closes_the_stream(fakes, voice) -> None:
    first, _ = fakes
    first.piece_delay = 0.15
    cancel = threading.Event()
    long_text = "This sentence is long enough to be streamed to the studio in quite a few separate pieces of audio."
    speech = backend_on(first).speak(request(voice, chunks=(long_text,), stream=True), cancel)
    pieces = 0
    with pytest.raises(Cancelled):
        for event in speech:
            if isinstance(event, AudioPiece):
                pieces += 1
                cancel.set()
    assert pieces == 1
    deadline = time.monotonic() + 5
    while first.disconnects < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.disconnects == 1  # the server saw the client hang up mid-stream


def test_the_cap_flags_the_chunk_and_a_whole_take_makes_it_once_more(fakes, voice) -> None:
    first, _ = fakes
    text = ("A sentence far too long for ten frames of audio, which the server refuses to finish.",)
    backend = backend_on(first)
    (streamed,) = [e for e in backend.speak(request(voice, chunks=text, stream=True, max_new_tokens=10))
                   if isinstance(e, ChunkResult)]
    assert streamed.hit_cap and 0 < streamed.audio.size <= 9 * 1920 and streamed.seed == 7
    assert [b["max_new_tokens"] for b in first.bodies] == [9]
    first.reset()
    (whole,) = [e for e in backend.speak(request(voice, chunks=text, max_new_tokens=10)) if isinstance(e, ChunkResult)]
    assert [b["seed"] for b in first.bodies] == [chunk_seed(7, 0), chunk_seed(7, 0, 1)]  # the re-take seed
    assert whole.hit_cap and whole.seed == chunk_seed(7, 0, 1)


def test_a_voice_is_registered_once_per_server_and_again_when_its_samples_change(fakes, voice, tmp_path) -> None:
    first, second = fakes
    for fake in fakes:
        fake.voices.clear()
    backend = backend_on(first, second)
    assert backend.prepare_voice([voice]) is False  # built and uploaded now
    assert len(first.registrations) == len(second.registrations) == 1
    assert backend.prepare_voice([voice]) is True
    list(backend.speak(request(voice)))
    list(backend.speak(request(voice, seed=8)))
    assert len(first.registrations) == len(second.registrations) == 1
    name = first.registrations[0]
    assert all(b.get("voice") == name and "ref_audio" not in b for b in first.bodies + second.bodies)
    changed = reference_sample(tmp_path, "A different recording of the same person.", "changed.wav")
    list(backend.speak(request(changed, chunks=SENTENCES[:1])))
    assert changed.sha256 != voice.sha256 and sum(len(f.registrations) for f in fakes) == 3
    assert backend.forget_voices([voice.sha256]) == 1
    assert first.deletions == [name] and second.deletions == [name]
    assert backend.voice_cache_stats()["memory_entries"] == 1
    # voicebox restarted: a server that kept the voice is not sent it again (its name is its
    # content); the one server the one-sentence take did not reach gets it now
    (new,) = {n for f in fakes for n in f.registrations} - {name}
    assert backend_on(first, second).prepare_voice([changed]) is False
    assert [f.registrations.count(new) for f in fakes] == [1, 1]


def test_without_a_registry_the_reference_travels_inline(fakes, voice) -> None:
    first, _ = fakes
    first.registry = False
    list(backend_on(first).speak(request(voice, chunks=SENTENCES[:2])))
    assert not first.registrations
    for body in first.bodies:
        assert body["ref_audio"].startswith("data:audio/wav;base64,") and body["ref_text"] == voice.text
        assert "voice" not in body


def test_two_servers_share_the_load_and_a_failing_one_is_routed_around(fakes, voice) -> None:
    first, second = fakes
    backend = backend_on(first, second)
    list(backend.speak(request(voice, chunks=SENTENCES + ("One more.",))))
    assert first.bodies and second.bodies and len(first.bodies) + len(second.bodies) == 4
    first.reset(), second.reset()
    first.fail_next(5, 500)
    results = [e for e in backend.speak(request(voice, chunks=SENTENCES[:2])) if isinstance(e, ChunkResult)]
    assert len(results) == 2 and all(r.audio.size for r in results)
    states = {s["url"]: s for s in backend.status()["servers"]}
    assert states[first.url]["state"] == "down" and "HTTP 500" in states[first.url]["last_error"]
    assert states[second.url]["state"] == "up" and len(second.bodies) == 2


def test_status_and_health_list_the_servers_but_never_the_key(fakes, voice, tmp_path) -> None:
    from voicebox.config import Settings
    from voicebox.services import Studio

    first, second = fakes
    backend = backend_on(first, second)
    backend.load()
    status = backend.status()
    assert status["engine"] == "remote" and status["loaded"] and "2 vLLM-Omni servers" in status["why"]
    assert [s["url"] for s in status["servers"]] == [first.url, second.url]
    assert all(s["state"] == "up" and s["outstanding"] == 0 for s in status["servers"])
    studio = Studio(Settings(data_dir=tmp_path / "data", quality="off"), tts=backend, asr=_NoASR())
    health = studio.health()
    assert health["engine"] == "remote" and [s["url"] for s in health["servers"]] == [first.url, second.url]
    assert KEY not in json.dumps(status) + json.dumps(health, default=str)
    from voicebox.ui.models import tts_html

    card = tts_html(status)  # the Models tab: every server and its state
    assert first.url in card and second.url in card and "vLLM-Omni" in card and KEY not in card
    wrong = RemoteBackend([first.url], api_key="not-the-key", timeout=5)
    with pytest.raises(ModelUnavailable) as caught:
        wrong.load()
    assert "VOICEBOX_REMOTE_API_KEY" in caught.value.message and "not-the-key" not in caught.value.message


class _NoASR:
    """Whisper is not needed to check health."""

    def status(self) -> dict:
        return {"loaded": False}


@pytest.fixture(scope="module")
def studio_client(servers, tmp_path_factory: pytest.TempPathFactory, shared_asr):
    from fastapi.testclient import TestClient

    from voicebox.api import create_api_app
    from voicebox.config import Settings
    from voicebox.services import Studio

    settings = Settings.from_env({"VOICEBOX_DATA_DIR": str(tmp_path_factory.mktemp("remote") / "data"),
                                  "VOICEBOX_QUALITY": "off", "VOICEBOX_BACKEND": "remote",
                                  "VOICEBOX_REMOTE_URLS": ",".join(f.url for f in servers),
                                  "VOICEBOX_REMOTE_API_KEY": KEY, "VOICEBOX_REMOTE_TIMEOUT": "10"})
    studio = Studio(settings, asr=shared_asr)
    assert isinstance(studio.tts, RemoteBackend)
    with TestClient(create_api_app(studio, settings)) as client:
        yield studio, client


def test_the_studio_makes_and_saves_a_take_on_the_remote_backend(studio_client, fakes, espeak_wav: Path) -> None:
    import io

    import jiwer
    import soundfile as sf

    from voicebox import audio

    studio, client = studio_client
    profile = client.post("/profiles", json={"name": "Keeper", "language": "English"}).json()
    with espeak_wav.open("rb") as handle:
        added = client.post(f"/profiles/{profile['id']}/samples", files={"file": ("speech.wav", handle, "audio/wav")})
    assert added.status_code == 201, added.text
    text = "The lighthouse keeper lit the lamp. The ships passed safely through the channel."
    response = client.post("/generate", json={"profile_id": profile["id"], "text": text, "seed": 5})
    assert response.status_code == 201, response.text
    take = response.json()
    assert take["backend"] == "qwen3-tts-remote" and take["status"] == "ok" and take["seed"] == 5
    assert take["chunks"][0]["seed"] == 5
    wav = client.get(take["audio_url"]).content
    assert sf.info(io.BytesIO(wav)).samplerate == audio.MODEL_SAMPLE_RATE
    heard = studio.asr.transcribe(audio.load_mono(wav, audio.WHISPER_SAMPLE_RATE), language="en").text
    assert jiwer.wer(text.lower().replace(".", ""), heard.lower().replace(".", "").replace(",", "")) < 0.4
    health = client.get("/health").json()
    assert len(health["servers"]) == 2 and KEY not in json.dumps(health)
