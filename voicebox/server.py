"""The web server: FastAPI REST routes and the Gradio UI on one port, one process.

Both front ends call one :class:`voicebox.services.Studio`, so there is one model lock and one
store. API routes are declared before Gradio is mounted at ``/`` (the mount would hide later
routes). Gradio is mounted with ``show_error=False`` so internals never reach a browser.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import FastAPI

from . import __version__
from .config import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, studio: Any | None = None) -> FastAPI:
    """Build the ASGI app: REST API + Gradio UI sharing ``studio``."""
    import gradio as gr

    from .ui import build_ui

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    settings.ensure_dirs()
    app = FastAPI(title="voicebox", version=__version__, docs_url="/docs", redoc_url=None)

    @app.get("/health", tags=["system"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    demo = build_ui(studio, settings)
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        show_error=False,
        blocked_paths=[str(settings.data_dir.resolve())],
        max_file_size=settings.max_upload_bytes,
        server_name=settings.host,
        server_port=settings.port,
    )


def serve(settings: Settings, share: bool = False) -> int:
    """Run the server until interrupted (blocking)."""
    import uvicorn

    app = create_app(settings)
    print(f"voicebox {__version__} on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    return 0
