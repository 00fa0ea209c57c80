"""A studio for integration tests: settings on the tiny checkpoint, and the whole app on a socket."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from voicebox.config import Settings
from voicebox.services import Studio


def studio_settings(
    data_dir: Path, checkpoint: Path, whisper: str, max_frames: int = 8, **extra: Any
) -> Settings:
    """Both model sizes on ``checkpoint`` (the tiny one), Whisper from ``whisper``, on the CPU, with
    short takes (``max_frames``) and no quality gate (the tiny model's audio is noise: every check
    would fail; the gate's own tests turn it on); ``extra`` sets anything else (auth, token, host)."""
    return Settings(
        data_dir=data_dir,
        tts_model=str(checkpoint),
        tts_model_large=str(checkpoint),
        whisper_model=whisper,
        device="cpu",
        max_frames=max_frames,
        quality=extra.pop("quality", "off"),
        **extra,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_app(settings: Settings, studio: Studio) -> Iterator[str]:
    """Run ``create_app`` (REST + UI, as deployed) under uvicorn in a thread; yields its URL."""
    import uvicorn

    from voicebox.server import create_app

    port = free_port()
    app = create_app(settings.with_overrides(port=port), studio)
    # a client that never hangs up (gradio_client's heartbeat stream) would otherwise hold the
    # shutdown below until thread.join gives up, 15 s later: cut such connections after 0.5 s (at
    # a module's end nothing else is still asked of the server)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=0.5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="voicebox-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(15)


def account_headers(settings: Settings, names: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Accounts ``names`` in the settings' users file, each with an API token; returns each
    name's ``Authorization`` header (passwords are ``<name>-password-1``)."""
    from voicebox.users import Users

    registry = Users(settings.users_path)
    headers = {}
    for name in names:
        registry.add(name, f"{name}-password-1")
        headers[name] = {"Authorization": f"Bearer {registry.issue_token(name, 'test')[1]}"}
    return headers
