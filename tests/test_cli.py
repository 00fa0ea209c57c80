"""Command line: options, safe defaults, and refusing public exposure without a login."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voicebox.cli import UnsafeLaunch, build_parser, check_exposure, is_loopback, settings_from_args
from voicebox.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicebox", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_help_lists_the_options() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--data-dir", "--share", "--auth", "--insecure-no-auth"):
        assert option in result.stdout


@pytest.mark.parametrize("args", [["--host", "0.0.0.0"], ["--share"], ["--host", "192.168.1.5"]])
def test_public_exposure_without_auth_is_refused(args: list[str], tmp_path: Path) -> None:
    result = run_cli(*args, "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "VOICEBOX_AUTH" in result.stderr and "--insecure-no-auth" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "voicebox.json").exists()  # refused before anything started


def test_bad_environment_value_is_one_clear_line(tmp_path: Path) -> None:
    result = run_cli("--data-dir", str(tmp_path), env={"VOICEBOX_PORT": "eighty"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "VOICEBOX_PORT" in result.stderr


@pytest.mark.parametrize(
    "host, loopback",
    [("127.0.0.1", True), ("localhost", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.2", False), ("example.com", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_exposure_rules() -> None:
    local = Settings()
    assert check_exposure(local, share=False, insecure_no_auth=False) is None
    public = local.with_overrides(host="0.0.0.0")
    with pytest.raises(UnsafeLaunch):
        check_exposure(public, share=False, insecure_no_auth=False)
    assert "WARNING" in (check_exposure(public, share=False, insecure_no_auth=True) or "")
    assert check_exposure(public.with_overrides(auth=("a", "b")), share=True, insecure_no_auth=False) is None


def test_flags_override_environment(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--port", "9000", "--data-dir", str(tmp_path), "--auth", "u:p"])
    settings = settings_from_args(args, Settings.from_env({"VOICEBOX_PORT": "8000"}))
    assert settings.port == 9000 and settings.data_dir == tmp_path and settings.auth == ("u", "p")
    assert settings.host == "127.0.0.1"
