"""The remote-backend deployment: compose.remote.yaml (vLLM-Omni per GPU, voicebox in front), the GPU
check script, and bench/remote_speed.py (against a mock transport and the fake vLLM-Omni server)."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from voicebox.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.remote.yaml"
SCRIPT = ROOT / "scripts" / "vllm_omni_gpu_check.sh"
BENCH = ROOT / "bench" / "remote_speed.py"
FAKE_SERVER = ROOT / "tests" / "support" / "fake_vllm_omni.py"
SPEECH_SERVICES = {"vllm-omni-gpu0": "0", "vllm-omni-gpu1": "1"}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def pinned_version() -> str:
    """The vLLM-Omni version the script installs; everything else must say the same."""
    match = re.search(r"^VLLM_OMNI_VERSION=(\S+)", SCRIPT.read_text(), re.MULTILINE)
    assert match, "scripts/vllm_omni_gpu_check.sh must set VLLM_OMNI_VERSION"
    return match.group(1)


def bench_module() -> Any:
    spec = importlib.util.spec_from_file_location("remote_speed", BENCH)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["remote_speed"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with ``env``."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


# --------------------------------------------------------------------------- compose.remote.yaml


def test_compose_runs_one_pinned_vllm_omni_per_gpu() -> None:
    services = compose()["services"]
    assert set(services) == {*SPEECH_SERVICES, "voicebox"}
    version = pinned_version()
    for name, gpu in SPEECH_SERVICES.items():
        service = services[name]
        assert service["image"] == f"vllm/vllm-omni:v{version}"  # a release tag, never latest
        assert service["entrypoint"] == ["vllm", "serve"]
        command = service["command"]
        assert "--omni" in command and "Qwen3-TTS-12Hz" in command[0] and "Base" in command[0]
        port = command[command.index("--port") + 1]
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["device_ids"] == [gpu]
        assert "gpu" in device["capabilities"]
        assert "ports" not in service  # only voicebox reaches it, on the project's network
        assert "hf-cache:/hf-cache" in service["volumes"] and service["environment"]["HF_HOME"] == "/hf-cache"
        assert service["environment"]["VLLM_API_KEY"] == "${VOICEBOX_REMOTE_API_KEY:-}"
        health = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/health" in health
        assert service["shm_size"]  # the stages pass audio codes through shared memory
    assert "hf-cache" in compose()["volumes"]


def test_compose_puts_voicebox_in_front_on_loopback_with_a_login() -> None:
    spec = compose()
    voicebox = spec["services"]["voicebox"]
    assert voicebox["ports"] == ["127.0.0.1:7860:7860"]
    env = voicebox["environment"]
    assert env["VOICEBOX_AUTH"].startswith("${VOICEBOX_AUTH:?")  # compose refuses to start without it
    assert env["VOICEBOX_BACKEND"] == "remote"
    assert env["VOICEBOX_REMOTE_API_KEY"] == "${VOICEBOX_REMOTE_API_KEY:-}"  # the key the servers want
    expected = []
    for name in SPEECH_SERVICES:
        command = spec["services"][name]["command"]
        expected.append(f"http://{name}:{command[command.index('--port') + 1]}")
    assert env["VOICEBOX_REMOTE_URLS"].split(",") == expected
    assert "voicebox-data:/data" in voicebox["volumes"]
    assert set(voicebox["depends_on"]) == set(SPEECH_SERVICES)
    assert {"voicebox-data", "hf-cache"} <= set(spec["volumes"])


def test_compose_environment_is_what_voicebox_accepts() -> None:
    """voicebox's own settings parser takes the compose environment as written (with .env values)."""
    raw = compose()["services"]["voicebox"]["environment"]
    dot_env = {"VOICEBOX_AUTH": "me:a-long-password", "VOICEBOX_REMOTE_API_KEY": "k" * 32}
    settings = Settings.from_env({key: interpolate(str(value), dot_env) for key, value in raw.items()})
    assert settings.backend == "remote"
    assert settings.remote_urls == ("http://vllm-omni-gpu0:8091", "http://vllm-omni-gpu1:8091")
    assert settings.remote_api_key == "k" * 32
    # the servers clone voices only: built-in voices and voice design would run on this container's CPU
    assert settings.speaker_model == "" and settings.design_model == ""
    # the size picker offers (and starts on) the size the servers serve, and only that one
    from voicebox.backends import remote_models

    assert remote_models(settings) == {"1.7B": "Qwen/Qwen3-TTS-12Hz-1.7B-Base"}
    small = Settings.from_env({**{key: interpolate(str(value), dot_env) for key, value in raw.items()},
                               "VOICEBOX_TTS_MODEL": "Qwen/Qwen3-TTS-12Hz-0.6B-Base"})
    assert remote_models(small) == {"0.6B": "Qwen/Qwen3-TTS-12Hz-0.6B-Base"}
    with pytest.raises(KeyError, match="VOICEBOX_AUTH"):
        interpolate(raw["VOICEBOX_AUTH"], {})


def test_one_vllm_omni_version_everywhere() -> None:
    version = pinned_version()
    protocol = (ROOT / "docs" / "remote-protocol.md").read_text()
    assert f"vllm-omni=={version}" in protocol
    readme = (ROOT / "README.md").read_text()
    assert f"vllm-omni=={version}" in readme and f"vllm/vllm-omni:v{version}" in readme
    assert "compose.remote.yaml" in readme and "scripts/vllm_omni_gpu_check.sh" in readme


# --------------------------------------------------------------------------- scripts/vllm_omni_gpu_check.sh


def test_gpu_check_script_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    shellcheck = shutil.which("shellcheck")
    if shellcheck:  # not a requirement; checked wherever it is installed
        result = subprocess.run([shellcheck, str(SCRIPT)], check=False, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def run_script(tmp_path: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "HOME": str(tmp_path), "VLLM_OMNI_VENV": str(tmp_path / "venv")}
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run([bash, str(SCRIPT)], check=False, capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)


def test_gpu_check_script_refuses_without_nvidia_smi(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_script(tmp_path, str(empty))
    assert result.returncode == 2
    assert "no CUDA GPU" in result.stderr and "nvidia-smi is not on PATH" in result.stderr
    assert not (tmp_path / "venv").exists()  # nothing was installed


def test_gpu_check_script_refuses_when_the_driver_finds_no_gpu(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed: no driver' >&2\nexit 9\n")
    (fake / "nvidia-smi").chmod(0o755)
    result = run_script(tmp_path, f"{fake}:/usr/bin:/bin")
    assert result.returncode == 2
    assert "no CUDA GPU" in result.stderr and "NVIDIA-SMI has failed: no driver" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_gpu_check_script_reuses_voicebox_builder_tests_and_bench() -> None:
    text = SCRIPT.read_text()
    assert 'checkpoint("0.6B")' in text and "tts_bench_setup" in text  # the bench's builder, not a copy
    assert "build_random_checkpoint" not in text
    assert "VOICEBOX_REMOTE_TEST_URL=$URL" in text and "tests/test_remote_live.py" in text
    assert "bench/remote_speed.py" in text and "${BENCH_CONCURRENCY:-1 4 16 64}" in text
    assert '"vllm-omni==$VLLM_OMNI_VERSION"' in text and "--omni" in text
    assert "--host 127.0.0.1" in text  # the script's server is loopback only


# --------------------------------------------------------------------------- bench/remote_speed.py


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def delta(samples: int) -> dict[str, Any]:
    audio = base64.b64encode(b"\0\0" * samples).decode()
    return {"type": "speech.audio.delta", "audio": audio, "response_format": "pcm"}


def run_one(module: Any, body: bytes, status: int = 200) -> Any:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(status, content=body, headers={"content-type": "text/event-stream"})

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await module.one_request(client, "http://speech/v1/audio/speech", {"input": "x"})

    outcome = asyncio.run(go())
    assert seen == [{"input": "x"}]
    return outcome


def test_bench_reads_an_sse_stream() -> None:
    module = bench_module()
    outcome = run_one(module, sse(delta(24_000), delta(12_000), {"type": "speech.audio.done", "usage": {}}))
    assert outcome.ok and not outcome.hit_cap and outcome.audio_seconds == pytest.approx(1.5)
    assert outcome.first_audio_s is not None and outcome.first_audio_s <= outcome.total_s


def test_bench_counts_a_take_at_the_cap_with_its_audio_and_other_errors_as_errors() -> None:
    module = bench_module()
    message = ("Qwen3-TTS Base did not emit codec EOS before its token budget (64/64 codec tokens); "
               "the generated audio is incomplete.")
    cap = {"type": "speech.audio.error",
           "error": {"message": message, "code": 500, "partial_audio": True, "action": "discard"}}
    capped = run_one(module, sse(delta(4_800), cap))
    assert capped.ok and capped.hit_cap and capped.audio_seconds == pytest.approx(0.2)
    died = {"type": "speech.audio.error", "error": {"message": "engine died"}}
    broken = run_one(module, sse(delta(4_800), died))
    assert not broken.ok and "engine died" in broken.error
    refused = run_one(module, json.dumps({"error": {"message": "bad voice"}}).encode(), status=400)
    assert not refused.ok and refused.error.startswith("HTTP 400") and "bad voice" in refused.error
    cut = run_one(module, sse(delta(4_800)))
    assert not cut.ok and "without done" in cut.error


def test_bench_request_follows_the_protocol_and_hides_the_key() -> None:
    module = bench_module()
    args = module.parse_args(["--url", "http://x", "--label", "a b/c", "--max-new-tokens", "64",
                              "--api-key", "secret"])
    assert args.label == "a-b-c" and args.concurrency == [1, 4, 16, 64]
    body = module.build_request(args, {"voice": "vb-1"}, seed=7)
    assert body["stream"] is True and body["stream_format"] == "sse" and body["response_format"] == "pcm"
    assert body["sample_rate"] == 24_000 and body["task_type"] == "Base" and body["max_new_tokens"] == 64
    assert body["seed"] == 7 and body["voice"] == "vb-1" and "ref_audio" not in body
    wav, seconds, text = module.reference_wav(None)
    inline = module.inline_reference(wav, text)
    assert inline["ref_audio"].startswith("data:audio/wav;base64,") and inline["ref_text"] == text
    assert seconds >= 1
    assert module.inline_reference(wav, "") ["x_vector_only_mode"] is True
    shown = module.command_line(["--url", "http://x", "--api-key", "secret", "--api-key=other"])
    assert "secret" not in shown and "other" not in shown and shown.count("<key>") == 2


@pytest.fixture()
def fake_server() -> Any:
    if not FAKE_SERVER.exists():
        pytest.skip("tests/support/fake_vllm_omni.py is not written yet")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is missing (make test installs it)")
    from tests.support.fake_vllm_omni import FakeVllmOmni

    fake = FakeVllmOmni()
    try:
        yield fake
    finally:
        fake.stop()


def test_bench_against_the_fake_server(fake_server: Any, tmp_path: Path) -> None:
    """Two levels of two requests each, capped at 20 frames: the fake trims espeak-ng's speech there and
    ends each stream with the cap's error after the partial audio, as a random-weight checkpoint does."""
    env = {**os.environ, "VOICEBOX_REMOTE_API_KEY": ""}
    result = subprocess.run(
        [sys.executable, str(BENCH), "--url", fake_server.url, "--label", "fake", "--concurrency", "1", "2",
         "--requests", "2", "--warmup", "1", "--max-new-tokens", "20", "--fact", "gpu=none (fake server)",
         "--results-dir", str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "remote_speed_fake.json").read_text())
    assert {"benchmark", "created", "command", "label", "machine", "server", "reference_mode", "request",
            "levels"} <= set(report)
    assert report["server"]["health"]["status"] == 200
    assert report["server"]["models"]["body"] == [fake_server.model]
    assert report["server"]["facts"] == {"gpu": "none (fake server)"}
    assert [level["concurrency"] for level in report["levels"]] == [1, 2]
    module = bench_module()
    for level in report["levels"]:
        assert set(module.LEVEL_KEYS) <= set(level)
        assert level["requests"] == level["ok"] == level["hit_cap"] == 2 and level["errors"] == 0
        assert level["audio_seconds"] == pytest.approx(2 * 20 * 0.08)  # 20 frames of 80 ms each
        assert level["first_audio_s"]["median"] > 0 and level["rtf"]["median"] > 0
    # the reference was registered once, named in every request, and removed at the end
    assert report["reference_mode"] == "registered" and len(fake_server.registrations) == 1
    voice = fake_server.registrations[0]
    assert len(fake_server.bodies) == 5 and all(body["voice"] == voice for body in fake_server.bodies)
    assert all(body["stream_format"] == "sse" and body["max_new_tokens"] == 20 for body in fake_server.bodies)
    assert fake_server.deletions == [voice]
    assert "concurrency   2: 2/2 ok (2 at the cap)" in result.stdout
    # nothing lands among the real results
    assert not list((ROOT / "bench" / "results").glob("remote_speed_fake*.json"))


def test_bench_sends_the_reference_inline_without_a_registry(fake_server: Any, tmp_path: Path) -> None:
    fake_server.registry = False
    result = subprocess.run(
        [sys.executable, str(BENCH), "--url", fake_server.url, "--label", "inline", "--concurrency", "1",
         "--requests", "1", "--warmup", "0", "--max-new-tokens", "400", "--results-dir", str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "remote_speed_inline.json").read_text())
    assert report["reference_mode"] == "inline" and "HTTP 404" in report["reference_inline_reason"]
    (level,) = report["levels"]
    assert level["ok"] == 1 and level["hit_cap"] == 0 and level["audio_seconds"] > 1
    (body,) = fake_server.bodies
    assert body["ref_audio"].startswith("data:audio/wav;base64,") and body["ref_text"]
    assert report["request"]["ref_audio"].endswith("bytes>")  # the file holds no audio
