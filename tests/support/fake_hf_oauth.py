"""A small but real OpenID Connect provider that stands in for huggingface.co in tests.

Gradio's "Sign in with Hugging Face" (``gradio/oauth.py``) only runs its real flow, through
authlib, against a provider it can reach: discovery, an authorization-code grant, and an RS256
``id_token`` checked against the provider's JWKS (``iss``, ``aud``, ``exp``, ``nonce``,
``at_hash``). This machine is offline, so tests point ``OPENID_PROVIDER_URL`` here instead of
mocking the client: a mistake in how the app drives authlib fails here as it would on the Hub.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Self
from urllib.parse import unquote_plus, urlencode, urlsplit

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

SCOPES = "openid profile"  # what a Space with `hf_oauth: true` gets by default
TOKEN_LIFETIME = 28800  # seconds: the Hub's OAuth access tokens last 8 hours
CODE_LIFETIME = 600  # seconds an authorization code may wait before it is redeemed
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,41}")


@functools.cache
def signing_key() -> RSAKey:
    """The process's RSA signing key, made on first use: RSA generation is slow enough to matter
    when every test starts its own provider, and nothing is gained by a fresh key each time."""
    return RSAKey.generate_key(2048, {"use": "sig", "alg": "RS256"}, auto_kid=True)


@dataclass(frozen=True)
class _Request:
    """An authorization request, kept server-side so the consent form cannot change the
    redirect_uri, nonce or state checked on the way in; once approved, it is the code's grant."""

    redirect_uri: str
    state: str | None
    scope: str
    nonce: str | None
    username: str = ""
    expires_at: float = 0.0


class FakeHuggingFace:
    """Context manager: serves the provider on 127.0.0.1:<free port> from a background thread."""

    def __init__(self) -> None:
        self.client_id = str(uuid.uuid4())  # the Hub's OAuth client ids are UUIDs
        self.client_secret = secrets.token_urlsafe(24)
        self.url = ""  # set on __enter__, once the port is known
        self._key = signing_key()  # here, on the caller's thread, not raced by two servers
        self._pending: dict[str, _Request] = {}
        self._grants: dict[str, _Request] = {}
        self._tokens: dict[str, str] = {}  # access token -> username
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def env(self) -> dict[str, str]:
        """The variables a Space with ``hf_oauth: true`` gets, pointing at this provider."""
        return {
            "OAUTH_CLIENT_ID": self.client_id,
            "OAUTH_CLIENT_SECRET": self.client_secret,
            "OAUTH_SCOPES": SCOPES,
            "OPENID_PROVIDER_URL": self.url,
        }

    def profile(self, username: str) -> dict[str, str]:
        """The claims the Hub gives about a user; ``sub`` is derived from the name so the same
        user keeps one id across providers and runs, as a real account would."""
        return {
            "sub": hashlib.sha256(username.encode()).hexdigest()[:24],
            "name": username,
            "preferred_username": username,
            "picture": f"https://huggingface.co/avatars/{username}.svg",  # never fetched offline
            "profile": f"https://huggingface.co/{username}",
        }

    def __enter__(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # bound before the thread starts, so the port cannot race
        self._socket = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        # log_config=None: leave the test process's logging alone (other uvicorns run there).
        config = uvicorn.Config(self._app(), lifespan="off", log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-hf-oauth", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("the fake Hugging Face provider did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._metadata),
                Route("/oauth/authorize", self._consent_page, methods=["GET"]),
                Route("/oauth/authorize", self._consent, methods=["POST"]),
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/oauth/userinfo", self._userinfo, methods=["GET", "POST"]),
                Route("/jwks", self._jwks),
            ]
        )

    async def _metadata(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/oauth/authorize",
                "token_endpoint": f"{self.url}/oauth/token",
                "userinfo_endpoint": f"{self.url}/oauth/userinfo",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": SCOPES.split(),
            }
        )

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet([self._key]).as_dict(private=False))

    async def _consent_page(self, request: Request) -> Response:
        query = request.query_params
        redirect_uri = query.get("redirect_uri", "")
        target = urlsplit(redirect_uri)
        if query.get("client_id") != self.client_id:
            return Response("unknown client_id", 400)
        if target.scheme not in ("http", "https") or not target.netloc or target.fragment:
            return Response("missing or invalid redirect_uri", 400)
        if query.get("response_type") != "code":
            return Response("response_type must be code", 400)
        request_id = secrets.token_urlsafe(16)
        scope = query.get("scope") or SCOPES
        self._pending[request_id] = _Request(redirect_uri, query.get("state"), scope, query.get("nonce"))
        return self._page(request_id)

    def _page(self, request_id: str, username: str = "", problem: str = "") -> HTMLResponse:
        """A consent page shaped like the Hub's, for browser tests to fill in and submit."""
        alert = f'<p role="alert">{html.escape(problem)}</p>' if problem else ""
        scope = html.escape(self._pending[request_id].scope)
        body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Authorize application - Hugging Face</title></head><body><main>
<h1>Sign in with Hugging Face</h1><p>An application wants access to your profile ({scope}).</p>
{alert}<form method="post" action="/oauth/authorize">
<input type="hidden" name="request" value="{html.escape(request_id)}">
<label for="username">Hugging Face username</label>
<input id="username" name="username" autocomplete="username" required value="{html.escape(username)}">
<button type="submit" name="decision" value="allow">Authorize</button>
<button type="submit" name="decision" value="deny" formnovalidate>Cancel</button>
</form></main></body></html>"""
        return HTMLResponse(body, 400 if problem else 200)

    async def _consent(self, request: Request) -> Response:
        form = await request.form()
        request_id = _field(form, "request")
        pending = self._pending.get(request_id)
        if pending is None:
            return Response("unknown or already answered authorization request", 400)
        username = _field(form, "username").strip()
        allow = _field(form, "decision", "allow") != "deny"
        if allow and not USERNAME.fullmatch(username):
            return self._page(request_id, username, "Enter a valid Hugging Face username.")
        del self._pending[request_id]
        answer: dict[str, str] = {"error": "access_denied"}
        if allow:
            code = secrets.token_urlsafe(24)
            self._grants[code] = replace(pending, username=username, expires_at=time.time() + CODE_LIFETIME)
            answer = {"code": code}
        if pending.state is not None:
            answer["state"] = pending.state
        separator = "&" if urlsplit(pending.redirect_uri).query else "?"
        # 302, not Starlette's default 307: the browser must GET the callback, not re-POST.
        return RedirectResponse(pending.redirect_uri + separator + urlencode(answer), 302)

    def _client_ok(self, request: Request, form: FormData) -> bool:
        """client_secret_basic or client_secret_post, the two methods authlib may use."""
        header = request.headers.get("authorization", "")
        if header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:], validate=True).decode()
            except ValueError:
                return False
            client_id, _, secret = (unquote_plus(part) for part in decoded.partition(":"))
        else:
            client_id, secret = _field(form, "client_id"), _field(form, "client_secret")
        return secrets.compare_digest(client_id.encode(), self.client_id.encode()) and (
            secrets.compare_digest(secret.encode(), self.client_secret.encode())
        )

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        if not self._client_ok(request, form):
            return _error("invalid_client", "client authentication failed", 401)
        if _field(form, "grant_type") != "authorization_code":
            return _error("unsupported_grant_type", "only authorization_code is supported")
        grant = self._grants.pop(_field(form, "code"), None)  # gone now, whatever follows
        if grant is None or grant.expires_at < time.time():
            return _error("invalid_grant", "unknown, used or expired code")
        if _field(form, "redirect_uri") != grant.redirect_uri:
            return _error("invalid_grant", "redirect_uri differs from the authorization request")
        access_token = "hf_oauth_" + secrets.token_urlsafe(32)
        self._tokens[access_token] = grant.username
        now = int(time.time())
        claims: dict[str, Any] = {
            **self.profile(grant.username),
            "iss": self.url,
            "aud": self.client_id,
            "iat": now,
            "auth_time": now,
            "exp": now + TOKEN_LIFETIME,
            "at_hash": _at_hash(access_token),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        header = {"alg": "RS256", "typ": "JWT", "kid": self._key.kid}  # kid: authlib picks by it
        id_token = jwt.encode(header, claims, self._key)
        body = {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": grant.scope,
            "id_token": id_token,
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def _userinfo(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        username = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if username is None:
            challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            return JSONResponse({"error": "invalid_token"}, 401, headers=challenge)
        return JSONResponse(self.profile(username))


def _field(form: FormData, name: str, default: str = "") -> str:
    """A text field of a submitted form; an uploaded file where text belongs counts as absent."""
    value = form.get(name, default)
    return value if isinstance(value, str) else default


def _at_hash(access_token: str) -> str:
    """OIDC's ``at_hash``: the left half of the token's SHA-256, base64url without padding;
    authlib checks it when present, so a token swapped in transit is caught."""
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def _error(code: str, description: str, status: int = 400) -> JSONResponse:
    """An RFC 6749 error body, which authlib turns into an OAuthError with this code."""
    headers = {"WWW-Authenticate": 'Basic realm="huggingface"'} if status == 401 else None
    return JSONResponse({"error": code, "error_description": description}, status, headers=headers)
