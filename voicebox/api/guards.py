"""What every request passes before a route runs: credentials, body size, and the docs login.

Why a route class rather than middleware or dependencies: credentials and size limits must be
checked *before* the body is read. :func:`route_class` builds a ``VoiceboxRoute`` that checks the
``Authorization`` header first (401), then ``Content-Length`` against the upload limit (413),
and caps chunked bodies while they arrive, so an oversized or unauthenticated upload is never
parsed, spooled to disk or decoded (``Studio`` checks the file size again). The same wrapper
turns whatever the route raises into JSON (:mod:`voicebox.api.errors`); doing this per route,
not with app-wide handlers, leaves Gradio's own handling untouched.

:func:`credentials_dependency` documents the security schemes for ``/docs`` ("Authorize") and
re-checks them; :class:`DocsGuard` puts ``/docs`` and ``/openapi.json`` behind the login too.

Who the caller is lands on ``request.state.user`` (:func:`current_user`): the
:class:`~voicebox.users.User` the credentials prove, or ``None`` when no accounts are configured
(one user, no login). Whether a login is needed is asked on every request, not once at start-up,
so the first account added to a running server locks its API at once. Checking a password runs
scrypt, so it happens in the thread pool, never on the event loop.
"""

from __future__ import annotations

from typing import Any, Callable, Coroutine

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from ..auth import auth_required, challenge, check_credentials, owner_for, resolve
from ..config import Settings
from ..users import User
from .errors import error_json, error_response

#: Room for multipart boundaries and form fields on top of the audio upload limit.
UPLOAD_OVERHEAD = 64 * 1024
#: The 401 body: the same for a wrong password, an unknown name and no credentials at all.
UNAUTHENTICATED = "Authentication required: HTTP Basic with an account name and password, or a bearer token."


def current_user(request: Request) -> User | None:
    """Who made ``request``: the account its credentials proved, or ``None`` without accounts."""
    return getattr(request.state, "user", None)


def request_owner(request: Request) -> str:
    """Whose data ``request`` reads and changes (:func:`voicebox.auth.owner_for`): its account's,
    or ``""``, the one local user. Every route that touches a record passes it to the studio."""
    return owner_for(current_user(request))


def declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise HTTPException(400, "The Content-Length header is not a number.")
    return int(value)


def too_large(max_upload_bytes: int) -> HTTPException:
    """413 naming the configured upload limit (the body may carry a little form overhead on top)."""
    return HTTPException(
        413,
        f"The upload is over the {max_upload_bytes / 1048576:.3g} MB limit (VOICEBOX_MAX_UPLOAD_MB); "
        "upload a shorter clip (a voice sample needs only 5-30 seconds).",
    )


def capped_receive(receive: Receive, limit: int, max_upload_bytes: int) -> Receive:
    """``receive`` that fails with 413 once more than ``limit`` body bytes have arrived."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(max_upload_bytes)
        return message

    return wrapped


def route_class(settings: Settings, protected: bool) -> type[APIRoute]:
    """An ``APIRoute`` that checks credentials and size before the body, and maps errors to JSON."""
    body_limit = settings.max_upload_bytes + UPLOAD_OVERHEAD

    class VoiceboxRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                user = None
                if protected and auth_required(settings):
                    user = await run_in_threadpool(resolve, settings, request.headers.get("authorization"))
                    if user is None:
                        return error_json(401, UNAUTHENTICATED, challenge(settings), path=request.url.path)
                request.state.user = user  # scope["state"]: the Request the handler gets sees it too
                try:
                    length = declared_length(request)
                    if length is not None and length > body_limit:
                        raise too_large(settings.max_upload_bytes)
                    receive = capped_receive(request.receive, body_limit, settings.max_upload_bytes)
                    return await handler(Request(request.scope, receive))
                except Exception as exc:  # noqa: BLE001 - every error becomes JSON here
                    return error_response(exc, request)

            return guarded

    return VoiceboxRoute


class _DocumentedBasic(HTTPBasic):
    """HTTP Basic in the OpenAPI schema (the /docs "Authorize" button); checking is done elsewhere."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


class _DocumentedBearer(HTTPBearer):
    """Bearer token in the OpenAPI schema; checking is done elsewhere."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


def credentials_dependency(settings: Settings) -> Callable[..., None]:
    """A dependency that documents the security schemes and re-checks the credentials.

    The route class already refused bad credentials before the body was read; this check keeps
    routes safe if they are ever mounted without that class.
    """

    def require_credentials(
        request: Request,
        _basic: None = Depends(_DocumentedBasic(auto_error=False, realm="voicebox")),
        _bearer: None = Depends(_DocumentedBearer(auto_error=False)),
    ) -> None:
        if not auth_required(settings) or getattr(request.state, "user", None) is not None:
            return  # the route class resolved this request's user already: one check per request
        user = resolve(settings, request.headers.get("authorization"))  # a sync dependency: in the pool
        if user is None:
            raise HTTPException(401, UNAUTHENTICATED, headers=challenge(settings))
        request.state.user = user

    return require_credentials


class DocsGuard:
    """ASGI middleware: with a login configured, ``/docs`` and ``/openapi.json`` need it too."""

    def __init__(self, app: Any, settings: Settings, paths: frozenset[str]) -> None:
        self.app, self.settings, self.paths = app, settings, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            headers = dict(scope.get("headers") or [])
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            if not await run_in_threadpool(check_credentials, self.settings, authorization):
                response = error_json(401, UNAUTHENTICATED, challenge(self.settings))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
