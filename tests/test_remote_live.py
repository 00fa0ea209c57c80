"""The remote backend against a real vLLM-Omni server (skipped unless ``VOICEBOX_REMOTE_TEST_URL``).

Run on a GPU machine by the deployment script: ``VOICEBOX_REMOTE_TEST_URL=http://127.0.0.1:8091``
(``VOICEBOX_REMOTE_TEST_KEY`` if the server has ``--api-key``). The checkpoint may have random
weights, whose audio is noise that may never reach the end token, so these tests check the protocol
(a take, a streamed take, the voice registry), not what is said: a chunk either ends by itself or is
flagged ``hit_cap`` with the audio made up to its cap.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from voicebox.engines.params import GenerationParams, chunk_seed
from voicebox.speech import AudioPiece, ChunkResult, SpeechDone, SpeechRequest

URL = os.environ.get("VOICEBOX_REMOTE_TEST_URL", "").strip()
KEY = os.environ.get("VOICEBOX_REMOTE_TEST_KEY") or None
pytestmark = pytest.mark.skipif(not URL, reason="VOICEBOX_REMOTE_TEST_URL is not set (needs a vLLM-Omni server)")
CHUNKS = ("The lighthouse keeper climbed the stairs.", "He lit the lamp at dusk.")


@pytest.fixture(scope="module")
def backend() -> Iterator:
    from voicebox.remote.backend import RemoteBackend

    remote = RemoteBackend([URL], api_key=KEY, timeout=300)
    remote.load()
    yield remote
    remote.clear_voices()


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory):
    from tests.support.fake_vllm_omni import reference_sample

    return reference_sample(tmp_path_factory.mktemp("live"))


def speech(voice, stream: bool, seed: int = 3) -> SpeechRequest:
    return SpeechRequest(CHUNKS, (voice,), GenerationParams(seed=seed, max_new_tokens=48), language="english",
                         stream=stream)


def test_one_take(backend, voice) -> None:
    events = list(backend.speak(speech(voice, stream=False)))
    results = [e for e in events if isinstance(e, ChunkResult)]
    assert [r.index for r in results] == [0, 1]
    for result in results:
        assert result.sample_rate == 24_000 and result.audio.dtype == np.float32 and result.audio.size > 0
        assert result.frames <= 47 and (result.hit_cap or result.frames < 47)
        assert result.seed in (chunk_seed(3, result.index), chunk_seed(3, result.index, 1))
    assert isinstance(events[-1], SpeechDone) and events[-1].model.source
    assert backend.status()["servers"][0]["state"] == "up"


def test_one_streamed_take(backend, voice) -> None:
    events = list(backend.speak(speech(voice, stream=True, seed=4)))
    for result in (e for e in events if isinstance(e, ChunkResult)):
        pieces = [e.audio for e in events[:events.index(result)] if isinstance(e, AudioPiece) and e.index == result.index]
        assert pieces and np.array_equal(np.concatenate(pieces), result.audio)
    assert "first_audio" in events[-1].timings


def test_the_voice_registry(backend, voice) -> None:
    backend.prepare_voice([voice])
    server = backend.router.servers[0]
    ref, _ = backend.voices.reference([voice])
    listed = httpx.get(f"{URL}/v1/audio/voices", headers=backend.router.headers, timeout=30).json()
    names = {v["name"] for v in listed.get("uploaded_voices", [])}
    if server.registry:  # a server with several API processes has none: the voice travels inline
        assert ref.name in names
        assert backend.prepare_voice([voice]) is True  # registered once
        backend.forget_voices([voice.sha256])
        listed = httpx.get(f"{URL}/v1/audio/voices", headers=backend.router.headers, timeout=30).json()
        assert ref.name not in {v["name"] for v in listed.get("uploaded_voices", [])}
    else:
        assert ref.name not in names
