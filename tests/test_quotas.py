"""Limits on a shared server (issue #16): per-user quotas with sliding windows, exact reset times
and messages that name the limit; the studio refuses before a take starts and stores nothing;
REST answers 429 with ``Retry-After`` (OpenAI's error shape under ``/v1``); request rates per
account and per address; the Generate tab's "left" line; and the model lock's fairness between
two people's queues (no model needed: a fake workload on the lock).
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from fastapi.testclient import TestClient

from tests.support.espeak_backend import EspeakBackend
from tests.support.rest import basic
from voicebox.api import create_api_app
from voicebox.config import ConfigError, Settings
from voicebox.engines.model_lock import FairLock, current_lane, lane
from voicebox.errors import QuotaExceeded, TooManyRequests
from voicebox.quota_words import span, when
from voicebox.quotas import AUDIO, GENERATIONS, PROFILES, PUBLIC, SAMPLES, STORAGE, Quotas
from voicebox.rate_limits import RateLimits
from voicebox.records import GenerationRequest
from voicebox.services import Studio
from voicebox.store import Store
from voicebox.ui.common import TempAudio, UIContext
from voicebox.ui.generate import GenerateHandlers
from voicebox.ui.profiles import ProfileHandlers

SAID = "The quick brown fox jumps over the lazy dog near the river bank."
T0 = datetime(2030, 1, 1, 13, 35, tzinfo=timezone.utc).timestamp()
ACCOUNTS = (("alice", "alice-secret-1"), ("bob", "bob-secret-2"))


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def quotas(tmp_path: Path, clock: Clock, **limits: Any) -> Quotas:
    settings = Settings(data_dir=tmp_path / "data", quota_overrides=tuple(limits.items()))
    return Quotas(Store(settings.data_dir), settings, clock)


def take(seconds: float, generation_id: str = "g" * 32) -> Any:
    """What settling a take reads of its record."""
    return types.SimpleNamespace(id=generation_id, duration=seconds, file="", owner="")


# ---- the ledger: windows, reset times, messages --------------------------------------------------
def test_takes_an_hour_slide_and_say_when_the_next_is_possible(tmp_path: Path) -> None:
    clock = Clock()
    q = quotas(tmp_path, clock, generations_per_hour=3)
    for minutes in (0, 10, 20):
        clock.now = T0 + minutes * 60
        q.reserve_take("alice", "Hello there.").done(take(1.0))
    clock.now = T0 + 30 * 60
    with pytest.raises(QuotaExceeded) as refused:
        q.reserve_take("alice", "One more.")
    error = refused.value
    assert error.limit == GENERATIONS and error.status_code == 429
    assert error.reset_at == T0 + 3600 and error.retry_after == 30 * 60
    assert error.message == (
        "You have made 3 takes this hour, the limit; the next one is possible at 14:35 UTC (in 30 min)."
    )
    q.check_take("bob", "Someone else.")  # another person's quota is untouched
    clock.now = T0 + 3600 + 1  # the first take left the window: one place is free again
    q.reserve_take("alice", "One more.")
    with pytest.raises(QuotaExceeded) as again:
        q.check_take("alice", "And another.")
    assert again.value.reset_at == T0 + 10 * 60 + 3600


def test_audio_a_day_counts_real_seconds_and_frees_up_oldest_first(tmp_path: Path) -> None:
    clock = Clock()
    q = quotas(tmp_path, clock, audio_seconds_per_day=60)
    q.reserve_take("alice", "x").done(take(30.0))
    clock.now = T0 + 3600
    q.reserve_take("alice", "x").done(take(25.0))
    clock.now = T0 + 7200
    long_text = "word " * 60  # 300 characters: about 20 s
    with pytest.raises(QuotaExceeded) as refused:
        q.check_take("alice", long_text)
    assert refused.value.limit == AUDIO
    assert refused.value.reset_at == T0 + 86400  # the 30 s take must leave the window first
    assert "55 s of audio in the last 24 hours" in refused.value.message
    assert "about 20 s more" in refused.value.message and "13:35 UTC (in 22 h)" in refused.value.message
    assert q.remaining("alice").audio_seconds == 5
    clock.now = T0 + 86401
    q.check_take("alice", long_text)


def test_a_failed_take_is_not_counted_and_parallel_takes_cannot_slip_past(tmp_path: Path) -> None:
    q = quotas(tmp_path, Clock(), generations_per_hour=2)
    first = q.reserve_take("alice", "One.")
    q.reserve_take("alice", "Two.")  # still running: counted already
    with pytest.raises(QuotaExceeded):
        q.reserve_take("alice", "Three.")
    first.release()  # failed or cancelled
    q.reserve_take("alice", "Three.")
    assert q.remaining("alice").takes == 0


def test_what_is_left_and_the_presets(tmp_path: Path) -> None:
    clock = Clock()
    q = quotas(tmp_path, clock, generations_per_hour=30, audio_seconds_per_day=600)
    q.reserve_take("alice", "x").done(take(42.4))
    assert q.remaining("alice").summary() == "29 takes left this hour · 558 s of audio left today"
    data = tmp_path / "presets"
    local = Quotas(Store(data), Settings(data_dir=data), clock)
    assert not local.limits_for("").any and local.remaining("").summary() == ""
    assert local.caller(None, "10.0.0.7") == ""  # one user, no login: no quotas
    public = Quotas(local.store, Settings(data_dir=data, quotas="public"), clock)
    assert public.limits_for("") == PUBLIC and public.caller(None, "10.0.0.7") == "guest:10.0.0.7"
    assert public.caller("alice", "10.0.0.7") == "alice"
    one_login = Settings(data_dir=data, auth=("me", "my-password-1"))
    assert not Quotas(local.store, one_login, clock).shared()  # one person with a login: not shared
    team = Settings(data_dir=data, users=ACCOUNTS, quota_overrides=(("storage_mb", None),))
    assert Quotas(local.store, team, clock).limits_for("alice") == PUBLIC.__class__(30, 600, 10, 10, None)


def test_waits_in_words() -> None:
    assert [span(s) for s in (0.2, 59, 61, 3600, 3660 + 59)] == ["1 s", "59 s", "2 min", "1 h", "1 h 2 min"]
    assert when(T0 + 30, T0) == "13:36 UTC (in 30 s)"  # rounded up to the minute: never early


def test_settings_from_the_environment() -> None:
    settings = Settings.from_env({"VOICEBOX_QUOTA_GENERATIONS_PER_HOUR": "5", "VOICEBOX_QUOTA_STORAGE_MB": "off",
                                  "VOICEBOX_RATE_LIMIT": "10/second;300/hour"})
    assert settings.quotas == "auto" and settings.rate_limit == "10/second;300/hour"
    assert settings.quota_overrides == (("generations_per_hour", 5), ("storage_mb", None))
    assert Settings.from_env({"SPACE_ID": "someone/voicebox"}).quotas == "public"
    assert Settings.from_env({"SPACE_ID": "x", "VOICEBOX_QUOTAS": "off"}).quotas == "off"
    for name, value in (("VOICEBOX_QUOTA_PROFILES", "2.5"), ("VOICEBOX_QUOTA_AUDIO_SECONDS_PER_DAY", "-1"),
                        ("VOICEBOX_RATE_LIMIT", "lots"), ("VOICEBOX_QUOTAS", "sometimes")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})


# ---- the studio ------------------------------------------------------------------------------------
def make_studio(data: Path, **settings: Any) -> Studio:
    overrides = tuple(settings.pop("limits", {}).items())
    config = Settings(data_dir=data, quality="off", quota_overrides=overrides, **settings)
    return Studio(config, tts=EspeakBackend(), asr=NoWhisper())


class NoWhisper:
    """Transcripts are always given here: Whisper is never asked, only its status (``/health``)."""

    def status(self) -> dict[str, Any]:
        return {"loaded": False}


@pytest.fixture
def studio(tmp_path: Path, espeak_wav: Path) -> Studio:
    studio = make_studio(tmp_path / "data", limits={"generations_per_hour": 1, "samples_per_profile": 1,
                                                    "profiles": 2})
    profile = studio.create_profile("Keeper", language="English")  # no user: not counted
    studio.add_sample(profile.id, espeak_wav, SAID)
    return studio


def keeper(studio: Studio) -> str:
    return studio.find_profile("Keeper").id


def test_over_the_limit_no_take_starts_and_nothing_is_stored(studio: Studio) -> None:
    request = GenerationRequest(keeper(studio), "Hello from the lighthouse.", seed=3)
    made = studio.generate(request, user="alice")
    assert made.duration > 0.3
    seconds = studio.quotas._usage("alice")["takes"][0][1]
    assert seconds == made.duration  # the estimate became the real seconds
    spoken, files = studio.tts.takes, sorted((studio.settings.data_dir / "generations").rglob("*"))
    for attempt in (lambda: studio.generate(request, user="alice"),
                    lambda: studio.start_generation(request, user="alice"),
                    lambda: studio.check_generation(request, user="alice")):
        with pytest.raises(QuotaExceeded, match="1 take this hour, the limit"):
            attempt()
    assert studio.tts.takes == spoken and studio.list_history()["total"] == 1
    assert sorted((studio.settings.data_dir / "generations").rglob("*")) == files
    job = studio.start_generation(request, stream=False, user="bob")  # bob's quota is his own
    assert job.result(60).duration > 0.3
    assert studio.generate(request).id  # no user (a project render, a batch item): not counted


def test_profiles_and_samples_are_limited_per_person(studio: Studio, espeak_wav: Path) -> None:
    for name in ("A1", "A2"):
        studio.create_profile(name, user="alice")
    with pytest.raises(QuotaExceeded, match="You have 2 voice profiles, the limit") as refused:
        studio.create_profile("A3", user="alice")
    assert refused.value.limit == PROFILES and refused.value.retry_after is None
    assert studio.create_profile("B1", user="bob").name == "B1"
    studio.delete_profile(studio.find_profile("A1").id)  # deleting one makes room
    third = studio.create_profile("A3", user="alice")
    assert sorted(p.name for p in studio.list_profiles()["items"]) == ["A2", "A3", "B1", "Keeper"]
    studio.add_sample(third.id, espeak_wav, SAID, user="alice")
    with pytest.raises(QuotaExceeded, match="This profile has 1 sample, the limit") as full:
        studio.add_sample(third.id, espeak_wav, SAID, user="alice")
    assert full.value.limit == SAMPLES and len(studio.list_samples(third.id)) == 1


def test_storage_counts_the_persons_samples(tmp_path: Path, espeak_wav: Path) -> None:
    studio = make_studio(tmp_path / "data", limits={"storage_mb": 0.2})
    profile = studio.create_profile("Mine", user="alice")
    studio.add_sample(profile.id, espeak_wav, SAID, user="alice")  # about 0.17 MB
    with pytest.raises(QuotaExceeded, match=r"use 0\.1\d+ MB of the 0\.2 MB you may keep") as refused:
        studio.add_sample(profile.id, str(espeak_wav), "A second recording of it.", user="alice")
    assert refused.value.limit == STORAGE and len(studio.list_samples(profile.id)) == 1


def test_a_take_waits_for_the_model_in_its_persons_lane(studio: Studio) -> None:
    seen: list[str] = []
    speak = studio.tts.speak

    def spy(request: Any, cancel: Any = None) -> Iterator[Any]:
        seen.append(current_lane.get())
        yield from speak(request, cancel)

    studio.tts.speak = spy  # type: ignore[method-assign]
    request = GenerationRequest(keeper(studio), "Lanes.", seed=1)
    studio.generate(request, user="alice")
    studio.start_generation(request, user="bob").result(60)  # on the job's own thread
    studio.generate(request)
    assert seen == ["alice", "bob", ""] and current_lane.get() == ""


# ---- REST ----------------------------------------------------------------------------------------
def test_rest_quota_refusals_are_429_with_retry_after(studio: Studio) -> None:
    studio.quotas.reserve_take("", "An earlier take.")  # the one user (no accounts) used the hour
    body = {"profile_id": keeper(studio), "text": "Hello."}
    with TestClient(create_api_app(studio, studio.settings)) as client:
        refused = client.post("/generate", json=body)
        assert refused.status_code == 429
        assert 3500 < int(refused.headers["retry-after"]) <= 3600
        assert refused.json()["detail"].startswith("You have made 1 take this hour, the limit; the next one")
        speech = client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "Keeper", "input": "Hi."})
        assert speech.status_code == 429 and int(speech.headers["retry-after"]) > 3500
        error = speech.json()["error"]
        assert error["type"] == error["code"] == "insufficient_quota" and "take this hour" in error["message"]
        batch = client.post("/batch", json={"items": [{"text": "One.", "voice": "Keeper"}]})
        assert batch.status_code == 429 and "retry-after" in batch.headers
        assert [client.post("/profiles", json={"name": n}).status_code for n in ("Two", "Three")] == [201] * 2
        over = client.post("/profiles", json={"name": "Four"})
        assert over.status_code == 429 and "retry-after" not in over.headers  # deleting frees it, not time
        assert "voice profiles, the limit" in over.json()["detail"]
    assert studio.list_history()["total"] == 0


def test_rest_quotas_are_per_account(tmp_path: Path, espeak_wav: Path) -> None:
    studio = make_studio(tmp_path / "data", users=ACCOUNTS, limits={"generations_per_hour": 1})
    bodies = []
    for name, _ in ACCOUNTS[:2]:  # each account speaks with a profile of its own
        profile = studio.create_profile("Keeper", language="English", owner=name, consent="2026-12-01T10:00:00Z")
        studio.add_sample(profile.id, espeak_wav, SAID, owner=name)
        bodies.append({"profile_id": profile.id, "text": "Hello.", "seed": 1})
    with TestClient(create_api_app(studio, studio.settings)) as client:
        assert client.post("/generate", json=bodies[0], headers=basic(*ACCOUNTS[0])).status_code == 201
        refused = client.post("/generate", json=bodies[0], headers=basic(*ACCOUNTS[0]))
        assert refused.status_code == 429 and "retry-after" in refused.headers
        assert client.post("/generate", json=bodies[1], headers=basic(*ACCOUNTS[1])).status_code == 201
    assert studio.quotas.remaining("alice").takes == studio.quotas.remaining("bob").takes == 0
    assert studio.quotas.remaining("carol").takes == 1


def test_rest_request_rate_per_account_and_per_address(tmp_path: Path) -> None:
    studio = make_studio(tmp_path / "data", users=ACCOUNTS, rate_limit="3/minute")
    app = create_api_app(studio, studio.settings)
    alice, bob = basic(*ACCOUNTS[0]), basic(*ACCOUNTS[1])
    with TestClient(app, client=("10.0.0.1", 1)) as first, TestClient(app, client=("10.0.0.2", 1)) as second:
        assert [first.get("/profiles", headers=alice).status_code for _ in range(3)] == [200] * 3
        refused = first.get("/profiles", headers=alice)
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["detail"].startswith("Too many requests from this account: the limit is 3 per")
        assert second.get("/profiles", headers=bob).status_code == 200  # another account, another address
        speech = second.post("/v1/audio/speech", headers=alice, json={"voice": "x", "input": "Hi."})
        assert speech.status_code == 429 and speech.json()["error"]["code"] == "rate_limit_exceeded"
        bob_there = first.get("/profiles", headers=bob)  # bob from alice's machine: its address is spent
        assert bob_there.status_code == 429 and "this address" in bob_there.json()["detail"]
        assert first.get("/health").status_code == 200  # never limited


def test_rate_limit_modes() -> None:
    assert not RateLimits("auto", lambda: False).active()  # one user: off
    shared = RateLimits("auto", lambda: True)
    assert shared.active() and str(shared.items[0]) == "120 per 1 minute"
    assert not RateLimits("off", lambda: True).active()
    limiter = RateLimits("2/second")
    limiter.hit(None, "10.0.0.9")
    limiter.hit(None, "10.0.0.9")
    with pytest.raises(TooManyRequests) as refused:
        limiter.hit(None, "10.0.0.9")
    assert refused.value.retry_after == 1


# ---- the UI ----------------------------------------------------------------------------------------
def test_generate_tab_says_what_is_left_and_refuses_over_quota(studio: Studio, espeak_wav: Path) -> None:
    ctx = UIContext(studio, studio.settings, TempAudio(studio.settings.data_dir.parent / "ui"))
    handlers = GenerateHandlers(ctx)
    alice = types.SimpleNamespace(username="alice", session_hash="s1", client=None)
    assert handlers.left(alice) == gr.update(value="1 take left this hour", visible=True)
    studio.quotas.reserve_take("alice", "x")
    mine = studio.create_profile("Keeper", language="English", owner="alice")  # her page: her voices
    studio.add_sample(mine.id, espeak_wav, SAID, owner="alice")
    args = (mine.id, "Hello.", "profile", "0.6B", "Balanced", "", 0.9, 50, 1.0, 1.05)
    with pytest.raises(gr.Error, match="1 take this hour, the limit"):
        handlers.check(*args, request=alice)
    assert handlers.left(alice)["value"] == "0 takes left this hour"
    unlimited = make_studio(studio.settings.data_dir.parent / "free")
    free = GenerateHandlers(UIContext(unlimited, unlimited.settings, ctx.temp))
    assert free.left(types.SimpleNamespace(username=None, client=None)) == gr.update(value="", visible=False)


def test_profiles_tab_counts_the_logged_in_person(studio: Studio) -> None:
    ctx = UIContext(studio, studio.settings, TempAudio(studio.settings.data_dir.parent / "ui"))
    handlers = ProfileHandlers(ctx)
    alice = types.SimpleNamespace(username="alice", client=None)
    handlers.create("A1", "", "Auto", "", request=alice)
    handlers.create("A2", "", "Auto", "", request=alice)
    with pytest.warns(UserWarning, match="voice profiles, the limit"):
        assert handlers.create("A3", "", "Auto", "", request=alice) == gr.skip()
    handlers.create("Mine", "", "Auto", "")  # no login: the one user, not alice
    assert studio.quotas.remaining("alice").profiles == 0


# ---- fairness of the model lock ---------------------------------------------------------------------
def queue(lock: FairLock, work: Any, names: list[tuple[str, int]]) -> list[threading.Thread]:
    """Start one thread per (person, n), each queued before the next starts (a known order)."""
    threads = []
    for person, n in names:
        queued = len(lock._waiting)
        thread = threading.Thread(target=work, args=(person, n), daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while len(lock._waiting) == queued and time.monotonic() < deadline:
            time.sleep(0.001)
        threads.append(thread)
    return threads


def test_one_persons_twenty_takes_do_not_block_anothers_first() -> None:
    lock, order = FairLock(), []

    def take_of(person: str, n: int) -> None:
        with lane(person), lock:
            order.append((person, n))
            time.sleep(0.001)  # the fake model call

    lock.acquire()  # someone's take is running
    threads = queue(lock, take_of, [("alice", n) for n in range(20)] + [("bob", 0)])
    lock.release()
    for thread in threads:
        thread.join(10)
    assert len(order) == 21
    assert order.index(("bob", 0)) < order.index(("alice", 2))
    assert [n for person, n in order if person == "alice"] == list(range(20))  # in order within a lane


def test_chunks_of_two_peoples_takes_alternate() -> None:
    """Each take asks for the lock once per chunk: bob's 3-chunk take goes chunk for chunk with
    alice's queued takes, instead of after all of them."""
    lock, order = FairLock(), []

    def take_of(person: str, n: int) -> None:
        with lane(person):
            for chunk in range(3 if person == "bob" else 1):
                with lock:
                    order.append((person, n, chunk))
                    time.sleep(0.001)

    lock.acquire()
    threads = queue(lock, take_of, [("alice", n) for n in range(10)] + [("bob", 0)])
    lock.release()
    for thread in threads:
        thread.join(10)
    bob_done = order.index(("bob", 0, 2))
    assert bob_done <= 6, order  # alice, bob, alice, bob, alice, bob
