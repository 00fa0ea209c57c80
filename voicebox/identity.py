"""Who a browser is, and so whose library it sees (issue #16, identity).

A page's events reach the studio as one of four kinds of visitor, tried in this order:

1. **An account** that logged in through Gradio's login form (``request.username``), mapped to its
   owner by :func:`voicebox.auth.login_owner`.
2. **A Hugging Face account**, signed in with Gradio's OAuth ("Sign in with Hugging Face") on a
   Space whose README front matter says ``hf_oauth: true``: the platform then sets
   ``OAUTH_CLIENT_ID`` and friends, Gradio keeps the signed-in profile in its signed session
   cookie, and the owner is ``"hf:<username>"``. Hugging Face user names are unique and never
   reused, so the name is a stable key.
3. **An anonymous visitor** (``VOICEBOX_ANONYMOUS=1``): a random secret in a cookie of this
   browser (:data:`ANON_COOKIE`, set by :class:`AnonymousCookie` on the first response). The
   owner is ``"anon:"`` plus a hash of the secret, so the secret itself is never written to the
   store or to a folder name, and knowing a folder name does not let anyone act as its owner.
4. **Nobody**: a public server (Hugging Face sign-in or anonymous mode on) that cannot tell who
   this is. Such a visitor gets no library at all (:class:`SignInRequired` says what to do); it
   must never fall back to the local user's library, which on a public server would be shared by
   every stranger.

Everything else (a laptop, a server with accounts reached without a login) is the one local user
(owner ``""``), as before accounts existed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .auth import LOCAL_SOURCES, login_owner, public, registry
from .config import ConfigError, Settings
from .errors import VoiceboxError

__all__ = [
    "ANON_COOKIE", "AnonymousCookie", "SignInRequired", "Visitor", "anonymous_owner", "multi_user",
    "visitor", "visitor_of_request",
]

#: The cookie that holds an anonymous visitor's secret.
ANON_COOKIE = "voicebox-visitor"
#: What a secret looks like (``secrets.token_urlsafe(32)``); anything else is ignored and replaced.
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
HF_PREFIX, ANON_PREFIX = "hf:", "anon:"

Kind = Literal["local", "account", "huggingface", "anonymous", "nobody"]


class SignInRequired(VoiceboxError):
    """A public server does not know who this visitor is, so there is no library to use."""

    status_code = 401

    def __init__(self, settings: Settings) -> None:
        if settings.hf_sign_in:
            message = ("Sign in with Hugging Face (the button at the top of the page) to get your own "
                       "private voice library.")
        else:
            message = ("This browser does not keep cookies for this site, so voicebox cannot give it a "
                       "private library. Allow cookies for this site and reload the page.")
        super().__init__(message)


@dataclass(frozen=True)
class Visitor:
    """Who an event comes from: ``owner`` is whose data it reads and changes
    (:mod:`voicebox.owners`), ``name`` what the page shows."""

    kind: Kind
    owner: str
    name: str = ""

    @property
    def known(self) -> bool:
        """Whether there is a library to use (everyone but :data:`nobody <Kind>`)."""
        return self.kind != "nobody"

    def require(self, settings: Settings) -> str:
        """The owner, or :class:`SignInRequired` for a visitor nobody knows."""
        if not self.known:
            raise SignInRequired(settings)
        return self.owner


def multi_user(settings: Settings) -> bool:
    """Whether several people keep libraries here (named accounts, Hugging Face sign-in or
    anonymous libraries): then creating a profile asks for the speaker's consent. The single
    ``VOICEBOX_AUTH`` login of old is the local user behind a password, not a second library."""
    if public(settings):
        return True
    try:
        return any(user.source not in LOCAL_SOURCES for user in registry(settings).all())
    except ConfigError:  # a damaged users file: start-up reports it
        return False


def anonymous_owner(secret: str) -> str:
    """The owner of an anonymous browser: a hash of its cookie's secret, never the secret."""
    return ANON_PREFIX + hashlib.sha256(secret.encode("ascii")).hexdigest()[:32]


def valid_secret(value: str | None) -> bool:
    return bool(value) and _SECRET.fullmatch(value or "") is not None


def hf_username(session: Mapping[str, Any] | None, now: float | None = None) -> str | None:
    """The Hugging Face user name of a Gradio OAuth session that has not expired, else ``None``."""
    import time

    info = (session or {}).get("oauth_info")
    if not isinstance(info, Mapping):
        return None
    expires_at = info.get("expires_at")
    if isinstance(expires_at, (int, float)) and expires_at < (time.time() if now is None else now):
        return None
    userinfo = info.get("userinfo")
    name = userinfo.get("preferred_username") if isinstance(userinfo, Mapping) else None
    return name if isinstance(name, str) and name else None


def visitor(
    settings: Settings,
    username: str | None = None,
    cookies: Mapping[str, str] | None = None,
    session: Mapping[str, Any] | None = None,
) -> Visitor:
    """Who a request is, from its Gradio login, its OAuth session and its cookies (module docstring)."""
    if username:
        return Visitor("account", login_owner(settings, username), username)
    if settings.hf_sign_in:
        name = hf_username(session)
        if name:
            return Visitor("huggingface", HF_PREFIX + name, name)
    if settings.anonymous:
        secret = (cookies or {}).get(ANON_COOKIE)
        if valid_secret(secret):
            return Visitor("anonymous", anonymous_owner(secret or ""), "anonymous")
    if public(settings):
        return Visitor("nobody", "")
    return Visitor("local", "")


def visitor_of_request(settings: Settings, request: Any) -> Visitor:
    """:func:`visitor` of a ``gr.Request`` (or a Starlette request, or ``None``: the local user
    or, on a public server, nobody)."""
    if request is None:
        return visitor(settings)
    underlying = getattr(request, "request", None) or request
    scope = getattr(underlying, "scope", None)
    session = scope.get("session") if isinstance(scope, dict) else None
    cookies = getattr(underlying, "cookies", None)
    return visitor(
        settings,
        getattr(request, "username", None),
        cookies if isinstance(cookies, Mapping) else None,
        session if isinstance(session, Mapping) else None,
    )


class AnonymousCookie:
    """ASGI middleware (anonymous mode): a browser that comes without a valid secret gets one.

    The secret goes out on the first response (the page itself), so every later request of that
    page carries it. The cookie is ``HttpOnly`` (page scripts cannot read it), lives
    ``VOICEBOX_ANONYMOUS_DAYS`` (renewed on each visit, like the library's expiry), and over HTTPS
    is ``SameSite=None; Secure; Partitioned``, because a Space shows the app inside an iframe of
    huggingface.co, where a ``Lax`` cookie would not be sent.
    """

    def __init__(self, app: Any, days: float) -> None:
        self.app, self.max_age = app, int(days * 86400)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.requests import HTTPConnection

        connection = HTTPConnection(scope)
        current = connection.cookies.get(ANON_COOKIE)
        secret = current if valid_secret(current) else secrets.token_urlsafe(32)
        if current != secret:  # hand later events of this very request the new identity too
            headers = [(k, v) for k, v in scope.get("headers", []) if k != b"cookie"]
            cookies = "; ".join([*(f"{k}={v}" for k, v in connection.cookies.items()), f"{ANON_COOKIE}={secret}"])
            scope = {**scope, "headers": [*headers, (b"cookie", cookies.encode("latin-1"))]}
        secure = _https(connection)
        renew = current != secret or scope.get("path", "/") in ("/", "")

        async def sending(message: Any) -> None:
            if renew and message["type"] == "http.response.start":
                flags = "; Secure; SameSite=None; Partitioned" if secure else "; SameSite=Lax"
                cookie = f"{ANON_COOKIE}={secret}; Path=/; Max-Age={self.max_age}; HttpOnly{flags}"
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, sending)


def _https(connection: Any) -> bool:
    """Whether the browser reached us over HTTPS (directly, or through a proxy that says so)."""
    forwarded = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return connection.url.scheme == "https" or forwarded == "https"
