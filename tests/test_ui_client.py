"""``gradio_client`` against the real app (``voicebox.server.create_app`` under uvicorn on 127.0.0.1).

What a script author sees: the documented endpoints only, plain parameters, JSON results, audio
as files, errors as messages, and nothing that skips the queue or reaches the data directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.support.studio import serve_app, studio_settings
from voicebox.config import Settings
from voicebox.services import Studio
from voicebox.ui.api import ENDPOINTS


@pytest.fixture(scope="module")
def app_settings(
    tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path, whisper_tiny_path: str
) -> Settings:
    return studio_settings(tmp_path_factory.mktemp("ui-client") / "data", tiny_checkpoint, whisper_tiny_path)


@pytest.fixture(scope="module")
def app_url(app_settings: Settings, shared_tts: Any, shared_asr: Any) -> Iterator[str]:
    yield from serve_app(app_settings, Studio(app_settings, tts=shared_tts, asr=shared_asr))


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def voice(client: Client, jfk_path: Path) -> dict[str, Any]:
    profile = client.predict("JFK", "inaugural address", "English", api_name="/create_profile")
    sample = client.predict(profile["id"], handle_file(str(jfk_path)), "", api_name="/add_sample")
    return {"profile": profile, "sample": sample}


def test_only_the_documented_endpoints_are_public(client: Client) -> None:
    info = client.view_api(print_info=False, return_format="dict")
    assert set(info["named_endpoints"]) == {f"/{name}" for name in ENDPOINTS}
    assert not info["unnamed_endpoints"]
    generate = info["named_endpoints"]["/generate"]
    assert [p["parameter_name"] for p in generate["parameters"]][:3] == ["profile_id", "text", "language"]
    with pytest.raises((AppError, ValueError)):
        client.predict(api_name="/ui_generate")  # UI events are private


def test_profile_and_sample_operations(client: Client, voice: dict[str, Any]) -> None:
    profile, sample = voice["profile"], voice["sample"]
    assert profile["language"] == "English"
    assert "fellow americans" in sample["reference_text"].lower()
    assert sample["duration"] == pytest.approx(11.5, abs=1.0)

    listed = client.predict("inaugural", api_name="/list_profiles")
    assert [p["name"] for p in listed["items"]] == ["JFK"] and listed["items"][0]["sample_count"] == 1

    renamed = client.predict(profile["id"], "John F. Kennedy", api_name="/update_profile")
    assert renamed["name"] == "John F. Kennedy" and renamed["description"] == "inaugural address"
    assert renamed["language"] == "English"

    edited = client.predict(
        sample["id"], "Ask not what your country can do for you.", api_name="/update_sample_text"
    )
    assert edited["reference_text"] == "Ask not what your country can do for you."
    full = client.predict(profile["id"], api_name="/get_profile")
    assert [s["id"] for s in full["samples"]] == [sample["id"]]


def test_errors_arrive_as_messages(client: Client, voice: dict[str, Any]) -> None:
    with pytest.raises(AppError, match="already exists"):
        client.predict("john f. kennedy", "", "Auto", api_name="/create_profile")
    with pytest.raises(AppError, match="does not exist"):
        client.predict("0" * 32, api_name="/get_profile")
    with pytest.raises(AppError, match="Type some text"):
        client.predict(
            voice["profile"]["id"],
            "  ",
            "",
            "",
            "Balanced",
            None,
            None,
            None,
            None,
            None,
            api_name="/generate",
        )


def test_generate_history_and_audio(client: Client, voice: dict[str, Any]) -> None:
    wav, record = client.predict(
        voice["profile"]["id"],
        "Hello from the client.",
        "",
        "0.6B",
        "Stable",
        1234,
        None,
        None,
        None,
        None,
        api_name="/generate",
    )
    data, rate = sf.read(wav)
    assert rate == 24000 and len(data) > 0
    assert record["seed"] == 1234 and record["params"]["temperature"] == pytest.approx(0.6)
    assert record["profile_name"] == "John F. Kennedy"

    history = client.predict("from the client", "", 10, 0, api_name="/list_history")
    assert [item["id"] for item in history["items"]] == [record["id"]]
    assert client.predict(record["id"], api_name="/get_generation")["text"] == "Hello from the client."
    again = client.predict(record["id"], api_name="/generation_audio")
    assert Path(again).read_bytes() == Path(wav).read_bytes()

    stats = client.predict(api_name="/history_stats")
    assert stats["count"] >= 1 and stats["per_profile"][0]["profile_id"] == voice["profile"]["id"]

    assert client.predict(record["id"], api_name="/delete_generation") == {"deleted": record["id"]}
    with pytest.raises(AppError, match="does not exist"):
        client.predict(record["id"], api_name="/get_generation")


def test_transcribe(client: Client, jfk_path: Path) -> None:
    result = client.predict(handle_file(str(jfk_path)), "", api_name="/transcribe")
    assert "ask not what your country" in result["text"].lower()
    assert result["language"] == "en" and result["segments"]


def test_model_status(client: Client) -> None:
    status = client.predict(api_name="/model_status")
    assert set(status) >= {"tts", "whisper", "prompt_cache"}
    assert status["tts"]["device"] == "cpu"


def test_queue_cannot_be_skipped_and_data_dir_is_not_served(app_url: str, app_settings: Settings) -> None:
    direct = httpx.post(
        f"{app_url}gradio_api/run/create_profile", json={"data": ["Sneaky", "", "Auto"]}, timeout=30
    )
    assert direct.status_code != 200 and "join the queue" in direct.text
    database = app_settings.data_dir.resolve() / "voicebox.json"
    assert database.exists()
    served = httpx.get(f"{app_url}gradio_api/file={database}", timeout=30)
    assert served.status_code in (403, 404)
    assert b"profiles" not in served.content


def test_delete_sample_and_profile(client: Client, espeak_wav: Path) -> None:
    profile = client.predict("Short lived", "", "Auto", api_name="/create_profile")
    sample = client.predict(
        profile["id"], handle_file(str(espeak_wav)), "The quick brown fox.", api_name="/add_sample"
    )
    assert sample["reference_text"] == "The quick brown fox."  # a given transcript is kept
    assert client.predict(sample["id"], api_name="/delete_sample") == {"deleted": sample["id"]}
    assert client.predict(profile["id"], api_name="/delete_profile") == {"deleted": profile["id"]}
    assert all(p["id"] != profile["id"] for p in client.predict("", api_name="/list_profiles")["items"])
