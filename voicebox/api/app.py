"""Assembly: the REST routers, the app that carries them, and the documentation.

Why separate: the same API is served two ways, inside :func:`voicebox.server.create_app` (with
the Gradio UI mounted at ``/`` after it) and alone by :func:`create_api_app` (tests, API-only
serving); both build their app with :func:`new_app` and add the routes with :func:`install_api`.

**The docs work offline.** ``/docs`` is Swagger UI served from the ``fastapi-offline`` package
(its JS, CSS and icon under ``/static-offline-docs``), not from a CDN, so the page renders on a
machine without internet. With a login set, ``/docs`` and ``/openapi.json`` need it
(:class:`~voicebox.api.guards.DocsGuard`); the static assets stay public, as they hold no user
data.

**Request rates** (:mod:`voicebox.rate_limits`): every protected route counts against its caller's
account and client address; the check is a router dependency, so it runs after the route class
has put the account on ``request.state.user``. ``/health`` stays unlimited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable
from urllib.parse import unquote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.routing import Match
from starlette.types import Scope

from .. import __version__
from ..auth import auth_required
from ..config import Settings
from ..rate_limits import RateLimits
from .batch import add_batch_routes
from .design import add_design_routes
from .effects import add_effect_routes
from .guards import DocsGuard, credentials_dependency, route_class
from .my_data import add_my_data_routes
from .openai import add_openai_routes
from .projects import add_project_routes
from .speakers import add_speaker_routes
from .sentences import add_sentence_routes
from .routes import (
    add_generation_routes,
    add_profile_routes,
    add_sample_routes,
    add_system_routes,
    add_tool_routes,
    check_id,
)
from .schemas import error_responses

if TYPE_CHECKING:
    from ..services import Studio

DOCS_URL = "/docs"

OPENAPI_TAGS = [
    {"name": "system", "description": "Health and version."},
    {"name": "profiles", "description": "Voice profiles: a name, a language and the samples of one voice."},
    {
        "name": "samples",
        "description": "Voice samples (5-30 s recordings); transcribed automatically if no text is given.",
    },
    {
        "name": "generate",
        "description": "Speak text in a profile's voice; every take is saved to the history.",
    },
    {"name": "history", "description": "Saved generations: search, statistics, deletion (audio included)."},
    {"name": "audio", "description": "Audio of saved generations, as WAV or converted."},
    {"name": "transcribe", "description": "Whisper speech-to-text for any clip."},
    {"name": "models", "description": "Load and unload the TTS and Whisper models."},
    {"name": "projects", "description": "Long-form projects: blocks, background render, export."},
    {"name": "batch", "description": "Many takes in one request, made in the background, downloaded as a ZIP."},
    {"name": "effects", "description": "Effects on takes (non-destructive: the clean take is kept) and voice defaults."},
    {"name": "design", "description": "Design a voice from words, compare takes, keep one as a profile."},
    {"name": "openai", "description": "OpenAI-compatible text-to-speech (`/v1/audio/speech`)."},
]

API_DESCRIPTION = """Voice cloning with Qwen3-TTS and Whisper transcription.

Errors are JSON: `{"detail": "what went wrong and what to do"}`; under `/v1/` they take OpenAI's
shape, `{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`, so OpenAI's SDKs show
the message. When `VOICEBOX_AUTH` is set, every route except `/health` needs HTTP Basic with that
login, or `Authorization: Bearer <VOICEBOX_API_TOKEN>`; without credentials `/health` answers only
its status and version.
"""


def build_api(studio: "Studio", settings: Settings | None = None) -> APIRouter:
    """All REST routes over ``studio``. Include the router *before* Gradio is mounted at ``/``."""
    settings = settings or studio.settings
    public = APIRouter(route_class=route_class(settings, protected=False))
    add_system_routes(public, studio, settings)
    rates = RateLimits(settings.rate_limit, studio.quotas.shared)
    checks = [Depends(credentials_dependency(settings))] if auth_required(settings) else []
    protected = APIRouter(
        route_class=route_class(settings, protected=True),
        dependencies=[*checks, Depends(rates.dependency())],
        responses=error_responses(401, 422, 500) if auth_required(settings) else error_responses(422, 500),
    )
    add_profile_routes(protected, studio)
    add_sample_routes(protected, studio)
    add_generation_routes(protected, studio)
    add_tool_routes(protected, studio)
    add_sentence_routes(protected, studio)
    add_project_routes(protected, studio)
    add_batch_routes(protected, studio)
    add_effect_routes(protected, studio)
    add_design_routes(protected, studio)
    add_speaker_routes(protected, studio)
    add_my_data_routes(protected, studio)
    add_openai_routes(protected, studio)
    add_split_id_routes(protected, route_class(settings, protected=True))
    router = APIRouter()
    router.include_router(public)
    router.include_router(protected)
    return router


#: What an id path parameter names in "... does not exist." (as the routes' own :func:`check_id`).
ID_PARAMS = {
    "profile_id": "Profile", "sample_id": "Sample", "generation_id": "Generation", "project_id": "Project",
    "block_id": "Block", "job_id": "Export", "batch_id": "Batch",
}


def split_id(scope: Scope, template: tuple[str, ...]) -> tuple[str, str] | None:
    """(parameter, decoded id) when the request's *raw* path fits ``template`` (a route's
    ``path_format`` split at ``/``) with an encoded slash in an id; otherwise None. Other
    parameters (a sentence's ``{index}``) match any one segment."""
    raw = (scope.get("raw_path") or b"").split(b"?", 1)[0].decode("latin-1")
    root = scope.get("root_path", "")
    if root and raw.startswith(root):
        raw = raw[len(root):]
    segments = raw[1:].split("/")
    if len(segments) != len(template):
        return None
    found = None
    for segment, part in zip(segments, template):
        name = part.strip("{}")
        if name in ID_PARAMS and part.startswith("{"):
            if found is None and "%2f" in segment.lower():
                found = (name, unquote(segment))
        elif not part.startswith("{") and segment != part:
            return None
    return found


def add_split_id_routes(router: APIRouter, base: type[APIRoute]) -> None:
    """Answer an id with an encoded slash like any other malformed id: 404 "... does not exist.".

    Routing decodes ``/profiles/..%2F..%2Fvoicebox.json`` into more path segments than any route
    has, so no route matches and the reply would be a bare "Not Found" (or Gradio's, under
    :func:`voicebox.server.create_app`). For each route with an id in its path this adds one that
    matches exactly such requests, by the raw path and with the same methods and login, and
    refuses the id with the routes' own :func:`check_id`.
    """
    templates: dict[tuple[str, ...], set[str]] = {}
    for route in list(router.routes):
        if isinstance(route, APIRoute) and any(f"{{{name}}}" in route.path_format for name in ID_PARAMS):
            templates.setdefault(tuple(route.path_format[1:].split("/")), set()).update(route.methods)
    for template, methods in templates.items():

        class SplitIdRoute(base):  # type: ignore[valid-type,misc]
            shape = template

            def matches(self, scope: Scope) -> tuple[Match, Scope]:
                if scope["type"] != "http" or split_id(scope, self.shape) is None:
                    return Match.NONE, {}
                return super().matches(scope)

        router.add_api_route(
            "/{raw_path:path}", _refusal(template), methods=sorted(methods), include_in_schema=False,
            route_class_override=SplitIdRoute,
        )


def _refusal(template: tuple[str, ...]) -> Callable[[Request], None]:
    def refuse(request: Request) -> None:
        found = split_id(request.scope, template)
        assert found is not None  # the route matched it
        check_id(found[1], ID_PARAMS[found[0]])  # a "/" is never in an id: this raises NotFound

    return refuse


def install_api(app: FastAPI, studio: "Studio", settings: Settings | None = None) -> None:
    """Add the REST API to ``app`` (before Gradio's mount), with its docs metadata and guard."""
    settings = settings or studio.settings
    app.include_router(build_api(studio, settings))
    app.description = API_DESCRIPTION
    known = {tag["name"] for tag in app.openapi_tags or []}
    app.openapi_tags = [*(app.openapi_tags or []), *(t for t in OPENAPI_TAGS if t["name"] not in known)]
    if auth_required(settings):
        # FastAPIOffline serves /docs itself and leaves app.docs_url unset, hence DOCS_URL too
        paths = {app.openapi_url, app.docs_url, DOCS_URL, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
        app.add_middleware(DocsGuard, settings=settings, paths=frozenset(p for p in paths if p))


def new_app() -> FastAPI:
    """An empty voicebox app whose ``/docs`` page loads Swagger UI from this server, not a CDN.

    ``FastAPIOffline`` registers the docs page and its static assets at once, so they come
    before anything added later (Gradio's mount at ``/`` would hide later routes).
    """
    return FastAPIOffline(title="voicebox", version=__version__, docs_url=DOCS_URL, redoc_url=None)


def create_api_app(studio: "Studio", settings: Settings | None = None) -> FastAPI:
    """The REST API alone (no UI): for tests and for serving the API without Gradio."""
    app = new_app()
    install_api(app, studio, settings)
    return app
