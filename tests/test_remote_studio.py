"""The whole studio on ``VOICEBOX_BACKEND=remote``, used as a person uses it, against two fake
vLLM-Omni servers that speak with espeak-ng (``tests/support/fake_vllm_omni.py``, vllm-omni 0.30.0's
protocol) and want an API key.

One pair of servers and one app (``create_app``: UI and REST, as deployed, built from the
environment the way ``compose.remote.yaml`` sets it) serve the whole module:

* in Chromium, at 1280x900: a profile made and a take generated, played and found in History; the
  Models tab lists both servers and their state; at 390x844 the servers table fits the phone;
* a server that fails mid-use: the other one takes over unseen; when both fail, a plain error
  (no trace, no key) and no "Error" badge; when they are back, the next take works;
* a project render: its blocks' chunks reach the servers together, never more at once than
  ``VOICEBOX_REMOTE_CONCURRENCY``; every block is rendered and the project exports;
* the quality gate: every sentence heard by Whisper (tiny.en), a sentence the server garbles is
  made again by itself;
* the OpenAI route ``/v1/audio/speech`` and ``/health`` with the typed ``servers`` list.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.support.browser import (
    chromium,
    close_toasts,
    error_badges,
    expect,
    field,
    fill_revealed,
    new_page,
    open_accordion,
    open_tab,
    screenshot,
    toast,
)
from tests.support.fake_vllm_omni import FakeVllmOmni
from tests.support.studio import serve_app
from voicebox.config import Settings
from voicebox.records import GenerationRequest
from voicebox.remote.backend import RemoteBackend
from voicebox.services import Studio

KEY = "sk-remote-studio-secret-key"
CONCURRENCY = 3
SAMPLE_WORDS = "The quick brown fox jumps over the lazy dog near the river bank."
SWAPPED = "Seven purple elephants danced quietly on the frozen lake."
#: Two sentences that make two chunks (together over the 250 characters of one).
TWO_CHUNKS = (
    ("The keeper lit the lamp before the storm arrived, and he watched the dark water from the gallery "
     "until the first ships came round the point."),
    ("Ships passed safely through the channel all night long, their lights moving past the rocks while "
     "the bell rang out across the bay."),
)


# ---- one pair of servers, one app -----------------------------------------------------------------
class InFlight:
    """Speech requests in flight on all the fakes together (each fake counts only its own)."""

    def __init__(self, fakes: tuple[FakeVllmOmni, ...]) -> None:
        self._lock = threading.Lock()
        self.now = self.most = 0
        for fake in fakes:
            enter, leave = fake.enter, fake.leave
            fake.enter = lambda enter=enter: (enter(), self._move(1))  # type: ignore[method-assign]
            fake.leave = lambda leave=leave: (leave(), self._move(-1))  # type: ignore[method-assign]

    def _move(self, step: int) -> None:
        with self._lock:
            self.now += step
            self.most = max(self.most, self.now)

    def reset(self) -> None:
        with self._lock:
            self.most = self.now


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeVllmOmni, FakeVllmOmni]]:
    first, second = FakeVllmOmni(api_key=KEY), FakeVllmOmni(api_key=KEY)
    second.swaps = first.swaps  # a garbled sentence counts once, whichever server makes it
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture(scope="module")
def in_flight(fakes: tuple[FakeVllmOmni, FakeVllmOmni]) -> InFlight:
    return InFlight(fakes)


@pytest.fixture(scope="module")
def studio_app(
    fakes: tuple[FakeVllmOmni, FakeVllmOmni], tmp_path_factory: pytest.TempPathFactory, whisper_tiny_path: str
) -> Iterator[tuple[str, Studio]]:
    """The app from the environment compose.remote.yaml gives it (plus a data dir and Whisper)."""
    settings = Settings.from_env({
        "VOICEBOX_DATA_DIR": str(tmp_path_factory.mktemp("remote-studio") / "data"),
        "VOICEBOX_BACKEND": "remote",
        "VOICEBOX_REMOTE_URLS": ",".join(f.url for f in fakes),
        "VOICEBOX_REMOTE_API_KEY": KEY,
        "VOICEBOX_REMOTE_TIMEOUT": "10",
        "VOICEBOX_REMOTE_CONCURRENCY": str(CONCURRENCY),
        "VOICEBOX_SPEAKER_MODEL": "off",
        "VOICEBOX_DESIGN_MODEL": "off",
        "VOICEBOX_WHISPER_MODEL": whisper_tiny_path,
        "VOICEBOX_DEVICE": "cpu",
        "VOICEBOX_QUALITY": "off",
    })
    studio = Studio(settings)
    assert isinstance(studio.tts, RemoteBackend)
    # a failed server is tried again after 2 s, doubling; a tenth of that keeps the module short
    studio.tts.router.backoff = 0.2
    for url in serve_app(settings, studio):
        yield url, studio


@pytest.fixture
def servers(fakes: tuple[FakeVllmOmni, FakeVllmOmni]) -> tuple[FakeVllmOmni, FakeVllmOmni]:
    for fake in fakes:
        fake.reset()
    return fakes


@pytest.fixture(scope="module")
def keeper(studio_app: tuple[str, Studio], espeak_wav: Path) -> str:
    """A voice made through the service layer, for the tests that are not about making one."""
    studio = studio_app[1]
    profile = studio.create_profile("Lamplighter", language="English")
    studio.add_sample(profile.id, espeak_wav, SAMPLE_WORDS)
    return profile.id


def heard(studio: Studio, wav: bytes) -> str:
    from voicebox import audio

    text = studio.asr.transcribe(audio.load_mono(wav, audio.WHISPER_SAMPLE_RATE), language="en").text
    return re.sub(r"[^a-z ]", "", text.lower())


# ---- projects, the quality gate, REST ----------------------------------------------------------
def test_a_project_renders_its_chunks_together_and_exports(
    studio_app: tuple[str, Studio], servers: tuple[FakeVllmOmni, FakeVllmOmni], in_flight: InFlight, keeper: str
) -> None:
    import av

    studio = studio_app[1]
    lines = ["The keeper climbed the stairs.", "He trimmed the wick.", "He polished the great lens.",
             "He lit the lamp at dusk.", "Three ships passed the rocks.", "He wrote their names in the log."]
    for fake in servers:
        fake.delay = 0.3  # each chunk takes a moment, so chunks sent together are seen together
    in_flight.reset()
    project = studio.projects.create("The lighthouse", voice=keeper, language="English",
                                     blocks=[{"text": t, "chapter": "Dusk" if i == 0 else ""} for i, t in enumerate(lines)])
    studio.renders.start(project.id)
    done = studio.renders.wait(project.id, timeout=120)
    assert [b.status for b in done.blocks] == ["rendered"] * len(lines)
    assert len(servers[0].bodies) + len(servers[1].bodies) == len(lines)
    assert servers[0].bodies and servers[1].bodies  # both servers shared the work
    assert 2 <= in_flight.most <= CONCURRENCY  # sent together, never more than VOICEBOX_REMOTE_CONCURRENCY
    (audio_file, subtitles) = studio.projects.export(project.id, "mp3", "srt")
    with av.open(str(audio_file)) as container:
        seconds = container.duration / 1_000_000
    assert seconds > 6  # six spoken lines
    cues = subtitles.read_text().strip().split("\n\n")
    assert len(cues) == len(lines) and lines[0] in cues[0]


def test_the_quality_gate_remakes_a_garbled_sentence(
    studio_app: tuple[str, Studio], servers: tuple[FakeVllmOmni, FakeVllmOmni], keeper: str
) -> None:
    studio = studio_app[1]
    good, other = TWO_CHUNKS
    servers[0].say_instead("The keeper lit", SWAPPED, count=1)  # shared by both servers
    take = studio.generate(GenerationRequest(keeper, f"{good} {other}", seed=21, quality="retake", max_takes=2))
    assert servers[0].swaps.used == 1
    assert take.quality == "retake" and take.status == "ok", take.message
    first, second = take.chunks
    assert first.text == good and len(first.takes) == 2  # heard wrong, made again, kept both
    assert first.takes[0].passed is False and first.takes[1].passed is True and first.used_take == 1
    assert first.takes[0].scores and second.takes[0].passed is True  # every sentence was checked
    assert len(second.takes) == 1  # the other sentence passed at once
    inputs = [b["input"] for b in servers[0].bodies + servers[1].bodies]
    assert sorted(inputs) == sorted([good, good, other])
    wav = studio.generation_path(take.id).read_bytes()
    assert "elephants" not in heard(studio, wav) and "storm" in heard(studio, wav)


def test_the_openai_route_and_health(
    studio_app: tuple[str, Studio], servers: tuple[FakeVllmOmni, FakeVllmOmni], keeper: str
) -> None:
    url, studio = studio_app
    said = "Ask the keeper for the key to the tower."
    answer = httpx.post(f"{url}v1/audio/speech", timeout=60,
                        json={"model": "tts-1", "input": said, "voice": "Lamplighter", "response_format": "wav"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "audio/wav" and answer.headers["x-voicebox-model"] == "0.6B"
    audio, rate = sf.read(io.BytesIO(answer.content), dtype="float32")
    assert rate == 24_000 and audio.size > rate and float(np.abs(audio).max()) > 0.05
    assert "keeper" in heard(studio, answer.content)
    assert [b["input"] for b in servers[0].bodies + servers[1].bodies] == [said]

    streamed = httpx.post(f"{url}v1/audio/speech", timeout=60,
                          json={"model": "tts-1", "input": "Short and streamed.", "voice": "Lamplighter",
                                "response_format": "pcm", "stream": True})
    assert streamed.status_code == 200 and len(streamed.content) > 24_000  # over half a second of 16-bit audio

    health = httpx.get(f"{url}health", timeout=10).json()
    assert health["engine"] == "remote" and [s["url"] for s in health["servers"]] == [f.url for f in servers]
    assert all(s["state"] == "up" and s["outstanding"] == 0 and s["model"] for s in health["servers"])
    assert KEY not in json.dumps(health)
    schema = httpx.get(f"{url}openapi.json", timeout=10).json()["components"]["schemas"]
    item = schema["SpeechServer"]["properties"]
    assert {"url", "state", "outstanding", "last_error", "retry_in"} <= set(item)
    assert "servers" in schema["Health"]["properties"]


# ---- in the browser -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(studio_app: tuple[str, Studio]) -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def desktop(browser: Any, studio_app: tuple[str, Studio]) -> Iterator[Any]:
    page = new_page(browser, studio_app[0], "desktop")
    yield page
    page.context.close()


def generate(page: Any, text: str, seed: str) -> None:
    open_tab(page, "Generate")
    field(page, "gen-text").fill(text)
    fill_revealed(field(page, "gen-seed"), seed)
    page.locator("#gen-button").click()


def saved(page: Any, seed: str) -> None:
    """This take (by its seed, not the page's last one) is saved, and the form is ready again."""
    expect()(page.locator("#gen-details")).to_contain_text(re.compile(rf"Seed\s*{seed}(?!\d)"))
    expect()(page.locator("#gen-status")).to_contain_text("Saved to History")
    expect()(page.locator("#gen-button")).to_be_visible()


@pytest.mark.browser
def test_a_profile_and_a_take_in_the_browser(
    desktop: Any, studio_app: tuple[str, Studio], servers: tuple[FakeVllmOmni, FakeVllmOmni], espeak_wav: Path
) -> None:
    check, page, studio = expect(), desktop, studio_app[1]
    field(page, "profile-name").fill("Keeper")
    page.locator("#profile-create").click()
    check(page.locator("#profile-heading")).to_contain_text("Keeper")
    page.locator("#sample-upload input[type=file]").set_input_files(str(espeak_wav))
    check(page.locator("#sample-1 textarea").first).to_have_value(re.compile(r"lazy dog", re.IGNORECASE))  # Whisper heard it
    check(page.locator("#profile-list")).to_contain_text("Keeper · 1 sample")

    open_tab(page, "Generate")
    page.locator("#gen-profile input").click()
    page.get_by_role("option", name="Keeper").click()
    check(page.locator("#gen-profile input")).to_have_value("Keeper")
    open_accordion(page, "Advanced")
    generate(page, "The keeper climbed the stairs. He lit the lamp at dusk.", "4242")
    saved(page, "4242")
    # the player (Gradio's waveform; its <audio> element stays empty) has the take, with its length
    check(page.locator("#gen-result #duration")).to_have_text(re.compile(r"0:0[1-9]"))
    link = page.locator("#gen-result [data-testid=download-link]")
    check(link).to_have_attribute("href", re.compile(r"\.wav$"))
    wav = page.request.get(link.get_attribute("href")).body()  # what the player plays
    assert wav[:4] == b"RIFF" and sf.info(io.BytesIO(wav)).duration > 1
    check(error_badges(page)).to_have_count(0)
    screenshot(page, "remote-generate-desktop")

    take = studio.list_history(limit=1)["items"][0]
    assert take.seed == 4242 and take.backend == "qwen3-tts-remote" and len(take.chunks) == 1
    (body,) = bodies = servers[0].bodies + servers[1].bodies  # one sentence chunk, one request
    assert body["input"] == take.chunks[0].text and body["seed"] == 4242
    assert all(b.get("voice") and "ref_audio" not in b for b in bodies)  # the registered voice, by name
    assert set(servers[0].seen_keys + servers[1].seen_keys) == {f"Bearer {KEY}"}

    open_tab(page, "History")
    row = page.locator("#history-table").get_by_text("The keeper climbed the stairs.").locator("visible=true").first
    check(row).to_be_visible()
    row.click()
    check(page.locator("#history-info")).to_contain_text("4242")
    check(page.locator("#history-player")).to_contain_text(re.compile(r"0:0[1-9]"))  # it loaded and has length


@pytest.mark.browser
def test_the_models_tab_lists_every_server(
    desktop: Any, fakes: tuple[FakeVllmOmni, FakeVllmOmni], studio_app: tuple[str, Studio]
) -> None:
    check, page = expect(), desktop
    open_tab(page, "Models")
    table = page.locator("#models-servers")
    check(table).to_be_visible()
    page.locator("#models-load-tts").click()  # "loading" asks every server (before a take they are "unknown")
    check(page.locator("#models-tts")).to_contain_text("2 of 2 servers up")
    for fake in fakes:
        check(table.locator("tr").filter(has_text=fake.url)).to_contain_text("up")
    check(page.locator("#models-tts")).to_contain_text("vLLM-Omni")
    # built-in voices and voice design are off, and the page says why
    check(page.get_by_text("VOICEBOX_SPEAKER_MODEL=off")).to_contain_text("cloned voices only")
    check(page.get_by_text("VOICEBOX_DESIGN_MODEL=off")).to_be_visible()
    assert KEY not in page.content()
    screenshot(page, "remote-models-desktop")
    open_tab(page, "Profiles")
    check(page.locator("#design-box")).to_have_count(0)  # no voice design offered


@pytest.mark.browser
def test_the_models_tab_on_a_phone(browser: Any, fakes: tuple[FakeVllmOmni, FakeVllmOmni],
                                   studio_app: tuple[str, Studio]) -> None:
    check = expect()
    page = new_page(browser, studio_app[0], "phone")
    open_tab(page, "Models")
    table = page.locator("#models-servers")
    check(table).to_be_visible()
    check(table).to_contain_text(fakes[1].url)
    box = table.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    screenshot(page, "remote-models-phone")
    page.context.close()


@pytest.mark.browser
def test_a_server_failing_mid_use(
    desktop: Any, studio_app: tuple[str, Studio], servers: tuple[FakeVllmOmni, FakeVllmOmni]
) -> None:
    check, page, studio = expect(), desktop, studio_app[1]
    first, second = servers
    first.fail_next(50)  # the first server breaks: the other one makes the take, unseen
    # two sentence chunks, sent at once: one to each server (the least loaded), so the broken one is asked
    generate(page, " ".join(TWO_CHUNKS), "11")
    saved(page, "11")
    assert len(first.bodies) == 1 and len(second.bodies) == 2  # its chunk was made again on the other
    state = {s["url"]: s for s in studio.tts.status()["servers"]}
    assert state[first.url]["state"] == "down" and "HTTP 500" in state[first.url]["last_error"]
    assert state[second.url]["state"] == "up"

    second.fail_next(50)  # now both: a plain refusal
    generate(page, "He rang the bell.", "12")
    check(page.locator("#gen-status")).to_contain_text("Not generated: 2 speech servers could not make this sentence")
    check(toast(page, "warning", "could not make this sentence")).to_be_visible()
    message = page.locator("#gen-status").inner_text()
    assert "HTTP 500" in message and "tries it again" in message and "Traceback" not in message and KEY not in message
    assert "File " not in message and ".py" not in message  # no trace, no source paths
    check(page.locator("#gen-button")).to_be_visible()
    check(page.locator("#gen-cancel")).to_be_hidden()
    check(error_badges(page)).to_have_count(0)
    assert KEY not in page.content()
    open_tab(page, "Models")
    check(page.locator("#models-servers")).to_contain_text("down")
    screenshot(page, "remote-servers-down-desktop")
    close_toasts(page)

    first.reset(), second.reset()  # both back: the next take finds them again
    generate(page, "He rang the bell.", "13")
    saved(page, "13")
    check(error_badges(page)).to_have_count(0)
    assert studio.list_history(limit=1)["items"][0].seed == 13
