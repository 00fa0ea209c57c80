"""REST API: FastAPI routes over :class:`voicebox.services.Studio`, served beside the Gradio UI.

The API only translates HTTP to ``Studio`` calls and back, so the UI and the API share one store,
one model lock and one set of rules. It is a package, one module per concern:

* :mod:`~voicebox.api.schemas` - request and response models (validation and the OpenAPI schema);
* :mod:`~voicebox.api.errors` - JSON error bodies (``{"detail"}``, or OpenAI's under ``/v1/``);
* :mod:`~voicebox.api.guards` - credentials and upload size, checked before a body is read;
  the login in front of ``/docs``;
* :mod:`~voicebox.api.routes` - profiles, samples, generation, history, audio, transcription, models;
* :mod:`~voicebox.api.openai` - the OpenAI-compatible ``/v1/audio/speech`` and its streaming;
* :mod:`~voicebox.api.app` - the routers and the app that carries them, with offline ``/docs``.

What other modules use is re-exported here.
"""

from __future__ import annotations

from .app import DOCS_URL, build_api, create_api_app, install_api, new_app
from .errors import INTERNAL_ERROR
from .guards import DocsGuard
from .openai import MODEL_HEADER, time_stretch, wav_stream_header
from .schemas import EXAMPLE_ID

__all__ = [
    "DOCS_URL",
    "EXAMPLE_ID",
    "INTERNAL_ERROR",
    "MODEL_HEADER",
    "DocsGuard",
    "build_api",
    "create_api_app",
    "install_api",
    "new_app",
    "time_stretch",
    "wav_stream_header",
]
