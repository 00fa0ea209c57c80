"""The front door of the MCP server: who may call the tools, and as whom (issue #18).

**Why a guard is needed.** Gradio serves its MCP server (``mcp_server=True``) as a plain Starlette
mount under ``/gradio_api/mcp`` (``gradio/mcp.py``, ``launch_mcp_on_sse``). A mount has none of
Gradio's route dependencies, so Gradio's login never sees an MCP request; and a tool that is not
queued runs in the MCP request itself (``Blocks.process_api`` with the raw Starlette request, no
``username``), which :mod:`voicebox.identity` would take for the local user. Left alone, anyone
who can reach a server with accounts could read and change the local user's library over MCP.

**What it does.** :class:`McpGuard`, in front of Gradio's routes like
:class:`voicebox.ui.files.FileGuard`, looks at every request under ``/gradio_api/mcp``:

* where requests must prove who they are (:func:`voicebox.auth.auth_required`: accounts, a token,
  or a public server), it takes exactly what the REST API takes (HTTP Basic or ``Authorization:
  Bearer``, :func:`voicebox.auth.resolve`) and answers anything else with the REST API's 401
  (JSON ``detail`` and a ``WWW-Authenticate`` challenge). A public server (Hugging Face sign-in,
  anonymous libraries) has no "local user" to fall back to, so it too wants an account;
* it writes who the caller is (:class:`McpCaller`: the owner whose data the tools use, and whose
  quotas they count) into the ASGI scope under :data:`CALLER_KEY`, where the tools read it
  (:func:`voicebox.ui.mcp_tools.caller_of`). Only this middleware can set that key: it is not a
  header, so no client can forge it;
* it refuses a body over the upload limit as base64 (:func:`body_limit`) with a 413 before
  reading it, and cuts off a chunked one that grows past it: a clip comes in as a ``data:`` URI;
* before the first MCP request, it narrows Gradio's tool list to voicebox's MCP tools
  (:func:`voicebox.ui.mcp_tools.restrict`), whether the app was mounted or launched.

Without accounts on a private server (the loopback default) every request is the local user, as
in the UI and the REST API. The Gradio login cookie is not taken for tool calls (a web page could
make a logged-in browser send it); the "Use via API" page's read-only tool list
(``/gradio_api/mcp/schema``) does take it, and its 401 carries no challenge, so the browser shows
no password prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import auth_required, challenge, owner_for, resolve
from ..config import Settings

#: Where Gradio serves MCP: the streamable-HTTP transport at ``/gradio_api/mcp/``, SSE at
#: ``/gradio_api/mcp/sse`` (+ ``/messages/``), and the tools' schema at ``/gradio_api/mcp/schema``.
MCP_PREFIX = "/gradio_api/mcp"
SCHEMA_PATH = MCP_PREFIX + "/schema"
#: The ASGI scope key that carries the :class:`McpCaller` of a request that passed the guard.
CALLER_KEY = "voicebox.mcp_caller"
#: The 401 body: the same for a wrong password, an unknown name and no credentials at all.
UNAUTHENTICATED = (
    "Authentication required: this server's MCP tools take the same credentials as its REST API. "
    "Send HTTP Basic with an account name and password, or 'Authorization: Bearer <API token>' "
    "(python -m voicebox users token <name>)."
)


@dataclass(frozen=True)
class McpCaller:
    """Who an MCP request proved to be: ``owner`` is whose data the tools read and change
    (:func:`voicebox.auth.owner_for`), ``user`` whose quotas they count (``""``: the one user)."""

    owner: str
    user: str


def enabled(settings: Settings) -> bool:
    """Whether to serve the MCP server: ``VOICEBOX_MCP`` is on (the default) and the ``mcp``
    package (``gradio[mcp]``) is installed."""
    if not settings.mcp:
        return False
    try:
        import mcp  # noqa: F401
    except ImportError:
        return False
    return True


def route_path(scope: Scope) -> str:
    """The request's path inside the Gradio app (without the prefix it is mounted under, if any)."""
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    return path[len(root):] if root and path.startswith(root) else path


def is_mcp_path(path: str) -> bool:
    return path == MCP_PREFIX or path.startswith(MCP_PREFIX + "/")


class McpGuard:
    """ASGI middleware on the Gradio app (see the module docstring).

    Args:
        app: the Gradio app.
        settings: what says whether requests must prove who they are.
        blocks: the app's ``gr.Blocks``; its MCP server's tool list is narrowed once.
    """

    def __init__(self, app: ASGIApp, settings: Settings, blocks: Any = None) -> None:
        self.app, self.settings, self.blocks = app, settings, blocks
        self._restricted = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_mcp_path(route_path(scope)):
            await self.app(scope, receive, send)
            return
        self._restrict(scope)
        caller = await self.caller(scope)
        if caller is None:
            schema = route_path(scope).rstrip("/") == SCHEMA_PATH
            headers = {} if schema else challenge(self.settings)
            await JSONResponse({"detail": UNAUTHENTICATED}, 401, headers)(scope, receive, send)
            return
        limit = body_limit(self.settings)
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.strip().isdigit() and int(declared) > limit:
            await JSONResponse({"detail": too_large(self.settings)}, 413)(scope, receive, send)
            return
        await self.app({**scope, CALLER_KEY: caller}, capped(receive, limit), send)

    async def caller(self, scope: Scope) -> McpCaller | None:
        """Who the request is, or ``None`` when it must prove it and does not."""
        if not auth_required(self.settings):
            return McpCaller("", "")
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import HTTPConnection

        connection = HTTPConnection(scope)
        # scrypt for a password not seen before: never on the event loop
        user = await run_in_threadpool(resolve, self.settings, connection.headers.get("authorization"))
        if user is not None:
            return McpCaller(owner_for(user), user.name)
        schema = route_path(scope).rstrip("/") == SCHEMA_PATH and scope.get("method") == "GET"
        if schema and self._logged_in(scope, dict(connection.cookies)):
            return McpCaller("", "")  # the tool list only: no tool runs on this route
        return None

    @staticmethod
    def _logged_in(scope: Scope, cookies: dict[str, str]) -> bool:
        """Whether the request carries a Gradio login cookie (as :class:`FileGuard` reads it)."""
        gradio_app = scope.get("app")
        cookie_id, tokens = getattr(gradio_app, "cookie_id", None), getattr(gradio_app, "tokens", None)
        if cookie_id is None or not tokens:
            return False
        token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
        return bool(token and tokens.get(token))

    def _restrict(self, scope: Scope) -> None:
        """Narrow the MCP server's tools once, before it answers its first request."""
        if self._restricted:
            return
        blocks = self.blocks
        if blocks is None:
            gradio_app = scope.get("app")
            get_blocks = getattr(gradio_app, "get_blocks", None)
            blocks = get_blocks() if callable(get_blocks) else None
        server = getattr(blocks, "mcp_server_obj", None)
        if server is not None:
            from .mcp_tools import restrict

            restrict(server)
            self._restricted = True


def body_limit(settings: Settings) -> int:
    """The most bytes an MCP request may carry: a clip of ``VOICEBOX_MAX_UPLOAD_MB`` as base64
    (a ``data:`` URI grows by a third) plus room for the JSON around it."""
    return settings.max_upload_bytes * 4 // 3 + 64 * 1024


def too_large(settings: Settings) -> str:
    return (f"The request is over the {settings.max_upload_bytes / 1048576:.3g} MB upload limit "
            "(VOICEBOX_MAX_UPLOAD_MB, before base64): send a shorter clip.")


def capped(receive: Receive, limit: int) -> Receive:
    """``receive`` that reports a disconnect once more than ``limit`` body bytes have arrived (a
    body without a ``Content-Length``), so an endless upload is never read into memory whole."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.disconnect"}
        return message

    return wrapped


def mcp_middleware(settings: Settings, blocks: Any = None) -> list[Any]:
    """The guard as Gradio app middleware, for ``app_kwargs={"middleware": [...]}`` of
    ``mount_gradio_app`` or ``launch`` (next to :func:`voicebox.ui.files.middleware`)."""
    from starlette.middleware import Middleware

    return [Middleware(McpGuard, settings=settings, blocks=blocks)]
