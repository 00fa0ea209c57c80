"""Unit tests for voicebox.engines.hub: resolving a model setting to a local directory.

No network: the Hub calls (local-cache look-up, TCP probe, model_info, download) are replaced by
fakes that record what was asked, so each test also checks what was *not* tried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from voicebox.engines import hub
from voicebox.engines.hub import NotDownloaded, looks_like_path, resolve_snapshot
from voicebox.errors import ModelUnavailable

FIX = "run once with internet access to download it, or set VOICEBOX_TTS_MODEL to a local directory"


class FakeHub:
    """Plays the Hugging Face Hub; each attribute says how the next call of its kind goes."""

    def __init__(self) -> None:
        self.cached: str | None = None  # local-cache hit (a directory) or a miss
        self.reachable = True
        self.info_error: Exception | None = None
        self.download: str | Exception = "/hf/snapshots/abc"
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    state = FakeHub()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)

    def snapshot_download(repo_id: str, **kwargs: Any) -> str:
        if kwargs.get("local_files_only"):
            state.calls.append(("local", repo_id, kwargs))
            if state.cached is None:
                raise FileNotFoundError("not in the cache")  # LocalEntryNotFoundError's kind
            return state.cached
        state.calls.append(("download", repo_id, kwargs))
        if isinstance(state.download, Exception):
            raise state.download
        return state.download

    def hub_reachable(timeout: float = hub.HUB_PROBE_TIMEOUT_S) -> bool:
        state.calls.append(("probe", "", {"timeout": timeout}))
        return state.reachable

    def probe_repo(repo_id: str, timeout: float = hub.MODEL_INFO_TIMEOUT_S) -> None:
        state.calls.append(("info", repo_id, {"timeout": timeout}))
        if state.info_error is not None:
            raise state.info_error

    monkeypatch.setattr(hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(hub, "hub_reachable", hub_reachable)
    monkeypatch.setattr(hub, "probe_repo", probe_repo)
    return state


def test_local_directory_is_returned_as_is(fake: FakeHub, tmp_path: Path) -> None:
    assert resolve_snapshot(str(tmp_path), "VOICEBOX_TTS_MODEL", "TTS model") == str(tmp_path)
    assert fake.calls == []


def test_home_directory_is_expanded(fake: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_snapshot("~/models", "VOICEBOX_TTS_MODEL", "TTS model") == str(tmp_path / "models")
    assert fake.calls == []


def test_path_that_is_not_a_directory_names_the_variable(fake: FakeHub, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere" / "model")
    with pytest.raises(ModelUnavailable) as info:
        resolve_snapshot(missing, "VOICEBOX_TTS_MODEL_LARGE", "TTS model")
    assert not isinstance(info.value, NotDownloaded)  # a typo, not something to download
    assert str(info.value) == (
        f"VOICEBOX_TTS_MODEL_LARGE={missing!r} is not a directory. "
        "Point it at a downloaded TTS model folder, or at a Hugging Face model id."
    )
    with pytest.raises(ModelUnavailable, match=r"is not a directory\. Point it at a Qwen3-TTS folder\.$"):
        resolve_snapshot("./typo", "VOICEBOX_TTS_MODEL", "TTS model", path_fix="Point it at a Qwen3-TTS folder.")
    assert fake.calls == []


def test_cached_snapshot_needs_no_network(fake: FakeHub) -> None:
    fake.cached = "/hf/snapshots/cached"
    path = resolve_snapshot(
        "Qwen/x", "VOICEBOX_TTS_MODEL", "TTS model", cache_dir=Path("/hf"), allow_patterns=("model.bin",)
    )
    assert path == "/hf/snapshots/cached"
    assert fake.calls == [
        ("local", "Qwen/x", {"local_files_only": True, "cache_dir": "/hf", "allow_patterns": ["model.bin"]})
    ]


def test_offline_and_not_downloaded(fake: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotDownloaded) as info:
        resolve_snapshot("Qwen/x", "VOICEBOX_TTS_MODEL", "TTS model")
    assert str(info.value) == f"The TTS model 'Qwen/x' is not downloaded and HF_HUB_OFFLINE is set: {FIX}."
    assert info.value.status_code == 503
    assert fake.names() == ["local"]  # no probe, no model_info, no download


def test_custom_fix_is_used(fake: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "true")
    with pytest.raises(NotDownloaded, match=r"HF_HUB_OFFLINE is set: copy the model over\.$"):
        resolve_snapshot("Qwen/x", "VOICEBOX_TTS_MODEL", "TTS model", fix="copy the model over")


def test_unreachable_hub_is_not_asked_anything(fake: FakeHub) -> None:
    fake.reachable = False
    with pytest.raises(NotDownloaded) as info:
        resolve_snapshot("Qwen/x", "VOICEBOX_TTS_MODEL", "TTS model")
    assert str(info.value) == (
        f"The TTS model 'Qwen/x' cannot be downloaded (the Hugging Face Hub cannot be reached): {FIX}."
    )
    assert fake.names() == ["local", "probe"]


def test_unknown_repository_is_not_downloaded(fake: FakeHub) -> None:
    class RepositoryNotFoundError(Exception):
        pass

    fake.info_error = RepositoryNotFoundError("404")
    with pytest.raises(NotDownloaded) as info:
        resolve_snapshot("Qwen/x", "VOICEBOX_TTS_MODEL", "TTS model")
    assert str(info.value) == f"The TTS model 'Qwen/x' cannot be downloaded (RepositoryNotFoundError): {FIX}."
    assert fake.names() == ["local", "probe", "info"]
    assert fake.calls[2][2] == {"timeout": hub.MODEL_INFO_TIMEOUT_S}


def test_download(fake: FakeHub) -> None:
    path = resolve_snapshot("Qwen/x", "VOICEBOX_TTS_MODEL", "TTS model", allow_patterns=["*.json"])
    assert path == "/hf/snapshots/abc"
    assert fake.names() == ["local", "probe", "info", "download"]
    assert fake.calls[-1] == ("download", "Qwen/x", {"allow_patterns": ["*.json"]})

    fake.download = OSError("disk full")
    with pytest.raises(NotDownloaded) as info:
        resolve_snapshot("Qwen/x", "VOICEBOX_TTS_MODEL", "TTS model")
    assert str(info.value) == f"Downloading the TTS model 'Qwen/x' failed (disk full): {FIX}."


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/models/qwen", True),
        ("./qwen", True),
        ("~/qwen", True),
        ("models/qwen/0.6B", True),
        ("Qwen/Qwen3-TTS-12Hz-0.6B-Base", False),
        ("base", False),
    ],
)
def test_looks_like_path(value: str, expected: bool) -> None:
    assert looks_like_path(value) is expected


def test_offline_flag_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert hub.hub_offline() is False
    for value in ("1", "TRUE", " yes ", "on"):
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        assert hub.hub_offline() is True
