"""The remote backend's router: least-loaded choice, a failing server out and back in after its
back-off, timeouts as clear errors - against fake vLLM-Omni servers (``tests/support``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.support.fake_vllm_omni import FakeVllmOmni
from voicebox.errors import ModelUnavailable
from voicebox.remote.router import DOWN, UP, Router, clean, model_size


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def closed_port_url() -> str:
    """A URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVllmOmni]:
    server = FakeVllmOmni()
    yield server
    server.stop()


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=2.0) as c:
        yield c


def test_least_outstanding_requests_then_round_robin(client: httpx.Client) -> None:
    router = Router(["http://a:1", "http://b:1", "http://c:1"], client)
    first, second, third = (router.acquire() for _ in range(3))
    assert {first.index, second.index, third.index} == {0, 1, 2}  # each takes one before any takes two
    router.release(second)
    assert router.acquire() is second  # the only one with nothing in flight
    for server in (first, second, third, second):
        router.release(server)
    # all idle: one request at a time still spreads over the servers
    order = []
    for _ in range(6):
        server = router.acquire()
        order.append(server.index)
        router.release(server)
    assert sorted(order) == [0, 0, 1, 1, 2, 2] and order[:3] != order[3:4] * 3
    assert [s["requests"] for s in router.snapshot()] == [3, 4, 3]


def test_a_failing_server_is_taken_out_and_back_in_after_its_back_off(fake: FakeVllmOmni,
                                                                       client: httpx.Client) -> None:
    fake.reset()
    clock = Clock()
    router = Router([fake.url, "http://b:1"], client, backoff=2.0, max_backoff=60.0, clock=clock)
    router.fail(router.servers[0], "HTTP 500: engine failure")
    state = router.snapshot()[0]
    assert state["state"] == DOWN and state["last_error"] == "HTTP 500: engine failure" and state["retry_in"] == 2.0
    assert all(router.acquire().index == 1 for _ in range(3))  # out while its back-off runs
    fake.healthy = False
    clock.now += 2.5  # back-off over: probed, still unhealthy, out again for longer
    assert router.acquire().index == 1
    assert router.servers[0].state == DOWN and router.snapshot()[0]["retry_in"] == 4.0
    assert "503" in router.servers[0].last_error
    fake.healthy = True
    clock.now += 4.5
    for server in router.servers:
        server.outstanding = 0
    chosen = {router.acquire().index for _ in range(2)}
    assert chosen == {0, 1} and router.servers[0].state == UP and router.servers[0].failures == 0
    assert router.servers[0].model == fake.model and router.servers[0].size == "0.6B"


def test_an_unreachable_server_is_down_after_a_check_and_the_error_says_what_to_do(client: httpx.Client) -> None:
    dead = closed_port_url()
    router = Router([dead, closed_port_url()], client, health_timeout=1.0)
    assert router.check_all() == 0
    assert all(s["state"] == DOWN and "cannot connect" in s["last_error"] for s in router.snapshot())
    with pytest.raises(ModelUnavailable) as caught:
        router.acquire()
    message = caught.value.message
    assert "None of the 2 speech servers answers" in message and "VOICEBOX_REMOTE_URLS" in message
    assert "Traceback" not in message


def test_a_wrong_key_takes_the_server_out_with_a_message_that_names_the_setting() -> None:
    guarded = FakeVllmOmni(api_key="right-key")
    try:
        with httpx.Client(timeout=2.0) as client:
            router = Router([guarded.url], client, headers={"Authorization": "Bearer wrong-key"}, secret="wrong-key")
            assert not router.check(router.servers[0])
            error = router.servers[0].last_error
            assert "VOICEBOX_REMOTE_API_KEY" in error and "wrong-key" not in error
            router.headers = {"Authorization": "Bearer right-key"}
            assert router.check(router.servers[0]) and router.servers[0].model == guarded.model
    finally:
        guarded.stop()


def test_requests_for_a_size_no_server_serves_are_refused_clearly(client: httpx.Client) -> None:
    router = Router(["http://a:1"], client)
    router.servers[0].model = "Qwen/Qwen3-TTS-12Hz-0.6B-Base"
    assert router.acquire("0.6B").index == 0
    with pytest.raises(ModelUnavailable, match="No speech server serves the 1.7B model"):
        router.acquire("1.7B")
    assert model_size("Qwen/Qwen3-TTS-12Hz-1.7B-Base") == "1.7B" and model_size("my-tts") is None


def test_shown_errors_lose_paths_and_the_key() -> None:
    text = clean("could not open /srv/models/secret/voice.wav with key sk-123\nline two", secret="sk-123")
    assert "/srv" not in text and "sk-123" not in text and "\n" not in text and "***" in text


def test_a_silent_server_times_out_as_a_clear_error(fake: FakeVllmOmni, tmp_path) -> None:
    from tests.support.fake_vllm_omni import reference_sample
    from voicebox.engines.params import GenerationParams
    from voicebox.remote.backend import RemoteBackend
    from voicebox.speech import SpeechRequest

    fake.reset()
    backend = RemoteBackend([fake.url], timeout=0.5)
    backend.load()
    fake.hang.set()
    try:
        request = SpeechRequest(("Nobody answers this.",), (reference_sample(tmp_path),), GenerationParams(seed=1))
        with pytest.raises(ModelUnavailable) as caught:
            list(backend.speak(request))
    finally:
        fake.release.set()
    message = caught.value.message
    assert "no answer within 0.5 s" in message and "VOICEBOX_REMOTE_TIMEOUT" in message
    assert "Traceback" not in message and fake.url not in message
    server = backend.status()["servers"][0]
    assert server["state"] == "down" and "no answer" in server["last_error"]


def test_remote_settings_are_checked_at_start() -> None:
    from voicebox.config import ConfigError, Settings

    settings = Settings.from_env({"VOICEBOX_BACKEND": "remote", "VOICEBOX_REMOTE_URLS": "http://gpu1:8091/, https://b",
                                  "VOICEBOX_REMOTE_API_KEY": "k", "VOICEBOX_REMOTE_CONCURRENCY": "8"})
    assert settings.remote_urls == ("http://gpu1:8091", "https://b") and settings.remote_concurrency == 8
    assert "'k'" not in repr(settings)
    with pytest.raises(ConfigError, match="VOICEBOX_REMOTE_URLS"):
        Settings.from_env({"VOICEBOX_BACKEND": "remote"})
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"VOICEBOX_REMOTE_URLS": "http://user:hunter2@gpu1:8091"})
    assert "hunter2" not in str(caught.value)
    for bad in ("ftp://x", "gpu1:8091"):
        with pytest.raises(ConfigError):
            Settings.from_env({"VOICEBOX_REMOTE_URLS": bad})
    with pytest.raises(ConfigError, match="1 to 64"):
        Settings.from_env({"VOICEBOX_REMOTE_CONCURRENCY": "0"})
