"""Shared fixtures: real recordings from ../shared/data, espeak-ng speech, data dirs, settings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from voicebox.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
JFK_WORDS = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


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
