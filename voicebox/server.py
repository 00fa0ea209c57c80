"""The web server: FastAPI REST routes and the Gradio UI on one port, one process.

Both front ends call one :class:`voicebox.services.Studio`, so there is one model lock and one
store. API routes are declared before Gradio is mounted at ``/`` (the mount would hide later
routes).

Hardening, all here so it is in one place: Gradio is mounted with ``show_error=False`` (internals
never reach a browser), analytics off, the monitoring dashboard off, the data dir in
``blocked_paths`` (and never in ``allowed_paths``), an upload size limit, and Gradio's temp files
in a private (0700) directory that Gradio cleans as it goes (``delete_cache`` in the UI), each
served only to the person it was made for (:mod:`voicebox.ui.files`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from typing import Any

from fastapi import FastAPI

from . import __version__
from .config import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, studio: Any | None = None) -> FastAPI:
    """Build the ASGI app: REST API + Gradio UI sharing ``studio``."""
    import gradio as gr

    from .api import install_api, new_app
    from .auth import gradio_auth
    from .services import Studio
    from .ui import appearance, build_ui
    from .ui.files import middleware
    from .ui.mcp_guard import enabled, mcp_middleware

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = private_temp_dir()
    settings.ensure_dirs()
    app = new_app()  # /docs with Swagger UI from this server (offline), registered before the mount

    studio = studio if studio is not None else Studio(settings)
    install_api(app, studio, settings)  # before the mount at "/", which would hide later routes
    demo = build_ui(studio, settings, rest_api=True)
    app = gr.mount_gradio_app(
        app,
        demo,
        path="/",
        auth=gradio_auth(settings),
        show_error=False,
        blocked_paths=[str(settings.data_dir.resolve())],
        max_file_size=settings.max_upload_bytes,
        server_name=settings.host,
        server_port=settings.port,
        enable_monitoring=False,
        app_kwargs={"middleware": [*middleware(demo.voicebox_context.temp.served, settings),
                                   *mcp_middleware(settings, demo)]},
        mcp_server=enabled(settings),  # /gradio_api/mcp/, behind the REST API's credentials (mcp_guard)
        **appearance(),  # Gradio 6 takes theme and CSS at mount time
    )
    return app


def private_temp_dir() -> str:
    """A fresh 0700 directory for Gradio's uploads and outputs (other users cannot read them)."""
    parent = os.environ.get("VOICEBOX_TEMP_PARENT") or None
    path = tempfile.mkdtemp(prefix="voicebox-gradio-", dir=parent)
    os.chmod(path, 0o700)
    return path


def open_share_link(host: str, port: int) -> str:
    """Open a Gradio share tunnel to the local server; returns the public URL.

    Raises:
        RuntimeError: the tunnel cannot start (offline, blocked, or the frpc client missing).
    """
    import secrets

    from gradio.networking import setup_tunnel

    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return setup_tunnel(local, port, secrets.token_urlsafe(32), None, None)


def serve(settings: Settings, share: bool = False) -> int:
    """Run the server until interrupted (blocking); with ``share``, also try a public link.

    A share link that cannot be opened (e.g. offline) is reported in one line and the app keeps
    serving locally.
    """
    import uvicorn

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning"))
    print(f"voicebox {__version__} on http://{settings.host}:{settings.port}", flush=True)
    from .ui.mcp_guard import enabled

    if enabled(settings):  # what Gradio prints at launch, which a mounted app does not do
        print(f"MCP server (AI assistants): http://{settings.host}:{settings.port}/gradio_api/mcp/", flush=True)
    if not share:
        server.run()
        return 0
    thread = threading.Thread(target=server.run, name="voicebox-server", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.1)
    try:
        print(f"Public share link (login required): {open_share_link(settings.host, settings.port)}", flush=True)
    except Exception as exc:  # offline, firewall, missing tunnel client
        print(
            f"Could not open a share link ({type(exc).__name__}: {exc}); "
            f"still serving locally on http://{settings.host}:{settings.port}",
            flush=True,
        )
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(10)
    return 0
