"""Which person may fetch which of Gradio's temp files (issue #16, isolation).

**What Gradio 6 does on its own** (``gradio/route_utils.py``, ``file_fetch``): ``GET
/gradio_api/file=<path>`` serves any file inside its temp folder (``GRADIO_TEMP_DIR``: the uploads,
and the cache it copies every output file into) to anyone who passes its login, whichever session
the file was made for. The path is ``<temp>/<sha256(server seed + content)>/<name>``, so it cannot
be guessed; but a URL that leaks (a shared link, a log, a browser's history on a shared computer)
would play one person's take to another who is logged in.

**What voicebox adds**: a ledger (:class:`ServedFiles`). Every file the UI hands to a page goes
through :class:`~voicebox.ui.common.TempAudio` (takes, samples, sentence takes, exports, batch
ZIPs), which records it under the folder Gradio will cache it in (the same seeded hash Gradio
computes, :func:`gradio.processing_utils.hash_file`) for the owner it was made for; every upload
is recorded under its folder for the person who uploaded it. :class:`FileGuard`, in front of
Gradio's routes, answers a file whose folder is recorded for other owners only exactly as Gradio
answers a path it does not have (403, "File not allowed: <path>."). Files not in the ledger (the
app's own assets, examples) are left to Gradio's rules.

Byte-identical files share a folder (the hash is of the content), so two owners who made the same
bytes may both fetch that folder: it reveals nothing either did not already have. The ledger lives
in memory, as long as the temp folder, which is new at each start
(:func:`voicebox.server.private_temp_dir`). Gradio's live streams (``/gradio_api/stream/<session
hash>/...``) are addressed by a browser session's random hash and are not covered here.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: ``/gradio_api/file=<path>`` (and the older ``/file=``, ``/gradio_api/file/`` spellings).
FILE_ROUTE = re.compile(r"^(?:/gradio_api)?/file[=/](?P<path>.+)$")
UPLOAD_ROUTE = re.compile(r"^(?:/gradio_api)?/upload/?$")


def temp_root() -> Path:
    """Gradio's temp folder (uploads and cache), as Gradio finds it."""
    from gradio.utils import get_upload_folder

    return Path(os.path.realpath(get_upload_folder()))


def folder_key(path: str | Path, root: Path | None = None) -> str | None:
    """The first folder of ``path`` inside Gradio's temp folder, or ``None`` outside it."""
    root = root or temp_root()
    try:
        relative = Path(os.path.realpath(path)).relative_to(root)
    except ValueError:
        return None
    return relative.parts[0] if len(relative.parts) > 1 else None


class ServedFiles:
    """The ledger: Gradio temp folder → the owners it was handed to.

    Every :attr:`PRUNE_EVERY` records, folders that Gradio has cleaned away (``delete_cache``)
    are dropped, so the ledger stays as small as the temp folder; a folder recorded in the last
    :attr:`GRACE` seconds is kept even when it is not there yet (Gradio copies a file into its
    cache only after the handler that returned it has finished)."""

    PRUNE_EVERY = 1000
    GRACE = 600.0

    def __init__(self) -> None:
        self._owners: dict[str, set[str]] = {}
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._since_prune = 0

    def record(self, key: str | None, owner: str) -> None:
        if not key:
            return
        now = time.monotonic()
        with self._lock:
            self._owners.setdefault(key, set()).add(owner)
            self._seen[key] = now
            self._since_prune += 1
            if self._since_prune < self.PRUNE_EVERY:
                return
            self._since_prune = 0
            root = temp_root()
            old = [k for k, at in self._seen.items() if now - at > self.GRACE]
            for gone in [k for k in old if not (root / k).exists()]:
                del self._owners[gone], self._seen[gone]

    def handed(self, path: str | Path, owner: str) -> None:
        """A file voicebox returns to ``owner``'s page: recorded under the folder Gradio will copy
        it to (the seeded content hash Gradio computes for its cache)."""
        from gradio.processing_utils import hash_file

        self.record(hash_file(path), owner)

    def uploaded(self, path: str | Path, owner: str) -> None:
        self.record(folder_key(path), owner)

    def allowed(self, key: str | None, owner: str | None) -> bool:
        """Whether ``owner`` may fetch files of folder ``key``: yes unless it is recorded for
        others only (``None``, a visitor nobody knows, is nobody's: only unrecorded folders)."""
        if key is None:
            return True
        with self._lock:
            owners = self._owners.get(key)
            return owners is None or owner in owners


class FileGuard:
    """ASGI middleware on the Gradio app: another owner's temp file is refused as a missing one;
    uploads are recorded for their uploader.

    It must sit inside Gradio's session middleware (which "Sign in with Hugging Face" adds), so
    that it can read who a request is (:func:`voicebox.identity.visitor`): :func:`middleware`
    gives it to Gradio as an app keyword, which puts it there.

    Args:
        app: the Gradio app (its ``tokens`` and ``cookie_id`` say who a request's login is).
        ledger: the UI's :class:`ServedFiles`.
        settings: what says which kinds of visitor there are.
    """

    def __init__(self, app: ASGIApp, ledger: ServedFiles, settings: Any) -> None:
        self.app, self.ledger, self.settings = app, ledger, settings

    def username(self, scope: Scope, cookies: dict[str, str]) -> str | None:
        """The Gradio login of a request (its cookie), ``None`` without one."""
        gradio_app = scope.get("app")
        cookie_id = getattr(gradio_app, "cookie_id", None)
        tokens = getattr(gradio_app, "tokens", None)
        if cookie_id is None or not tokens:
            return None
        token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
        return tokens.get(token) if token else None

    def owner(self, scope: Scope) -> str | None:
        """Whose files a request may fetch; ``None`` for a visitor nobody knows (only files
        recorded for no one)."""
        from starlette.requests import HTTPConnection

        from ..identity import visitor

        cookies = dict(HTTPConnection(scope).cookies)
        found = visitor(self.settings, self.username(scope, cookies), cookies, scope.get("session"))
        return found.owner if found.known else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        found = FILE_ROUTE.match(path)
        if found and scope.get("method") in ("GET", "HEAD"):
            if not self.ledger.allowed(folder_key(found.group("path")), self.owner(scope)):
                # Gradio's own answer for a file it does not have (route_utils.file_fetch)
                refusal = {"detail": f"File not allowed: {found.group('path')}."}
                await JSONResponse(refusal, status_code=403)(scope, receive, send)
                return
        elif UPLOAD_ROUTE.match(path) and scope.get("method") == "POST":
            await self.app(scope, receive, self._recording_uploads(scope, send))
            return
        await self.app(scope, receive, send)

    def _recording_uploads(self, scope: Scope, send: Send) -> Send:
        """``send`` that reads the upload's answer (a JSON list of paths) and records each path."""
        body: list[bytes] = []
        owner = self.owner(scope)

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body"):
                    try:
                        paths = json.loads(b"".join(body) or b"[]")
                    except ValueError:
                        paths = []
                    for item in paths if isinstance(paths, list) and owner is not None else []:
                        if isinstance(item, str):
                            self.ledger.uploaded(item, owner)
            await send(message)

        return recording


def middleware(ledger: ServedFiles, settings: Any) -> list[Any]:
    """The Gradio app's own middleware, for ``app_kwargs={"middleware": ...}`` of
    ``mount_gradio_app`` or ``launch``: the anonymous visitor's cookie (when that mode is on),
    then :class:`FileGuard`. Given this way they sit inside Gradio's session middleware."""
    from starlette.middleware import Middleware

    from ..identity import AnonymousCookie

    stack = [Middleware(AnonymousCookie, days=settings.anonymous_days)] if settings.anonymous else []
    return [*stack, Middleware(FileGuard, ledger=ledger, settings=settings)]
